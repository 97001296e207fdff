"""The change reminder job: awaiting your approval, conflicts ahead, starting within the lead time and
overdue post-implementation reviews.

It runs in every console and headless (:mod:`itsm_tui.scheduler`), so each reminder has a unique event key:
however many processes run it, each person hears once. It only reads changes; what it writes, the
notifications, goes through the services.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itsm_tui.config import ChangePolicy, DeskConfig
from itsm_tui.db import Database
from itsm_tui.models import Change, ChangeApproval, utc_or_now
from itsm_tui.services import changes, conflicts, notifications


@dataclass
class ReminderResult:
    approvals: int = 0
    conflicts: int = 0
    starting: int = 0
    reviews: int = 0
    notifications: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict:
        return asdict(self)


def remind(db: Database, config: DeskConfig, now: datetime | None = None) -> ReminderResult:
    """Send every reminder due at ``now`` (default: the current instant), all in one transaction."""
    now = utc_or_now(now)
    began = time.perf_counter()
    result = ReminderResult()
    policy = config.changes
    with db.session() as session:
        managers = notifications.users_with_roles(session, ["change_manager"])
        result.approvals = _awaiting_approval(session, managers, now)
        found = conflicts.between(
            session,
            now,
            now + timedelta(days=policy.conflict_horizon_days),
            same_service=policy.same_service_severity,
        )
        result.conflicts = changes.notify_conflicts(session, found, now)
        result.starting = _starting_soon(session, policy, managers, now)
        result.reviews = _reviews_overdue(session, policy, managers, now)
    result.notifications = result.approvals + result.conflicts + result.starting + result.reviews
    result.seconds = time.perf_counter() - began
    return result


def _awaiting_approval(session: Session, managers: list[int], now: datetime) -> int:
    """CAB members asked on assessed changes, change managers on emergencies (not who raised one)."""
    sent = 0
    pending = session.execute(
        select(Change.id, Change.ref, Change.title, ChangeApproval.approver_id)
        .join(ChangeApproval, ChangeApproval.change_id == Change.id)
        .where(Change.state == "assessed", ChangeApproval.decision == "pending")
    ).all()
    for asked in pending:
        sent += notifications.notify(
            session,
            [asked.approver_id],
            kind="change_approval",
            event_key=f"change_approval:{asked.id}",
            entity=("change", asked.id),
            message=f"{asked.ref} awaits your approval: {asked.title}",
            now=now,
        )
    for emergency in session.execute(
        select(Change.id, Change.ref, Change.title, Change.requested_by_id).where(
            Change.change_type == "emergency", Change.state.in_(("submitted", "assessed"))
        )
    ):
        sent += changes.notify_emergency_approval(
            session, managers, emergency.id, emergency.ref, emergency.title, emergency.requested_by_id, now
        )
    return sent


def _starting_soon(session: Session, policy: ChangePolicy, managers: list[int], now: datetime) -> int:
    """Who implements and who raised each change starting within the lead time, once per planned start;
    the change managers too while it is approved but not scheduled yet."""
    sent = 0
    lead = timedelta(hours=policy.lead_time_hours)
    for soon in session.execute(
        select(
            Change.id,
            Change.ref,
            Change.title,
            Change.planned_start,
            Change.state,
            Change.requested_by_id,
            Change.implementer_id,
        ).where(
            Change.state.in_(("approved", "scheduled")),
            Change.planned_start > now,
            Change.planned_start <= now + lead,
        )
    ):
        start = soon.planned_start
        if start is None:  # the query's bounds leave none without a start; this tells the type checker
            continue
        hours = (start - now).total_seconds() / 3600
        text = f"{soon.ref} starts in {hours:.0f} h ({start:%Y-%m-%d %H:%M} UTC): {soon.title}"
        if soon.state == "approved":
            text += " - approved but not scheduled yet"
        people = [u for u in (soon.implementer_id, soon.requested_by_id) if u is not None]
        sent += notifications.notify(
            session,
            people + (managers if soon.state == "approved" else []),
            kind="change_starting",
            event_key=f"change_starting:{soon.id}:{start:%Y%m%dT%H%M}",
            entity=("change", soon.id),
            message=text,
            now=now,
        )
    return sent


def _reviews_overdue(session: Session, policy: ChangePolicy, managers: list[int], now: datetime) -> int:
    """The change managers and the implementer of each change whose post-implementation review is due and
    still has no notes."""
    sent = 0
    due = now - timedelta(days=policy.review_due_days)
    ended = func.coalesce(Change.actual_end, Change.planned_end)
    for overdue in session.execute(
        select(
            Change.id, Change.ref, Change.title, Change.state, Change.implementer_id, ended.label("ended")
        ).where(
            (Change.state.in_(("failed", "backed_out", "review")))
            | ((Change.state == "implemented") & (Change.change_type == "emergency")),
            (Change.review_notes.is_(None)) | (Change.review_notes == ""),
            ended <= due,
        )
    ):
        implementer = [overdue.implementer_id] if overdue.implementer_id is not None else []
        sent += notifications.notify(
            session,
            [*managers, *implementer],
            kind="change_review",
            event_key=f"change_review:{overdue.id}",
            entity=("change", overdue.id),
            message=f"Post-implementation review of {overdue.ref} ({overdue.state.replace('_', ' ')}) "
            f"is overdue: {overdue.title}",
            now=now,
        )
    return sent
