"""When a ticket was announced as a major incident.

``major_announced_at`` is set once, by the conditional update that decides which process announces
(services/tickets/major.py). Tickets already in the database stay unannounced: nobody was told of them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ALTER (a nullable column): no table copy, the triggers and indexes stay.
    op.add_column("tickets", sa.Column("major_announced_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE tickets DROP COLUMN major_announced_at")
