"""The database around the demo: refusing to overwrite data, wiping it, and the finishing touches.

Everything but the support groups is wiped (they come from catalog.toml and the records point at them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime

from sqlalchemy import Connection, func, insert, select, text
from sqlalchemy.engine.interfaces import DBAPIConnection

from itsm_tui.config import DeskConfig
from itsm_tui.db import Database
from itsm_tui.models import Base, Group, Ticket
from itsm_tui.services.errors import ServiceError


class DemoRefused(ServiceError):
    """The database has data and --force was not given."""


def record_counts(conn: Connection) -> tuple[int, int]:
    """How many tickets and users the database holds."""
    tickets = conn.execute(select(func.count()).select_from(Ticket)).scalar() or 0
    users = conn.exec_driver_sql("SELECT count(*) FROM users").scalar() or 0
    return tickets, users


def is_empty(db: Database) -> bool:
    """Whether the database holds no tickets and no users."""
    with db.engine.connect() as conn:
        return record_counts(conn) == (0, 0)


def anchor_instant(anchor: datetime | date | None) -> datetime:
    """The instant the history ends: now to the minute, the given instant, or noon UTC of the given day."""
    if anchor is None:
        return datetime.now(UTC).replace(second=0, microsecond=0)
    if isinstance(anchor, datetime):
        return anchor.astimezone(UTC)
    return datetime(anchor.year, anchor.month, anchor.day, 12, tzinfo=UTC)


def wipe(conn: Connection) -> None:
    """Delete every record but the support groups, children first."""
    for table in reversed(Base.metadata.sorted_tables):
        if table.name != "groups":
            conn.execute(table.delete())


def restore_groups(conn: Connection, config: DeskConfig) -> None:
    """Add the configured support groups the database lacks."""
    existing = {row.code for row in conn.execute(select(Group.code))}
    for code, group in config.groups.items():
        if code not in existing:
            conn.execute(insert(Group).values(code=code, name=group.name, level=group.level))


def reset_sequences(conn: Connection) -> None:
    """PostgreSQL: move each id sequence past the ids the bulk inserts gave explicitly."""
    for table in Base.metadata.sorted_tables:
        if "id" in table.c and table.c.id.autoincrement is not False and table.c.id.primary_key:
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
            )


def driver(conn: Connection) -> DBAPIConnection:
    """The driver's connection under ``conn``, for statements that must run outside any transaction."""
    raw = conn.connection.dbapi_connection
    if raw is None:  # only once the connection was invalidated
        raise RuntimeError("the database connection was lost during the demo build")
    return raw


@contextlib.contextmanager
def unsynchronised(conn: Connection) -> Iterator[None]:
    """On SQLite, no waiting for the disk during the bulk load: durability is only needed at its commit."""
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        driver(conn).execute("PRAGMA synchronous=OFF")
    try:
        yield
    finally:
        if sqlite:
            driver(conn).execute("PRAGMA synchronous=NORMAL")


_INDEXES = {
    "sqlite": "SELECT name, sql FROM sqlite_master "
    "WHERE type = 'index' AND tbl_name = :table AND sql IS NOT NULL ORDER BY name",
    "postgresql": "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :table "
    "AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY indexname",
}
BULK_TABLES = ("tickets", "audit_events", "ticket_entries", "ticket_pauses", "satisfaction_ratings")
"""The tables the ticket chunks fill: their indexes are built once after the load."""


@contextlib.contextmanager
def indexes_after(conn: Connection, tables: tuple[str, ...] = BULK_TABLES) -> Iterator[None]:
    """Drop the full secondary indexes of ``tables`` for the bulk load and build them again after it (one
    sort each, instead of millions of tree inserts); the very definitions of the migrated schema are kept and
    replayed. Partial indexes (those of the open tickets: a small share of the rows) stay, as do the primary
    keys and unique constraints: building one costs a scan of the whole table, keeping it costs little."""
    query = _INDEXES.get(conn.dialect.name)
    definitions: list[str] = []
    if query is not None:
        for table in tables:
            for name, definition in conn.execute(text(query), {"table": table}).tuples().all():
                if " WHERE " in definition.upper():
                    continue
                conn.exec_driver_sql(f"DROP INDEX {name}")
                definitions.append(definition)
    yield
    for definition in definitions:
        conn.exec_driver_sql(definition)


def analyze(db: Database) -> None:
    """Refresh the planner's statistics after the load (and on SQLite fold the write-ahead log back)."""
    if db.backend == "sqlite":
        with db.engine.connect() as conn:
            raw = driver(conn)  # outside any transaction, as these need
            raw.execute("ANALYZE")
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
