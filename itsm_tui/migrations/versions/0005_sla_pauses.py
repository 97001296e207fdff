"""SLA pauses kept as intervals; the resolution target's own start.

A ticket's paused time was a sum of seconds measured on the calendar of the priority it had then, so a
priority change onto another calendar kept the old measure. Each pause is now an interval
(``ticket_pauses``), rebuilt here from the audit trail (status changes into and out of pending and resolved),
and ``paused_seconds`` goes. ``resolution_started_at`` is where a reopen that restarted it begins the target.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "ticket_pauses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_pauses_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_pauses")),
    )
    op.create_index("ix_ticket_pauses_ticket", "ticket_pauses", ["ticket_id", "started_at"], unique=False)
    op.add_column("tickets", sa.Column("resolution_started_at", sa.DateTime(), nullable=True))
    _rebuild_pauses()
    # A plain ALTER (SQLite 3.35+ and PostgreSQL): no table copy, the triggers and indexes stay.
    op.execute("ALTER TABLE tickets DROP COLUMN paused_seconds")


def _rebuild_pauses() -> None:
    """Pair each audited status change into pending / resolved with the next change out of it."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT entity_id, at, field, new_value FROM audit_events "
            "WHERE entity_type = 'ticket' AND field IN ('status', 'pending_reason') "
            "ORDER BY entity_id, at, id"
        )
    )
    reasons: dict[int, str] = {}
    table = sa.table(
        "ticket_pauses",
        sa.column("ticket_id", sa.Integer),
        sa.column("reason", sa.String),
        sa.column("started_at", sa.DateTime),
        sa.column("ended_at", sa.DateTime),
    )
    batch: list[dict[str, object]] = []
    open_pause: dict[int, dict[str, object]] = {}
    for ticket_id, at, field, new in rows:
        if field == "pending_reason":
            if new:
                reasons[ticket_id] = new
            continue
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        if new == "closed" and ticket_id in open_pause:
            continue  # closing leaves the resolved pause as it is: the resolution target stopped at resolve
        current = open_pause.pop(ticket_id, None)
        if current is not None:
            current["ended_at"] = at
            batch.append(current)
        if new in ("pending", "resolved"):
            reason = "resolved" if new == "resolved" else reasons.get(ticket_id) or "customer"
            open_pause[ticket_id] = {
                "ticket_id": ticket_id,
                "reason": reason,
                "started_at": at,
                "ended_at": None,
            }
        if len(batch) >= _BATCH:
            bind.execute(table.insert(), batch)
            batch = []
    batch.extend(open_pause.values())
    if batch:
        bind.execute(table.insert(), batch)


def downgrade() -> None:
    op.add_column(
        "tickets", sa.Column("paused_seconds", sa.Integer(), nullable=False, server_default=sa.text("0"))
    )
    op.drop_column("tickets", "resolution_started_at")
    op.drop_index("ix_ticket_pauses_ticket", table_name="ticket_pauses")
    op.drop_table("ticket_pauses")
