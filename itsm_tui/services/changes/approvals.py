"""CAB approval: who is asked, how many must approve, the assessment that asks them and each decision."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Change, ChangeApproval
from itsm_tui.services import notifications
from itsm_tui.services.changes.approvers import approver_notice, counted, emergency_pool, normal_pool
from itsm_tui.services.changes.helpers import _finish, _move, _note, _now, _set
from itsm_tui.services.changes.notices import notify_emergency_approval, notify_unapprovable
from itsm_tui.services.changes.permissions import begin
from itsm_tui.services.changes.reading import _login_pair, _logins
from itsm_tui.services.changes.risk import normalise, record_answers, score
from itsm_tui.services.changes.rules import RISKS
from itsm_tui.services.errors import ServiceError, ValidationError
from itsm_tui.services.users import Actor


def approvers_for(session: Session, config: DeskConfig, change: Change) -> list[int]:
    """Who the CAB rule asks: CAB members assigned to the change's services (by support group and
    changes.toml), else every CAB member, else the change managers; never who raised or implements the
    change (:func:`.approvers.choose_cab`)."""
    return list(normal_pool(session, config, change).asked)


def required_approvals(config: DeskConfig, asked: int, risk: str | None = None) -> int:
    """How many of ``asked`` CAB members must approve a change of ``risk`` (all, or N of M with N capped at
    M: the rule of changes.toml ``[approval.by_risk]`` for that risk, else ``[approval]``'s)."""
    rule = config.changes.approval_rule(risk)
    if rule.rule == "all":
        return asked
    return min(rule.quorum, asked)


def approval_progress(session: Session, config: DeskConfig, change: Change) -> str:
    """Where a change's approval stands, in words: "approved", or "1 of 3 approvals; waiting for x, y"."""
    if change.state != "assessed":
        return change.state
    rows = counted(change)
    asked = len(rows)
    approved = sum(1 for a in rows if a.decision == "approved")
    names = _logins(session, [a.approver_id for a in rows if a.decision == "pending"])
    waiting = ", ".join(sorted(login for login, _ in names.values())) or "nobody"
    needed = required_approvals(config, asked, change.risk)
    return f"{approved} of {needed} approvals; waiting for {waiting}"


def assess(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    risk: str | None = None,
    answers: Mapping[str, str] | None = None,
    notes: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """A change manager assesses a submitted normal change and asks the CAB members the rule names.

    With ``answers`` (the risk questionnaire of changes.toml: question id -> answer) the answers are
    scored and kept, and the change's risk is the score's; an explicit ``risk`` other than that overrides
    it, and then ``notes`` say why. ``notes`` are kept as the assessment's notes. A change assessed that
    nobody has decided yet may be assessed again: its answers, risk and notes change, the CAB asked stays.
    """
    now = _now(now)
    change = begin(session, config, actor, ref, "assess", expected_version, now)
    again = change.state == "assessed"
    wanted = (risk or "").strip().lower() or None
    if wanted is not None and wanted not in RISKS:
        raise ValidationError("risk", f"the risk must be one of {', '.join(RISKS)}, not {wanted!r}")
    notes = (notes or "").strip() or None
    if answers is not None:
        given = normalise(config, answers)
        total, level = score(config, given)
        if wanted is not None and wanted != level and notes is None:
            raise ValidationError(
                "notes",
                f"the answers score {total}, which is {level} risk: to assess it as {wanted} risk say why "
                f"in the notes",
            )
        record_answers(session, change, given, actor, now)
        _set(session, change, "risk_score", total, actor, now, action="assess")
        wanted = wanted or level
    if wanted is not None:
        _set(session, change, "risk", wanted, actor, now, action="assess")
    if notes is not None:
        _set(session, change, "assessment_notes", notes, actor, now, action="assess")
    if again:  # assessed once, undecided: the CAB asked stays, the rule may now be another risk's
        rows = counted(change)
        needed = required_approvals(config, len(rows), change.risk)
        _note(session, change, actor, now, "assess", "approvers", f"{needed} of {len(rows)} must approve")
        return _finish(session, change, expected_version, now)
    pool = approvers_for(session, config, change)
    if not pool:
        raise ServiceError(
            f"nobody can approve {change.ref}: who raised or implements a change never approves it; give "
            f"someone else the cab_member role (itsm user role LOGIN --add cab_member)"
        )
    _move(session, change, "assessed", actor, now)
    existing = {a.approver_id for a in change.approvals}
    for user_id in pool:
        if user_id not in existing:
            change.approvals.append(ChangeApproval(approver_id=user_id, decision="pending"))
    names = _logins(session, pool)
    needed = required_approvals(config, len(pool), change.risk)
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
    emergency = change.change_type == "emergency"
    outcome = decision if emergency else _outcome(config, counted(change), change.risk)
    if outcome == "rejected":
        reasons = "; ".join(
            f"{_login_pair(session, a.approver_id)[0]}: {a.reason}"
            for a in counted(change)
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


def _outcome(config: DeskConfig, rows: list[ChangeApproval], risk: str | None = None) -> str | None:
    """A normal change's outcome from the decisions that count: approved once the rule (for its ``risk``)
    is met, rejected once the rejections put it out of reach, else None (still deciding)."""
    asked = len(rows)
    approved = sum(1 for a in rows if a.decision == "approved")
    rejected = sum(1 for a in rows if a.decision == "rejected")
    needed = required_approvals(config, asked, risk)
    return "approved" if approved >= needed else "rejected" if asked - rejected < needed else None


def send_back(
    session: Session,
    config: DeskConfig,
    change: Change,
    actor: Actor,
    was: tuple[datetime, datetime],
    now: datetime,
) -> bool:
    """A change moved from the window ``was``: the decisions given for that window no longer hold.

    An approved or scheduled change goes back to where its approval is asked (a normal change to the CAB,
    assessed; an emergency one to its approvers, submitted); a normal change still being decided keeps
    deciding, with the decisions given so far asked again. Each approver is told again, the reset is
    audited. A standard change is pre-approved for any window its template allows: nothing changes. Returns
    whether the change went back."""
    if change.change_type == "standard":
        return False
    decided = [a for a in change.approvals if a.decision != "pending"]
    back = change.state in ("approved", "scheduled")
    if not back and not decided:
        return False
    emergency = change.change_type == "emergency"
    pool = (emergency_pool if emergency else normal_pool)(session, config, change).asked
    if not emergency and not pool:
        raise ServiceError(
            f"nobody could approve {change.ref} in its new window: who raised or implements a change never "
            f"approves it; give someone else the cab_member role (itsm user role LOGIN --add cab_member)"
        )
    names = _logins(session, [*pool, *(a.approver_id for a in decided)])
    given = ", ".join(sorted(f"{names[a.approver_id][0]} ({a.decision})" for a in decided)) or "none"
    pool_logins = sorted(names[u][0] for u in pool)
    if emergency:
        for approval in list(change.approvals):  # an emergency change's rows are its decisions
            change.approvals.remove(approval)
        again = "asked again: " + (", ".join(pool_logins) or "nobody")
    else:
        keep = set(pool)
        for approval in list(change.approvals):
            if approval.approver_id in keep:
                approval.decision, approval.reason, approval.decided_at = "pending", None, None
            else:
                change.approvals.remove(approval)
        for user_id in sorted(keep - {a.approver_id for a in change.approvals}):
            change.approvals.append(ChangeApproval(approver_id=user_id, decision="pending"))
        needed = required_approvals(config, len(pool), change.risk)
        again = f"{needed} of {len(pool)} must approve again: " + ", ".join(pool_logins)
    old = f"{was[0]:%Y-%m-%d %H:%M} to {was[1]:%Y-%m-%d %H:%M} UTC"
    _note(
        session,
        change,
        actor,
        now,
        "reschedule",
        "approvals",
        f"reset (moved from {old}; given: {given}); {again}",
    )
    if back:
        _move(session, change, "submitted" if emergency else "assessed", actor, now, action="reschedule")
    start, end = change.planned_start, change.planned_end
    window = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    if emergency:
        notify_emergency_approval(
            session,
            pool,
            change.id,
            change.ref,
            f"moved to {window}: {change.title}",
            change.requested_by_id,
            now,
            exclude=actor.id,
            round_key=str(change.version),
        )
        notice = approver_notice(session, config, change)
        if notice is not None:  # its approvers left since it was approved: the desk is told, as at submit
            notify_unapprovable(session, config, change, notice, now, exclude=actor.id)
    else:
        notifications.notify(
            session,
            pool,
            kind="change_approval",
            event_key=f"change_approval:{change.id}:{change.version}",
            entity=("change", change.id),
            message=f"{change.ref} moved to {window}: it awaits your approval again ({change.risk} risk): "
            f"{change.title}",
            now=now,
            exclude=actor.id,
        )
    return back
