"""The database around the demo: what it holds, refusing to overwrite it, wiping it, marking what the demo
made, and the finishing touches.

Everything but the support groups is wiped (they come from catalog.toml and the records point at them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Connection, delete, insert, inspect, select, text
from sqlalchemy.engine.interfaces import DBAPIConnection

from itsm_tui.config import DeskConfig
from itsm_tui.db import Database
from itsm_tui.models import Base, Counter, Group
from itsm_tui.services.errors import ServiceError


class DemoRefused(ServiceError):
    """The database holds records, and the demo was not told to replace them (or they are a live desk's)."""


SUMMARY_TABLES = ("tickets", "changes", "users", "audit_events")
"""What a replacement names: how many tickets, changes, users and audit rows it deletes."""

DEMO_MARKS = {
    "users": "demo.usr",
    "tickets": "demo.tkt",
    "changes": "demo.chg",
    "problems": "demo.prb",
    "known_errors": "demo.ke",
    "knowledge_articles": "demo.kb",
    "maintenance_windows": "demo.mw",
    "blackouts": "demo.bo",
}
"""The records people make, each with the row of ``counters`` in which the demo keeps the highest id it
made: a row above it was made after the demo (ids only grow), and a database without these rows was never
built by the demo."""

_WORDS = {"audit_events": "audit row", "knowledge_articles": "knowledge article"}


def _words(counts: dict[str, int]) -> str:
    """``{"tickets": 3, "users": 1}`` as "3 tickets and 1 user" (record kinds as people call them)."""
    parts = []
    for table, n in counts.items():
        word = _WORDS.get(table, table.removesuffix("s").replace("_", " "))
        parts.append(f"{n} {word}" + ("" if n == 1 else "s"))
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)


@dataclass(frozen=True)
class Holdings:
    """What a database holds, as the demo sees it before replacing it."""

    counts: dict[str, int]  # rows of each of SUMMARY_TABLES
    made_since: dict[str, int] | None  # rows made after the demo, by table; None: not built by the demo

    @property
    def empty(self) -> bool:
        return not any(self.counts.values())

    @property
    def live(self) -> bool:
        """Whether it holds records the demo did not make (a desk at work, or one never built by the demo)."""
        return not self.empty and (self.made_since is None or any(self.made_since.values()))

    def describe(self) -> str:
        return _words(self.counts)

    def describe_live(self) -> str:
        if self.made_since is None:
            return f"{self.describe()}, not made by the demo"
        return _words({t: n for t, n in self.made_since.items() if n}) + " made after the demo was built"


def holdings(conn: Connection) -> Holdings:
    """How many tickets, changes, users and audit rows the database holds, and how many records in it the
    demo did not make. Plain SQL on tables every schema revision has, so it also reads a database that is
    not migrated yet (or has no tables at all: then it is empty)."""
    tables = set(inspect(conn).get_table_names())
    counts = {
        table: (conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() or 0) if table in tables else 0
        for table in SUMMARY_TABLES
    }
    if not any(counts.values()) or "counters" not in tables:
        return Holdings(counts, None)
    names = ", ".join(f"'{name}'" for name in DEMO_MARKS.values())
    found = conn.execute(text(f"SELECT name, value FROM counters WHERE name IN ({names})")).tuples()
    marks = dict(found.all())
    if len(marks) != len(DEMO_MARKS):
        return Holdings(counts, None)
    made_since = {
        table: conn.execute(
            text(f"SELECT count(*) FROM {table} WHERE id > :mark"), {"mark": marks[name]}
        ).scalar()
        or 0
        for table, name in DEMO_MARKS.items()
    }
    return Holdings(counts, made_since)


def mark_demo(conn: Connection) -> None:
    """Keep, in ``counters``, the highest id of each record kind the demo made (see :data:`DEMO_MARKS`)."""
    rows = [
        {"name": name, "value": conn.exec_driver_sql(f"SELECT COALESCE(MAX(id), 0) FROM {table}").scalar()}
        for table, name in DEMO_MARKS.items()
    ]
    conn.execute(delete(Counter).where(Counter.name.in_(DEMO_MARKS.values())))
    conn.execute(insert(Counter), rows)


def is_empty(db: Database) -> bool:
    """Whether the database holds no tickets, changes, users or audit rows."""
    with db.engine.connect() as conn:
        return holdings(conn).empty


def anchor_instant(anchor: datetime | date | None) -> datetime:
    """The instant the history ends: now to the minute, the given instant, or noon UTC of the given day."""
    if anchor is None:
        return datetime.now(UTC).replace(second=0, microsecond=0)
    if isinstance(anchor, datetime):
        return anchor.astimezone(UTC)
    return datetime(anchor.year, anchor.month, anchor.day, 12, tzinfo=UTC)


def wipe(conn: Connection) -> bool:
    """Delete every record but the support groups, children first; whether the tables were truncated.

    PostgreSQL truncates them in one statement (in the transaction, so undone with it), the id sequences
    starting again at 1, so that a rebuilt demo has the ids of a new one; its tables may then be loaded
    with ``COPY ... FREEZE`` (rows written as already visible to everyone, which spares the index builds
    and the first reads after the load from marking each row).
    """
    tables = [table.name for table in reversed(Base.metadata.sorted_tables) if table.name != "groups"]
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
        return True
    for name in tables:
        conn.execute(Base.metadata.tables[name].delete())
    return False


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
    if definitions and conn.dialect.name == "postgresql":
        # Memory for the sorts of the index builds, for this transaction only (a GIN index of every ticket's
        # text takes minutes in the default 64 MB)
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
    for definition in definitions:
        conn.exec_driver_sql(definition)


SEARCH_TABLES = ("ticket_search_all", "ticket_search_words")
"""Migration 0012's full-text index of every ticket (SQLite): kept by triggers, built once after the load."""


@contextlib.contextmanager
def search_index_after(conn: Connection) -> Iterator[None]:
    """On SQLite, lift the triggers that keep the search of every ticket in step for the wipe and the bulk
    load (each entry written would take its ticket's whole text out of the index and put it back: ten times
    the load's own time), then build the index once from the tickets and entries, and put the very
    triggers of the migrated schema back."""
    triggers: list[tuple[str, str]] = []
    if conn.dialect.name == "sqlite":
        triggers = list(
            conn.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                    "AND name LIKE 'ticket_search_all_%' ORDER BY name"
                )
            ).tuples()
        )
        for name, _ in triggers:
            conn.exec_driver_sql(f"DROP TRIGGER {name}")
    yield
    if triggers:
        for table in SEARCH_TABLES:
            conn.exec_driver_sql(f"INSERT INTO {table} ({table}) VALUES ('rebuild')")
        for _, definition in triggers:
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
