"""Stale saves and lost races of versioned records (tickets, changes): nothing is ever silently overwritten.

A save names the version it was based on; one based on an older version is refused with :class:`StaleEdit`
naming who changed the record last and when (:func:`check_version`). Two transactions saving at the same
moment are decided by the database, which refuses the loser in one of three ways: the ORM's version check
finds the row gone to a newer version at flush (``StaleDataError``), a unique constraint finds the row the
loser meant to add already there (``IntegrityError``), or PostgreSQL gives up one side of a conflict
(serialization failure, deadlock). :func:`lost_race` is the one place that turns each of these into a
refusal the person is told: ``db.Database.session()`` asks it about whatever escapes a write session, and
:func:`flush` about the flushes a service makes itself, so a lost race reads the same on SQLite and
PostgreSQL, from the console and from the command line, and never as a traceback.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from itsm_tui.db import VersionedWrite, refuse_lost_races
from itsm_tui.models import Blackout, Change, KnowledgeArticle, KnownError, MaintenanceWindow, Problem, Ticket
from itsm_tui.services import audit
from itsm_tui.services.errors import StaleEdit

Versioned = Ticket | Change | Problem | KnownError | KnowledgeArticle | MaintenanceWindow | Blackout

# The audit trail's name for each versioned kind of record.
ENTITY_TYPES: dict[type, str] = {
    Ticket: "ticket",
    Change: "change",
    Problem: "problem",
    KnownError: "known_error",
    KnowledgeArticle: "article",
    MaintenanceWindow: "window",
    Blackout: "blackout",
}

# PostgreSQL's SQLSTATEs for a transaction it gave up so that another could go on.
_CONFLICT_STATES = {"40001": "serialization failure", "40P01": "deadlock"}
_UNIQUE_STATE = "23505"
_SQLITE_UNIQUE = ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")


class LostRace(StaleEdit):
    """Another transaction wrote the same record (or the same unique row) at the same moment and won.

    Nothing of the loser's was written. A :class:`StaleEdit`, so that a screen reloads as for any stale
    save; its own message, since the record may not have reached a newer version (a deadlock, a duplicate).
    """

    def __init__(self, ref: str | None, expected: int, current: int, who: str | None, when: datetime | None):
        super().__init__(ref or "the record", expected, current, who, when)
        what = ref or "the same record"
        race = f"{who} changed {what}" if who else f"someone else was changing {what}"
        self.args = (f"{race} at the same moment; nothing of yours was saved: reload it and try again",)


class UnknownVersion(StaleEdit):
    """A save based on a version the record never reached (a mistyped ``--expected-version``): nobody
    changed it since, there is simply no such version."""

    def __init__(self, ref: str, expected: int, current: int) -> None:
        super().__init__(ref, expected, current, None, None)
        self.args = (f"there is no version {expected} of {ref} (it is at version {current})",)


def _stale(
    session: Session, entity_type: str, record_id: int, ref: str, expected: int, current: int
) -> StaleEdit:
    if expected > current:
        return UnknownVersion(ref, expected, current)
    last = audit.last_change(session, entity_type, record_id)
    who, when = last if last else (None, None)
    return StaleEdit(ref, expected, current, who, when)


def check_version(
    session: Session, entity_type: str, record: Versioned, expected_version: int | None
) -> None:
    """Refuse a save based on another version than the record's (None: the caller did not say)."""
    if expected_version is not None and record.version != expected_version:
        ref = _ref(entity_type, record)
        raise _stale(session, entity_type, record.id, ref, expected_version, record.version)


def _ref(entity_type: str, record: Versioned) -> str:
    """How a refusal names the record: its reference, or (a window, a blackout) its kind and id."""
    return getattr(record, "ref", None) or f"{entity_type} {record.id}"


def raced(session: Session, entity_type: str, record: Versioned) -> LostRace:
    """The refusal for an action that kept finding ``record`` changed under it by others (read through
    ``session``, which is still good: the action gave up before writing)."""
    last = audit.last_change(session, entity_type, record.id)
    who, when = last if last else (None, None)
    return LostRace(_ref(entity_type, record), record.version, record.version, who, when)


def race_kind(error: BaseException) -> str | None:
    """Which way the database refused the loser of a race (None: ``error`` is no lost race)."""
    if isinstance(error, StaleDataError):
        return "stale"
    if not isinstance(error, DBAPIError):
        return None
    orig = error.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state in _CONFLICT_STATES:
        return _CONFLICT_STATES[state]
    if isinstance(error, IntegrityError) and (
        state == _UNIQUE_STATE
        or getattr(orig, "sqlite_errorname", None) in _SQLITE_UNIQUE
        or str(orig).startswith("UNIQUE constraint failed")
    ):
        return "duplicate"
    return None


def lost_race(session: Session, error: BaseException, writes: list[VersionedWrite]) -> StaleEdit | None:
    """The refusal for a transaction that lost a race, or None if ``error`` is something else.

    ``writes`` are the versioned rows the transaction was writing (``db`` notes them at each flush); the
    first names the record in the message, with who changed it last. The session is not read: it must be
    rolled back by its owner, so the winner is read through a fresh one (a reader: on SQLite a writer's
    BEGIN IMMEDIATE would wait for this very transaction).
    """
    kind = race_kind(error)
    if kind is None:
        return None
    if not writes:
        return LostRace(None, 0, 0, None, None)
    row = writes[0]
    model: type[Versioned] = row.model
    entity_type = ENTITY_TYPES.get(row.model, row.model.__name__.lower())
    current: int | None = None
    last = None
    try:
        reader = session.get_bind().execution_options(sqlite_begin="DEFERRED")
        with Session(bind=reader) as fresh:
            current = fresh.scalar(select(model.version).where(model.id == row.id))
            last = audit.last_change(fresh, entity_type, row.id)
    except DBAPIError:  # the database went away meanwhile: still the refusal, without the winner's name
        pass
    now = current if current is not None else row.version
    if now == row.version:  # nobody saved a newer version (yet): the last change is not the winner's
        return LostRace(row.ref, row.version, now, None, None)
    who, when = last if last else (None, None)
    if kind == "stale":  # as a save based on an older version is told (check_version), on both databases
        return StaleEdit(row.ref or entity_type, row.version, now, who, when)
    return LostRace(row.ref, row.version, now, who, when)


def flush(session: Session, entity_type: str, record: Versioned, expected_version: int | None) -> None:
    """Write the changes now; a concurrent save that won the race turns into :class:`StaleEdit`."""
    # Read before the flush: a failed flush expires the record.
    written = VersionedWrite(
        type(record), record.id, expected_version or record.version, _ref(entity_type, record)
    )
    try:
        session.flush()  # first, so that a lost race is caught here, where the record is known
    except (StaleDataError, DBAPIError) as error:
        refusal = lost_race(session, error, [written])
        if refusal is None:
            raise
        raise refusal from None


refuse_lost_races(lost_race)  # every write session (db.Database.session) refuses a lost race this way
