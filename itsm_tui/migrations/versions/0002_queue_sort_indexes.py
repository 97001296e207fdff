"""Partial indexes on open tickets for every queue sort.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "id": ["id"],
    "status": ["status", "resolution_due_at", "id"],
    "title": ["title", "id"],
    "requester": ["requester", "id"],
    "service": [sa.text("coalesce(service, '')"), "resolution_due_at", "id"],
    "assignee": [sa.text("coalesce(assignee_id, 0)"), "resolution_due_at", "id"],
    "opened": ["opened_at", "id"],
    "updated": ["updated_at", "id"],
}


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for name, columns in INDEXES.items():
            batch_op.create_index(
                f"ix_tickets_open_by_{name}",
                columns,
                unique=False,
                sqlite_where=sa.text("is_open = 1"),
                postgresql_where=sa.text("is_open"),
            )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(f"ix_tickets_open_by_{name}")
