"""The migrations build the schema the models describe: an empty database migrated the way the program does
it (``Database.connect(url).upgrade()``) matches ``itsm_tui.models`` by Alembic's own comparison, on SQLite
and on PostgreSQL. Only the full-text search (SQLite's FTS5 tables ``ticket_search``, ``ticket_search_all``
and ``ticket_search_words``, kept by triggers, with the shadow tables FTS5 makes for them; PostgreSQL's GIN
indexes ``ticket_search_*``) lives outside the models."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Index, Table, create_engine, text
from sqlalchemy.engine import make_url

from itsm_tui.db import Database
from itsm_tui.models import Base

SEARCH = "ticket_search"
SHADOWS = ("data", "idx", "content", "docsize", "config")  # the tables FTS5 keeps the index in
OUTSIDE_THE_MODELS = {SEARCH, *(f"{SEARCH}_{shadow}" for shadow in SHADOWS)}
# Migration 0012's search of every ticket: FTS5 tables ticket_search_all and ticket_search_words (and their
# shadows) on SQLite, GIN indexes named ticket_search_* on PostgreSQL.
SEARCH_ALL = ("ticket_search_all", "ticket_search_words")
# SQLite's reflection cannot read an index over expressions, so Alembic skips those there (with a warning);
# the SQLite test checks that they exist, PostgreSQL compares them in full.
EXPRESSION_INDEXES = sorted(
    index.name
    for table in Base.metadata.tables.values()
    for index in table.indexes
    if not all(isinstance(expression, Column) for expression in index.expressions)
)


def _name(item) -> str:
    if isinstance(item, Table):
        return item.name
    if isinstance(item, Index):
        columns = ", ".join(str(expression) for expression in item.expressions)
        unique = "unique " if item.unique else ""
        return f"{unique}index {item.name} on {item.table.name} ({columns})"
    table = getattr(item, "table", None)
    if table is not None:  # a column or a constraint
        return f"{type(item).__name__} {table.name}.{item.name}"
    return repr(item)


def describe(difference) -> str:
    """One difference as Alembic reports it, in words: ``add_*`` is in the models only, ``remove_*`` in the
    migrated database only, ``modify_*`` differs (the database's value first)."""
    if isinstance(difference, list):  # the changes of one column
        return "\n".join(describe(change) for change in difference)
    kind = difference[0]
    if kind.startswith("modify_"):
        _, _, table, column, _, database, models = difference
        return f"{kind} {table}.{column}: migrated {database!r}, models {models!r}"
    where = "in the models only" if kind.startswith("add_") else "in the migrated database only"
    return f"{kind}: {_name(difference[-1])} ({where})"


def differences(url: str) -> list:
    def compared(item, name, type_, reflected, compare_to) -> bool:
        if type_ == "index" and name and name.startswith(SEARCH):  # PostgreSQL's search indexes (0012)
            return False
        return not (type_ == "table" and (name in OUTSIDE_THE_MODELS or name.startswith(SEARCH_ALL)))

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"compare_type": True, "compare_server_default": True, "include_object": compared},
            )
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def assert_no_differences(url: str) -> None:
    found = differences(url)
    assert not found, "the migrated schema differs from the models:\n" + "\n".join(map(describe, found))


@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_sqlite_migrations_match_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    db = Database.connect(url)
    db.upgrade()
    db.dispose()
    engine = create_engine(url)
    with engine.connect() as connection:
        names = set(connection.exec_driver_sql("SELECT name FROM sqlite_master").scalars())
    engine.dispose()
    assert EXPRESSION_INDEXES and set(EXPRESSION_INDEXES) <= names
    assert_no_differences(url)


def test_postgresql_migrations_match_the_models(pg_url):
    name = f"{make_url(pg_url).database}_schema_{uuid.uuid4().hex[:6]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    try:
        db = Database.connect(url)
        db.upgrade()
        db.dispose()
        assert_no_differences(url)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize(
    ("difference", "said"),
    [
        (("add_table", Base.metadata.tables["tickets"]), "add_table: tickets (in the models only)"),
        (
            [("modify_nullable", None, "tickets", "title", {}, True, False)],
            "modify_nullable tickets.title: migrated True, models False",
        ),
    ],
)
def test_differences_are_described_in_words(difference, said):
    assert describe(difference) == said
