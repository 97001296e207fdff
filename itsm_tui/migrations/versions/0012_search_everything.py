"""Find anything: an index over every ticket, open or closed, of any age: its reference, title, requester,
description and the bodies of its entries (replies and internal notes).

SQLite: ``ticket_search_doc`` is a view with one row per ticket, the description and the entries' bodies
(in the order they were written) joined into ``body``. Two FTS5 tables index it as external content (they
keep the index only, no copy of the text): ``ticket_search_all`` with the trigram tokenizer (a word of three
characters or more is found anywhere, inside other words too) and ``ticket_search_words`` with unicode61
(whole words, for the shorter ones: the trigram tokenizer cannot find those; ``detail=none``, as these are
looked up one word at a time). Triggers keep both in step: before a ticket's text or one of its entries is
written, the ticket's document as it stands is taken out of the index; after, it is put back as it is now.

PostgreSQL: GIN indexes on the same text, without triggers: pg_trgm (``gin_trgm_ops``) serves ILIKE for words
of three characters or more, ``to_tsvector('simple', ...)`` whole words for the shorter ones, each on the
tickets' own text and on the entries' bodies.

The open tickets' index of 0004 (``ticket_search``: ref, title and requester) stays as the queue's filter of
the open views uses it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# ------------------------------------------------------------------------------------------------ SQLite

COLUMNS = "ref, title, requester, body"
DOC_VIEW = """CREATE VIEW ticket_search_doc AS
    SELECT t.id AS id, t.ref AS ref, t.title AS title, t.requester AS requester,
        t.description || coalesce((
            SELECT char(10) || group_concat(e.body, char(10))
            FROM (SELECT body FROM ticket_entries WHERE ticket_id = t.id ORDER BY id) AS e
        ), '') AS body
    FROM tickets AS t"""
TABLES = {
    "ticket_search_all": "tokenize = 'trigram'",
    "ticket_search_words": "tokenize = 'unicode61 remove_diacritics 2', detail = none",
}


def _take_out(ticket_id: str) -> str:
    """Statements taking a ticket's document as it stands out of both indexes (external content: the
    values indexed are given back to FTS5's delete command)."""
    return "".join(
        f"INSERT INTO {table} ({table}, rowid, {COLUMNS}) "
        f"SELECT 'delete', id, {COLUMNS} FROM ticket_search_doc WHERE id = {ticket_id};\n"
        for table in TABLES
    )


def _put_in(ticket_id: str) -> str:
    """Statements putting a ticket's document as it is now into both indexes."""
    return "".join(
        f"INSERT INTO {table} (rowid, {COLUMNS}) "
        f"SELECT id, {COLUMNS} FROM ticket_search_doc WHERE id = {ticket_id};\n"
        for table in TABLES
    )


# name -> (when, what); each trigger's body is one of the two statement groups above.
TRIGGERS = {
    "ticket_search_all_ticket_insert": ("AFTER INSERT ON tickets", _put_in("new.id")),
    "ticket_search_all_ticket_before": (
        "BEFORE UPDATE OF ref, title, requester, description ON tickets",
        _take_out("old.id"),
    ),
    "ticket_search_all_ticket_after": (
        "AFTER UPDATE OF ref, title, requester, description ON tickets",
        _put_in("new.id"),
    ),
    "ticket_search_all_ticket_delete": ("BEFORE DELETE ON tickets", _take_out("old.id")),
    "ticket_search_all_entry_before": ("BEFORE INSERT ON ticket_entries", _take_out("new.ticket_id")),
    "ticket_search_all_entry_insert": ("AFTER INSERT ON ticket_entries", _put_in("new.ticket_id")),
    "ticket_search_all_entry_edit_before": (
        "BEFORE UPDATE OF body ON ticket_entries",
        _take_out("old.ticket_id"),
    ),
    "ticket_search_all_entry_edit_after": (
        "AFTER UPDATE OF body ON ticket_entries",
        _put_in("new.ticket_id"),
    ),
    "ticket_search_all_entry_delete_before": ("BEFORE DELETE ON ticket_entries", _take_out("old.ticket_id")),
    "ticket_search_all_entry_delete_after": ("AFTER DELETE ON ticket_entries", _put_in("old.ticket_id")),
}


def _sqlite_upgrade() -> None:
    op.execute(DOC_VIEW)
    for table, options in TABLES.items():
        op.execute(
            f"CREATE VIRTUAL TABLE {table} USING fts5({COLUMNS}, "
            f"content = 'ticket_search_doc', content_rowid = 'id', {options})"
        )
        op.execute(f"INSERT INTO {table} ({table}) VALUES ('rebuild')")
    for name, (when, body) in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {when} BEGIN\n{body}END")


# -------------------------------------------------------------------------------------------- PostgreSQL

TICKET_TEXT = "(ref || ' ' || title || ' ' || requester || ' ' || description)"
PG_INDEXES = {
    "ticket_search_trgm": f"tickets USING gin ({TICKET_TEXT} gin_trgm_ops)",
    "ticket_search_tsv": f"tickets USING gin (to_tsvector('simple'::regconfig, {TICKET_TEXT}))",
    "ticket_search_entry_trgm": "ticket_entries USING gin (body gin_trgm_ops)",
    "ticket_search_entry_tsv": "ticket_entries USING gin (to_tsvector('simple'::regconfig, body))",
}


def _has_trigram_fts(connection) -> bool:
    try:
        connection.exec_driver_sql("CREATE VIRTUAL TABLE temp.fts_probe USING fts5(x, tokenize = 'trigram')")
    except Exception:
        return False
    connection.exec_driver_sql("DROP TABLE temp.fts_probe")
    return True


def upgrade() -> None:
    connection = op.get_bind()
    dialect = connection.dialect.name
    if dialect == "sqlite":
        if _has_trigram_fts(connection):  # else the search reads the tickets and entries themselves
            _sqlite_upgrade()
    elif dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, definition in PG_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON {definition}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        for table in TABLES:
            op.execute(f"DROP TABLE IF EXISTS {table}")
        op.execute("DROP VIEW IF EXISTS ticket_search_doc")
    elif dialect == "postgresql":
        for name in PG_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
