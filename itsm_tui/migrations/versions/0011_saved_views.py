"""Views of one's own: a user's named filter and sort over a built-in view, on a key of the queue, optionally
shared with a group.

``saved_views`` holds them; a name and a key are each unique per owner (the two unique constraints also
serve "my views"), ``ix_saved_views_shared`` finds the views shared with a person's groups.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "saved_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=1), nullable=False),
        sa.Column("base_view", sa.String(length=16), nullable=False),
        sa.Column("filter_text", sa.Text(), nullable=False),
        sa.Column("sort", sa.String(length=16), nullable=False),
        sa.Column("descending", sa.Boolean(), nullable=False),
        sa.Column("shared_group_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_saved_views_owner_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["shared_group_id"],
            ["groups.id"],
            name=op.f("fk_saved_views_shared_group_id_groups"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_views")),
        sa.UniqueConstraint("owner_id", "name", name="uq_saved_views_name"),
        sa.UniqueConstraint("owner_id", "key", name="uq_saved_views_key"),
    )
    op.create_index("ix_saved_views_shared", "saved_views", ["shared_group_id"])


def downgrade() -> None:
    op.drop_index("ix_saved_views_shared", table_name="saved_views")
    op.drop_table("saved_views")
