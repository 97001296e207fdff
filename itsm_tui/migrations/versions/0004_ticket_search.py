"""A trigram full-text index over the open tickets' reference, title and requester (SQLite).

Typing a word in the queue's filter matches it anywhere in those fields; a LIKE '%word%' has to test every
open ticket (50-80 ms at a million tickets for a word that is rare), the trigram index finds the few that
match. Triggers keep it to the open tickets. PostgreSQL keeps using ILIKE (and the queue works without this
table where SQLite was built without FTS5).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATEMENTS = [
    # rowid is the ticket's id; only open tickets are in it.
    "CREATE VIRTUAL TABLE ticket_search USING fts5(ref, title, requester, tokenize = 'trigram')",
    "INSERT INTO ticket_search (rowid, ref, title, requester) "
    "SELECT id, ref, title, requester FROM tickets WHERE is_open = 1",
    """CREATE TRIGGER ticket_search_insert AFTER INSERT ON tickets WHEN new.is_open = 1 BEGIN
        INSERT INTO ticket_search (rowid, ref, title, requester)
            VALUES (new.id, new.ref, new.title, new.requester);
    END""",
    """CREATE TRIGGER ticket_search_update AFTER UPDATE OF is_open, ref, title, requester ON tickets BEGIN
        DELETE FROM ticket_search WHERE rowid = old.id;
        INSERT INTO ticket_search (rowid, ref, title, requester)
            SELECT new.id, new.ref, new.title, new.requester WHERE new.is_open = 1;
    END""",
    """CREATE TRIGGER ticket_search_delete AFTER DELETE ON tickets BEGIN
        DELETE FROM ticket_search WHERE rowid = old.id;
    END""",
]


def _has_trigram_fts(connection) -> bool:
    try:
        connection.exec_driver_sql("CREATE VIRTUAL TABLE temp.fts_probe USING fts5(x, tokenize = 'trigram')")
    except Exception:
        return False
    connection.exec_driver_sql("DROP TABLE temp.fts_probe")
    return True


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite" or not _has_trigram_fts(connection):
        return
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in ("ticket_search_insert", "ticket_search_update", "ticket_search_delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS ticket_search")
