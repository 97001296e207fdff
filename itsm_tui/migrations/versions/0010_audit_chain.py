"""A tamper-evident audit trail: each record's audit events hash-chained, and a head per record.

``audit_events`` gains ``seq`` (the event's place in its record's chain: 1, 2, ...), ``prev_hash`` (the
previous link's hash; null for the first) and ``hash`` (SHA-256 of the row's canonical form, which includes
``prev_hash``), unique per (entity_type, entity_id, seq); ``audit_heads`` keeps each record's newest link
(seq and hash), which makes the removal of the newest rows visible and is the row an append locks. The
canonical form is ``itsm_tui.services.audit.canonical``; this revision keeps its own copy (a migration is
history and must not change with the program; a test checks that the two agree).

The existing rows are chained per record in the order they were written (at, id), streamed: the computed
links go to a temporary table in batches, then one UPDATE joins them in, and the columns become NOT NULL.
On SQLite that last step copies ``audit_events`` (batch mode); it has no triggers, and no other table is
copied (the tickets' search triggers of 0004 stay).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 20_000  # links written to the temporary table per statement


# ---------------------------------------------------------------- the canonical form as of this revision


def canonical_instant(value: datetime | str) -> str:
    """UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, from a datetime (naive: UTC) or SQLite's stored text."""
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " " and value[19] == ".":
            return f"{value[:10]}T{value[11:]}Z"
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def _part(value: str | None) -> str:
    return "-" if value is None else f"{len(value)}:{value}"


def link_hash(
    entity_type: str,
    entity_id: int,
    seq: int,
    actor_id: int | None,
    at: str,
    action: str,
    field: str | None,
    old: str | None,
    new: str | None,
    prev_hash: str | None,
) -> str:
    """SHA-256 (hex) of the ten fields, each as length:text or - for null, joined by newlines."""
    text = "\n".join(
        (
            _part(entity_type),
            _part(str(entity_id)),
            _part(str(seq)),
            _part(None if actor_id is None else str(actor_id)),
            _part(at),
            _part(action),
            _part(field),
            _part(old),
            _part(new),
            _part(prev_hash),
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------- the revision

FILL = sa.table(
    "audit_chain_fill",
    sa.column("id", sa.Integer),
    sa.column("seq", sa.Integer),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
)
HEADS = sa.table(
    "audit_heads",
    sa.column("entity_type", sa.String),
    sa.column("entity_id", sa.Integer),
    sa.column("seq", sa.Integer),
    sa.column("hash", sa.String),
)


def _chain_existing() -> None:
    """Chain every record's rows in (at, id) order and write each record's head."""
    bind = op.get_bind()
    bind.exec_driver_sql(
        "CREATE TEMPORARY TABLE audit_chain_fill "
        "(id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, prev_hash VARCHAR(64), hash VARCHAR(64) NOT NULL)"
    )
    rows = bind.execute(
        sa.text(
            "SELECT id, entity_type, entity_id, actor_id, at, action, field, old_value, new_value "
            "FROM audit_events ORDER BY entity_type, entity_id, at, id"
        ).execution_options(stream_results=True, yield_per=BATCH)
    )
    links: list[dict[str, object]] = []
    heads: list[dict[str, object]] = []
    key: tuple[str, int] | None = None
    seq, prev = 0, None
    for row_id, entity_type, entity_id, actor_id, at, action, field, old, new in rows:
        if (entity_type, entity_id) != key:
            if key is not None:
                heads.append({"entity_type": key[0], "entity_id": key[1], "seq": seq, "hash": prev})
            key, seq, prev = (entity_type, entity_id), 0, None
        seq += 1
        digest = link_hash(
            entity_type, entity_id, seq, actor_id, canonical_instant(at), action, field, old, new, prev
        )
        links.append({"id": row_id, "seq": seq, "prev_hash": prev, "hash": digest})
        prev = digest
        if len(links) >= BATCH:
            bind.execute(FILL.insert(), links)
            links = []
        if len(heads) >= BATCH:
            bind.execute(HEADS.insert(), heads)
            heads = []
    if key is not None:
        heads.append({"entity_type": key[0], "entity_id": key[1], "seq": seq, "hash": prev})
    if links:
        bind.execute(FILL.insert(), links)
    if heads:
        bind.execute(HEADS.insert(), heads)
    bind.exec_driver_sql(
        "UPDATE audit_events SET seq = f.seq, prev_hash = f.prev_hash, hash = f.hash "
        "FROM audit_chain_fill f WHERE audit_events.id = f.id"
    )
    bind.exec_driver_sql("DROP TABLE audit_chain_fill")


def upgrade() -> None:
    op.create_table(
        "audit_heads",
        sa.Column("entity_type", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("entity_type", "entity_id", name=op.f("pk_audit_heads")),
    )
    # Plain ALTERs (nullable columns): no table copy yet.
    op.add_column("audit_events", sa.Column("seq", sa.Integer(), nullable=True))
    op.add_column("audit_events", sa.Column("prev_hash", sa.String(length=64), nullable=True))
    op.add_column("audit_events", sa.Column("hash", sa.String(length=64), nullable=True))
    _chain_existing()
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("audit_events", schema=None) as batch_op:  # copies audit_events only
            batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
            batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
    else:
        op.alter_column("audit_events", "seq", existing_type=sa.Integer(), nullable=False)
        op.alter_column("audit_events", "hash", existing_type=sa.String(length=64), nullable=False)
    op.create_index("ix_audit_chain", "audit_events", ["entity_type", "entity_id", "seq"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_audit_chain", table_name="audit_events")
    # Plain ALTERs on SQLite too (3.35+): no table copy.
    for name in ("hash", "prev_hash", "seq"):
        op.execute(f"ALTER TABLE audit_events DROP COLUMN {name}")
    op.drop_table("audit_heads")
