"""A ticket's first group; the KPI roll-up counts each sum under the group that answers for it

``tickets.first_group_id`` is the group a ticket was first assigned to (its group at creation). Existing
tickets take it from the audit trail: the old value of the first audited change of their group, else their
group now (never moved). The KPI roll-up counted every sum under the ticket's group now; it now counts
opened, response, first-contact and escalation sums under the first group and the resolution sums under the
resolving group (``services/kpi.py``), with a new sum ``first_group_resolved`` (tickets resolved, under their
first group: the base of the escalation rate). Every day it held is marked for recomputation, which the next
KPI report does.

On SQLite the column is added with ALTER TABLE, not batch mode: copying the tickets table would drop the
triggers of the search index (0004).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 20_000  # tickets per UPDATE of the backfill

FIRST_GROUP = """
UPDATE tickets SET first_group_id = COALESCE(
    (
        SELECT g.id
        FROM audit_events a
        JOIN groups g ON g.code = a.old_value
        WHERE a.entity_type = 'ticket'
          AND a.entity_id = tickets.id
          AND a.field = 'group'
          AND a.old_value IS NOT NULL
        ORDER BY a.at, a.id
        LIMIT 1
    ),
    group_id
)
WHERE id >= :low AND id < :high
"""

# Every rolled-up day is recomputed from the tickets before it is read again.
MARK_ROLLED_UP_DAYS = (
    "INSERT INTO kpi_dirty_days (day) SELECT DISTINCT day FROM kpi_daily "
    "WHERE day NOT IN (SELECT day FROM kpi_dirty_days)"
)


def _recompute_rollup() -> None:
    op.execute(MARK_ROLLED_UP_DAYS)
    op.execute("DELETE FROM kpi_daily")


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE tickets ADD COLUMN first_group_id INTEGER "
            "CONSTRAINT fk_tickets_first_group_id_groups REFERENCES groups (id)"
        )
    else:
        op.add_column("tickets", sa.Column("first_group_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_tickets_first_group_id_groups"), "tickets", "groups", ["first_group_id"], ["id"]
        )
    low, last = connection.execute(sa.text("SELECT MIN(id), MAX(id) FROM tickets")).one()
    while low is not None and low <= last:
        connection.execute(sa.text(FIRST_GROUP), {"low": low, "high": low + BATCH})
        low += BATCH

    _recompute_rollup()
    with op.batch_alter_table("kpi_daily", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("first_group_resolved", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.alter_column("first_group_resolved", server_default=None)


def downgrade() -> None:
    _recompute_rollup()
    with op.batch_alter_table("kpi_daily", schema=None) as batch_op:
        batch_op.drop_column("first_group_resolved")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE tickets DROP COLUMN first_group_id")  # keeps the search triggers
    else:
        op.drop_constraint(op.f("fk_tickets_first_group_id_groups"), "tickets", type_="foreignkey")
        op.drop_column("tickets", "first_group_id")
