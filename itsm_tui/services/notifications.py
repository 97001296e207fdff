"""Stored notifications: writing them once per recipient and event, listing, counting unread, marking read.

A notification is written in the transaction of the event it reports. ``(user_id, event_key)`` is unique, so
however many processes report the same event, each recipient gets it once. On PostgreSQL each write also
signals ``pg_notify`` so that open consoles hear of it at commit without polling.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from itsm_tui.db import conflict_insert, rowcount
from itsm_tui.models import GroupMembership, Notification, RoleMembership, User, utcnow
from itsm_tui.text import strip_control

PG_CHANNEL = "itsm_notifications"
KINDS = (
    "assigned",
    "sla_warning",
    "sla_breach",
    "escalated",
    "major_incident",
    "change_approval",
    "change_conflict",
    "change_starting",
    "change_review",
    "problem",
    "article",
)


def notify_many(session: Session, rows: list[dict]) -> int:
    """Write notifications (dicts of Notification columns); an existing (user, event) is skipped.

    Returns how many were new. A message is kept as one line with its control characters made visible
    (``^[``): it carries people's text (a title, a name), and it is stored and shown as it was written.
    """
    if not rows:
        return 0
    rows = [{**row, "message": strip_control(row["message"], single_line=True)} for row in rows]
    stmt = conflict_insert(session, Notification).on_conflict_do_nothing(
        index_elements=["user_id", "event_key"]
    )
    inserted = session.execute(stmt.returning(Notification.user_id), rows).scalars().all()
    if inserted and session.get_bind().dialect.name == "postgresql":
        for user_id in sorted(set(inserted)):
            session.execute(
                text("SELECT pg_notify(:channel, :payload)"), {"channel": PG_CHANNEL, "payload": str(user_id)}
            )
    return len(inserted)


def notify(
    session: Session,
    user_ids: Iterable[int],
    *,
    kind: str,
    event_key: str,
    entity: tuple[str, int] | None,
    message: str,
    now: datetime | None = None,
    exclude: int | None = None,
) -> int:
    """Tell each of ``user_ids`` (but not ``exclude``, the one who did it) about one event."""
    now = now or utcnow()
    entity_type, entity_id = entity if entity else (None, None)
    rows = [
        {
            "user_id": uid,
            "kind": kind,
            "event_key": event_key,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "message": message,
            "created_at": now,
        }
        for uid in sorted(set(user_ids))
        if uid is not None and uid != exclude
    ]
    return notify_many(session, rows)


def group_leads(session: Session, group_ids: Iterable[int]) -> list[int]:
    """Users who lead any of the groups."""
    return list(
        session.scalars(
            select(GroupMembership.user_id)
            .join(User, User.id == GroupMembership.user_id)
            .where(
                GroupMembership.group_id.in_(list(group_ids)),
                GroupMembership.is_lead.is_(True),
                User.active.is_(True),
            )
            .distinct()
        )
    )


def group_members(session: Session, group_ids: Iterable[int]) -> list[int]:
    return list(
        session.scalars(
            select(GroupMembership.user_id)
            .join(User, User.id == GroupMembership.user_id)
            .where(GroupMembership.group_id.in_(list(group_ids)), User.active.is_(True))
            .distinct()
        )
    )


def users_with_roles(
    session: Session, roles: Iterable[str], group_ids: Iterable[int] | None = None
) -> list[int]:
    """Active users holding any of ``roles``; with ``group_ids``, those of the groups if there are any."""
    stmt = (
        select(User.id)
        .join(RoleMembership, RoleMembership.user_id == User.id)
        .where(RoleMembership.role.in_(list(roles)), User.active.is_(True))
        .distinct()
    )
    if group_ids:
        scoped = list(
            session.scalars(
                stmt.join(GroupMembership, GroupMembership.user_id == User.id).where(
                    GroupMembership.group_id.in_(list(group_ids))
                )
            )
        )
        if scoped:
            return scoped
    return list(session.scalars(stmt))


def newest_id(session: Session, user_id: int) -> int:
    """The id of the user's newest notification (0 if none): a cheap, indexed change check."""
    return session.scalar(select(func.max(Notification.id)).where(Notification.user_id == user_id)) or 0


def since(session: Session, user_id: int, after_id: int, limit: int = 20) -> list[NotificationRow]:
    """The user's notifications newer than ``after_id``, oldest first (bounded)."""
    stmt = (
        select(Notification)
        .where(Notification.user_id == user_id, Notification.id > after_id)
        .order_by(Notification.id)
        .limit(limit)
    )
    return [_row(n) for n in session.scalars(stmt)]


def _row(n: Notification) -> NotificationRow:
    return NotificationRow(
        n.id, n.kind, n.message, n.entity_type, n.entity_id, n.created_at, n.read_at is not None
    )


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
    return rowcount(session.execute(stmt.values(read_at=utcnow())))


# How a summary of many notifications names each kind: (one, several).
KIND_WORDS = {
    "assigned": ("assignment", "assignments"),
    "sla_warning": ("SLA warning", "SLA warnings"),
    "sla_breach": ("SLA breach", "SLA breaches"),
    "escalated": ("escalation", "escalations"),
    "major_incident": ("major incident", "major incidents"),
    "change_approval": ("approval", "approvals"),
    "change_conflict": ("change conflict", "change conflicts"),
    "change_starting": ("change starting", "changes starting"),
    "change_review": ("review due", "reviews due"),
    "problem": ("problem", "problems"),
    "article": ("article", "articles"),
}
# The most unread notifications a summary reads (the count itself is :func:`unread_count`'s).
SUMMARY_LIMIT = 1000


def unread_kinds(session: Session, user_id: int) -> dict[str, int]:
    """How many of the user's newest unread notifications (at most :data:`SUMMARY_LIMIT`) are of each kind:
    one statement along ``ix_notifications_user``."""
    newest = (
        select(Notification.kind)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .order_by(Notification.id.desc())
        .limit(SUMMARY_LIMIT)
        .subquery()
    )
    rows = session.execute(select(newest.c.kind, func.count()).group_by(newest.c.kind))
    return {kind: count for kind, count in rows.tuples()}


def summary(counts: dict[str, int], word: str = "new", total: int | None = None) -> str:
    """``7 new notifications: 3 change conflicts, 2 approvals, 2 SLA warnings`` (most first); ``total``
    when the counts are of the newest only."""
    total = max(total or 0, sum(counts.values()))
    order = {kind: number for number, kind in enumerate(KINDS)}
    parts = []
    for kind, count in sorted(counts.items(), key=lambda item: (-item[1], order.get(item[0], 99), item[0])):
        one, several = KIND_WORDS.get(kind, (kind.replace("_", " "), kind.replace("_", " ")))
        parts.append(f"{count} {one if count == 1 else several}")
    head = f"{total} {word} notification{'' if total == 1 else 's'}"
    return f"{head}: {', '.join(parts)}" if parts else head
