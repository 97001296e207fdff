"""The queue's SLA order: the due instant of the nearer running target, paused tickets after the running ones.

The queue sorted on the resolution due instant while it showed business time left of the resolution target
only, so its column did not read in order and a ticket whose response was overdue looked on track. Two
columns computed by the database give the order the column now shows: ``sla_due_at``, the due instant of
the running target nearer to breaching (the response until it is made, unless the resolution is due first;
then the resolution), and ``sla_paused``, whether the clocks stand still. Being generated, they hold for the
tickets already there (no backfill to run) and for every later write, bulk loads included.

The queue's partial indexes that ordered by ``resolution_due_at`` now order by ``(sla_paused, sla_due_at)``;
the old ``ix_tickets_open_due`` stays as ``ix_tickets_open_resolution_due`` for the counts that read the
resolution target alone (the KPI board, the queue's ``sla:`` filter); the SLA scan's index on the same column
is made anew after it, so that SQLite still prefers the scan's own on a database without statistics. Where
the planner has statistics, they are gathered for what changed.

On SQLite the columns are VIRTUAL (ALTER TABLE cannot add STORED ones; the values live in the indexes), added
with ALTER TABLE, not batch mode: copying the tickets table would drop the triggers of the search index
(0004). On PostgreSQL they are STORED (its indexes need that).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SLA_DUE = (
    "CASE WHEN responded_at IS NULL AND (resolution_due_at IS NULL OR response_due_at <= resolution_due_at) "
    "THEN response_due_at ELSE resolution_due_at END"
)
SLA_PAUSED = "paused_at IS NOT NULL"

SLA = ["sla_paused", "sla_due_at"]
COALESCED = {"service": sa.text("coalesce(service, '')"), "assignee": sa.text("coalesce(assignee_id, 0)")}

# name -> (columns before the SLA order, columns before 0008)
INDEXES = {
    "ix_tickets_open_due": ([], ["resolution_due_at"]),
    "ix_tickets_open_priority": (["priority"], ["priority", "resolution_due_at"]),
    "ix_tickets_open_group": (["group_id"], ["group_id", "resolution_due_at"]),
    "ix_tickets_open_assignee": (["assignee_id"], ["assignee_id", "resolution_due_at"]),
    "ix_tickets_open_by_status": (["status"], ["status", "resolution_due_at"]),
    "ix_tickets_open_by_service": ([COALESCED["service"]], [COALESCED["service"], "resolution_due_at"]),
    "ix_tickets_open_by_assignee": ([COALESCED["assignee"]], [COALESCED["assignee"], "resolution_due_at"]),
}


def _create_index(name: str, columns: list) -> None:
    op.create_index(
        name,
        "tickets",
        [*columns, "id"],
        unique=False,
        sqlite_where=sa.text("is_open = 1"),
        postgresql_where=sa.text("is_open"),
    )


SCAN_INDEX = "ix_tickets_sla_resolution_due"


def _recreate_scan_index() -> None:
    """The SLA scan's index made anew, after the new one on the same column: on a database without
    statistics SQLite takes the newest of two equal indexes, and the scan's own is the smaller."""
    op.drop_index(SCAN_INDEX, table_name="tickets")
    op.create_index(
        SCAN_INDEX,
        "tickets",
        ["resolution_due_at"],
        unique=False,
        sqlite_where=sa.text("is_open = 1 AND resolution_breached_at IS NULL AND paused_at IS NULL"),
        postgresql_where=sa.text("is_open AND resolution_breached_at IS NULL AND paused_at IS NULL"),
    )


def _analyze(indexes: list[str]) -> None:
    """Statistics for what changed, where the planner has statistics (a demo, a live desk): SQLite's for the
    new indexes (dropping an index dropped its own), PostgreSQL's for the new columns."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.execute("ANALYZE tickets")
        return
    if bind.execute(sa.text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")).first() is None:
        return  # never analyzed: statistics for a few indexes only would mislead the planner
    for name in indexes:
        op.execute(f"ANALYZE {name}")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Each ends its line in the table's SQL text, which SQLite keeps as written: SQLAlchemy reads a
        # generated column's expression up to the last parenthesis of its line.
        for name, type_, expression in (
            ("sla_due_at", "DATETIME", SLA_DUE),
            ("sla_paused", "BOOLEAN", SLA_PAUSED),
        ):
            op.execute(
                f"ALTER TABLE tickets ADD COLUMN {name} {type_} GENERATED ALWAYS AS ({expression})\nVIRTUAL"
            )
    else:
        op.add_column("tickets", sa.Column("sla_due_at", sa.DateTime(), sa.Computed(SLA_DUE, persisted=True)))
        op.add_column(
            "tickets", sa.Column("sla_paused", sa.Boolean(), sa.Computed(SLA_PAUSED, persisted=True))
        )
    _create_index("ix_tickets_open_resolution_due", ["resolution_due_at"])
    _recreate_scan_index()
    for name, (leading, _) in INDEXES.items():
        op.drop_index(name, table_name="tickets")
        _create_index(name, [*leading, *SLA])
    _analyze([*INDEXES, "ix_tickets_open_resolution_due", SCAN_INDEX])


def downgrade() -> None:
    for name, (_, before) in INDEXES.items():
        op.drop_index(name, table_name="tickets")
        _create_index(name, before)
    op.drop_index("ix_tickets_open_resolution_due", table_name="tickets")
    _recreate_scan_index()
    # A plain ALTER on SQLite too: no table copy, the search triggers stay.
    op.execute("ALTER TABLE tickets DROP COLUMN sla_paused")
    op.execute("ALTER TABLE tickets DROP COLUMN sla_due_at")
