"""Service-desk KPIs, as SPEC defines them, for a period and optionally a group.

Past days are read from a daily roll-up (``kpi_daily``: sums per day, group and priority); today is
aggregated live from the tickets. The roll-up stays correct because every transaction that changes a
ticket marks the days it touches (``kpi_dirty_days``), and those days are recomputed from the tickets
before the roll-up is read. Days are UTC days.

Definitions (the screen, the report and the tests share them):

- MTTA: mean hours from opening to response (first ownership or public reply), tickets opened in the period.
- MTTR: mean hours from opening to resolution, tickets resolved in the period (wall clock; business clock
  of the ticket's SLA calendar beside it).
- SLA compliance, response: of tickets opened in the period whose response target is decided (responded, or
  breached without a response), the share responded by the due instant; per priority and overall.
- SLA compliance, resolution: of tickets resolved in the period, the share resolved by the due instant.
- First-contact resolution: of incidents resolved in the period, the share resolved by a level-1 group,
  never escalated or reassigned to another group, and not reopened.
- Reopen rate / escalation rate: of tickets resolved in the period, the share reopened / escalated.
- CSAT: of ratings given in the period, the share scoring 4 or 5 out of 5.
- Backlog: open tickets now, by age (<1 day, 1-3, 3-7, >7 days).
- Change success rate: of changes finished in the period (implemented, failed or backed out), the share
  implemented. Emergency-change share: of changes planned to start in the period, the share of emergencies.
- Changes by type and by risk (``ChangeKpis``; one row per type, standard, normal, emergency, per risk, low,
  medium, high, and one of all): finished in the period and the success rate as above; the emergency share
  of those planned to start in the period; changes that caused incidents: of the changes finished in the
  period, those with at least one incident (not cancelled) linked to them (a link from the ticket to the
  change) that was opened between the change's start (actual, else planned) and ``incident_days``
  (changes.toml ``[impact]``) after its end (actual, else planned), both instants included, and the number
  of such incidents; overdue reviews: the changes whose post-implementation review is due (failed, backed
  out or in review, or an implemented emergency change) and that have no review notes now, among those that
  ended ``review_due_days`` (``[reminders]``) or more before the period's end (or now, if sooner): what the
  reminder job reports as overdue.
- Problems and knowledge (desk-wide; ``ProblemKpis``): problems opened / resolved in the period; mean time to
  root cause (hours, wall clock, from opening to the first root cause, of problems whose first root cause was
  recorded in the period); known-error share (of incidents opened in the period, those linked to a known
  error); incidents avoided after a fix (below); article uses (ticket -> article links made in the period,
  and the distinct articles they name); articles published in the period per author (the top five).
- Incidents avoided after a fix, with a window of W days (``FIX_WINDOW_DAYS``): the problems measured are
  those resolved (``resolved_at``) in [start - W days, end - W days), so the W days after each fix ended
  in the period. A problem's incidents are the incidents linked to it or to one of its known errors (each
  once). Before counts those opened in [resolved_at - W days, resolved_at), after those opened in
  [resolved_at, resolved_at + W days); summed over the problems and scaled to a rate per 30 days (x 30 / W);
  avoided per 30 days = before - after.

With a group, each figure counts a ticket under one group, the one that answers for that figure:

- the group the ticket was first assigned to (its group at creation, ``first_group_id``): opened per day,
  MTTA, response compliance, first-contact resolution and escalation rate (so a level-1 group's FCR and
  escalation rate include the tickets it handed on). FCR is a level-1 figure: a group of another level has
  none (the incidents logged straight into it count, unresolved at first contact, in the desk-wide FCR);
- the group that resolved it (its group at resolution, which stays its group while it is resolved or
  closed): resolved per day, MTTR, resolution compliance, reopen rate (a reopened ticket counts once, for
  the group that resolved it last) and CSAT;
- its group now: the backlog, its ages and the workload;
- changes count for a group when their implementer is a member of it now (so a change counts for each
  group of its implementer; a change without an implementer for none).

Without a group each ticket and change counts once, so the desk-wide figures do not depend on these rules.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
    true,
    type_coerce,
)
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.db import conflict_insert
from itsm_tui.models import (
    Change,
    Group,
    GroupMembership,
    KnowledgeArticle,
    KnownError,
    KpiDaily,
    KpiDirtyDay,
    Link,
    Problem,
    SatisfactionRating,
    Ticket,
    User,
)

PERIODS = ("today", "7d", "30d", "quarter")
PERIOD_TITLES = {"today": "Today", "7d": "Last 7 days", "30d": "Last 30 days", "quarter": "This quarter"}
FIX_WINDOW_DAYS = 30  # the windows before and after a problem's fix (incidents avoided)
AGE_BUCKETS = (("<1d", 0, 1), ("1-3d", 1, 3), ("3-7d", 3, 7), (">7d", 7, None))
SUMS = (
    "opened",
    "responded",
    "response_seconds",
    "response_decided",
    "response_met",
    "resolved",
    "resolve_seconds",
    "resolve_business_seconds",
    "resolution_met",
    "incidents_resolved",
    "first_contact",
    "reopened",
    "escalated",
    "first_group_resolved",
    "rated",
    "satisfied",
)


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """A reporting period [start, end), start at a UTC midnight."""

    start: datetime
    end: datetime
    label: str

    @property
    def days(self) -> list[date]:
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def previous(self) -> Period:
        length = self.end - self.start
        return Period(self.start - length, self.start, f"before {self.label.lower()}")


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def period_for(name: str, now: datetime) -> Period:
    """today, 7d, 30d or quarter (this calendar quarter so far), each ending now."""
    today = now.astimezone(UTC).date()
    if name == "today":
        start = today
    elif name in ("7d", "30d"):
        start = today - timedelta(days=int(name[:-1]) - 1)
    elif name == "quarter":
        start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    else:
        raise ValueError(f"unknown period {name!r}; use {', '.join(PERIODS)} or custom dates")
    return Period(_midnight(start), now, PERIOD_TITLES[name])


def custom_period(first: date, last: date, now: datetime) -> Period:
    """The days ``first`` to ``last`` inclusive (not beyond now)."""
    if last < first:
        raise ValueError("the period ends before it starts")
    end = min(_midnight(last + timedelta(days=1)), now)
    return Period(_midnight(first), end, f"{first:%Y-%m-%d} to {last:%Y-%m-%d}")


# --------------------------------------------------------------------------- the roll-up


def mark_dirty(session: Session, *instants: datetime | None) -> None:
    """Note the (UTC) days of these instants for recomputation; called in the changing transaction."""
    days = sorted({i.astimezone(UTC).date() for i in instants if i is not None})
    if not days:
        return
    session.execute(
        conflict_insert(session, KpiDirtyDay).on_conflict_do_nothing(index_elements=["day"]),
        [{"day": d} for d in days],
    )


def _day_rows(session: Session, first: datetime, end: datetime) -> dict[tuple, dict[str, float]]:
    """The roll-up sums of tickets opened / resolved / rated in [first, end), by (day, group, priority);
    each sum under its own group (see the module's docstring): the first group or the resolving one."""
    level_one = select(Group.id).where(Group.level == 1)
    rows: dict[tuple, dict[str, float]] = defaultdict(lambda: dict.fromkeys(SUMS, 0))
    # Literals, not parameters, so that PostgreSQL matches the selected key with the GROUP BY one.
    first_group = func.coalesce(Ticket.first_group_id, literal_column("0"))
    resolving_group = func.coalesce(Ticket.group_id, literal_column("0"))  # resolved: cannot change group
    dialect = session.get_bind().dialect.name

    def day_of(column):
        return func.date(column) if dialect == "sqlite" else func.date_trunc(literal_column("'day'"), column)

    def seconds(later, earlier):
        if dialect == "sqlite":
            return (func.julianday(later) - func.julianday(earlier)) * 86400.0
        return cast(func.extract("epoch", later - earlier), Float)  # numeric otherwise

    def add_sums(instant: Any, group_key: Any, *sums: Any, join_on: Any = None) -> None:
        """Add the sums over the rows whose ``instant`` lies in [first, end), by day, ``group_key`` and
        priority."""
        day = day_of(instant)
        stmt = select(day.label("day"), group_key.label("g"), Ticket.priority, *sums)
        if join_on is not None:
            stmt = stmt.join(Ticket, join_on)
        stmt = stmt.where(instant >= first, instant < end).group_by(day, group_key, Ticket.priority)
        for row in session.execute(stmt):
            target = rows[(_as_date(row.day), row.g, row.priority)]
            for name in row._fields[3:]:  # the sums, labelled as in SUMS
                target[name] += getattr(row, name) or 0

    add_sums(
        Ticket.opened_at,
        first_group,
        func.count().label("opened"),
        func.count(Ticket.responded_at).label("responded"),
        func.coalesce(func.sum(seconds(Ticket.responded_at, Ticket.opened_at)), 0).label("response_seconds"),
        func.sum(
            case((Ticket.responded_at.is_not(None) | Ticket.response_breached_at.is_not(None), 1), else_=0)
        ).label("response_decided"),
        func.sum(case((Ticket.responded_at <= Ticket.response_due_at, 1), else_=0)).label("response_met"),
    )
    add_sums(
        Ticket.resolved_at,
        resolving_group,
        func.count().label("resolved"),
        func.sum(seconds(Ticket.resolved_at, Ticket.opened_at)).label("resolve_seconds"),
        func.coalesce(func.sum(Ticket.resolution_business_seconds), 0).label("resolve_business_seconds"),
        func.sum(case((Ticket.resolved_at <= Ticket.resolution_due_at, 1), else_=0)).label("resolution_met"),
        func.sum(case((Ticket.reopen_count > 0, 1), else_=0)).label("reopened"),
    )
    # Resolved by the level-1 group it was first assigned to, never moved to another group nor reopened.
    first_contact = case(
        (
            (Ticket.kind == "incident")
            & Ticket.first_group_id.in_(level_one)
            & (Ticket.group_id == Ticket.first_group_id)
            & (Ticket.escalation_count == 0)
            & (Ticket.reassignment_count == 0)
            & (Ticket.reopen_count == 0),
            1,
        ),
        else_=0,
    )
    add_sums(
        Ticket.resolved_at,
        first_group,
        func.count().label("first_group_resolved"),
        func.sum(case((Ticket.kind == "incident", 1), else_=0)).label("incidents_resolved"),
        func.sum(first_contact).label("first_contact"),
        func.sum(case((Ticket.escalation_count > 0, 1), else_=0)).label("escalated"),
    )
    add_sums(
        SatisfactionRating.rated_at,
        resolving_group,
        func.count().label("rated"),
        func.sum(case((SatisfactionRating.score >= 4, 1), else_=0)).label("satisfied"),
        join_on=Ticket.id == SatisfactionRating.ticket_id,
    )
    return rows


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def rebuild_days(session: Session, first: date, last: date) -> int:
    """Recompute the roll-up for the days ``first`` to ``last`` (inclusive); returns rows written."""
    session.execute(delete(KpiDaily).where(KpiDaily.day >= first, KpiDaily.day <= last))
    rows = _day_rows(session, _midnight(first), _midnight(last + timedelta(days=1)))
    values = [{"day": d, "group_id": g, "priority": p, **sums} for (d, g, p), sums in rows.items()]
    if values:
        session.execute(insert(KpiDaily), values)
    return len(values)


def refresh_rollup(session: Session, today: date) -> int:
    """Recompute the marked days before ``today`` (today is always read live); returns days recomputed."""
    dirty = session.scalars(
        select(KpiDirtyDay.day).where(KpiDirtyDay.day < today).order_by(KpiDirtyDay.day).with_for_update()
    ).all()
    for day in dirty:
        rebuild_days(session, day, day)
    if dirty:
        session.execute(delete(KpiDirtyDay).where(KpiDirtyDay.day.in_(dirty)))
    return len(dirty)


# --------------------------------------------------------------------------- the report


@dataclass
class Figure:
    """One KPI value with its target status."""

    name: str
    label: str
    value: float | None
    unit: str
    status: str = "grey"
    previous: float | None = None
    target: float | None = None

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous


@dataclass
class AuthorCount:
    """An author and the knowledge articles they published in the period."""

    login: str
    published: int


@dataclass
class ProblemKpis:
    """The problem-management and knowledge figures of a period (see the module's docstring)."""

    opened: int = 0
    resolved: int = 0
    root_causes: int = 0  # problems whose first root cause was recorded in the period
    root_cause_hours: float | None = None  # their mean hours from opening to that root cause
    incidents_opened: int = 0
    incidents_with_known_error: int = 0
    known_error_share_pct: float | None = None
    fix_window_days: int = FIX_WINDOW_DAYS
    fixes_measured: int = 0  # problems resolved in [start - W, end - W)
    incidents_before_fix: int = 0
    incidents_after_fix: int = 0
    before_fix_per_30d: float | None = None
    after_fix_per_30d: float | None = None
    avoided_per_30d: float | None = None
    article_uses: int = 0
    articles_used: int = 0
    top_authors: list[AuthorCount] = field(default_factory=list)


@dataclass
class ChangeKpiRow:
    """The change figures of one type, one risk, or all changes (``key`` "all")."""

    key: str
    finished: int = 0  # implemented, failed or backed out, ended in the period
    implemented: int = 0
    success_pct: float | None = None
    planned: int = 0  # planned to start in the period
    emergency: int = 0
    emergency_pct: float | None = None
    caused_incidents: int = 0  # finished changes with an incident linked within incident_days of their end
    incidents: int = 0  # those incidents
    overdue_reviews: int = 0


@dataclass
class ChangeKpis:
    """The change figures of a period by type and by risk (see the module's docstring)."""

    incident_days: int = 7
    review_due_days: int = 5
    by_type: list[ChangeKpiRow] = field(default_factory=list)
    by_risk: list[ChangeKpiRow] = field(default_factory=list)
    total: ChangeKpiRow = field(default_factory=lambda: ChangeKpiRow("all"))


@dataclass
class KpiReport:
    period: Period
    group: str | None
    opened: int = 0
    resolved: int = 0
    mtta_hours: float | None = None
    mttr_hours: float | None = None
    mttr_business_hours: float | None = None
    sla_response_pct: float | None = None
    sla_resolution_pct: float | None = None
    sla_response_by_priority: dict[int, float | None] = field(default_factory=dict)
    sla_resolution_by_priority: dict[int, float | None] = field(default_factory=dict)
    fcr_pct: float | None = None
    reopen_rate_pct: float | None = None
    escalation_rate_pct: float | None = None
    csat_pct: float | None = None
    ratings: int = 0
    backlog: int = 0
    backlog_by_age: dict[str, int] = field(default_factory=dict)
    opened_per_day: dict[str, int] = field(default_factory=dict)
    resolved_per_day: dict[str, int] = field(default_factory=dict)
    mttr_per_day: dict[str, float | None] = field(default_factory=dict)
    change_success_pct: float | None = None
    changes_finished: int = 0
    emergency_share_pct: float | None = None
    changes_planned: int = 0
    workload: dict[str, int] = field(default_factory=dict)
    headline: list[Figure] = field(default_factory=list)
    problems: ProblemKpis = field(default_factory=ProblemKpis)
    changes: ChangeKpis = field(default_factory=ChangeKpis)

    def as_json(self) -> dict:
        data = asdict(self)
        data["period"] = {
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
            "label": self.period.label,
        }
        data["headline"] = [asdict(f) | {"change": f.change} for f in self.headline]
        return data


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _hours(seconds: float, count: int) -> float | None:
    return round(seconds / count / 3600.0, 2) if count else None


def _group_id(session: Session, code: str | None) -> int | None:
    if code is None:
        return None
    group_id = session.scalar(select(Group.id).where(func.lower(Group.code) == code.lower()))
    if group_id is None:
        known = ", ".join(session.scalars(select(Group.code).order_by(Group.code)))
        raise ValueError(f"unknown group {code!r}; groups are: {known}")
    return group_id


def _sums(session: Session, period: Period, group_id: int | None) -> dict[tuple, dict[str, float]]:
    """(day, priority) -> sums over the period: past days from the roll-up, today live."""
    today = period.end.astimezone(UTC).date()
    first_day = period.start.date()
    by_key: dict[tuple, dict[str, float]] = defaultdict(lambda: dict.fromkeys(SUMS, 0))
    if first_day < today:
        stmt = select(KpiDaily).where(KpiDaily.day >= first_day, KpiDaily.day < today)
        if group_id is not None:
            stmt = stmt.where(KpiDaily.group_id == group_id)
        for row in session.scalars(stmt):
            target = by_key[(row.day, row.priority)]
            for name in SUMS:
                target[name] += getattr(row, name)
    if period.end > _midnight(today):
        for (day, g, priority), sums in _day_rows(
            session, max(period.start, _midnight(today)), period.end
        ).items():
            if group_id is None or g == group_id:
                target = by_key[(day, priority)]
                for name in SUMS:
                    target[name] += sums[name]
    return by_key


def report(
    session: Session,
    config: DeskConfig,
    period: Period,
    group: str | None = None,
    *,
    with_previous: bool = True,
    now: datetime | None = None,
    with_problems: bool = True,
    fix_window_days: int | None = None,
) -> KpiReport:
    """Every KPI of the period (and, for the headline tiles, the previous period of the same length).

    The backlog, its ages and the workload are live figures, taken at ``now`` (default: the real time).
    ``with_problems`` adds the problem and knowledge figures (``problem_kpis``, with ``fix_window_days``).
    """
    refresh_rollup(session, period.end.astimezone(UTC).date())
    group_id = _group_id(session, group)
    result = KpiReport(period=period, group=group)
    by_key = _sums(session, period, group_id)
    totals = dict.fromkeys(SUMS, 0.0)
    by_priority: dict[int, dict[str, float]] = defaultdict(lambda: dict.fromkeys(SUMS, 0.0))
    per_day: dict[date, dict[str, float]] = defaultdict(lambda: dict.fromkeys(SUMS, 0.0))
    for (day, priority), sums in by_key.items():
        for name in SUMS:
            totals[name] += sums[name]
            by_priority[priority][name] += sums[name]
            per_day[day][name] += sums[name]
    result.opened, result.resolved = int(totals["opened"]), int(totals["resolved"])
    result.mtta_hours = _hours(totals["response_seconds"], int(totals["responded"]))
    result.mttr_hours = _hours(totals["resolve_seconds"], result.resolved)
    result.mttr_business_hours = _hours(totals["resolve_business_seconds"], result.resolved)
    result.sla_response_pct = _pct(totals["response_met"], totals["response_decided"])
    result.sla_resolution_pct = _pct(totals["resolution_met"], totals["resolved"])
    for priority in sorted(config.policies):
        sums = by_priority.get(priority, dict.fromkeys(SUMS, 0.0))
        result.sla_response_by_priority[priority] = _pct(sums["response_met"], sums["response_decided"])
        result.sla_resolution_by_priority[priority] = _pct(sums["resolution_met"], sums["resolved"])
    if group_id is None or session.scalar(select(Group.level).where(Group.id == group_id)) == 1:
        result.fcr_pct = _pct(totals["first_contact"], totals["incidents_resolved"])
    result.reopen_rate_pct = _pct(totals["reopened"], totals["resolved"])
    result.escalation_rate_pct = _pct(totals["escalated"], totals["first_group_resolved"])
    result.csat_pct = _pct(totals["satisfied"], totals["rated"])
    result.ratings = int(totals["rated"])
    for day in period.days:
        sums = per_day.get(day, dict.fromkeys(SUMS, 0.0))
        key = day.isoformat()
        result.opened_per_day[key] = int(sums["opened"])
        result.resolved_per_day[key] = int(sums["resolved"])
        result.mttr_per_day[key] = _hours(sums["resolve_seconds"], int(sums["resolved"]))
    _changes(session, period, result, group_id)
    result.changes = change_kpis(session, config, period, group_id, now=now)
    if with_problems:
        result.problems = problem_kpis(session, period, fix_window_days=fix_window_days or FIX_WINDOW_DAYS)
    snapshot = operational_snapshot(session, now or datetime.now(UTC), group=group)
    result.backlog, result.backlog_by_age = snapshot.open, snapshot.by_age
    result.workload = snapshot.workload
    values = _target_values(result)
    previous = None
    if with_previous:
        previous = report(
            session, config, period.previous(), group, with_previous=False, now=now, with_problems=False
        )
        previous_values = _target_values(previous)
    for name, target in config.kpi_targets.items():
        value = values[name]
        result.headline.append(
            Figure(
                name,
                target.label,
                value,
                target.unit,
                target.status(value),
                previous_values[name] if previous else None,
                target.target,
            )
        )
    return result


def _target_values(result: KpiReport) -> dict[str, float | None]:
    """The figures of a report that kpi.toml sets targets for, by the target's name."""
    return {
        "sla_resolution": result.sla_resolution_pct,
        "sla_response": result.sla_response_pct,
        "fcr": result.fcr_pct,
        "csat": result.csat_pct,
        "mttr_hours": result.mttr_hours,
        "reopen_rate": result.reopen_rate_pct,
        "change_success": result.change_success_pct,
    }


def _changes(session: Session, period: Period, result: KpiReport, group_id: int | None) -> None:
    """The change KPIs; with a group, of the changes whose implementer is a member of it."""
    scope = []
    if group_id is not None:
        members = select(GroupMembership.user_id).where(GroupMembership.group_id == group_id)
        scope.append(Change.implementer_id.in_(members))
    finished_at = func.coalesce(Change.actual_end, Change.planned_end)
    outcome = (
        select(Change.outcome, func.count())
        .where(
            *scope,
            Change.outcome.in_(("implemented", "failed", "backed_out")),
            finished_at >= period.start,
            finished_at < period.end,
        )
        .group_by(Change.outcome)
    )
    counts = dict(session.execute(outcome).tuples().all())
    result.changes_finished = sum(counts.values())
    result.change_success_pct = _pct(counts.get("implemented", 0), result.changes_finished)
    planned = dict(
        session.execute(
            select(Change.change_type, func.count())
            .where(*scope, Change.planned_start >= period.start, Change.planned_start < period.end)
            .group_by(Change.change_type)
        )
        .tuples()
        .all()
    )
    result.changes_planned = sum(planned.values())
    result.emergency_share_pct = _pct(planned.get("emergency", 0), result.changes_planned)


CHANGE_TYPES = ("standard", "normal", "emergency")
CHANGE_RISKS = ("low", "medium", "high")
FINISHED_STATES = ("implemented", "failed", "backed_out", "review", "closed")  # the states with an outcome


def change_kpis(
    session: Session,
    config: DeskConfig,
    period: Period,
    group_id: int | None = None,
    *,
    now: datetime | None = None,
) -> ChangeKpis:
    """The change figures of the period by type and by risk (see the module's docstring); with a group, of
    the changes whose implementer is a member of it.

    Changes are few (thousands); they are read along ``ix_changes_state`` (those finished, those whose review
    may be due) and ``ix_changes_window`` (those planned in the period), the incidents linked to the
    finished ones along ``ix_links_target`` and by the tickets' primary key."""
    policy = config.changes
    result = ChangeKpis(incident_days=policy.incident_days, review_due_days=policy.review_due_days)
    rows = {key: ChangeKpiRow(key) for key in (*CHANGE_TYPES, *CHANGE_RISKS, "all")}
    scope = []
    if group_id is not None:
        members = select(GroupMembership.user_id).where(GroupMembership.group_id == group_id)
        scope.append(Change.implementer_id.in_(members))

    def rows_of(change_type: str, risk: str) -> list[ChangeKpiRow]:
        return [row for row in (rows.get(change_type), rows.get(risk), rows["all"]) if row is not None]

    ended = func.coalesce(Change.actual_end, Change.planned_end)
    in_period = (
        Change.state.in_(FINISHED_STATES),
        Change.outcome.in_(("implemented", "failed", "backed_out")),
        ended >= period.start,
        ended < period.end,
        *scope,
    )
    finished = session.execute(
        select(
            Change.id,
            Change.change_type,
            Change.risk,
            Change.outcome,
            func.coalesce(Change.actual_start, Change.planned_start),
            ended,
        ).where(*in_period)
    ).all()
    # The incidents linked to them: (change, opened), from the links to the finished changes.
    opened: dict[int, list[datetime]] = defaultdict(list)
    for change_id, at in session.execute(
        select(Link.target_id, Ticket.opened_at)
        .join(Ticket, Ticket.id == Link.source_id)
        .where(
            Link.target_type == "change",
            Link.target_id.in_(select(Change.id).where(*in_period)),
            # on a copy (coalesce(x, x) is x): else SQLite walks uq_links_pair by its first column
            func.coalesce(Link.source_type, Link.source_type) == "ticket",
            Ticket.kind == "incident",
            Ticket.status != "cancelled",
        )
    ):
        opened[change_id].append(_aware(at))
    after = timedelta(days=policy.incident_days)
    for change_id, change_type, risk, outcome, started, end in finished:
        started, end = _aware(started), _aware(end)
        caused = [at for at in opened.get(change_id, []) if started <= at <= end + after]
        for row in rows_of(change_type, risk):
            row.finished += 1
            row.implemented += outcome == "implemented"
            row.caused_incidents += bool(caused)
            row.incidents += len(caused)
    for change_type, risk, count in session.execute(
        select(Change.change_type, Change.risk, func.count())
        .where(Change.planned_start >= period.start, Change.planned_start < period.end, *scope)
        .group_by(Change.change_type, Change.risk)
    ):
        for row in rows_of(change_type, risk):
            row.planned += count
            row.emergency += count if change_type == "emergency" else 0
    as_of = min(period.end, _aware(now) if now is not None else datetime.now(UTC))
    for change_type, risk, count in session.execute(
        select(Change.change_type, Change.risk, func.count())
        .where(
            Change.state.in_(("failed", "backed_out", "review", "implemented")),
            (Change.state != "implemented") | (Change.change_type == "emergency"),
            (Change.review_notes.is_(None)) | (Change.review_notes == ""),
            ended <= as_of - timedelta(days=policy.review_due_days),
            *scope,
        )
        .group_by(Change.change_type, Change.risk)
    ):
        for row in rows_of(change_type, risk):
            row.overdue_reviews += count
    for row in rows.values():
        row.success_pct = _pct(row.implemented, row.finished)
        row.emergency_pct = _pct(row.emergency, row.planned)
    result.by_type = [rows[key] for key in CHANGE_TYPES]
    result.by_risk = [rows[key] for key in CHANGE_RISKS]
    result.total = rows["all"]
    return result


def _aware(instant: datetime) -> datetime:
    """An instant read from the database (aware UTC) or given (any zone), in UTC."""
    return instant.astimezone(UTC) if instant.tzinfo else instant.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- problems and knowledge


def problem_kpis(session: Session, period: Period, *, fix_window_days: int = FIX_WINDOW_DAYS) -> ProblemKpis:
    """The problem-management and knowledge figures of the period, desk-wide (see the module's docstring).

    The problems and articles tables are small; the incidents of the period are read through
    ``ix_tickets_opened`` and their known-error links through ``uq_links_pair``; the links of the measured
    problems and of the articles through ``ix_links_target``."""
    start, end = period.start, period.end
    result = ProblemKpis(fix_window_days=fix_window_days)
    result.opened = (
        session.scalar(select(func.count()).where(Problem.opened_at >= start, Problem.opened_at < end)) or 0
    )
    result.resolved = (
        session.scalar(select(func.count()).where(Problem.resolved_at >= start, Problem.resolved_at < end))
        or 0
    )
    analysed = session.execute(
        select(Problem.opened_at, Problem.root_cause_at).where(
            Problem.root_cause_at >= start, Problem.root_cause_at < end
        )
    ).all()
    result.root_causes = len(analysed)
    result.root_cause_hours = _hours(
        sum((found - opened).total_seconds() for opened, found in analysed), len(analysed)
    )
    # The incidents opened in the period: a count along ix_tickets_kind_opened (the index alone). Those of
    # them linked to a known error: from the known errors' links (ix_links_target) to their tickets by
    # primary key; no link of another kind and no other ticket is read. SQLite would rather walk the period's
    # incidents and probe each one's links (a quarter of a million at a million tickets): the unary plus
    # keeps it off the tickets' indexes for this one statement.
    in_period = (Ticket.kind == "incident", Ticket.opened_at >= start, Ticket.opened_at < end)
    incidents = session.scalar(select(func.count()).select_from(Ticket).where(*in_period)) or 0
    if session.get_bind().dialect.name == "sqlite":
        kind: ColumnElement[str] = literal_column("+tickets.kind")
        source: ColumnElement[str] = literal_column("+links.source_type")
        opened = type_coerce(literal_column("+tickets.opened_at"), Ticket.opened_at.type)
        not_indexed = (kind == "incident", opened >= start, opened < end, source == "ticket")
    else:
        not_indexed = (*in_period, Link.source_type == "ticket")
    linked = (
        session.scalar(
            select(func.count(func.distinct(Link.source_id)))
            .select_from(Link)
            .join(Ticket, Ticket.id == Link.source_id)
            .where(Link.target_type == "known_error", *not_indexed)
        )
        or 0
    )
    result.incidents_opened, result.incidents_with_known_error = int(incidents), int(linked)
    result.known_error_share_pct = _pct(result.incidents_with_known_error, result.incidents_opened)
    _fix_effect(session, period, result)
    uses, used = session.execute(
        select(func.count(), func.count(func.distinct(Link.target_id))).where(
            Link.target_type == "article",
            Link.source_type == "ticket",
            Link.created_at >= start,
            Link.created_at < end,
        )
    ).one()
    result.article_uses, result.articles_used = int(uses), int(used)
    published = (  # the (small) articles table first, then each author by primary key
        select(KnowledgeArticle.author_id, func.count().label("published"))
        .where(KnowledgeArticle.published_at >= start, KnowledgeArticle.published_at < end)
        .group_by(KnowledgeArticle.author_id)
        .subquery()
    )
    result.top_authors = [
        AuthorCount(login, count)
        for login, count in session.execute(
            select(User.login, published.c.published)
            .join(User, User.id == published.c.author_id)
            .order_by(published.c.published.desc(), User.login)
            .limit(5)
        ).tuples()
    ]
    return result


def _fix_effect(session: Session, period: Period, result: ProblemKpis) -> None:
    """Incidents before and after the fix of the problems whose after-window ended in the period."""
    window = timedelta(days=result.fix_window_days)
    fixed: dict[int, datetime] = {
        problem_id: resolved_at
        for problem_id, resolved_at in session.execute(
            select(Problem.id, Problem.resolved_at).where(
                Problem.resolved_at >= period.start - window, Problem.resolved_at < period.end - window
            )
        ).tuples()
        if resolved_at is not None
    }
    result.fixes_measured = len(fixed)
    if not fixed:
        return
    by_problem = select(Link.target_id.label("problem_id"), Link.source_id.label("ticket_id")).where(
        Link.target_type == "problem", Link.target_id.in_(fixed), Link.source_type == "ticket"
    )
    by_known_error = (
        select(KnownError.problem_id.label("problem_id"), Link.source_id.label("ticket_id"))
        .join(KnownError, KnownError.id == Link.target_id)
        .where(
            Link.target_type == "known_error",
            KnownError.problem_id.in_(fixed),
            Link.source_type == "ticket",
        )
    )
    linked = by_problem.union(by_known_error).subquery()  # UNION: an incident once per problem
    for problem_id, opened_at in session.execute(
        select(linked.c.problem_id, Ticket.opened_at)
        .join(Ticket, Ticket.id == linked.c.ticket_id)
        .where(Ticket.kind == "incident")
    ):
        fixed_at = fixed[problem_id]
        if fixed_at - window <= opened_at < fixed_at:
            result.incidents_before_fix += 1
        elif fixed_at <= opened_at < fixed_at + window:
            result.incidents_after_fix += 1
    scale = 30.0 / result.fix_window_days
    result.before_fix_per_30d = round(result.incidents_before_fix * scale, 2)
    result.after_fix_per_30d = round(result.incidents_after_fix * scale, 2)
    result.avoided_per_30d = round((result.incidents_before_fix - result.incidents_after_fix) * scale, 2)


# --------------------------------------------------------------------------- live figures


@dataclass(frozen=True)
class OperationalSnapshot:
    open: int
    unassigned: int
    breached: int
    by_priority: dict[int, int]
    breaching_within_hour: int = 0
    by_age: dict[str, int] = field(default_factory=dict)
    workload: dict[str, int] = field(default_factory=dict)
    oldest: list[tuple[str, str, datetime]] = field(default_factory=list)  # ref, title, opened_at


def operational_snapshot(session: Session, now: datetime, group: str | None = None) -> OperationalSnapshot:
    """The live picture: open, unassigned, breached and breaching within the hour, age buckets, workload per
    agent and the oldest open tickets (all through the open-ticket indexes)."""
    is_open = [Ticket.is_open == true()]
    group_id = _group_id(session, group)
    if group_id is not None:
        is_open.append(Ticket.group_id == group_id)
    by_priority = dict(
        session.execute(select(Ticket.priority, func.count()).where(*is_open).group_by(Ticket.priority))
        .tuples()
        .all()
    )
    unassigned = session.scalar(select(func.count()).where(*is_open, Ticket.assignee_id.is_(None))) or 0
    running = [*is_open, Ticket.paused_at.is_(None)]
    breached = session.scalar(select(func.count()).where(*running, Ticket.resolution_due_at < now)) or 0
    soon = (
        session.scalar(
            select(func.count()).where(
                *running, Ticket.resolution_due_at >= now, Ticket.resolution_due_at < now + timedelta(hours=1)
            )
        )
        or 0
    )
    by_age = {}
    for label, low, high in AGE_BUCKETS:
        terms = [*is_open, Ticket.opened_at <= now - timedelta(days=low)]
        if high is not None:
            terms.append(Ticket.opened_at > now - timedelta(days=high))
        by_age[label] = session.scalar(select(func.count()).where(*terms)) or 0
    workload = dict(
        session.execute(
            select(User.login, func.count())
            .select_from(Ticket)
            .join(User, User.id == Ticket.assignee_id)
            .where(*is_open)
            .group_by(User.login)
            .order_by(func.count().desc(), User.login)
        )
        .tuples()
        .all()
    )
    oldest = [
        tuple(r)
        for r in session.execute(
            select(Ticket.ref, Ticket.title, Ticket.opened_at)
            .where(*is_open)
            .order_by(Ticket.opened_at)
            .limit(5)
        )
    ]
    return OperationalSnapshot(
        sum(by_priority.values()), unassigned, breached, by_priority, soon, by_age, workload, oldest
    )


# --------------------------------------------------------------------------- shift handover


@dataclass
class Handover:
    now: datetime
    shift_hours: int
    major_open: list[dict] = field(default_factory=list)
    breaches: list[dict] = field(default_factory=list)
    pending_on_others: list[dict] = field(default_factory=list)
    changes_next: list[dict] = field(default_factory=list)


def handover(
    session: Session, now: datetime, *, shift_hours: int = 8, ahead_hours: int = 12, limit: int = 50
) -> Handover:
    """What the next shift must know: open P1/P2, breaches in the last shift, tickets waiting on customers,
    vendors or changes, and changes starting in the next hours (each list bounded)."""
    from itsm_tui.models import ChangeTarget

    result = Handover(now, shift_hours)
    assignee = User.login.label("assignee")
    base = (
        select(
            Ticket.ref,
            Ticket.priority,
            Ticket.status,
            Ticket.title,
            Group.code.label("group"),
            assignee,
            Ticket.pending_reason,
            Ticket.resolution_due_at,
        )
        .outerjoin(Group, Group.id == Ticket.group_id)
        .outerjoin(User, User.id == Ticket.assignee_id)
    )
    for row in session.execute(
        base.where(Ticket.is_open == true(), Ticket.priority.in_((1, 2)))
        .order_by(Ticket.priority, Ticket.resolution_due_at)
        .limit(limit)
    ):
        result.major_open.append(dict(row._mapping))
    since = now - timedelta(hours=shift_hours)
    breached = Ticket.resolution_breached_at.between(since, now) | Ticket.response_breached_at.between(
        since, now
    )
    for row in session.execute(
        base.add_columns(Ticket.response_breached_at, Ticket.resolution_breached_at)
        .where(breached)
        .order_by(Ticket.priority, Ticket.ref)
        .limit(limit)
    ):
        result.breaches.append(dict(row._mapping))
    for row in session.execute(
        base.where(Ticket.status == "pending").order_by(Ticket.pending_reason, Ticket.priority).limit(limit)
    ):
        result.pending_on_others.append(dict(row._mapping))
    changes = session.execute(
        select(
            Change.id,
            Change.ref,
            Change.title,
            Change.change_type,
            Change.state,
            Change.planned_start,
            Change.planned_end,
        )
        .where(
            Change.planned_start >= now,
            Change.planned_start < now + timedelta(hours=ahead_hours),
            Change.state.not_in(("draft", "rejected", "closed", "withdrawn", "cancelled")),
        )
        .order_by(Change.planned_start)
        .limit(limit)
    ).all()
    services: dict[int, list[str]] = defaultdict(list)
    if changes:
        for change_id, service in session.execute(
            select(ChangeTarget.change_id, ChangeTarget.service).where(
                ChangeTarget.change_id.in_([c.id for c in changes])
            )
        ):
            services[change_id].append(service)
    for c in changes:
        entry = dict(c._mapping)
        entry["services"] = ",".join(sorted(set(services[c.id])))
        del entry["id"]
        result.changes_next.append(entry)
    return result
