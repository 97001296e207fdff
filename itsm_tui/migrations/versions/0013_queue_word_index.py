"""The queue's filter by index in every view: 0012's whole-word table (SQLite) keeps which field each word is
in, and the tokens of the "All tickets" view have indexes of every ticket.

The queue's filter finds its words in a ticket's reference, title and requester (the "All tickets" view in
its description and entries too). A word of three characters or more is found by a trigram index: 0004's
``ticket_search`` in the open views, 0012's ``ticket_search_all`` (asked for those three fields alone) in
"Recently resolved". A shorter word, as a whole word: in the open views by ``ticket_search_words_open``
(new here: the open tickets' words, kept by triggers as 0004's table is), in Recently resolved by 0012's
``ticket_search_words``; but that was made with ``detail = none``, which cannot be asked for some fields
only: it is made again with ``detail = column`` (the same words, and in which field each is), so that the
queue asks it for the three fields and the search of every ticket still for all four. Its triggers are
0012's, which write to it by name.

PostgreSQL: the open views look their words up in two partial GIN indexes of the open tickets' reference,
title and requester (pg_trgm, and ``to_tsvector('simple', ...)`` for the short words): 0012's of every
ticket's text would find every closed ticket of the history holding the word too, and the planner rather
tests each open ticket, which grows with the desk. Recently resolved uses 0012's and keeps the tickets
whose reference, title or requester holds the words.

The tokens ``p:``, ``group:``, ``assignee:`` and ``svc:`` were served by the partial indexes of the open
tickets only; in "All tickets" (every ticket, of any age) counting them read the whole table. An index of
every ticket on each (with the id, the view's order) serves them on both databases.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "ticket_search_words"
COLUMNS = "ref, title, requester, body"
OPTIONS = "content = 'ticket_search_doc', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'"


def _remake(detail: str) -> None:
    if not _has_search_tables():
        return
    op.execute(f"DROP TABLE {TABLE}")
    op.execute(f"CREATE VIRTUAL TABLE {TABLE} USING fts5({COLUMNS}, {OPTIONS}, detail = {detail})")
    op.execute(f"INSERT INTO {TABLE} ({TABLE}) VALUES ('rebuild')")


# name -> columns: the tokens' indexes of every ticket (as models.Ticket declares them)
TOKEN_INDEXES = {
    "ix_tickets_priority": ["priority", "id"],
    "ix_tickets_group": ["group_id", "id"],
    "ix_tickets_assignee": ["assignee_id", "id"],
    "ix_tickets_service": ["service", "id"],
}


QUEUE_TEXT = "(ref || ' ' || title || ' ' || requester)"
PG_OPEN_INDEXES = {
    "ticket_search_open_trgm": f"tickets USING gin ({QUEUE_TEXT} gin_trgm_ops) WHERE is_open",
    "ticket_search_open_tsv": (
        f"tickets USING gin (to_tsvector('simple'::regconfig, {QUEUE_TEXT})) WHERE is_open"
    ),
}


# The open tickets' short words (SQLite), as 0004's ``ticket_search`` holds their trigrams: a whole word found
# in most tickets of the history ("to") would otherwise be listed from all of them for an open view.
OPEN_WORDS = "ticket_search_words_open"
OPEN_WORDS_STATEMENTS = [
    f"CREATE VIRTUAL TABLE {OPEN_WORDS} USING fts5(ref, title, requester, "
    "tokenize = 'unicode61 remove_diacritics 2', detail = none)",
    f"INSERT INTO {OPEN_WORDS} (rowid, ref, title, requester) "
    "SELECT id, ref, title, requester FROM tickets WHERE is_open = 1",
    f"""CREATE TRIGGER {OPEN_WORDS}_insert AFTER INSERT ON tickets WHEN new.is_open = 1 BEGIN
        INSERT INTO {OPEN_WORDS} (rowid, ref, title, requester)
            VALUES (new.id, new.ref, new.title, new.requester);
    END""",
    f"""CREATE TRIGGER {OPEN_WORDS}_update AFTER UPDATE OF is_open, ref, title, requester ON tickets BEGIN
        DELETE FROM {OPEN_WORDS} WHERE rowid = old.id;
        INSERT INTO {OPEN_WORDS} (rowid, ref, title, requester)
            SELECT new.id, new.ref, new.title, new.requester WHERE new.is_open = 1;
    END""",
    f"""CREATE TRIGGER {OPEN_WORDS}_delete AFTER DELETE ON tickets BEGIN
        DELETE FROM {OPEN_WORDS} WHERE rowid = old.id;
    END""",
]


def _has_search_tables() -> bool:
    """Whether 0012 made its FTS5 tables (an SQLite without the trigram tokenizer has none)."""
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return False
    found = connection.exec_driver_sql(f"SELECT 1 FROM sqlite_master WHERE name = '{TABLE}'").first()
    return found is not None


def upgrade() -> None:
    _remake("column")
    if _has_search_tables():
        for statement in OPEN_WORDS_STATEMENTS:
            op.execute(statement)
    for name, columns in TOKEN_INDEXES.items():
        op.create_index(name, "tickets", columns)
    if op.get_bind().dialect.name == "postgresql":
        for name, definition in PG_OPEN_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON {definition}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in PG_OPEN_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    for name in TOKEN_INDEXES:
        op.drop_index(name, table_name="tickets")
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {OPEN_WORDS}_{name}")
        op.execute(f"DROP TABLE IF EXISTS {OPEN_WORDS}")
    _remake("none")
