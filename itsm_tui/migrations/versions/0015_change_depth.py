"""Change management for a CAB: editing, withdrawing and cancelling changes, the risk questionnaire, the CAB
meeting a change is on, decisions recorded at a meeting, and versions of windows and blackouts.

Changes gain the risk score and the answers it came from (JSON text), the assessment's notes, the reason
of a withdrawal or cancellation, the instant it was submitted (the CAB agenda's cut-off) and the CAB meeting
whose agenda it is on (indexed: the agenda is read by meeting). A CAB decision gains the meeting it was
recorded at (indexed too). A change's targets are indexed by the change. Maintenance windows and blackouts
gain a version (an edit based on an older one is refused) and who added them.

The changes already submitted take the instant of their first move to ``submitted`` from the audit trail.

SQLite: ``changes`` is referred to by its targets and approvals, so every table gains its columns by
``ALTER TABLE ADD COLUMN`` (nullable, or with a constant default).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANGE_COLUMNS = [
    sa.Column("risk_score", sa.Integer(), nullable=True),
    sa.Column("risk_answers", sa.Text(), nullable=True),
    sa.Column("assessment_notes", sa.Text(), nullable=True),
    sa.Column("cancel_reason", sa.Text(), nullable=True),
    sa.Column("submitted_at", sa.DateTime(), nullable=True),
    sa.Column("cab_meeting", sa.DateTime(), nullable=True),
]


def upgrade() -> None:
    for column in CHANGE_COLUMNS:
        op.add_column("changes", column)
    op.create_index("ix_changes_cab", "changes", ["cab_meeting", "state"])
    op.create_index("ix_change_targets_change", "change_targets", ["change_id"])
    op.add_column("change_approvals", sa.Column("meeting", sa.DateTime(), nullable=True))
    op.create_index("ix_change_approvals_meeting", "change_approvals", ["meeting"])
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in ("maintenance_windows", "blackouts"):
        op.add_column(table, sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        name = f"fk_{table}_created_by_id_users"
        if sqlite:
            op.execute(
                f"ALTER TABLE {table} ADD COLUMN created_by_id INTEGER "
                f"CONSTRAINT {name} REFERENCES users (id)"
            )
        else:
            op.add_column(table, sa.Column("created_by_id", sa.Integer(), nullable=True))
            op.create_foreign_key(op.f(name), table, "users", ["created_by_id"], ["id"])
    op.execute(
        "UPDATE changes SET submitted_at = (SELECT min(a.at) FROM audit_events a WHERE a.entity_type = "
        "'change' AND a.entity_id = changes.id AND a.field = 'state' AND a.new_value = 'submitted') "
        "WHERE state != 'draft'"
    )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in ("blackouts", "maintenance_windows"):
        if not sqlite:
            op.drop_constraint(op.f(f"fk_{table}_created_by_id_users"), table, type_="foreignkey")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("created_by_id")
            batch_op.drop_column("version")
    op.drop_index("ix_change_approvals_meeting", table_name="change_approvals")
    with op.batch_alter_table("change_approvals", schema=None) as batch_op:
        batch_op.drop_column("meeting")
    op.drop_index("ix_change_targets_change", table_name="change_targets")
    op.drop_index("ix_changes_cab", table_name="changes")
    for column in reversed(CHANGE_COLUMNS):
        op.drop_column("changes", column.name)
