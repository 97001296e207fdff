"""One demo ticket's history, step by step, by the rules the services and the SLA job apply.

Each method of :class:`TicketHistory` is one legal lifecycle move, made as the service function that makes it
in the console would make it: the same fields change, in the same order, with the same audit rows (action,
field, old and new value as :mod:`itsm_tui.services.audit` writes them), work notes and saves (the version).
The SLA instants come from the engine's :func:`~itsm_tui.services.sla.compute_targets` at the same moments the
services retarget (the opening, a priority change, the end of a pause, a reopen), on the demo's fast clock;
:meth:`TicketHistory.scan` is what one run of :func:`itsm_tui.jobs.sla_scan.scan` does to the ticket at an
instant: its flags in the job's order (``SCAN_ORDER``), the functional escalation of sla.toml, and the
automatic close of a ticket resolved ``auto_close_days`` before.

The mirrored services, for whoever changes one of them:

- :func:`~itsm_tui.services.tickets.creating.create_ticket` (:meth:`TicketHistory.create`),
- :func:`~itsm_tui.services.tickets.editing.assign` taking a ticket (:meth:`TicketHistory.take`),
  ``update_fields`` (:meth:`TicketHistory.edit_levels`), ``add_entry`` (:meth:`TicketHistory.reply`),
  ``escalate`` and ``move_to_group`` (:meth:`TicketHistory.escalate`, :meth:`TicketHistory.move_to_group`),
- :func:`~itsm_tui.services.tickets.lifecycle.transition` and its resolve, reopen, cancel and close, with
  the clocks' part of each move, ``sla.leave_status`` and ``sla.enter_status``
  (:meth:`TicketHistory.change_status`), ``rate`` (:meth:`TicketHistory.rate`),
- :mod:`itsm_tui.jobs.sla_scan` ``flag_due``, ``escalate`` and ``close_resolved`` (:meth:`TicketHistory.scan`,
  :meth:`TicketHistory.auto_close`).

Instants are whole epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from itsm_tui.config import DeskConfig
from itsm_tui.demo.clock import EpochClock
from itsm_tui.demo.roster import Staff
from itsm_tui.demo.writer import AuditFields, Instants, Row
from itsm_tui.jobs.sla_scan import SCAN_ORDER
from itsm_tui.models import OPEN_STATUSES
from itsm_tui.services.sla import Pause, compute_targets
from itsm_tui.services.sla_explain import escalation_target
from itsm_tui.services.tickets.guards import TRANSITIONS

_OPEN = frozenset(OPEN_STATUSES)


@dataclass
class ChunkRows:
    """The rows of one chunk of tickets, as the histories write them.

    The audit events are kept as their fields (``events``), to be laid out as the rows of the audit table,
    chained (:func:`itsm_tui.services.audit.table_rows`), once their entries have ids: ticket entries are
    numbered from 1 within the chunk, and ``entry_audits`` lists (audit event, entry number) for each audit
    event that names an entry. A link's hash covers that id, which follows on from the entries of the
    chunks before (:meth:`itsm_tui.demo.tickets.TicketFactory.laid_out`).
    """

    tickets: list[Row] = field(default_factory=list)
    events: list[AuditFields] = field(default_factory=list)
    entries: list[Row] = field(default_factory=list)
    entry_audits: list[tuple[int, int]] = field(default_factory=list)
    ratings: list[Row] = field(default_factory=list)
    pauses: list[Row] = field(default_factory=list)
    open_count: int = 0


class Desk:
    """What every ticket's history reads: the configuration, the calendars' clocks, the stored forms."""

    def __init__(self, config: DeskConfig, clocks: dict[str, EpochClock], instants: Instants) -> None:
        self.config = config
        self.clocks = clocks
        self.instants = instants
        self.levels = {code: group.level for code, group in config.groups.items()}
        self.restart = config.reopen_restarts_resolution
        self.auto_close = config.auto_close_days * 86400


def _dt(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class IllegalMove(RuntimeError):
    """The demo tried a move the lifecycle does not allow (a fault of the demo, never of the data)."""


class TicketHistory:
    """The state of one ticket while its history is made, and the moves that make it."""

    __slots__ = (
        "_at",
        "_at_stored",
        "assignee",
        "business_seconds",
        "cancelled",
        "closed",
        "code",
        "creator",
        "desk",
        "escalation_count",
        "first_group",
        "group",
        "id",
        "impact",
        "is_open",
        "note",
        "opened",
        "out",
        "paused_at",
        "pauses",
        "pending_reason",
        "priority",
        "reassignment_count",
        "reopen_count",
        "res_breached",
        "res_due",
        "res_warn",
        "res_warned",
        "resolution_started",
        "resolved",
        "resp_breached",
        "resp_due",
        "resp_warn",
        "resp_warned",
        "responded",
        "service",
        "service_group",
        "sla_calendar",
        "status",
        "updated",
        "urgency",
        "version",
    )

    def __init__(
        self,
        desk: Desk,
        out: ChunkRows,
        ticket_id: int,
        *,
        priority: int,
        impact: str,
        urgency: str,
        service: str | None,
    ) -> None:
        self.desk, self.out, self.id = desk, out, ticket_id
        self.priority, self.impact, self.urgency, self.service = priority, impact, urgency, service
        services = desk.config.services
        self.service_group = services[service].support_group if service in services else None
        self.status = "new"
        self.is_open = True
        self.group = self.first_group = ""
        self.assignee: Staff | None = None
        self.creator: Staff | None = None
        self.pending_reason: str | None = None
        self.code: str | None = None
        self.note: str | None = None
        self.opened = self.updated = 0
        self.responded: int | None = None
        self.resolved: int | None = None
        self.closed: int | None = None
        self.cancelled: int | None = None
        self.paused_at: int | None = None
        self.resolution_started: int | None = None
        self.pauses: list[list] = []  # [reason, start, end or None]
        self.resp_warn = self.resp_due = self.res_warn = self.res_due = 0
        self.resp_warned: int | None = None
        self.resp_breached: int | None = None
        self.res_warned: int | None = None
        self.res_breached: int | None = None
        self.sla_calendar = ""
        self.business_seconds: int | None = None
        self.reopen_count = self.escalation_count = self.reassignment_count = 0
        self.version = 1
        self._at: int | None = None
        self._at_stored: datetime | str = ""

    # ------------------------------------------------------------------ rows

    def _audit(
        self, at: int, actor: Staff | None, action: str, name: str | None, old: str | None, new: str | None
    ) -> None:
        if at != self._at:  # a step writes several rows at one instant: its stored form is made once
            self._at, self._at_stored = at, self.desk.instants.instant(at)
        actor_id = actor.id if actor is not None else None
        self.out.events.append(("ticket", self.id, actor_id, self._at_stored, action, name, old, new))

    def _entry(self, at: int, author: Staff | None, kind: str, body: str) -> int:
        entries = self.out.entries
        author_id = author.id if author is not None else None
        entries.append((self.id, author_id, kind, body, self.desk.instants.instant(at)))
        return len(entries)

    def _iso(self, seconds: int | None) -> str | None:
        return None if seconds is None else self.desk.instants.iso(seconds)

    def _save(self, at: int) -> None:
        """The end of a service call that changed the ticket: updated then, one more version."""
        self.updated = at
        self.version += 1

    # ------------------------------------------------------------------ the SLA clocks (services/sla.py)

    def retarget(self) -> None:
        """``sla.retarget``: the running targets' instants from the start, the current policy, the pauses."""
        desk = self.desk
        policy = desk.config.policies[self.priority]
        self.sla_calendar = policy.calendar
        running = self.cancelled is None
        response = running and self.responded is None
        resolution = running and self.resolved is None
        if not (response or resolution):
            return
        targets = compute_targets(
            desk.clocks[policy.calendar],
            response_minutes=policy.response_minutes,
            resolution_minutes=policy.resolution_minutes,
            warning_ratio=desk.config.warning_ratio,
            opened_at=_dt(self.opened),
            resolution_start=_dt(self.resolution_started) if self.resolution_started is not None else None,
            pauses=[Pause(_dt(s), _dt(e) if e is not None else None, r) for r, s, e in self.pauses],
            response_running=response,
            resolution_running=resolution,
        )
        if targets.response_due is not None and targets.response_warn is not None:
            self.resp_warn = int(targets.response_warn.due.timestamp())
            self.resp_due = int(targets.response_due.due.timestamp())
        if targets.resolution_due is not None and targets.resolution_warn is not None:
            self.res_warn = int(targets.resolution_warn.due.timestamp())
            self.res_due = int(targets.resolution_due.due.timestamp())

    def _pause(self, at: int, reason: str) -> None:
        if self.paused_at is None:
            self.paused_at = at
            self.pauses.append([reason, at, None])

    def _resume(self, at: int, restart: bool = False) -> None:
        for interval in self.pauses:
            if interval[2] is None:
                interval[2] = at
        self.paused_at = None
        if restart:
            self.resolution_started = at
        self.retarget()

    def _mark_responded(self, at: int, actor: Staff) -> None:
        if self.responded is None:
            self.responded = at
            self._audit(at, actor, "sla", "responded_at", None, self._iso(at))

    # ------------------------------------------------------------------ the moves

    def create(self, at: int, creator: Staff, group: str) -> None:
        """``create_ticket``: logged now, in ``group``, its targets from the policy of its priority."""
        self.opened = self.updated = at
        self.creator = creator
        self.group = self.first_group = group
        self.retarget()
        self._audit(at, creator, "create", "status", None, "new")
        self._audit(at, creator, "create", "priority", None, str(self.priority))
        self._audit(at, creator, "create", "group", None, group)

    def take(self, at: int, actor: Staff) -> None:
        """``assign`` without an assignee or group: the actor takes an unassigned ticket of their group."""
        if not self.is_open or self.assignee is not None or self.group not in actor.groups:
            raise IllegalMove(f"ticket {self.id}: {actor.login} cannot take it")
        self._audit(at, actor, "assign", "assignee", None, actor.login)
        self.assignee = actor
        if self.status == "new":
            self._audit(at, actor, "transition", "status", "new", "assigned")
            self.status = "assigned"
        self._mark_responded(at, actor)
        self._save(at)

    def reply(self, at: int, actor: Staff, body: str) -> None:
        """``add_entry`` public: a reply; the first one is the response."""
        number = self._entry(at, actor, "reply", body)
        self.out.entry_audits.append((len(self.out.events), number))
        self._audit(at, actor, "reply", "entry", None, None)  # the entry's id is filled in when inserted
        self._mark_responded(at, actor)
        self._save(at)

    def edit_levels(self, at: int, actor: Staff, impact: str, urgency: str) -> None:
        """``update_fields`` of impact and urgency: the priority follows, retargeted from the start."""
        if not self.is_open:
            raise IllegalMove(f"ticket {self.id}: edited while {self.status}")
        changed = False
        if impact != self.impact:
            self._audit(at, actor, "update", "impact", self.impact, impact)
            self.impact, changed = impact, True
        if urgency != self.urgency:
            self._audit(at, actor, "update", "urgency", self.urgency, urgency)
            self.urgency, changed = urgency, True
        priority = self.desk.config.priority_for(impact, urgency)
        if priority != self.priority:
            self._audit(at, actor, "update", "priority", str(self.priority), str(priority))
            self.priority = priority
            self.retarget()
            changed = True
        if changed:
            self._save(at)

    def escalate(self, at: int, actor: Staff, group: str, reason: str) -> None:
        """``escalate`` by a person: the ticket goes to another group's queue."""
        if not self.is_open or group == self.group:
            raise IllegalMove(f"ticket {self.id}: cannot escalate to {group}")
        self.move_to_group(at, actor, group, reason)
        self.version += 1

    def move_to_group(self, at: int, actor: Staff | None, group: str, reason: str) -> None:
        """``move_to_group``: unassigned and new in ``group``'s queue (a pending ticket's clocks resume)."""
        if self.paused_at is not None and self.status == "pending":
            self._resume(at)
        self._audit(at, actor, "escalate", "group", self.group, group)
        self.group = group
        if self.assignee is not None:
            self._audit(at, actor, "escalate", "assignee", self.assignee.login, None)
            self.assignee = None
        if self.status != "new":
            self._audit(at, actor, "escalate", "status", self.status, "new")
            self.status = "new"
        if self.pending_reason is not None:
            self._audit(at, actor, "escalate", "pending_reason", self.pending_reason, None)
            self.pending_reason = None
        self.escalation_count += 1
        self.reassignment_count += 1
        self._entry(at, actor, "note", f"Escalated to {group}: {reason}")
        self.updated = at

    def change_status(
        self,
        at: int,
        actor: Staff,
        to: str,
        *,
        reason: str | None = None,
        code: str | None = None,
        note: str | None = None,
    ) -> None:
        """``transition`` (and ``resolve``, ``reopen``, ``cancel``, ``close``) as ``_change_status`` does."""
        current = self.status
        if to not in TRANSITIONS.get(current, ()) or (to == "assigned" and self.assignee is None):
            raise IllegalMove(f"ticket {self.id}: {current} -> {to}")
        reopening = current == "resolved" and to == "in_progress"
        if to == "in_progress" and not reopening and self.assignee is None:
            self._audit(at, actor, "assign", "assignee", None, actor.login)
            self.assignee = actor
            self._mark_responded(at, actor)
        if to == "pending":
            self._audit(at, actor, "transition", "pending_reason", self.pending_reason, reason)
            self.pending_reason = reason
            self._pause(at, reason or "customer")
        elif current == "pending":
            self._audit(at, actor, "transition", "pending_reason", self.pending_reason, None)
            self.pending_reason = None
            self._resume(at)
        if to == "resolved":
            self._audit(at, actor, "resolve", "resolution_code", self.code, code)
            self._audit(at, actor, "resolve", "resolution_note", self.note, note)
            self._audit(at, actor, "resolve", "resolved_at", self._iso(self.resolved), self._iso(at))
            self.code, self.note, self.resolved = code, note, at
            clock = self.desk.clocks[self.desk.config.policies[self.priority].calendar]
            self.business_seconds = int(clock.elapsed_seconds(self.opened, at))
            self._mark_responded(at, actor)
            self._pause(at, "resolved")
        elif to == "cancelled":
            self._audit(at, actor, "cancel", "cancelled_at", None, self._iso(at))
            self.cancelled = at
            self._entry(at, actor, "note", f"Cancelled: {reason or ''}")
        elif to == "closed":
            self._audit(at, actor, "close", "closed_at", None, self._iso(at))
            self.closed = at
        elif reopening:
            self.reopen_count += 1
            self.res_warned = self.res_breached = None
            self.business_seconds = None
            self._audit(at, actor, "reopen", "resolved_at", self._iso(self.resolved), None)
            self._audit(at, actor, "reopen", "resolution_code", self.code, None)
            self._audit(at, actor, "reopen", "resolution_note", self.note, None)
            self.resolved = self.code = self.note = None
            restart = self.desk.restart
            if restart and self.resolution_started != at:
                old = self._iso(self.resolution_started)
                self._audit(at, actor, "reopen", "resolution_started_at", old, self._iso(at))
            self._resume(at, restart=restart)
            self._entry(at, actor, "note", f"Reopened: {reason or ''}")
        self._audit(at, actor, "transition", "status", current, to)
        self.status = to
        self.is_open = to in _OPEN
        self._save(at)

    def rate(self, at: int, actor: Staff, score: int) -> None:
        """``rate``: the requester's satisfaction with a resolved or closed ticket, recorded by ``actor``."""
        if self.status not in ("resolved", "closed"):
            raise IllegalMove(f"ticket {self.id}: rated while {self.status}")
        self.out.ratings.append((self.id, score, None, self.desk.instants.instant(at), actor.id))
        self._audit(at, actor, "rate", "rating", None, str(score))
        self._save(at)

    # ------------------------------------------------------------------ the SLA job (jobs/sla_scan.py)

    def next_flag(self) -> int | None:
        """The earliest instant a run of the SLA job would flag on this ticket as it stands (None: none)."""
        if not self.is_open:
            return None
        best: int | None = None
        if self.responded is None:
            if self.resp_breached is None:
                best = self.resp_due
            if self.resp_warned is None and (best is None or self.resp_warn < best):
                best = self.resp_warn
        if self.paused_at is None:
            if self.res_breached is None and (best is None or self.res_due < best):
                best = self.res_due
            if self.res_warned is None and (best is None or self.res_warn < best):
                best = self.res_warn
        return best

    def scan(self, now: int) -> bool:
        """A run of the SLA job at ``now``: flag what became due, in its order; return whether it escalated.

        As ``flag_due``: an open ticket, its flag not set, its clock running (the response target until the
        response, the resolution target while not paused), the instant passed (for a warning, and the due
        instant not yet). A breach marks the warning too (with the breach instant) when it was not marked.
        Each breach or warning flagged is audited as the system; the rules of sla.toml may then move the
        ticket to another group (``escalate``).
        """
        soonest = self.next_flag()
        if soonest is None or soonest > now:
            return False
        moved = False
        for target, kind in SCAN_ORDER:
            if not self.is_open:
                break
            if target == "response":
                if self.responded is not None:
                    continue
                due = self.resp_due
                instant = due if kind == "breach" else self.resp_warn
                flag = self.resp_breached if kind == "breach" else self.resp_warned
            else:
                if self.paused_at is not None:
                    continue
                due = self.res_due
                instant = due if kind == "breach" else self.res_warn
                flag = self.res_breached if kind == "breach" else self.res_warned
            if flag is not None or instant > now or (kind == "warning" and due <= now):
                continue  # a target past its due instant is a breach, never a warning
            if target == "response":
                if kind == "breach":
                    self.resp_breached = instant
                    if self.resp_warned is None:
                        self.resp_warned = instant
                else:
                    self.resp_warned = instant
            elif kind == "breach":
                self.res_breached = instant
                if self.res_warned is None:
                    self.res_warned = instant
            else:
                self.res_warned = instant
            name = f"{target}_{'breached' if kind == 'breach' else 'warned'}_at"
            self._audit(now, None, "sla", name, None, self._iso(instant))
            moved |= self._functional_escalation(now, target, kind)
        return moved

    def _functional_escalation(self, now: int, target: str, kind: str) -> bool:
        """The job's ``escalate``: the group the rules of sla.toml name (``escalation_target``) takes it."""
        desk = self.desk
        group = escalation_target(
            desk.config, kind, target, self.priority, desk.levels.get(self.group), self.service, self.group
        )
        if group is None or group not in desk.levels:
            return False
        self.move_to_group(now, None, group, f"automatic escalation on {target} {kind} (P{self.priority})")
        self.version += 1
        return True

    def close_due(self) -> int | None:
        """When the job closes this ticket, resolved ``auto_close_days`` before (None: not resolved)."""
        if self.status != "resolved" or self.resolved is None:
            return None
        return self.resolved + self.desk.auto_close

    def auto_close(self, now: int) -> None:
        """``close_resolved``: closed by the system (its resolved pause stays, as the lifecycle leaves it)."""
        if self.status != "resolved":
            raise IllegalMove(f"ticket {self.id}: closed while {self.status}")
        self.status, self.closed, self.is_open = "closed", now, False
        self._save(now)
        self._audit(now, None, "close", "status", "resolved", "closed")

    # ------------------------------------------------------------------ the stored rows

    def pause_rows(self) -> list[Row]:
        instant = self.desk.instants.instant
        return [(self.id, r, instant(s), instant(e) if e is not None else None) for r, s, e in self.pauses]
