"""Why a ticket's SLA times are what they are, and what a change would do to them before it is saved.

:func:`explain` lays out, for each target (response, resolution): the policy and calendar it is measured on,
its start, its minutes, each pause with the business time it counted, each re-target (a priority change:
who, when, from which priority to which), the warning and due instants and the verdict. :func:`preview`
applies a proposed change (impact and urgency, a status change to or from pending, a reopen) to a detached
copy of the ticket's SLA facts, never to the ticket itself, and says what the instants and verdicts become
and what the SLA job would then do at once: flag a warning or a breach, and escalate the ticket to another
group (:func:`escalation_target`, the rule the job itself uses to choose that group).

Every instant comes from :mod:`itsm_tui.services.sla`; nothing here measures time itself. Nothing is
written: the results are frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from itsm_tui.config import LEVELS, DeskConfig
from itsm_tui.models import OPEN_STATUSES, AuditEvent, Group, Ticket, TicketPause, User, utc_or_now
from itsm_tui.services import sla
from itsm_tui.services.errors import InvalidTransition, ValidationError
from itsm_tui.services.jsondata import instant
from itsm_tui.services.tickets.guards import TRANSITIONS
from itsm_tui.services.tickets.reading import get_ticket
from itsm_tui.services.users import Actor

TARGETS = ("response", "resolution")
# The events the SLA job reports, in the order of one run: breaches before warnings, so that a target found
# warned and breached at once is reported once, as a breach (jobs/sla_scan.py SCAN_ORDER).
JOB_ORDER = (
    ("response", "breach"),
    ("resolution", "breach"),
    ("response", "warning"),
    ("resolution", "warning"),
)


# --------------------------------------------------------------------------- the escalation rule


def escalation_target(
    config: DeskConfig,
    event: str,
    target: str,
    priority: int,
    level: int | None,
    service: str | None,
    current_group: str | None,
) -> str | None:
    """The group the SLA job's functional escalation hands a ticket to when ``event`` (warning, breach)
    befalls its ``target`` (response, resolution), by the rules of sla.toml; None when it stays.

    The first rule for the event and target that lists the ticket's priority and the support ``level`` of
    its group applies; it names a group, or ``service``: the support group of the ticket's service (none
    without a service). A ticket already with that group (``current_group``) stays.
    """
    rule = next(
        (
            x
            for x in config.escalations
            if x.event == event and x.target == target and priority in x.priorities and level == x.from_level
        ),
        None,
    )
    if rule is None:
        return None
    if rule.to != "service":
        code = rule.to
    elif service is not None and service in config.services:
        code = config.services[service].support_group
    else:
        return None
    return None if code == current_group else code


# --------------------------------------------------------------------------- explaining


@dataclass(frozen=True)
class PauseLine:
    """One pause interval as a target counted it.

    ``business_seconds``: the business time it moved the due by (for a pause under way, what it has lasted
    so far: the due moves by it when the ticket resumes). ``counted``: whether it moves the due at all (a
    pause that began after the due, or ended before the target started, moves nothing).
    """

    start: datetime
    end: datetime | None
    reason: str
    business_seconds: float
    counted: bool

    @property
    def under_way(self) -> bool:
        return self.end is None


@dataclass(frozen=True)
class Retarget:
    """A priority change: who, when, from which priority to which. ``applied``: the target was still
    running then, so it was measured again on the new priority's policy (a stopped target keeps its times)."""

    at: datetime
    by: str
    old_priority: int
    new_priority: int
    applied: bool


@dataclass(frozen=True)
class TargetExplanation:
    """One target of a ticket, with everything its warning and due instants come from."""

    target: str  # response | resolution
    priority: int  # the priority whose policy measures it (for a stopped target: the one it stopped on)
    calendar: str
    calendar_timezone: str
    always_open: bool
    start: datetime
    start_kind: str  # opened | reopened (a reopen that restarted the resolution target)
    target_minutes: int
    warning_ratio: float
    pauses: tuple[PauseLine, ...]
    paused_seconds: float  # the business time of the pauses that moved the due
    retargets: tuple[Retarget, ...]
    warn_at: datetime | None  # as stored on the ticket: what the SLA job and the queue use
    due_at: datetime | None
    running: bool
    stopped_at: datetime | None
    stopped_by: str | None  # responded | resolved | cancelled
    verdict: str  # ok | warning | breached | met | stopped
    seconds_left: float | None  # business seconds to the due (negative: overdue); None once stopped
    warned_at: datetime | None  # when the SLA job flagged the warning and the breach
    breached_at: datetime | None
    # The due the rules give now when it is not the stored one (None: they agree).
    recomputed_due_at: datetime | None
    # For a ticket paused now: the due were it to resume at this instant.
    due_if_resumed_now: datetime | None


@dataclass(frozen=True)
class Explanation:
    ref: str
    title: str
    status: str
    priority: int
    now: datetime
    targets: tuple[TargetExplanation, ...]

    def target(self, name: str) -> TargetExplanation:
        return next(t for t in self.targets if t.target == name)

    def as_json(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    """Instants as UTC ISO instants (:func:`jsondata.instant`), through nested dicts and lists."""
    if isinstance(value, datetime):
        return instant(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _retargets(session: Session, ticket: Ticket) -> list[tuple[datetime, str, int, int]]:
    """The ticket's priority changes from its audit trail, oldest first: at, by (login), old, new."""
    rows = session.execute(
        select(AuditEvent.at, User.login, AuditEvent.old_value, AuditEvent.new_value)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .where(
            AuditEvent.entity_type == "ticket",
            AuditEvent.entity_id == ticket.id,
            AuditEvent.field == "priority",
            AuditEvent.old_value.is_not(None),
        )
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    changes = []
    for at, login, old, new in rows:
        try:
            changes.append((at, login or "system", int(old), int(new)))
        except (TypeError, ValueError):
            continue  # not a priority as this desk writes it
    return changes


def _priority_at(ticket: Ticket, changes: list[tuple[datetime, str, int, int]], moment: datetime) -> int:
    """The priority in force at ``moment``: the last change's new one then, else the one it was opened on."""
    priority = changes[0][2] if changes else ticket.priority
    for at, _by, _old, new in changes:
        if at <= moment:
            priority = new
    return priority


def _stop(ticket: Ticket, target: str) -> tuple[datetime | None, str | None]:
    """When and why a target stopped (None: it runs)."""
    done = ticket.responded_at if target == "response" else ticket.resolved_at
    candidates = [
        (moment, why)
        for moment, why in (
            (done, "responded" if target == "response" else "resolved"),
            (ticket.cancelled_at, "cancelled"),
        )
        if moment is not None
    ]
    if not candidates:
        return None, None
    return min(candidates, key=lambda c: c[0])


def _as_of(pauses: Iterable[sla.Pause], moment: datetime) -> list[sla.Pause]:
    """The pauses as they stood at ``moment``: those begun by then, one still going then as under way."""
    return [
        sla.Pause(p.start, p.end if p.end is not None and p.end <= moment else None, p.reason)
        for p in pauses
        if p.start < moment
    ]


def _measures(
    config: DeskConfig,
    ticket: Ticket,
    target: str,
    priority: int,
    pauses: list[sla.Pause],
) -> tuple[sla.Measure, sla.Measure]:
    """The warning and due measures of one target on ``priority``'s policy, from the ticket's starts."""
    policy = config.policies[priority]
    targets = sla.compute_targets(
        sla.policy_clock(config, priority),
        response_minutes=policy.response_minutes,
        resolution_minutes=policy.resolution_minutes,
        warning_ratio=config.warning_ratio,
        opened_at=ticket.opened_at,
        resolution_start=ticket.resolution_started_at,
        pauses=pauses,
        response_running=target == "response",
        resolution_running=target == "resolution",
    )
    warn = targets.response_warn if target == "response" else targets.resolution_warn
    due = targets.response_due if target == "response" else targets.resolution_due
    assert warn is not None and due is not None  # the target was asked for
    return warn, due


def _explain_target(
    config: DeskConfig,
    ticket: Ticket,
    target: str,
    changes: list[tuple[datetime, str, int, int]],
    now: datetime,
) -> TargetExplanation:
    stopped_at, stopped_by = _stop(ticket, target)
    pauses = sla.ticket_pauses(ticket)
    if stopped_at is None:
        priority = ticket.priority
        running = sla.targets_for(ticket, config)
        warn = running.response_warn if target == "response" else running.resolution_warn
        due = running.response_due if target == "response" else running.resolution_due
        assert warn is not None and due is not None  # a running target is measured
    else:  # as the rules measured it when it stopped: on that priority, with the pauses there were then
        priority = _priority_at(ticket, changes, stopped_at)
        warn, due = _measures(config, ticket, target, priority, _as_of(pauses, stopped_at))
    policy = config.policies[priority]
    calendar = config.calendars[policy.calendar]
    clock = sla.policy_clock(config, priority)
    lines = []
    resumed_now: datetime | None = None
    ends = {p.start: p.end for p in pauses}
    for measured in due.pauses:
        business, counted, end = measured.business, measured.counted, measured.end
        if end is None and stopped_at is not None:  # the target stopped during it: it moved nothing
            business, counted, end = timedelta(), False, ends.get(measured.start)
        elif end is None and counted:  # under way: what it has lasted so far
            business = clock.elapsed_delta(measured.start, now)
        lines.append(PauseLine(measured.start, end, measured.reason, business.total_seconds(), counted))
    if stopped_at is None and any(p.end is None for p in pauses):
        ended = [sla.Pause(p.start, p.end or now, p.reason) for p in pauses]
        resumed_now = sla.measure(clock, due.start, due.target, ended).due
    if target == "response":
        stored_warn, stored_due = ticket.response_warn_at, ticket.response_due_at
        warned, breached = ticket.response_warned_at, ticket.response_breached_at
        start_kind = "opened"
    else:
        stored_warn, stored_due = ticket.resolution_warn_at, ticket.resolution_due_at
        warned, breached = ticket.resolution_warned_at, ticket.resolution_breached_at
        start_kind = "reopened" if ticket.resolution_started_at is not None else "opened"
    minutes = policy.response_minutes if target == "response" else policy.resolution_minutes
    return TargetExplanation(
        target=target,
        priority=priority,
        calendar=calendar.name,
        calendar_timezone=calendar.timezone,
        always_open=calendar.always_open,
        start=due.start,
        start_kind=start_kind,
        target_minutes=minutes,
        warning_ratio=config.warning_ratio,
        pauses=tuple(lines),
        paused_seconds=due.paused.total_seconds(),
        retargets=tuple(
            Retarget(at, by, old, new, stopped_at is None or at <= stopped_at) for at, by, old, new in changes
        ),
        warn_at=stored_warn,
        due_at=stored_due,
        running=stopped_at is None,
        stopped_at=stopped_at,
        stopped_by=stopped_by,
        verdict=sla.sla_state(ticket, now, target),
        seconds_left=sla.time_left(ticket, config, now, target),
        warned_at=warned,
        breached_at=breached,
        recomputed_due_at=due.due if due.due != stored_due else None,
        due_if_resumed_now=resumed_now if resumed_now != stored_due else None,
    )


def explain(session: Session, config: DeskConfig, ref: str, now: datetime | None = None) -> Explanation:
    """Why the ticket ``ref``'s SLA times are what they are, at ``now`` (default: the current instant)."""
    now = utc_or_now(now)
    ticket = get_ticket(session, ref)
    changes = _retargets(session, ticket)
    return Explanation(
        ref=ticket.ref,
        title=ticket.title,
        status=ticket.status,
        priority=ticket.priority,
        now=now,
        targets=tuple(_explain_target(config, ticket, target, changes, now) for target in TARGETS),
    )


# --------------------------------------------------------------------------- previewing a change


@dataclass(frozen=True)
class ProposedChange:
    """A change that may move a target: new impact and urgency, or a new status (``pending`` with its
    reason, out of pending, ``in_progress`` from ``resolved``: a reopen). None: left as it is."""

    impact: str | None = None
    urgency: str | None = None
    status: str | None = None
    pending_reason: str | None = None


@dataclass(frozen=True)
class TargetPreview:
    """One target before and after the change."""

    target: str
    priority_before: int
    priority_after: int
    calendar_after: str
    warn_before: datetime | None
    warn_after: datetime | None
    due_before: datetime | None
    due_after: datetime | None
    verdict_before: str
    verdict_after: str
    running_after: bool
    paused_after: bool  # the clock stands still after the change (pending, resolved)
    # What the SLA job would flag on this target at once: breach, warning or None.
    event_now: str | None
    # Where the SLA job would escalate the ticket should this target breach later (None: nowhere).
    escalates_on_breach: str | None

    @property
    def moved(self) -> bool:
        return (self.warn_before, self.due_before) != (self.warn_after, self.due_after)


@dataclass(frozen=True)
class JobStep:
    """What the SLA job would do at its next run: flag ``event`` on ``target``, and maybe escalate."""

    target: str
    event: str  # breach | warning
    escalate_to: str | None  # the group the ticket would be handed to (unassigned, status new)


@dataclass(frozen=True)
class Preview:
    ref: str
    now: datetime
    change: ProposedChange
    priority_before: int
    priority_after: int
    targets: tuple[TargetPreview, ...]
    job: tuple[JobStep, ...]
    scan_interval_seconds: int
    assignee: str | None  # who has the ticket now (an escalation takes it from them)
    actor_is_assignee: bool

    def target(self, name: str) -> TargetPreview:
        return next(t for t in self.targets if t.target == name)

    @property
    def moves(self) -> bool:
        """Whether the change moves any warning or due instant, or a verdict."""
        return any(t.moved or t.verdict_before != t.verdict_after for t in self.targets)

    @property
    def escalate_to(self) -> str | None:
        return next((step.escalate_to for step in self.job if step.escalate_to), None)

    @property
    def warnings(self) -> tuple[str, ...]:
        """One line for each thing the SLA job would do at once: what befalls which target, and where the
        ticket would go."""
        lines = []
        within = f"within {self.scan_interval_seconds} s"
        for step in self.job:
            what = "breaches now" if step.event == "breach" else "reaches its warning now"
            line = f"{step.target.capitalize()} {what}"
            if step.escalate_to:
                who = f"{self.assignee} loses it" if self.assignee else ""
                if self.actor_is_assignee:
                    who = "you lose it"
                line += (
                    f": the SLA job will escalate it to {step.escalate_to} {within} "
                    f"(unassigned, back to new{'; ' + who if who else ''})"
                )
            elif step.event == "breach":
                line += f": the SLA job will flag the breach {within} and tell the shift lead"
            else:
                line += f": the SLA job will flag the warning {within} and tell the group's lead"
            lines.append(line + ".")
        return tuple(lines)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["warnings"] = list(self.warnings)
        return _jsonable(data)


# The columns of a ticket that its SLA instants and the SLA job's choices depend on.
_SLA_FACTS = (
    "ref",
    "status",
    "is_open",
    "impact",
    "urgency",
    "priority",
    "service",
    "group_id",
    "assignee_id",
    "opened_at",
    "responded_at",
    "resolved_at",
    "cancelled_at",
    "sla_calendar",
    "paused_at",
    "resolution_started_at",
    "response_warn_at",
    "response_due_at",
    "resolution_warn_at",
    "resolution_due_at",
    "response_warned_at",
    "response_breached_at",
    "resolution_warned_at",
    "resolution_breached_at",
    "reopen_count",
)


def _detached(ticket: Ticket) -> Ticket:
    """A copy of the ticket's SLA facts and pauses that belongs to no session (changing it writes nothing)."""
    copy = Ticket(**{name: getattr(ticket, name) for name in _SLA_FACTS})
    copy.pauses = [
        TicketPause(reason=p.reason, started_at=p.started_at, ended_at=p.ended_at) for p in ticket.pauses
    ]
    return copy


def _level(field: str, value: str) -> str:
    value = value.strip().lower()
    if value not in LEVELS:
        raise ValidationError(field, f"{field} must be one of {', '.join(LEVELS)}, not {value!r}")
    return value


def _apply(copy: Ticket, config: DeskConfig, actor: Actor, change: ProposedChange, now: datetime) -> None:
    """What saving ``change`` does to the SLA facts (as tickets.update_fields and tickets.transition do)."""
    if change.impact is not None:
        copy.impact = _level("impact", change.impact)
    if change.urgency is not None:
        copy.urgency = _level("urgency", change.urgency)
    priority = config.priority_for(copy.impact, copy.urgency)
    if priority != copy.priority:
        copy.priority = priority
        sla.retarget(copy, config)  # from the original start, paused time kept out
    to_status = (change.status or "").strip().lower()
    current = copy.status
    if not to_status or to_status == current:
        return
    allowed = TRANSITIONS.get(current, ())
    if to_status not in allowed:
        raise InvalidTransition(copy.ref, current, to_status, allowed)
    reopening = current == "resolved" and to_status == "in_progress"
    if to_status == "in_progress" and not reopening and copy.assignee_id is None:
        copy.assignee_id = actor.id  # working on it takes it: that is the response
        copy.responded_at = copy.responded_at or now
    sla.leave_status(copy, config, current, now)
    if to_status == "resolved":
        copy.responded_at = copy.responded_at or now
        copy.resolved_at = now
    elif to_status == "cancelled":
        copy.cancelled_at = now
    elif reopening:
        copy.reopen_count += 1
        copy.resolution_warned_at = copy.resolution_breached_at = None
        copy.resolved_at = None
    reason = (change.pending_reason or "customer").strip().lower() if to_status == "pending" else None
    sla.enter_status(copy, config, current, to_status, now, reason)
    copy.status = to_status
    copy.is_open = to_status in OPEN_STATUSES


def _instants(ticket: Ticket, target: str) -> tuple[datetime | None, datetime | None]:
    if target == "response":
        return ticket.response_warn_at, ticket.response_due_at
    return ticket.resolution_warn_at, ticket.resolution_due_at


def _flags(ticket: Ticket, target: str) -> tuple[datetime | None, datetime | None]:
    if target == "response":
        return ticket.response_warned_at, ticket.response_breached_at
    return ticket.resolution_warned_at, ticket.resolution_breached_at


def _clock_runs(ticket: Ticket, target: str) -> bool:
    """The SLA job's test of a running clock: the response target until the response, the resolution
    target while not paused."""
    return ticket.responded_at is None if target == "response" else ticket.paused_at is None


def _due_now(ticket: Ticket, target: str, event: str, now: datetime) -> bool:
    """Whether the SLA job run at ``now`` would flag ``event`` on ``target``: an open ticket, not flagged
    yet, its clock running, the instant reached."""
    warn, due = _instants(ticket, target)
    warned, breached = _flags(ticket, target)
    moment, flag = (due, breached) if event == "breach" else (warn, warned)
    return (
        bool(ticket.is_open)
        and flag is None
        and _clock_runs(ticket, target)
        and moment is not None
        and moment <= now
    )


def _flag(ticket: Ticket, target: str, event: str) -> None:
    """Mark on the copy what the job marks (a breach is past the warning too)."""
    warn, due = _instants(ticket, target)
    prefix = "response" if target == "response" else "resolution"
    if event == "breach":
        setattr(ticket, f"{prefix}_breached_at", due)
        if getattr(ticket, f"{prefix}_warned_at") is None:
            setattr(ticket, f"{prefix}_warned_at", due)
    else:
        setattr(ticket, f"{prefix}_warned_at", warn)


def _job(
    session: Session, config: DeskConfig, copy: Ticket, now: datetime
) -> tuple[tuple[JobStep, ...], dict[str, str | None]]:
    """What the SLA job run at ``now`` would do to the changed copy (its steps, in the job's order), and
    where a later breach of each target would send the ticket."""
    groups = {
        code: (group_id, level)
        for code, group_id, level in session.execute(select(Group.code, Group.id, Group.level))
    }
    by_id = {group_id: (code, level) for code, (group_id, level) in groups.items()}

    def group_of(ticket: Ticket) -> tuple[str | None, int | None]:
        return by_id.get(ticket.group_id, (None, None)) if ticket.group_id is not None else (None, None)

    def escalation(ticket: Ticket, target: str, event: str) -> str | None:
        code, level = group_of(ticket)
        to = escalation_target(config, event, target, ticket.priority, level, ticket.service, code)
        return to if to in groups else None

    later = {
        target: escalation(copy, target, "breach") if _clock_runs(copy, target) and copy.is_open else None
        for target in TARGETS
    }
    steps = []
    for target, event in JOB_ORDER:
        if not _due_now(copy, target, event, now):
            continue
        _flag(copy, target, event)
        to = escalation(copy, target, event)
        steps.append(JobStep(target, event, to))
        if to is not None:  # the job hands it over: the rest of its run sees it in the new group
            if copy.status == "pending" and copy.paused_at is not None:
                sla.resume(copy, config, now)
            copy.group_id = groups[to][0]
            copy.assignee_id = None
            copy.status = "new"
    return tuple(steps), later


def preview(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    change: ProposedChange,
    now: datetime | None = None,
) -> Preview:
    """What saving ``change`` on ticket ``ref`` at ``now`` would do to its SLA times, and what the SLA job
    would then do at once. The ticket is only read: the change is made to a detached copy of its facts."""
    now = utc_or_now(now)
    ticket = get_ticket(session, ref)
    copy = _detached(ticket)
    _apply(copy, config, actor, change, now)
    after = _detached(copy)  # the changed facts, before the job's run marks anything on the copy
    steps, later = _job(session, config, copy, now)
    assignee = (
        session.scalar(select(User.login).where(User.id == ticket.assignee_id))
        if ticket.assignee_id
        else None
    )
    targets = []
    for target in TARGETS:
        warn_before, due_before = _instants(ticket, target)
        warn_after, due_after = _instants(after, target)
        event = next((s.event for s in steps if s.target == target), None)
        targets.append(
            TargetPreview(
                target=target,
                priority_before=ticket.priority,
                priority_after=after.priority,
                calendar_after=config.policies[after.priority].calendar,
                warn_before=warn_before,
                warn_after=warn_after,
                due_before=due_before,
                due_after=due_after,
                verdict_before=sla.sla_state(ticket, now, target),
                verdict_after=sla.sla_state(after, now, target),
                running_after=_stop(after, target)[0] is None,
                paused_after=after.paused_at is not None,
                event_now=event,
                escalates_on_breach=later[target],
            )
        )
    return Preview(
        ref=ticket.ref,
        now=now,
        change=change,
        priority_before=ticket.priority,
        priority_after=after.priority,
        targets=tuple(targets),
        job=steps,
        scan_interval_seconds=config.scan_interval_seconds,
        assignee=assignee,
        actor_is_assignee=ticket.assignee_id is not None and ticket.assignee_id == actor.id,
    )


def hours_minutes(seconds: float | timedelta) -> str:
    """A span of business time as people read it: ``2h58m``, ``45m``, ``3d04h``."""
    total = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
    minutes = int(round(abs(total)) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    return f"{hours}h{mins:02d}m" if hours else f"{mins}m"


__all__ = [
    "JOB_ORDER",
    "TARGETS",
    "Explanation",
    "JobStep",
    "PauseLine",
    "Preview",
    "ProposedChange",
    "Retarget",
    "TargetExplanation",
    "TargetPreview",
    "escalation_target",
    "explain",
    "hours_minutes",
    "preview",
]
