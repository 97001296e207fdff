"""Stored notifications: listing, counting unread, marking read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from itsm_tui.models import Notification, utcnow


@dataclass(frozen=True)
class NotificationRow:
    id: int
    kind: str
    message: str
    entity_type: str | None
    entity_id: int | None
    created_at: datetime
    read: bool


def unread_count(session: Session, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


def list_for(
    session: Session, user_id: int, *, limit: int = 100, unread_only: bool = False
) -> list[NotificationRow]:
    """The user's newest notifications, newest first (bounded)."""
    stmt = (
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.id.desc())
        .limit(max(1, min(limit, 500)))
    )
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return [
        NotificationRow(
            n.id, n.kind, n.message, n.entity_type, n.entity_id, n.created_at, n.read_at is not None
        )
        for n in session.scalars(stmt)
    ]


def mark_read(session: Session, user_id: int, notification_id: int | None = None) -> int:
    """Mark one notification (or all of them) read; returns how many changed."""
    stmt = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if notification_id is not None:
        stmt = stmt.where(Notification.id == notification_id)
    return session.execute(stmt.values(read_at=utcnow())).rowcount or 0
