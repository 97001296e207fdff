"""Who may take which action on a change, and when: one small guard per action of :data:`ACTIONS`.

A guard checks the change's state and the actor's roles and relation to it, never the inputs of the step (a
reason, an outcome, a window). Each lifecycle step enforces its action's guard before anything else, and
:func:`available_actions` asks the same guards, so what a screen offers is what the service then allows,
with the same words when it refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeAlias

from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Change
from itsm_tui.services.access import has_permission, require
from itsm_tui.services.changes.approvers import barred, decides_emergencies
from itsm_tui.services.changes.helpers import (
    _denied,
    _is_requester,
    _load,
    _now,
    _require_state,
    a_kind,
    outside_window,
)
from itsm_tui.services.changes.reading import _logins, review_required
from itsm_tui.services.changes.rules import PRE_IMPLEMENTATION
from itsm_tui.services.errors import ServiceError
from itsm_tui.services.users import Actor

# Why someone may never decide a change (approvers.barred), as said to them.
YOU = {
    "raised it": "raised",
    "implements it": "implement",
    "raised and implements it": "raised and implement",
}

# Raises (PermissionDenied, InvalidTransition or another ServiceError) unless the actor may take the action.
Guard: TypeAlias = Callable[[Session, DeskConfig, Actor, Change, datetime], None]


def _is_manager(actor: Actor) -> bool:
    return has_permission(actor.roles, "change.manage")


def guard_create(actor: Actor) -> None:
    """Raising a change (no change to look at yet): ``create_change`` enforces it, and a screen offers the
    new-change form only to whom it lets through (:func:`create_refusal`)."""
    require(actor.roles, "change.create")


def create_refusal(actor: Actor) -> str | None:
    """Why ``actor`` may not raise a change (None: they may), as :func:`guard_create` refuses."""
    try:
        guard_create(actor)
    except ServiceError as exc:
        return str(exc)
    return None


def guard_submit(session: Session, config: DeskConfig, actor: Actor, change: Change, now: datetime) -> None:
    """Who raised a draft, or a change manager, submits it."""
    _require_state(change, "submitted", "draft")
    require(actor.roles, "change.create")
    if not (_is_manager(actor) or _is_requester(actor, change)):
        raise _denied(
            "change.manage", actor, f"Only who raised {change.ref} or a change_manager may submit it."
        )


# Before approval a change is still being decided on, and may be edited or withdrawn.
NOT_YET_APPROVED = ("draft", "submitted", "assessed")


def guard_edit(session: Session, config: DeskConfig, actor: Actor, change: Change, now: datetime) -> None:
    """Who raised a change edits it while it is a draft or submitted, a change manager until it is
    approved; an approved change is moved (reschedule) or cancelled, never edited. (What a standard change
    may change is its template's: an input of the step.)"""
    if change.state in ("approved", "scheduled"):
        raise ServiceError(
            f"{change.ref} is {change.state}: an approved change is not edited; move it to another window "
            f"(reschedule) or cancel it"
        )
    if change.state not in NOT_YET_APPROVED:
        raise ServiceError(
            f"{change.ref} is {change.state}; only a change not yet approved (draft, submitted or assessed) "
            f"is edited"
        )
    if _is_manager(actor):
        return
    if not _is_requester(actor, change):
        raise _denied(
            "change.manage", actor, f"Only who raised {change.ref} or a change_manager may edit it."
        )
    require(actor.roles, "change.create")
    if change.state not in ("draft", "submitted"):
        raise _denied(
            "change.manage",
            actor,
            f"You may not edit {change.ref} ({change.state}): the CAB is deciding it; a change_manager may "
            f"(who raised a change edits it while it is a draft or submitted).",
        )


def guard_withdraw(session: Session, config: DeskConfig, actor: Actor, change: Change, now: datetime) -> None:
    """Who raised a change withdraws it before it is approved (a change manager cancels one instead)."""
    if change.state in ("approved", "scheduled"):
        raise ServiceError(
            f"{change.ref} is {change.state}: an approved change is no longer withdrawn; a change_manager "
            f"may cancel it"
        )
    _require_state(change, "withdrawn", *NOT_YET_APPROVED)
    if not _is_requester(actor, change):
        raise _denied(
            "change.create",
            actor,
            f"Only who raised {change.ref} may withdraw it (a change_manager may cancel it).",
        )
    require(actor.roles, "change.create")


def guard_cancel(session: Session, config: DeskConfig, actor: Actor, change: Change, now: datetime) -> None:
    """A change manager cancels a change not yet implementing (with a reason, an input of the step)."""
    _require_state(change, "cancelled", *PRE_IMPLEMENTATION)
    if not _is_manager(actor):
        own = ""
        if _is_requester(actor, change):
            own = " (who raised a change may withdraw it until it is approved)"
        raise _denied(
            "change.manage", actor, f"You may not cancel {change.ref}: it needs the role change_manager{own}."
        )


def guard_assess(session: Session, config: DeskConfig, actor: Actor, change: Change, now: datetime) -> None:
    """A change manager assesses a submitted normal change (and assesses it again while nobody has decided
    it yet); the other types skip the CAB."""
    _require_state(change, "assessed", "submitted", "assessed")
    if change.change_type != "normal":
        raise ServiceError(
            f"{change.ref} is {a_kind(change.change_type)} change: "
            + (
                "it was approved by its template"
                if change.change_type == "standard"
                else "a change manager approves it directly, without CAB assessment"
            )
        )
    require(actor.roles, "change.manage", action=f"assess {change.ref}")
    decided = [a for a in change.approvals if a.decision != "pending"]
    if change.state == "assessed" and decided:
        names = _logins(session, [a.approver_id for a in decided])
        given = ", ".join(sorted(f"{names.get(a.approver_id, ('?', '?'))[0]} {a.decision}" for a in decided))
        raise ServiceError(f"{change.ref} is being decided ({given}): its assessment can no longer change")


def _four_eyes(permission: str, actor: Actor, change: Change, wanted: str, who_else: str) -> None:
    """Who raised or implements a change never decides it, whatever the configuration says."""
    why = barred(change).get(actor.id)
    if why is not None:
        you = YOU[why]
        verb = "approve" if wanted == "approved" else "reject"
        raise _denied(permission, actor, f"You {you} {change.ref}: someone else must {verb} it ({who_else}).")


def _guard_decision(session: Session, config: DeskConfig, actor: Actor, change: Change, wanted: str) -> None:
    """Approving and rejecting share their rule: a change manager or emergency CAB member decides an
    emergency change; a CAB member asked at assessment, who has not decided yet, a normal one; never who
    raised or implements the change."""
    if change.change_type == "standard":
        raise ServiceError(f"{change.ref} is a standard change, pre-approved by template {change.template}")
    if change.change_type == "emergency":
        _require_state(change, wanted, "submitted", "assessed")
        if not decides_emergencies(config, actor):
            raise _denied(
                "change.approve_emergency",
                actor,
                f"You may not decide emergency change {change.ref}: it needs the role change_manager or a "
                f"seat on the emergency CAB ([emergency] cab in changes.toml).",
            )
        _four_eyes(
            "change.approve_emergency", actor, change, wanted, "another change_manager or the emergency CAB"
        )
        return
    if change.state == "submitted":
        raise ServiceError(f"{change.ref} awaits assessment by a change_manager before the CAB decides")
    _require_state(change, wanted, "assessed")
    require(actor.roles, "change.approve")
    _four_eyes("change.approve", actor, change, wanted, "a CAB member asked at assessment")
    mine = next((a for a in change.approvals if a.approver_id == actor.id), None)
    if mine is None:
        names = _logins(session, [a.approver_id for a in change.approvals])
        asked = ", ".join(sorted(login for login, _ in names.values()))
        raise _denied(
            "change.approve",
            actor,
            f"You are not one of the CAB members asked to decide on {change.ref} "
            f"(asked: {asked or 'nobody'}).",
        )
    if mine.decision != "pending":
        raise ServiceError(f"you already {mine.decision} {change.ref}")


def guard_approve(session: Session, config: DeskConfig, actor: Actor, change: Change, now: datetime) -> None:
    _guard_decision(session, config, actor, change, "approved")


def guard_reject(session: Session, config: DeskConfig, actor: Actor, change: Change, now: datetime) -> None:
    _guard_decision(session, config, actor, change, "rejected")


def guard_schedule(session: Session, config: DeskConfig, actor: Actor, change: Change, now: datetime) -> None:
    """A change manager schedules an approved change; a standard one also who raised or implements it."""
    _require_state(change, "scheduled", "approved")
    if not _is_manager(actor) and not (
        change.change_type == "standard"
        and has_permission(actor.roles, "change.create")
        and actor.id in (change.requested_by_id, change.implementer_id)
    ):
        raise _denied(
            "change.manage",
            actor,
            f"You may not schedule {change.ref}: it needs the role change_manager "
            f"(a standard change may also be scheduled by who raised or implements it).",
        )


def guard_reschedule(
    session: Session, config: DeskConfig, actor: Actor, change: Change, now: datetime
) -> None:
    """A change manager moves any change not yet implementing; who raised or implements one moves it while
    it is a draft or submitted (a standard change also once approved or scheduled)."""
    if change.state not in PRE_IMPLEMENTATION:
        raise ServiceError(
            f"{change.ref} is {change.state}; only a change not yet implementing can be rescheduled"
        )
    if _is_manager(actor):
        return
    require(actor.roles, "change.create")
    own = actor.id in (change.requested_by_id, change.implementer_id)
    if not own or not (
        change.state in ("draft", "submitted")
        or (change.change_type == "standard" and change.state in ("approved", "scheduled"))
    ):
        raise _denied(
            "change.manage",
            actor,
            f"You may not reschedule {change.ref} ({change.state}): it needs the role change_manager "
            f"(who raised a change may move it while it is a draft or submitted).",
        )


def _guard_implementer(actor: Actor, change: Change, doing: str) -> None:
    if not (_is_manager(actor) or change.implementer_id == actor.id):
        raise _denied(
            "change.manage",
            actor,
            f"Only the implementer of {change.ref} or a change_manager may {doing} it.",
        )


def guard_start(session: Session, config: DeskConfig, actor: Actor, change: Change, now: datetime) -> None:
    """Its implementer, or a change manager, starts a scheduled change inside its planned window (from the
    early start of changes.toml); outside it only a change manager, who says why (an input of the step)."""
    _require_state(change, "implementing", "scheduled")
    _guard_implementer(actor, change, "start")
    outside = outside_window(config, change, now)
    if outside is not None and not _is_manager(actor):
        raise _denied(
            "change.manage", actor, f"{outside}; a change_manager may start it with an override reason."
        )


def guard_complete(session: Session, config: DeskConfig, actor: Actor, change: Change, now: datetime) -> None:
    """Its implementer, or a change manager, records how the implementation ended."""
    _require_state(change, "implemented", "implementing")
    _guard_implementer(actor, change, "record the outcome of")


def guard_review(session: Session, config: DeskConfig, actor: Actor, change: Change, now: datetime) -> None:
    """A change manager begins the post-implementation review of a finished change."""
    _require_state(change, "review", "implemented", "failed", "backed_out")
    require(actor.roles, "change.manage", action=f"review {change.ref}")


def guard_close(session: Session, config: DeskConfig, actor: Actor, change: Change, now: datetime) -> None:
    """A change manager closes a finished or rejected change; one needing review cannot skip it."""
    _require_state(change, "closed", "implemented", "failed", "backed_out", "review", "rejected")
    require(actor.roles, "change.manage", action=f"close {change.ref}")
    if change.state in ("implemented", "failed", "backed_out") and review_required(change):
        why = (
            f"it {change.outcome.replace('_', ' ')}"
            if change.outcome in ("failed", "backed_out")
            else "an emergency change"
        )
        raise ServiceError(
            f"{change.ref} needs a post-implementation review before it closes ({why}): "
            f"move it to review and record the review notes"
        )


# One guard per action of ACTIONS, in its order (available_actions answers in this order).
GUARDS: dict[str, Guard] = {
    "submit": guard_submit,
    "edit": guard_edit,
    "withdraw": guard_withdraw,
    "assess": guard_assess,
    "approve": guard_approve,
    "reject": guard_reject,
    "schedule": guard_schedule,
    "reschedule": guard_reschedule,
    "cancel": guard_cancel,
    "start": guard_start,
    "complete": guard_complete,
    "review": guard_review,
    "close": guard_close,
}


def enforce(
    session: Session, config: DeskConfig, actor: Actor, change: Change, action: str, now: datetime
) -> None:
    """Raise unless ``actor`` may do ``action`` on ``change`` now (state and permission, not the inputs)."""
    guard = GUARDS.get(action)
    if guard is None:
        raise ValueError(f"unknown change action {action!r}")
    guard(session, config, actor, change, now)


def begin(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    action: str,
    expected_version: int | None,
    now: datetime,
) -> Change:
    """The change a lifecycle step works on: loaded (row-locked, refused if stale), then refused unless
    ``actor`` may take ``action`` on it now, before any input of the step is looked at."""
    change = _load(session, ref, expected_version)
    enforce(session, config, actor, change, action, now)
    return change


def available_actions(
    session: Session, config: DeskConfig, actor: Actor, change: Change, now: datetime | None = None
) -> dict[str, str | None]:
    """For each action, None if ``actor`` may take it now, else the reason why not."""
    now = _now(now)
    result: dict[str, str | None] = {}
    for action, guard in GUARDS.items():
        try:
            guard(session, config, actor, change, now)
        except ServiceError as exc:
            result[action] = str(exc)
        else:
            result[action] = None
    return result
