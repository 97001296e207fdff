"""CAB approval: who is asked, how many must approve, the assessment that asks them and each decision."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Change, ChangeApproval, Group, GroupMembership, RoleMembership, User
from itsm_tui.services import notifications
from itsm_tui.services.changes.helpers import _finish, _move, _note, _now, _set
from itsm_tui.services.changes.permissions import begin
from itsm_tui.services.changes.reading import _login_pair, _logins
from itsm_tui.services.changes.rules import RISKS
from itsm_tui.services.errors import ServiceError, ValidationError
from itsm_tui.services.users import Actor


def approvers_for(session: Session, config: DeskConfig, change: Change) -> list[int]:
    """Who the CAB rule asks: CAB members assigned to the change's services (by support group and
    changes.toml), else every CAB member, else the change managers; never who raised the change."""
    policy = config.changes
    services = {t.service for t in change.targets}
    active_cab = (
        select(User.id)
        .join(RoleMembership, RoleMembership.user_id == User.id)
        .where(
            RoleMembership.role == "cab_member",
            User.active.is_(True),
            User.id != (change.requested_by_id or 0),
        )
    )
    assigned: set[int] = set()
    if policy.assign_by_support_group:
        groups = {config.services[s].support_group for s in services if s in config.services}
        if groups:
            assigned |= set(
                session.scalars(
                    active_cab.join(GroupMembership, GroupMembership.user_id == User.id)
                    .join(Group, Group.id == GroupMembership.group_id)
                    .where(Group.code.in_(sorted(groups)))
                )
            )
    logins = sorted({login for s in services for login in policy.members.get(s, ())})
    if logins:
        assigned |= set(session.scalars(active_cab.where(User.login.in_(logins))))
    if assigned:
        return sorted(assigned)
    everyone = sorted(set(session.scalars(active_cab)))
    if everyone:
        return everyone
    return sorted(
        m for m in notifications.users_with_roles(session, ["change_manager"]) if m != change.requested_by_id
    )


def required_approvals(config: DeskConfig, asked: int) -> int:
    """How many of ``asked`` CAB members must approve (all, or N of M with N capped at M)."""
    if config.changes.rule == "all":
        return asked
    return min(config.changes.quorum, asked)


def approval_progress(session: Session, config: DeskConfig, change: Change) -> str:
    """Where a change's approval stands, in words: "approved", or "1 of 3 approvals; waiting for x, y"."""
    if change.state != "assessed":
        return change.state
    asked = len(change.approvals)
    approved = sum(1 for a in change.approvals if a.decision == "approved")
    names = _logins(session, [a.approver_id for a in change.approvals if a.decision == "pending"])
    waiting = ", ".join(sorted(login for login, _ in names.values())) or "nobody"
    return f"{approved} of {required_approvals(config, asked)} approvals; waiting for {waiting}"


def assess(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    risk: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """A change manager assesses a submitted normal change and asks the CAB members the rule names."""
    now = _now(now)
    change = begin(session, config, actor, ref, "assess", expected_version, now)
    if risk:
        risk = risk.strip().lower()
        if risk not in RISKS:
            raise ValidationError("risk", f"the risk must be one of {', '.join(RISKS)}, not {risk!r}")
        _set(session, change, "risk", risk, actor, now)
    pool = approvers_for(session, config, change)
    if not pool:
        raise ServiceError(
            f"nobody can approve {change.ref}: give someone the cab_member role "
            f"(itsm user role LOGIN --add cab_member)"
        )
    _move(session, change, "assessed", actor, now)
    existing = {a.approver_id for a in change.approvals}
    for user_id in pool:
        if user_id not in existing:
            change.approvals.append(ChangeApproval(approver_id=user_id, decision="pending"))
    names = _logins(session, pool)
    needed = required_approvals(config, len(pool))
    _note(
        session,
        change,
        actor,
        now,
        "assess",
        "approvers",
        f"{needed} of {len(pool)} must approve: " + ", ".join(names[u][0] for u in pool),
    )
    notifications.notify(
        session,
        pool,
        kind="change_approval",
        event_key=f"change_approval:{change.id}",
        entity=("change", change.id),
        message=f"{change.ref} awaits your approval ({change.risk} risk): {change.title}",
        now=now,
        exclude=actor.id,
    )
    return _finish(session, change, expected_version, now)


def approve(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    reason: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    return decide(
        session, config, actor, ref, approve=True, reason=reason, expected_version=expected_version, now=now
    )


def reject(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    reason: str | None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    return decide(
        session, config, actor, ref, approve=False, reason=reason, expected_version=expected_version, now=now
    )


def decide(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    approve: bool,
    reason: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Record one approver's decision; the change is approved once the rule is met and rejected once a
    rejection makes it unreachable (an emergency change: the change manager's decision is final)."""
    now = _now(now)
    reason = (reason or "").strip() or None
    if not approve and not reason:
        raise ValidationError("reason", "say why the change is rejected (the requester reads it)")
    action = "approve" if approve else "reject"
    change = begin(session, config, actor, ref, action, expected_version, now)
    decision = "approved" if approve else "rejected"
    mine = next((a for a in change.approvals if a.approver_id == actor.id), None)
    if mine is None:  # an emergency change: the change manager's own row
        mine = ChangeApproval(approver_id=actor.id, decision="pending")
        change.approvals.append(mine)
    mine.decision, mine.reason, mine.decided_at = decision, reason, now
    _note(
        session,
        change,
        actor,
        now,
        action,
        "approval",
        f"{decision} by {actor.login}" + (f": {reason}" if reason else ""),
    )
    outcome: str | None
    if change.change_type == "emergency":
        outcome = decision
    else:
        asked = len(change.approvals)
        approved = sum(1 for a in change.approvals if a.decision == "approved")
        rejected = sum(1 for a in change.approvals if a.decision == "rejected")
        needed = required_approvals(config, asked)
        outcome = "approved" if approved >= needed else "rejected" if asked - rejected < needed else None
    if outcome == "rejected":
        reasons = "; ".join(
            f"{_login_pair(session, a.approver_id)[0]}: {a.reason}"
            for a in change.approvals
            if a.decision == "rejected"
        )
        _set(session, change, "rejection_reason", reasons, actor, now, action="reject")
    if outcome is not None:
        _move(session, change, outcome, actor, now, action=action)
        notifications.notify(
            session,
            [u for u in (change.requested_by_id, change.implementer_id) if u is not None],
            kind="change_approval",
            event_key=f"change_{outcome}:{change.id}",
            entity=("change", change.id),
            message=f"{change.ref} {outcome}"
            + (f": {change.rejection_reason}" if outcome == "rejected" else f": {change.title}"),
            now=now,
            exclude=actor.id,
        )
    return _finish(session, change, expected_version, now)
