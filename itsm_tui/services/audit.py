"""The audit trail: every mutation of every record writes who, when, which field, old and new value.

Callers write audit rows in the same session (and so the same transaction) as the change itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from itsm_tui.models import AuditEvent, User


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def shown_value(value: str | None, zone: tzinfo | None = None) -> str:
    """An audited value as a person reads it: '-' for none; with ``zone``, a stored instant (kept in UTC)
    as the time in that zone, to the minute."""
    if value is None or value == "":
        return "-"
    if zone is not None and len(value) >= 16 and value[4:5] == "-" and value[10:11] == "T":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return value


def record(
    session: Session,
    *,
    entity_type: str,
    entity_id: int,
    actor_id: int | None,
    at: datetime,
    action: str,
    field: str | None = None,
    old: Any = None,
    new: Any = None,
) -> AuditEvent:
    """Add one audit event to the session."""
    event = AuditEvent(
        entity_type=entity_type,
        entity_id=entity_id,
        actor_id=actor_id,
        at=at,
        action=action,
        field=field,
        old_value=_text(old),
        new_value=_text(new),
    )
    session.add(event)
    return event


def set_field(
    session: Session,
    record_obj: Any,
    entity_type: str,
    field: str,
    value: Any,
    actor_id: int | None,
    at: datetime,
    action: str = "update",
) -> bool:
    """Set ``record_obj.field`` to ``value`` and audit it; nothing happens when the value is unchanged."""
    old = getattr(record_obj, field)
    if old == value:
        return False
    setattr(record_obj, field, value)
    record(
        session,
        entity_type=entity_type,
        entity_id=record_obj.id,
        actor_id=actor_id,
        at=at,
        action=action,
        field=field,
        old=old,
        new=value,
    )
    return True


def last_change(session: Session, entity_type: str, entity_id: int) -> tuple[str, datetime] | None:
    """Who made the newest audited change to a record, and when."""
    row = session.execute(
        select(User.login, User.name, AuditEvent.at)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    who = f"{row.name} ({row.login})" if row.login else "the system"
    return who, row.at


def history(session: Session, entity_type: str, entity_id: int, limit: int = 200) -> list[AuditEvent]:
    """The newest audit events of a record, newest first (bounded)."""
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )
