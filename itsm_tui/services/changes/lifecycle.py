"""The lifecycle of a change past its creation: submit, schedule and reschedule (blackouts block them; a move
sends an approved change back for approval), start (inside its window, or by a change manager's override),
complete, review and close; the CAB's part is in :mod:`.approvals`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Change
from itsm_tui.services import conflicts, notifications
from itsm_tui.services.access import has_permission
from itsm_tui.services.changes.approvals import send_back
from itsm_tui.services.changes.approvers import approver_notice, emergency_pool
from itsm_tui.services.changes.cab import meeting_for
from itsm_tui.services.changes.helpers import (
    _denied,
    _finish,
    _move,
    _new_window,
    _note,
    _now,
    _set,
    a_kind,
    outside_window,
)
from itsm_tui.services.changes.notices import (
    notify_conflicts,
    notify_emergency_approval,
    notify_unapprovable,
)
from itsm_tui.services.changes.permissions import begin
from itsm_tui.services.changes.reading import _planned_window, planned_of
from itsm_tui.services.changes.rules import OUTCOMES, ChangeBlocked, OutsideWindow
from itsm_tui.services.conflicts import Conflict
from itsm_tui.services.errors import ValidationError
from itsm_tui.services.users import Actor


def _apply_override(
    session: Session, change: Change, actor: Actor, reason: str | None, now: datetime
) -> None:
    reason = (reason or "").strip()
    if not reason:
        return
    if change.change_type != "emergency":
        raise ValidationError(
            "override_reason", "only an emergency change may override a blackout; move the change out of it"
        )
    if not has_permission(actor.roles, "change.manage"):
        raise _denied(
            "change.manage",
            actor,
            f"Overriding a blackout for {change.ref} needs the role change_manager.",
        )
    _set(session, change, "override_reason", reason, actor, now, action="override")


def _check_blocking(session: Session, config: DeskConfig, change: Change, doing: str) -> list[Conflict]:
    same_service = config.changes.same_service_severity
    found = conflicts.check(session, planned_of(session, change), same_service=same_service)
    blocked = conflicts.blocking(found)
    if blocked:
        raise ChangeBlocked(change.ref, doing, blocked)
    return found


def _not_in_past(change: Change, now: datetime) -> None:
    start, _ = _planned_window(change)
    if change.change_type != "emergency" and start < now:
        raise ValidationError(
            "start",
            f"{change.ref} was planned to start in the past ({start:%Y-%m-%d %H:%M} UTC); reschedule it",
        )


def submit(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    override_reason: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Submit a draft: checked for blackouts (blocked) and conflicts (notified). A standard change is
    approved by its template at once; an emergency change goes to the change managers."""
    now = _now(now)
    change = begin(session, config, actor, ref, "submit", expected_version, now)
    if change.change_type != "standard":
        missing = [
            n
            for n, v in (
                ("implementation_plan", change.implementation_plan),
                ("backout_plan", change.backout_plan),
            )
            if not v.strip()
        ]
        if missing:
            raise ValidationError(
                missing[0],
                f"{a_kind(change.change_type)} change needs an implementation plan and a back-out plan "
                f"before it is submitted",
            )
    _not_in_past(change, now)
    _apply_override(session, change, actor, override_reason, now)
    found = _check_blocking(session, config, change, "submitted")
    _move(session, change, "submitted", actor, now)
    _set(session, change, "submitted_at", now, actor, now)
    if change.change_type == "normal":  # on the agenda of the first CAB meeting past the cut-off
        _set(session, change, "cab_meeting", meeting_for(config, now), actor, now, action="cab")
    if change.change_type == "standard":
        _move(session, change, "approved", None, now, action="preapproved")
        _note(
            session,
            change,
            actor,
            now,
            "preapproved",
            "approval",
            f"pre-approved by template {change.template}",
        )
    elif change.change_type == "emergency":
        pool = emergency_pool(session, config, change)
        notify_emergency_approval(
            session,
            pool.asked,
            change.id,
            change.ref,
            change.title,
            change.requested_by_id,
            now,
            exclude=actor.id,
        )
        # An emergency must be logged even if nobody could approve it: it is, and the desk is told.
        notice = approver_notice(session, config, change, pool)
        if notice is not None:
            notify_unapprovable(session, config, change, notice, now, exclude=actor.id)
    else:
        notifications.notify(
            session,
            notifications.users_with_roles(session, ["change_manager"]),
            kind="change_approval",
            event_key=f"change_assess:{change.id}",
            entity=("change", change.id),
            message=f"{change.ref} submitted: assess it for the CAB: {change.title}",
            now=now,
            exclude=actor.id,
        )
    notify_conflicts(session, found, now)
    return _finish(session, change, expected_version, now)


def schedule(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    override_reason: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Put an approved change on the schedule (optionally in a new window); blackouts block it.

    A normal or emergency change given another window than the one it was approved for is not scheduled:
    it goes back for approval in the new one (see :func:`reschedule`)."""
    now = _now(now)
    change = begin(session, config, actor, ref, "schedule", expected_version, now)
    moving = start is not None or end is not None
    was = _move_window(session, config, change, actor, start, end, now) if moving else None
    _not_in_past(change, now)
    _apply_override(session, change, actor, override_reason, now)
    found = _check_blocking(session, config, change, "moved there" if was else "scheduled")
    if was is None or not send_back(session, config, change, actor, was, now):
        _move(session, change, "scheduled", actor, now)
    notify_conflicts(session, found, now)
    return _finish(session, change, expected_version, now)


def reschedule(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    start: datetime | None,
    end: datetime | None,
    override_reason: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Move a change not yet implementing to a new window; past the draft, blackouts block the move.

    Approval is given for a window: a normal or emergency change approved (or scheduled) for the old one
    goes back to where its approval is asked, its approvers asked again; the decisions given so far on a
    change still being decided are asked again too (:func:`.approvals.send_back`). A standard change moves
    within its template's longest duration and stays pre-approved."""
    now = _now(now)
    change = begin(session, config, actor, ref, "reschedule", expected_version, now)
    was = _move_window(session, config, change, actor, start, end, now)
    _apply_override(session, change, actor, override_reason, now)
    if change.state != "draft":
        _not_in_past(change, now)
        found = _check_blocking(session, config, change, "moved there")
        if was is not None:
            send_back(session, config, change, actor, was, now)
        notify_conflicts(session, found, now)
    return _finish(session, change, expected_version, now)


def _move_window(
    session: Session,
    config: DeskConfig,
    change: Change,
    actor: Actor,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> tuple[datetime, datetime] | None:
    """Set the change's new window (audited); the old one if it moved, None if it stays where it was."""
    was = _planned_window(change)
    begin, finish = _new_window(config, change, start, end)
    moved = _set(session, change, "planned_start", begin, actor, now, action="reschedule")
    moved = _set(session, change, "planned_end", finish, actor, now, action="reschedule") or moved
    return was if moved else None


def start_implementation(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    override_reason: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Begin implementing a scheduled change; a blackout laid over it since it was scheduled stops it.

    It begins inside its planned window (from the early start of changes.toml ``[implementation]``);
    outside it only a change manager begins it, with ``override_reason`` (audited). Inside the window no
    reason is needed, and one given is not recorded."""
    now = _now(now)
    change = begin(session, config, actor, ref, "start", expected_version, now)
    outside = outside_window(config, change, now)
    reason = (override_reason or "").strip()
    if outside is not None:
        if not reason:
            raise OutsideWindow(change.ref, outside)
        _note(session, change, actor, now, "override", "start_override", reason)
    _check_blocking(session, config, change, "started")
    _move(session, change, "implementing", actor, now)
    _set(session, change, "actual_start", now, actor, now)
    return _finish(session, change, expected_version, now)


def complete(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    outcome: str,
    note: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Record how the implementation ended: implemented, failed or backed_out."""
    now = _now(now)
    outcome = (outcome or "").strip().lower().replace("-", "_")
    if outcome not in OUTCOMES:
        raise ValidationError("outcome", f"the outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    change = begin(session, config, actor, ref, "complete", expected_version, now)
    text = (note or "").strip()
    if outcome != "implemented" and not text:
        raise ValidationError("note", f"say what happened (a {outcome.replace('_', ' ')} change is reviewed)")
    _move(session, change, outcome, actor, now)
    _set(session, change, "outcome", outcome, actor, now)
    _set(session, change, "actual_end", now, actor, now)
    if text:
        _note(session, change, actor, now, "note", "outcome_note", text)
    return _finish(session, change, expected_version, now)


def start_review(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    notes: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Begin the post-implementation review (notes may be recorded now or when closing)."""
    now = _now(now)
    change = begin(session, config, actor, ref, "review", expected_version, now)
    _move(session, change, "review", actor, now)
    text = (notes or "").strip()
    if text:
        _set(session, change, "review_notes", text, actor, now, action="review")
    return _finish(session, change, expected_version, now)


def close(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    review_notes: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Close a change: a reviewed one needs its review notes; one needing review cannot skip it."""
    now = _now(now)
    change = begin(session, config, actor, ref, "close", expected_version, now)
    text = (review_notes or "").strip()
    if text:
        if change.state not in ("review", "implemented"):
            raise ValidationError("review_notes", f"{change.ref} is {change.state}; it has no review")
        _set(session, change, "review_notes", text, actor, now, action="review")
    if change.state == "review" and not (change.review_notes or "").strip():
        raise ValidationError(
            "review_notes",
            f"record the post-implementation review of {change.ref} "
            f"(what happened, what was learnt) to close it",
        )
    _move(session, change, "closed", actor, now)
    return _finish(session, change, expected_version, now)
