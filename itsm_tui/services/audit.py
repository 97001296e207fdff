"""The audit trail: every mutation of every record writes who, when, which field, old and new value.

Callers write audit rows in the same session (and so the same transaction) as the change itself, and only
through this module, so that every row is written the same way (values as text, instants in ISO form).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import insert, select
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


@dataclass(frozen=True)
class Entry:
    """One audit event to write with :func:`record_many` (the fields of :func:`record`)."""

    entity_type: str
    entity_id: int
    actor_id: int | None
    at: datetime
    action: str
    field: str | None = None
    old: Any = None
    new: Any = None


def record_many(session: Session, entries: Iterable[Entry]) -> int:
    """Write many audit events in one statement (a job auditing a batch of rows); returns how many.

    Unlike :func:`record` the rows go to the database at once rather than waiting in the session, so a
    batch of hundreds costs one round trip and no objects.
    """
    rows = [
        {
            "entity_type": entry.entity_type,
            "entity_id": entry.entity_id,
            "actor_id": entry.actor_id,
            "at": entry.at,
            "action": entry.action,
            "field": entry.field,
            "old_value": _text(entry.old),
            "new_value": _text(entry.new),
        }
        for entry in entries
    ]
    if rows:
        session.execute(insert(AuditEvent), rows)
    return len(rows)


def set_field(
    session: Session,
    record_obj: Any,
    entity_type: str,
    field: str,
    value: Any,
    actor_id: int | None,
    at: datetime,
    action: str = "update",
    names: Callable[[Any, Any], tuple[str | None, str | None]] | None = None,
) -> bool:
    """Set ``record_obj.field`` to ``value`` and audit it; nothing happens when the value is unchanged.

    With ``names``, the field holds another row's id and is audited by that row's name: as the field less its
    ``_id``, with the names ``names`` gives for the old and the new id (asked once the field is set).
    """
    old = getattr(record_obj, field)
    if old == value:
        return False
    setattr(record_obj, field, value)
    if names is None:
        record_for(session, entity_type, record_obj, actor_id, at, action, field, value, old)
    else:
        old_name, new_name = names(old, value)
        record_for(
            session,
            entity_type,
            record_obj,
            actor_id,
            at,
            action,
            field.removesuffix("_id"),
            new_name,
            old_name,
        )
    return True


def record_for(
    session: Session,
    entity_type: str,
    record_obj: Any,
    actor_id: int | None,
    at: datetime,
    action: str,
    field: str | None,
    new: Any,
    old: Any = None,
) -> AuditEvent:
    """:func:`record` one event of ``record_obj`` (a row with an ``id``), its fields given in their order."""
    return record(
        session,
        entity_type=entity_type,
        entity_id=record_obj.id,
        actor_id=actor_id,
        at=at,
        action=action,
        field=field,
        old=old,
        new=new,
    )


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


def table_rows(
    events: Iterable[tuple[str, int, int | None, datetime | str, str, str | None, Any, Any]],
) -> tuple[tuple[str, ...], list[tuple[object, ...]]]:
    """The audit table's columns and the row it stores for each event, for bulk loads through the driver.

    Each event holds the fields of :func:`record` in its order (entity type, entity id, actor id, at,
    action, field, old, new); old and new become text as :func:`record` stores them, and ``at`` is kept as
    given, already in the form the driver stores. No ORM object is made, so millions of events stay cheap.
    """
    columns = ("entity_type", "entity_id", "actor_id", "at", "action", "field", "old_value", "new_value")
    return columns, [
        (entity_type, entity_id, actor_id, at, action, field, _text(old), _text(new))
        for entity_type, entity_id, actor_id, at, action, field, old, new in events
    ]
