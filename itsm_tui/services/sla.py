"""SLA rules: the business clock, and the response and resolution targets stored on each ticket.

The due and warning instants are kept on the ticket itself (already moved by paused time), so that finding
what became due is an indexed range query.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from sqlalchemy import func, select, true, update

from itsm_tui.config import Calendar, DeskConfig
from itsm_tui.models import AuditEvent, Group, Ticket
from itsm_tui.services import kpi, notifications

_MAX_DAYS = 3 * 366  # a target further than this on a calendar means the calendar has (almost) no hours


class BusinessClock:
    """Adds and measures business time on one calendar, correct across DST, weekends and holidays."""

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self._intervals = lru_cache(maxsize=4096)(self._compute_intervals)

    def _compute_intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working intervals of a local day, as UTC instants."""
        cal = self.calendar
        if cal.is_holiday(day):
            return ()
        spans = cal.hours.get(day.weekday(), ())
        midnight = datetime(day.year, day.month, day.day)
        result = []
        for start_min, end_min in spans:
            start = (midnight + timedelta(minutes=start_min)).replace(tzinfo=cal.zone).astimezone(UTC)
            end = (midnight + timedelta(minutes=end_min)).replace(tzinfo=cal.zone).astimezone(UTC)
            if end > start:
                result.append((start, end))
        return tuple(result)

    def _local_day(self, instant: datetime) -> date:
        return instant.astimezone(self.calendar.zone).date()

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant at which ``seconds`` of business time have passed since ``start``."""
        if self.calendar.always_open:
            return start + timedelta(seconds=seconds)
        remaining = timedelta(seconds=seconds)
        day = self._local_day(start) - timedelta(days=1)  # a DST shift can put the first interval a day early
        for _ in range(_MAX_DAYS):
            for begin, end in self._intervals(day):
                if end <= start:
                    continue
                begin = max(begin, start)
                available = end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += timedelta(days=1)
        raise ValueError(f"calendar {self.calendar.name!r} has no working time within {_MAX_DAYS} days")

    def elapsed(self, start: datetime, end: datetime) -> float:
        """Business seconds between two instants (0 if ``end`` is not after ``start``)."""
        if end <= start:
            return 0.0
        if self.calendar.always_open:
            return (end - start).total_seconds()
        total = timedelta()
        day = self._local_day(start) - timedelta(days=1)
        last = self._local_day(end) + timedelta(days=1)
        while day <= last:
            for begin, finish in self._intervals(day):
                lo, hi = max(begin, start), min(finish, end)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total.total_seconds()


_CLOCKS: dict[int, BusinessClock] = {}


def clock_for(calendar: Calendar) -> BusinessClock:
    """A shared clock per calendar, so its day cache is reused."""
    key = id(calendar)
    clock = _CLOCKS.get(key)
    if clock is None or clock.calendar is not calendar:
        clock = _CLOCKS[key] = BusinessClock(calendar)
    return clock


def policy_clock(config: DeskConfig, priority: int) -> BusinessClock:
    return clock_for(config.calendars[config.policies[priority].calendar])


def retarget(ticket, config: DeskConfig) -> None:
    """Set the ticket's SLA instants from its priority's policy, its original start and its paused time."""
    policy = config.policies[ticket.priority]
    clock = clock_for(config.calendars[policy.calendar])
    paused = ticket.paused_seconds or 0
    start = ticket.opened_at
    response = policy.response_minutes * 60
    resolution = policy.resolution_minutes * 60
    ticket.sla_calendar = policy.calendar
    ticket.response_warn_at = clock.add(start, response * config.warning_ratio + paused)
    ticket.response_due_at = clock.add(start, response + paused)
    ticket.resolution_warn_at = clock.add(start, resolution * config.warning_ratio + paused)
    ticket.resolution_due_at = clock.add(start, resolution + paused)


def pause(ticket, now: datetime) -> None:
    """Stop the clocks (the ticket went to pending or was resolved)."""
    if ticket.paused_at is None:
        ticket.paused_at = now


def resume(ticket, config: DeskConfig, now: datetime, *, restart: bool = False) -> None:
    """Start the clocks again; the business time spent paused moves the due instants.

    ``restart`` counts everything before ``now`` as paused, so the resolution target starts afresh.
    """
    clock = policy_clock(config, ticket.priority)
    if restart:
        ticket.paused_seconds = int(clock.elapsed(ticket.opened_at, now))
    elif ticket.paused_at is not None:
        ticket.paused_seconds = (ticket.paused_seconds or 0) + int(clock.elapsed(ticket.paused_at, now))
    ticket.paused_at = None
    retarget(ticket, config)


def time_left(ticket, config: DeskConfig, now: datetime, target: str = "resolution") -> float | None:
    """Business seconds left until the target is due (negative when overdue), or None if it has stopped."""
    due = ticket.resolution_due_at if target == "resolution" else ticket.response_due_at
    if due is None:
        return None
    if target == "response" and ticket.responded_at is not None:
        return None
    clock = policy_clock(config, ticket.priority)
    moment = ticket.paused_at or now
    if moment <= due:
        return clock.elapsed(moment, due)
    return -clock.elapsed(due, moment)


def sla_state(ticket, now: datetime, target: str = "resolution") -> str:
    """``met``, ``stopped``, ``ok``, ``warning`` or ``breached`` for one target of a ticket."""
    if target == "response":
        warn, due, done = ticket.response_warn_at, ticket.response_due_at, ticket.responded_at
    else:
        warn, due, done = ticket.resolution_warn_at, ticket.resolution_due_at, ticket.resolved_at
    if due is None:
        return "stopped"
    if done is not None:
        return "met" if done <= due else "breached"
    moment = ticket.paused_at or now
    if moment >= due:
        return "breached"
    if warn is not None and moment >= warn:
        return "warning"
    return "ok"


class SpanClock:
    """A business clock precomputed over a span of local days, working on epoch seconds.

    Adding and measuring cost a binary search instead of a walk over days, for bulk work (demo data,
    reports). Instants outside the span fall back to the day-walking :class:`BusinessClock`.
    """

    def __init__(self, clock: BusinessClock, first: date, last: date) -> None:
        from bisect import bisect_right

        self._bisect = bisect_right
        self.clock = clock
        self.always_open = clock.calendar.always_open
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.cumulative: list[float] = []
        total = 0.0
        day = first
        while day <= last and not self.always_open:
            for begin, end in clock._intervals(day):
                self.starts.append(begin.timestamp())
                self.ends.append(end.timestamp())
                self.cumulative.append(total)
                total += end.timestamp() - begin.timestamp()
            day += timedelta(days=1)
        self.total = total

    def _position(self, instant: float) -> float | None:
        """Business seconds from the span's start to ``instant`` (None outside the span)."""
        i = self._bisect(self.ends, instant)
        if i == len(self.ends) or instant < self.starts[0]:
            return None
        return self.cumulative[i] + max(0.0, instant - self.starts[i])

    def add(self, instant: float, seconds: float) -> float:
        if self.always_open:
            return instant + seconds
        base = self._position(instant)
        if base is not None:
            target = base + seconds
            j = self._bisect(self.cumulative, target) - 1
            offset = target - self.cumulative[j]
            if j < len(self.starts) - 1 or offset <= self.ends[j] - self.starts[j]:
                return self.starts[j] + offset
        start = datetime.fromtimestamp(instant, UTC)
        return self.clock.add(start, seconds).timestamp()

    def elapsed(self, start: float, end: float) -> float:
        if end <= start:
            return 0.0
        if self.always_open:
            return end - start
        a, b = self._position(start), self._position(end)
        if a is not None and b is not None:
            return b - a
        return self.clock.elapsed(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))


# --------------------------------------------------------------------------- the SLA scan

SCAN_BATCH = 500
# Breaches first, so that a target found both warned and breached in one run (a database left without a
# scheduler) is reported once, as a breach.
_SCAN_ORDER = (
    ("response", "breach"),
    ("resolution", "breach"),
    ("response", "warning"),
    ("resolution", "warning"),
)


@dataclass
class ScanResult:
    """What one run of the SLA job did."""

    warnings: int = 0
    breaches: int = 0
    escalations: int = 0
    notifications: int = 0
    closed: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict:
        return asdict(self)

    def add(self, other: ScanResult) -> None:
        for name in ("warnings", "breaches", "escalations", "notifications", "closed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _columns(target: str, kind: str):
    prefix = "response" if target == "response" else "resolution"
    instant = getattr(Ticket, f"{prefix}_{'due_at' if kind == 'breach' else 'warn_at'}")
    flag = getattr(Ticket, f"{prefix}_{'breached_at' if kind == 'breach' else 'warned_at'}")
    # A running clock: the response target stops at the response, the resolution target while paused.
    running = Ticket.responded_at.is_(None) if target == "response" else Ticket.paused_at.is_(None)
    return instant, flag, running


def anything_due(session, target: str, kind: str, now: datetime) -> bool:
    """Whether any target of this kind became due and is not flagged yet (one probe of the index)."""
    instant, flag, running = _columns(target, kind)
    probe = (
        select(Ticket.id).where(Ticket.is_open == true(), flag.is_(None), running, instant <= now).limit(1)
    )
    return session.execute(probe).first() is not None


def flag_due(session, target: str, kind: str, now: datetime, limit: int = SCAN_BATCH) -> list:
    """Mark targets that became due (warning or breach) and are not marked yet; return the marked tickets.

    The conditional UPDATE is the guard: the ``flag IS NULL`` test is re-checked on the row that is
    written, so two scans running at once never mark (and so never report) the same target twice. The
    candidates come from the partial indexes on open tickets, so the cost follows what is due.
    """
    instant, flag, running = _columns(target, kind)
    candidates = (
        select(Ticket.id)
        .where(Ticket.is_open == true(), flag.is_(None), running, instant <= now)
        .order_by(instant)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    values = {flag: instant}
    if kind == "breach":  # a breach is past the warning too; it is not reported again as a warning
        warned = _columns(target, "warning")[1]
        values[warned] = func.coalesce(warned, instant)
    stmt = (
        update(Ticket)
        .where(Ticket.id.in_(candidates), flag.is_(None))
        .values(values)
        .returning(
            Ticket.id,
            Ticket.ref,
            Ticket.title,
            Ticket.priority,
            Ticket.group_id,
            Ticket.assignee_id,
            Ticket.service,
            Ticket.reopen_count,
            Ticket.opened_at,
            instant.label("instant"),
        )
        .execution_options(synchronize_session=False)
    )
    return list(session.execute(stmt))


def scan(db, config: DeskConfig, now: datetime | None = None, *, batch: int = SCAN_BATCH) -> ScanResult:
    """One run of the SLA job: flag new warnings and breaches, notify, escalate, close old resolved tickets.

    Each batch is one transaction: the flags, audit events, escalations and notifications are written
    together or not at all.
    """
    import time

    started = time.perf_counter()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    result = ScanResult()
    with db.read_session() as session:  # most runs find nothing: look before taking the write lock
        pending = [(t, k) for t, k in _SCAN_ORDER if anything_due(session, t, k, now)]
    for target, kind in pending:
        while True:
            with db.session() as session:
                rows = flag_due(session, target, kind, now, batch)
                if rows:
                    result.add(_report(session, config, rows, target, kind, now))
            if len(rows) < batch:
                break
    result.closed = close_resolved(db, config, now)
    result.seconds = time.perf_counter() - started
    return result


def _report(session, config: DeskConfig, rows: list, target: str, kind: str, now: datetime) -> ScanResult:
    """Audit, notify and escalate the tickets just flagged (same transaction)."""
    from itsm_tui.services import tickets  # tickets imports this module

    result = ScanResult()
    if target == "response" and kind == "breach":  # "response decided" of the opening day changes
        kpi.mark_dirty(session, *(r.opened_at for r in rows))
    if kind == "breach":
        result.breaches = len(rows)
    else:
        result.warnings = len(rows)
    field = f"{target}_{'breached' if kind == 'breach' else 'warned'}_at"
    session.execute(
        AuditEvent.__table__.insert(),
        [
            {
                "entity_type": "ticket",
                "entity_id": r.id,
                "actor_id": None,
                "at": now,
                "action": "sla",
                "field": field,
                "old_value": None,
                "new_value": r.instant.isoformat(),
            }
            for r in rows
        ],
    )
    group_ids = {r.group_id for r in rows if r.group_id is not None} if kind == "warning" else set()
    leads: dict[int, list[int]] = {gid: notifications.group_leads(session, [gid]) for gid in group_ids}
    accountable_roles = config.raci_roles("sla_breach", "A") if kind == "breach" else []
    accountable: dict[int | None, list[int]] = {}
    label = "SLA breach" if kind == "breach" else "SLA warning"
    notes = []
    for r in rows:
        if kind == "breach":
            if r.group_id not in accountable:
                accountable[r.group_id] = notifications.users_with_roles(
                    session, accountable_roles, [r.group_id] if r.group_id else None
                )
            recipients = set(accountable[r.group_id])
        else:
            recipients = set(leads.get(r.group_id, []))
        if r.assignee_id:
            recipients.add(r.assignee_id)
        event_key = f"sla-{target}-{kind}:{r.id}:{r.reopen_count}"
        when = f"{r.instant:%Y-%m-%d %H:%M} UTC"
        verb = "passed" if kind == "breach" else f"{round(config.warning_ratio * 100)}% used"
        message = f"{label}: {r.ref} (P{r.priority}) {target} target {verb} at {when}: {r.title}"
        notes += [
            {
                "user_id": uid,
                "kind": f"sla_{kind}",
                "event_key": event_key,
                "entity_type": "ticket",
                "entity_id": r.id,
                "message": message,
                "created_at": now,
            }
            for uid in sorted(recipients)
        ]
    result.notifications += notifications.notify_many(session, notes)

    rules = [rule for rule in config.escalations if rule.event == kind and rule.target == target]
    if rules:
        levels = dict(session.execute(select(Group.id, Group.level)).all())
        codes = dict(session.execute(select(Group.code, Group.id)).all())
        for r in rows:
            rule = next(
                (x for x in rules if r.priority in x.priorities and levels.get(r.group_id) == x.from_level),
                None,
            )
            if rule is None:
                continue
            if rule.to != "service":
                code = rule.to
            elif r.service in config.services:
                code = config.services[r.service].support_group
            else:
                continue  # no service, so no service group to escalate to
            if codes.get(code) in (None, r.group_id):
                continue
            ticket = session.get(Ticket, r.id)
            tickets.move_to_group(
                session,
                config,
                ticket,
                session.get(Group, codes[code]),
                None,
                f"automatic escalation on {target} {kind} (P{r.priority})",
                now,
            )
            result.escalations += 1
        session.flush()
    return result


def close_resolved(db, config: DeskConfig, now: datetime, batch: int = 1000) -> int:
    """Close tickets resolved more than ``auto_close_days`` ago (audited as the system)."""
    cutoff = now - timedelta(days=config.auto_close_days)
    due = select(Ticket.id).where(Ticket.status == "resolved", Ticket.resolved_at <= cutoff).limit(1)
    with db.read_session() as session:
        if session.execute(due).first() is None:
            return 0
    closed = 0
    while True:
        with db.session() as session:
            candidates = (
                select(Ticket.id)
                .where(Ticket.status == "resolved", Ticket.resolved_at <= cutoff)
                .order_by(Ticket.id)
                .limit(batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True)
            ids = (
                session.execute(
                    update(Ticket)
                    .where(Ticket.id.in_(candidates), Ticket.status == "resolved")
                    .values(
                        status="closed",
                        closed_at=now,
                        updated_at=now,
                        is_open=False,
                        version=Ticket.version + 1,
                    )
                    .returning(Ticket.id)
                    .execution_options(synchronize_session=False)
                )
                .scalars()
                .all()
            )
            if ids:
                session.execute(
                    AuditEvent.__table__.insert(),
                    [
                        {
                            "entity_type": "ticket",
                            "entity_id": i,
                            "actor_id": None,
                            "at": now,
                            "action": "close",
                            "field": "status",
                            "old_value": "resolved",
                            "new_value": "closed",
                        }
                        for i in ids
                    ],
                )
        closed += len(ids)
        if len(ids) < batch:
            return closed
