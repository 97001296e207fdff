"""A ticket's lifecycle: status changes, resolving, reopening, cancelling, closing, and the rating after."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import OPEN_STATUSES, SatisfactionRating, Ticket
from itsm_tui.services import audit, kpi, sla
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.errors import InvalidTransition, ServiceError, ValidationError
from itsm_tui.services.tickets.guards import (
    GUARDS,
    TRANSITIONS,
    Guard,
    enforce,
    guard_cancel,
    guard_rate,
    guard_reopen,
    guard_resolve,
    guard_resolve_by_problem,
    move_action,
)
from itsm_tui.services.tickets.helpers import (
    _flush,
    _guarded,
    _load,
    _mark_responded,
    _now,
    _save,
    _set,
    _touch,
    _work_note,
)
from itsm_tui.services.users import Actor

PENDING_REASONS = ("customer", "vendor", "change")


def transition(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    to_status: str,
    *,
    reason: str | None = None,
    code: str | None = None,
    note: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Move a ticket along its lifecycle; illegal moves are refused naming the allowed ones.

    ``pending`` needs a reason (customer, vendor, change); ``resolved`` needs a code and a note;
    ``cancelled`` needs a reason; ``in_progress`` from ``resolved`` is a reopen (reason required).
    Who may make the move is the guard of the action it amounts to (:func:`move_action`).
    """
    return _change_status(
        session, config, actor, ref, to_status, None, reason, code, note, expected_version, now
    )


def resolve_by_problem(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    note: str,
    code: str = "fixed",
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Resolve an open incident with its problem's permanent fix (``note``), through the lifecycle's moves:
    a ticket not yet in progress is put in progress first (its clocks, response and assignee as any such
    move), then resolved, in the caller's transaction; :func:`guard_resolve_by_problem` decides both."""
    ticket = _load(session, ref, expected_version)
    if ticket.status in ("new", "assigned"):
        _change_status(
            session,
            config,
            actor,
            ref,
            "in_progress",
            guard_resolve_by_problem,
            None,
            None,
            None,
            expected_version,
            now,
        )
        expected_version = None
    return _change_status(
        session,
        config,
        actor,
        ref,
        "resolved",
        guard_resolve_by_problem,
        None,
        code,
        note,
        expected_version,
        now,
    )


def _change_status(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    to_status: str,
    guard: Guard | None,
    reason: str | None,
    code: str | None,
    note: str | None,
    expected_version: int | None,
    now: datetime | None,
) -> Ticket:
    """Check and make a status change.

    ``guard``: the guard of the action called for (resolve, reopen, cancel), so that a refusal reads as that
    action is offered; None for a plain move, whose guard is that of the action the move amounts to, and
    which the lifecycle refuses (naming the moves there are) when the status does not allow it.
    """
    now = _now(now)
    to_status = (to_status or "").strip().lower()
    ticket = _load(session, ref, expected_version)
    current = ticket.status
    allowed = TRANSITIONS.get(current, ())
    if guard is not None:
        enforce(guard, actor, ticket)
    else:
        try:
            enforce(GUARDS[move_action(current, to_status)], actor, ticket)
        except PermissionDenied:
            raise
        except ServiceError:
            if to_status in allowed:
                raise
            # Not a move from this status: the lifecycle's refusal names the wanted one and those there are.
            raise InvalidTransition(ticket.ref, current, to_status, allowed) from None
    if to_status not in allowed:
        raise InvalidTransition(ticket.ref, current, to_status, allowed)
    reopening = current == "resolved" and to_status == "in_progress"
    code, note, reason = _transition_inputs(ticket, config, to_status, reopening, code, note, reason)

    # Everything is checked; from here on the changes are made.
    if to_status == "in_progress" and not reopening and ticket.assignee_id is None:
        _set(session, ticket, "assignee_id", actor.id, actor, now, action="assign")
        _mark_responded(session, ticket, actor, now)
    if to_status == "pending":
        _set(session, ticket, "pending_reason", reason, actor, now, action="transition")
    elif current == "pending":  # the pause ends (whatever comes next): its time moves the due instants
        _set(session, ticket, "pending_reason", None, actor, now, action="transition")
    sla.leave_status(ticket, config, current, now)
    if to_status == "resolved":
        _set(session, ticket, "resolution_code", code, actor, now, action="resolve")
        _set(session, ticket, "resolution_note", note, actor, now, action="resolve")
        _set(session, ticket, "resolved_at", now, actor, now, action="resolve")
        ticket.resolution_business_seconds = int(
            sla.policy_clock(config, ticket.priority).elapsed(ticket.opened_at, now)
        )
        _mark_responded(session, ticket, actor, now)
    elif to_status == "cancelled":
        _set(session, ticket, "cancelled_at", now, actor, now, action="cancel")
        _work_note(session, ticket, actor, now, f"Cancelled: {reason or ''}")
    elif to_status == "closed":
        _set(session, ticket, "closed_at", now, actor, now, action="close")
    elif reopening:
        ticket.reopen_count += 1  # a new resolution cycle: its warning and breach are new events
        ticket.resolution_warned_at = ticket.resolution_breached_at = None
        kpi.mark_dirty(session, ticket.resolved_at)  # the day it had been resolved loses it
        ticket.resolution_business_seconds = None
        for field in ("resolved_at", "resolution_code", "resolution_note"):
            _set(session, ticket, field, None, actor, now, action="reopen")
        if config.reopen_restarts_resolution:
            _set(session, ticket, "resolution_started_at", now, actor, now, action="reopen")
        _work_note(session, ticket, actor, now, f"Reopened: {reason or ''}")

    sla.enter_status(ticket, config, current, to_status, now, reason)
    _set(session, ticket, "status", to_status, actor, now, action="transition")
    ticket.is_open = to_status in OPEN_STATUSES
    _save(session, ticket, now, expected_version)
    return ticket


def _transition_inputs(
    ticket: Ticket,
    config: DeskConfig,
    to_status: str,
    reopening: bool,
    code: str | None,
    note: str | None,
    reason: str | None,
) -> tuple[str | None, str | None, str | None]:
    """Check what a transition needs before anything changes; return the cleaned code, note and reason."""
    reason = (reason or "").strip() or None
    if to_status == "assigned" and ticket.assignee_id is None:
        raise ValidationError("assignee", f"assign {ticket.ref} to someone first (take it or assign it)")
    if to_status == "pending":
        reason = (reason or "").lower()
        if reason not in PENDING_REASONS:
            raise ValidationError("reason", f"pending needs a reason: {', '.join(PENDING_REASONS)}")
    elif to_status == "resolved":
        code = (code or "").strip().lower()
        if code not in config.resolution_codes:
            raise ValidationError(
                "code", f"resolving needs a resolution code: {', '.join(config.resolution_codes)}"
            )
        note = (note or "").strip()
        if not note:
            raise ValidationError("note", "resolving needs a resolution note saying what was done")
    elif to_status == "cancelled" and not reason:
        raise ValidationError("reason", "cancelling needs a reason (e.g. duplicate of INC0000123)")
    elif reopening and not reason:
        raise ValidationError("reason", "reopening needs a reason (what is still wrong)")
    return code, note, reason


def resolve(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    code: str,
    note: str,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    return _change_status(
        session, config, actor, ref, "resolved", guard_resolve, None, code, note, expected_version, now
    )


def reopen(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    reason: str,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    return _change_status(
        session, config, actor, ref, "in_progress", guard_reopen, reason, None, None, expected_version, now
    )


def cancel(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    reason: str,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    return _change_status(
        session, config, actor, ref, "cancelled", guard_cancel, reason, None, None, expected_version, now
    )


def close(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    return transition(session, config, actor, ref, "closed", expected_version=expected_version, now=now)


def rate(
    session: Session,
    actor: Actor,
    ref: str,
    *,
    score: int,
    comment: str | None = None,
    now: datetime | None = None,
) -> SatisfactionRating:
    """Record the requester's satisfaction (1-5) with a resolved or closed ticket."""
    now = _now(now)
    ticket = _guarded(session, actor, ref, guard_rate)
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise ValidationError("score", "the rating is a whole number from 1 (poor) to 5 (excellent)")
    rating = SatisfactionRating(
        ticket_id=ticket.id, score=score, comment=comment, rated_at=now, recorded_by_id=actor.id
    )
    session.add(rating)
    audit.record_for(session, "ticket", ticket, actor.id, now, "rate", "rating", score)
    _touch(ticket, now)
    kpi.mark_dirty(session, now)  # the rating counts on the day it was given
    _flush(session, ticket, None)
    return rating
