"""The CAB's meetings, agenda, decisions and minutes.

The CAB meets by the rule of changes.toml ``[cab]`` (a recurrence on local time, expanded as maintenance
windows are: :func:`.conflicts.occurrences`, so a Tuesday 10:00 Europe/Berlin meeting stays 10:00 local
across daylight-saving changes). A normal change submitted at least ``cutoff_hours`` before a meeting is put
on that meeting's agenda (``Change.cab_meeting``, set by :func:`.lifecycle.submit`); one still undecided
(submitted or assessed) once its meeting is over is carried over to the next meeting from now, and so is one
submitted before changes had a meeting (``cab_meeting`` NULL). A decision recorded at a meeting
(:func:`record_decision`) is an approver's decision (:func:`.approvals.decide`, its guard and four eyes) that
also names the meeting (``ChangeApproval.meeting``); the change then belongs to that meeting's agenda. It is
recorded at the meeting going on or at one already held (minutes written afterwards), never at one still to
come (:func:`decision_refusal`). Meeting days lie between the schedule's first meeting and :data:`LAST_DAY`.
:func:`minutes` writes an agenda as text, Markdown or JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from itsm_tui.config import CabSchedule, DeskConfig
from itsm_tui.models import Change, ChangeApproval, User
from itsm_tui.services import conflicts, versions
from itsm_tui.services.changes.approvals import approval_progress, decide, required_approvals
from itsm_tui.services.changes.approvers import counted
from itsm_tui.services.changes.helpers import _note, _now, _set
from itsm_tui.services.changes.permissions import available_actions
from itsm_tui.services.changes.presenter import decision_label
from itsm_tui.services.changes.reading import _logins, get_change, planned_of
from itsm_tui.services.changes.rules import PRE_IMPLEMENTATION
from itsm_tui.services.conflicts import Conflict, WindowSpec
from itsm_tui.services.errors import ServiceError, ValidationError
from itsm_tui.services.jsondata import instant
from itsm_tui.services.users import Actor
from itsm_tui.text import strip_control

# The most changes one agenda lists (its own and those carried over); more is said, not shown.
AGENDA_LIMIT = 300
# The most decisions of one meeting listed.
DECISIONS_LIMIT = 500
# The rule's occurrences are counted from here (the phase of a rule with INTERVAL > 1).
_ANCHOR = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday
UNDECIDED = ("submitted", "assessed")
# The days a meeting is looked for on: from the rule's anchor to a bound far enough for any plan.
LAST_DAY = date(2099, 12, 31)
EARLY = "starts before this meeting: decide it earlier or move it"
STATUS = {"submitted": "awaiting assessment", "assessed": "awaiting decision"}
FORMATS = ("text", "md", "json")


@dataclass(frozen=True)
class Meeting:
    """One CAB meeting: its start and end (UTC) and the CAB's time zone."""

    start: datetime
    end: datetime
    timezone: str

    def local(self, timezone: str | None = None) -> datetime:
        return self.start.astimezone(ZoneInfo(timezone or self.timezone))

    def label(self, timezone: str | None = None) -> str:
        """``Tue 24 Mar 2026 10:00-11:30 Europe/Berlin``: in ``timezone`` (default the CAB's), labelled."""
        zone = ZoneInfo(timezone or self.timezone)
        start, end = self.start.astimezone(zone), self.end.astimezone(zone)
        return f"{start:%a %d %b %Y %H:%M}-{end:%H:%M} {timezone or self.timezone}"


@dataclass(frozen=True)
class ApproverState:
    login: str
    name: str
    decision: str  # pending | approved | rejected
    comment: str | None
    decided_at: datetime | None
    meeting: datetime | None  # the meeting it was recorded at, if any
    counts: bool = True  # False: who raised or implements the change (their decision never counts)
    shown: str = ""  # the decision as shown (presenter.decision_label): ... not needed, moot

    @property
    def label(self) -> str:
        return self.shown or self.decision


@dataclass(frozen=True)
class AgendaItem:
    id: int
    ref: str
    title: str
    change_type: str
    state: str
    status: str  # awaiting assessment | awaiting decision | approved | rejected | ...
    risk: str
    risk_score: int | None
    planned_start: datetime | None
    planned_end: datetime | None
    services: tuple[str, ...]
    conflicts: tuple[Conflict, ...]
    approvers: tuple[ApproverState, ...]
    progress: str  # approvals.approval_progress
    approved: int
    required: int
    carried_from: datetime | None  # the meeting it was on before, when carried over to this one
    version: int
    # approve / reject -> None when the viewer may take it now, else why not (the guards' words)
    actions: dict[str, str | None] = field(default_factory=dict)
    warning: str | None = None  # EARLY: undecided, and planned to start before this meeting

    @property
    def tally(self) -> str:
        """Approvals so far of those needed: ``1/2`` (``-`` before assessment)."""
        return f"{self.approved}/{self.required}" if self.required else "-"

    def as_json(self) -> dict:
        return {
            "ref": self.ref,
            "title": self.title,
            "type": self.change_type,
            "state": self.state,
            "status": self.status,
            "risk": self.risk,
            "risk_score": self.risk_score,
            "planned_start": _when(self.planned_start),
            "planned_end": _when(self.planned_end),
            "services": list(self.services),
            "conflicts": [c.as_json() for c in self.conflicts],
            "approvers": [
                {
                    "login": a.login,
                    "decision": a.decision,
                    "shown": a.label,
                    "comment": a.comment,
                    "decided_at": _when(a.decided_at),
                    "meeting": _when(a.meeting),
                    "counts": a.counts,
                }
                for a in self.approvers
            ],
            "progress": self.progress,
            "approvals": self.tally,
            "carried_over_from": _when(self.carried_from),
            "warning": self.warning,
            "version": self.version,
        }


@dataclass(frozen=True)
class Decision:
    """One decision recorded at a meeting."""

    ref: str
    title: str
    login: str
    decision: str
    comment: str | None
    decided_at: datetime | None


@dataclass(frozen=True)
class Agenda:
    meeting: Meeting
    items: tuple[AgendaItem, ...]
    decisions: tuple[Decision, ...]
    previous: Meeting | None
    next: Meeting | None
    current: bool  # the meeting in progress or the next one: undecided changes are carried over to it
    truncated: bool = False
    closed: str | None = None  # why no decision is recorded at this meeting now (decision_refusal)

    def as_json(self) -> dict:
        return {
            "meeting": {
                "start": instant(self.meeting.start),
                "end": instant(self.meeting.end),
                "timezone": self.meeting.timezone,
            },
            "items": [item.as_json() for item in self.items],
            "decisions": [
                {
                    "ref": d.ref,
                    "title": d.title,
                    "login": d.login,
                    "decision": d.decision,
                    "comment": d.comment,
                    "decided_at": _when(d.decided_at),
                }
                for d in self.decisions
            ],
            "truncated": self.truncated,
        }


def _when(value: datetime | None) -> str | None:
    return instant(value) if value is not None else None


# --------------------------------------------------------------------------- meetings


def _spec(cab: CabSchedule) -> WindowSpec:
    try:
        rule = conflicts.validate_rrule(cab.rrule)
        conflicts.validate_start_local(cab.start_local)
        ZoneInfo(cab.timezone)
    except (ValueError, KeyError) as exc:
        raise ServiceError(f"changes.toml [cab] is not a meeting schedule: {exc}; correct it") from None
    return WindowSpec(
        id=0,
        name="CAB",
        service="",
        timezone=cab.timezone,
        rrule=rule,
        start_local=cab.start_local,
        duration_minutes=cab.duration_minutes,
        valid_from=_ANCHOR,
    )


def meetings(config: DeskConfig, start: datetime, end: datetime) -> list[Meeting]:
    """The CAB meetings that start in [start, end), oldest first (DST-correct, as windows are expanded)."""
    cab = config.changes.cab
    spec = _spec(cab)
    found = conflicts.occurrences(spec, start, end)
    return [Meeting(o.start, o.end, cab.timezone) for o in found if start <= o.start < end]


def _first_from(config: DeskConfig, at: datetime, *, started: bool = False) -> Meeting | None:
    """The first meeting starting at or after ``at`` (``started``: the first still going on at ``at``)."""
    low = at - timedelta(minutes=config.changes.cab.duration_minutes) if started else at
    for days in (14, 70, 400, 3000):
        for meeting in meetings(config, low, at + timedelta(days=days)):
            if (meeting.end > at) if started else (meeting.start >= at):
                return meeting
    return None


def _last_before(config: DeskConfig, at: datetime) -> Meeting | None:
    """The last meeting starting before ``at``."""
    for days in (14, 70, 400, 3000):
        found = meetings(config, at - timedelta(days=days), at)
        if found:
            return found[-1]
    return None


def meeting_for(config: DeskConfig, submitted_at: datetime) -> datetime:
    """The start of the first meeting at least ``cutoff_hours`` after ``submitted_at``: its agenda's."""
    at = submitted_at.astimezone(UTC) + timedelta(hours=config.changes.cab.cutoff_hours)
    meeting = _first_from(config, at)
    if meeting is None:
        raise ServiceError("the CAB of changes.toml [cab] never meets again; give it a rule that recurs")
    return meeting.start


def current_meeting(config: DeskConfig, now: datetime | None = None) -> Meeting:
    """The meeting going on at ``now``, else the next one: where undecided changes are carried over."""
    meeting = _first_from(config, _now(now), started=True)
    if meeting is None:
        raise ServiceError("the CAB of changes.toml [cab] never meets again; give it a rule that recurs")
    return meeting


def neighbour(config: DeskConfig, start: datetime, step: int) -> Meeting | None:
    """The meeting before (``step`` -1) or after (1) the one starting at ``start``; None if there is none."""
    if step < 0:
        return _last_before(config, start)
    return _first_from(config, start + timedelta(minutes=1))


def _within_schedule(config: DeskConfig, name: str, day: date) -> None:
    """A ValidationError unless ``day`` lies between the schedule's first meeting and :data:`LAST_DAY`."""
    first = _first_from(config, _ANCHOR)
    first_day = first.local().date() if first is not None else _ANCHOR.date()
    if not first_day <= day <= LAST_DAY:
        raise ValidationError(
            name,
            f"give a date between {first_day:%Y-%m-%d} (the CAB's first meeting) and {LAST_DAY:%Y-%m-%d}",
        )


def meeting_at(config: DeskConfig, start: datetime) -> Meeting:
    """The meeting starting at ``start``; a ValidationError naming the nearest meetings if none does."""
    start = start.astimezone(UTC)
    _within_schedule(config, "meeting", start.date())
    found = [m for m in meetings(config, start, start + timedelta(minutes=1)) if m.start == start]
    if found:
        return found[0]
    raise ValidationError(
        "meeting", f"the CAB does not meet at {start:%Y-%m-%d %H:%M} UTC; {_nearest(config, start)}"
    )


def meeting_on(
    config: DeskConfig, day: date | str, timezone: str | None = None, *, name: str = "date"
) -> Meeting:
    """The first meeting on a local day (``YYYY-MM-DD`` or a date, in ``timezone``, default the CAB's);
    ``name`` is the field a refusal names."""
    zone = ZoneInfo(timezone or config.changes.cab.timezone)
    if isinstance(day, str):
        try:
            day_value = date.fromisoformat(day.strip())
        except ValueError:
            raise ValidationError(name, f"{day!r} is not a date (YYYY-MM-DD)") from None
    else:
        day_value = day.date() if isinstance(day, datetime) else day
    _within_schedule(config, name, day_value)
    begin = datetime.combine(day_value, datetime.min.time(), zone)
    found = meetings(config, begin.astimezone(UTC), (begin + timedelta(days=1)).astimezone(UTC))
    found = [m for m in found if m.local(str(zone)).date() == day_value]
    if found:
        return found[0]
    raise ValidationError(
        name, f"the CAB does not meet on {day_value:%a %Y-%m-%d}; {_nearest(config, begin)}"
    )


def _nearest(config: DeskConfig, at: datetime) -> str:
    before, after = _last_before(config, at), _first_from(config, at)
    zone = config.changes.cab.timezone
    said = [f"{m.local():%a %Y-%m-%d %H:%M}" for m in (before, after) if m is not None]
    return f"the nearest meetings are {' and '.join(said)} {zone}" if said else "it has no meeting near then"


def decision_refusal(config: DeskConfig, meeting: Meeting, now: datetime | None = None) -> str | None:
    """Why no decision may be recorded at ``meeting`` at ``now``, or None: decisions are recorded at the
    meeting in progress, or at one already held (minutes written afterwards), never at one still to come.
    :func:`record_decision` enforces it; :func:`agenda` says it (``Agenda.closed``, the items' actions)."""
    now = _now(now)
    if meeting.start <= now:
        return None
    going = _first_from(config, now, started=True)
    if going is not None and going.start <= now:
        instead = f"in progress: {going.local():%a %d %b %Y %H:%M} {going.timezone}"
    else:
        last = _last_before(config, now)
        instead = f"the last: {last.local():%a %d %b %Y %H:%M} {last.timezone}" if last else "none held yet"
    return (
        f"the CAB of {meeting.local():%a %d %b %Y} has not met yet; decisions are recorded at a meeting in "
        f"progress or held ({instead})"
    )


# --------------------------------------------------------------------------- the agenda


def _status(change: Change) -> str:
    return STATUS.get(change.state, change.state.replace("_", " "))


def agenda(
    session: Session,
    config: DeskConfig,
    meeting_start: datetime,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> Agenda:
    """The agenda of the meeting starting at ``meeting_start``: the changes on it (and, for the meeting in
    progress or next, those carried over from earlier meetings, or from none, still undecided), by planned
    start, each with its risk, window, conflicts, approvers and whether it starts before the meeting; then
    the decisions recorded at the meeting.

    Read along ``ix_changes_cab`` (the meeting, then the state), at most :data:`AGENDA_LIMIT` changes."""
    now = _now(now)
    meeting = meeting_at(config, meeting_start)
    current = current_meeting(config, now)
    is_current = current.start == meeting.start
    own = list(
        session.scalars(
            select(Change)
            .where(Change.cab_meeting == meeting.start)
            .order_by(Change.planned_start, Change.id)
            .limit(AGENDA_LIMIT + 1)
        )
    )
    carried: list[Change] = []
    if is_current:
        carried = list(
            session.scalars(
                select(Change)
                .where(Change.cab_meeting < meeting.start, Change.state.in_(UNDECIDED))
                .order_by(Change.planned_start, Change.id)
                .limit(AGENDA_LIMIT + 1)
            )
        )
        # Submitted before changes had a meeting: awaiting the CAB all the same (the same index).
        carried += session.scalars(
            select(Change)
            .where(Change.cab_meeting.is_(None), Change.state.in_(UNDECIDED), Change.change_type == "normal")
            .order_by(Change.planned_start, Change.id)
            .limit(AGENDA_LIMIT + 1)
        )
    rows = sorted(own + carried, key=lambda c: (c.planned_start or datetime.max.replace(tzinfo=UTC), c.id))
    truncated = len(rows) > AGENDA_LIMIT
    rows = rows[:AGENDA_LIMIT]
    users = _logins(session, {a.approver_id for c in rows for a in c.approvals})
    closed = decision_refusal(config, meeting, now)
    items = tuple(_item(session, config, c, meeting, users, actor, now, closed) for c in rows)
    return Agenda(
        meeting=meeting,
        items=items,
        decisions=tuple(_decisions(session, meeting)),
        previous=neighbour(config, meeting.start, -1),
        next=neighbour(config, meeting.start, 1),
        current=is_current,
        truncated=truncated,
        closed=closed,
    )


def _item(
    session: Session,
    config: DeskConfig,
    change: Change,
    meeting: Meeting,
    users: dict[int, tuple[str, str]],
    actor: Actor | None,
    now: datetime,
    closed: str | None = None,
) -> AgendaItem:
    live = change.state in (*PRE_IMPLEMENTATION, "implementing")
    found: list[Conflict] = []
    if live and change.planned_start:
        planned = planned_of(session, change)
        found = conflicts.check(session, planned, same_service=config.changes.same_service_severity)
    found.sort(key=lambda c: (conflicts.SEVERITY_ORDER[c.severity], c.start))
    counting = {a.id for a in counted(change)}
    approvers = tuple(
        ApproverState(
            users.get(a.approver_id, ("?", "?"))[0],
            users.get(a.approver_id, ("?", "?"))[1],
            a.decision,
            a.reason,
            a.decided_at,
            a.meeting,
            a.id in counting,
            decision_label(a.decision, change.state),
        )
        for a in sorted(change.approvals, key=lambda a: (users.get(a.approver_id, ("", ""))[0], a.id))
    )
    counting_rows = [a for a in approvers if a.counts]
    required = required_approvals(config, len(counting_rows), change.risk) if counting_rows else 0
    actions: dict[str, str | None] = {}
    if actor is not None:
        offered = available_actions(session, config, actor, change, now)
        actions = {name: offered.get(name) or closed for name in ("approve", "reject")}
    starts = change.planned_start
    early = change.state in UNDECIDED and starts is not None and starts < meeting.start
    carried = (
        change.cab_meeting if change.cab_meeting is not None and change.cab_meeting < meeting.start else None
    )
    return AgendaItem(
        id=change.id,
        ref=change.ref,
        title=change.title,
        change_type=change.change_type,
        state=change.state,
        status=_status(change),
        risk=change.risk,
        risk_score=change.risk_score,
        planned_start=change.planned_start,
        planned_end=change.planned_end,
        services=tuple(sorted({t.service for t in change.targets})),
        conflicts=tuple(found),
        approvers=approvers,
        progress=approval_progress(session, config, change),
        approved=sum(1 for a in counting_rows if a.decision == "approved"),
        required=required,
        carried_from=carried,
        version=change.version,
        actions=actions,
        warning=EARLY if early else None,
    )


def _decisions(session: Session, meeting: Meeting) -> list[Decision]:
    stmt = (
        select(
            Change.ref,
            Change.title,
            User.login,
            ChangeApproval.decision,
            ChangeApproval.reason,
            ChangeApproval.decided_at,
        )
        .join(Change, Change.id == ChangeApproval.change_id)
        .join(User, User.id == ChangeApproval.approver_id)
        .where(ChangeApproval.meeting == meeting.start)
        .order_by(ChangeApproval.decided_at, ChangeApproval.id)
        .limit(DECISIONS_LIMIT)
    )
    return [Decision(*row) for row in session.execute(stmt).tuples()]


# --------------------------------------------------------------------------- decisions


def record_decision(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    approve: bool,
    comment: str | None,
    meeting_start: datetime,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """A CAB member's decision on a change on the agenda of the meeting at ``meeting_start``, with a
    comment (required to reject): :func:`.approvals.decide` (its guard: the member's own decision, four
    eyes), then the decision row names the meeting and the change belongs to that meeting's agenda (both
    audited)."""
    now = _now(now)
    meeting = meeting_at(config, meeting_start)
    refusal = decision_refusal(config, meeting, now)
    if refusal is not None:
        raise ValidationError("meeting", refusal)
    change = get_change(session, ref)
    on = change.cab_meeting
    # One submitted before changes had a meeting is on the agenda of any meeting while undecided.
    legacy = on is None and change.state in UNDECIDED
    if change.change_type == "normal" and not legacy and (on is None or on > meeting.start):
        where = "it is on no CAB agenda"
        if on is not None:
            where = f"it is on the agenda of {on.astimezone(ZoneInfo(meeting.timezone)):%a %Y-%m-%d %H:%M}"
            where += f" {meeting.timezone}"
        raise ValidationError(
            "meeting", f"{change.ref} cannot be decided at the CAB of {meeting.local():%a %Y-%m-%d}: {where}"
        )
    change = decide(
        session,
        config,
        actor,
        change.ref,
        approve=approve,
        reason=comment,
        expected_version=expected_version,
        now=now,
    )
    mine = next(a for a in change.approvals if a.approver_id == actor.id)
    mine.meeting = meeting.start
    _note(
        session,
        change,
        actor,
        now,
        "cab",
        "meeting",
        f"{mine.decision} by {actor.login} at the CAB of {meeting.label()}",
    )
    if change.change_type == "normal":
        _set(session, change, "cab_meeting", meeting.start, actor, now, action="cab")
    change.updated_at = now
    versions.flush(session, "change", change, None)
    return change


# --------------------------------------------------------------------------- minutes

_MD_SPECIAL = "\\`*_[]<>|~#"


def md_text(text: str | None) -> str:
    """People's text for Markdown: one line, control characters made visible, Markdown's own characters
    escaped (so ``|`` cannot end a table cell nor a backtick open code)."""
    plain = strip_control(text, single_line=True)
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in plain)


def _plain(text: str | None) -> str:
    return strip_control(text, single_line=True)


def _window(item: AgendaItem, zone: ZoneInfo, name: str) -> str:
    if item.planned_start is None or item.planned_end is None:
        return "-"
    start, end = item.planned_start.astimezone(zone), item.planned_end.astimezone(zone)
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} {name}"


def _at(value: datetime | None, zone: ZoneInfo) -> str:
    """An instant in ``zone``, labelled with the zone's abbreviation there and then (CET, CEST, EST)."""
    return f"{value.astimezone(zone):%Y-%m-%d %H:%M %Z}" if value is not None else "-"


def minutes(agenda: Agenda, fmt: str = "md", timezone: str | None = None) -> str:
    """The minutes of a meeting: ``text``, ``md`` (Markdown) or ``json``; times in ``timezone`` (default the
    CAB's), labelled. People's text is made safe for the format (control characters shown, Markdown's
    characters escaped)."""
    if fmt == "json":
        return json.dumps(agenda.as_json(), indent=2, ensure_ascii=False) + "\n"
    if fmt not in FORMATS:
        raise ValidationError("format", f"the minutes are written as {', '.join(FORMATS)}, not {fmt!r}")
    name = timezone or agenda.meeting.timezone
    zone = ZoneInfo(name)
    md = fmt == "md"
    esc = md_text if md else _plain
    lines: list[str] = []
    title = f"CAB meeting {agenda.meeting.label(name)}"
    lines += [f"# {title}", ""] if md else [title, "=" * len(title), ""]
    count = len(agenda.items)
    lines.append(
        f"{count} change{'s' if count != 1 else ''} on the agenda."
        + (f" More changes await the CAB than are listed ({AGENDA_LIMIT})." if agenda.truncated else "")
    )
    bullet = "- " if md else "  "
    for item in agenda.items:
        head = f"{item.ref} {esc(item.title)}"
        lines += ["", f"## {head}" if md else head, ""]
        score = f" (score {item.risk_score})" if item.risk_score is not None else ""
        lines.append(f"{bullet}Type: {item.change_type}; state: {item.status}; risk: {item.risk}{score}")
        lines.append(f"{bullet}Window: {_window(item, zone, name)}")
        if item.warning:
            lines.append(f"{bullet}Warning: {item.warning}")
        if item.carried_from is not None:
            lines.append(f"{bullet}Carried over from: {item.carried_from.astimezone(zone):%a %Y-%m-%d}")
        lines.append(f"{bullet}Approvals: {item.tally} ({esc(item.progress)})")
        if item.conflicts:
            lines.append(f"{bullet}Conflicts:")
            for conflict in item.conflicts:
                label = conflicts.SEVERITY_LABEL[conflict.severity]
                lines.append(f"  {bullet}{label}: {esc(conflict.message)}")
        else:
            lines.append(f"{bullet}Conflicts: none")
        if item.approvers:
            lines.append(f"{bullet}Approvers:")
            for a in item.approvers:
                said = f": {esc(a.comment)}" if a.comment else ""
                when = f" ({_at(a.decided_at, zone)})" if a.decided_at else ""
                never = " (does not count: raised or implements it)" if not a.counts else ""
                lines.append(f"  {bullet}{esc(a.login)}: {a.label}{said}{when}{never}")
    lines += ["", "## Decisions" if md else "Decisions", ""]
    if not agenda.decisions:
        lines.append("No decisions recorded at this meeting.")
    elif md:
        lines += [
            f"| Change | Title | Approver | Decision | Comment | At ({name}) |",
            "|---|---|---|---|---|---|",
        ]
        for d in agenda.decisions:
            lines.append(
                f"| {d.ref} | {esc(d.title)} | {esc(d.login)} | {d.decision} | {esc(d.comment or '')} | "
                f"{_at(d.decided_at, zone)} |"
            )
    else:
        for d in agenda.decisions:
            said = f": {esc(d.comment)}" if d.comment else ""
            lines.append(f"  {d.ref} {d.decision} by {esc(d.login)} at {_at(d.decided_at, zone)}{said}")
    return "\n".join(lines) + "\n"
