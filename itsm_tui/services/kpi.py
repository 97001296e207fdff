"""Service-desk figures. The operational snapshot counts open work through the open-ticket indexes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session

from itsm_tui.models import Ticket


@dataclass(frozen=True)
class OperationalSnapshot:
    open: int
    unassigned: int
    breached: int
    by_priority: dict[int, int]


def operational_snapshot(session: Session, now: datetime) -> OperationalSnapshot:
    """Open, unassigned and breached-now ticket counts, and open tickets per priority."""
    is_open = Ticket.is_open == true()
    by_priority = dict(
        session.execute(select(Ticket.priority, func.count()).where(is_open).group_by(Ticket.priority)).all()
    )
    unassigned = session.scalar(select(func.count()).where(is_open, Ticket.assignee_id.is_(None))) or 0
    breached = (
        session.scalar(
            select(func.count()).where(is_open, Ticket.paused_at.is_(None), Ticket.resolution_due_at < now)
        )
        or 0
    )
    return OperationalSnapshot(sum(by_priority.values()), unassigned, breached, by_priority)
