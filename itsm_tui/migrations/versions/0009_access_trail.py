"""The access trail: refused privileged attempts, each user's last activity, and audit rows by actor.

``access_refusals`` keeps who tried what and when it was refused (``itsm report access`` lists them);
``users.last_seen_at`` is when a user last opened a console or ran a command (dormant accounts);
``ix_audit_actor`` finds a user's newest audited change without reading the whole trail.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ALTER (a nullable column): no table copy, so the triggers and indexes of other tables stay.
    op.add_column("users", sa.Column("last_seen_at", sa.DateTime(), nullable=True))
    op.create_index("ix_audit_actor", "audit_events", ["actor_id", "at"])
    op.create_table(
        "access_refusals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("action", sa.String(80), nullable=False),
        sa.Column("permission", sa.String(40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_access_refusals_at", "access_refusals", ["at"])


def downgrade() -> None:
    op.drop_index("ix_access_refusals_at", table_name="access_refusals")
    op.drop_table("access_refusals")
    op.drop_index("ix_audit_actor", table_name="audit_events")
    op.execute("ALTER TABLE users DROP COLUMN last_seen_at")
