"""Stale saves of versioned records (tickets and changes): a save names the version it was based on, and one
based on an older version, or a concurrent save that lost the race, is refused with :class:`StaleEdit`
naming who changed the record last and when."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from itsm_tui.models import Change, Ticket
from itsm_tui.services import audit
from itsm_tui.services.errors import StaleEdit

Versioned = Ticket | Change


def _stale(
    session: Session, entity_type: str, record_id: int, ref: str, expected: int, current: int
) -> StaleEdit:
    last = audit.last_change(session, entity_type, record_id)
    who, when = last if last else (None, None)
    return StaleEdit(ref, expected, current, who, when)


def check_version(
    session: Session, entity_type: str, record: Versioned, expected_version: int | None
) -> None:
    """Refuse a save based on another version than the record's (None: the caller did not say)."""
    if expected_version is not None and record.version != expected_version:
        raise _stale(session, entity_type, record.id, record.ref, expected_version, record.version)


def flush(session: Session, entity_type: str, record: Versioned, expected_version: int | None) -> None:
    """Write the changes now; a concurrent save that won the race turns into :class:`StaleEdit`."""
    record_id, ref, loaded_version = record.id, record.ref, record.version  # expired once the flush fails
    model = type(record)
    try:
        session.flush()  # first, so that a lost race is caught here and nowhere else
    except StaleDataError:
        # This session must be rolled back by its owner; read who won the race through a fresh one
        # (a reader: on SQLite the writer's BEGIN IMMEDIATE would wait for this very transaction).
        reader = session.get_bind().execution_options(sqlite_begin="DEFERRED")
        with Session(bind=reader) as fresh:
            current = fresh.scalar(select(model.version).where(model.id == record_id)) or 0
            stale = _stale(fresh, entity_type, record_id, ref, expected_version or loaded_version, current)
        raise stale from None
