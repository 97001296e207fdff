"""Problem management and knowledge: the problem's analysis and lifecycle, known errors that retire, articles
that are written, reviewed and published.

The tickets gain an index of their kind and opening instant (the incidents opened in a period: the problem
KPIs) and two partial indexes of the live incidents by CI, and by service and category, then opening (the
clusters of candidate problems are counted along them, the index alone).

Problems gain their classification (category, CI, impact, urgency, priority), the analysis (five whys, cause
categories, workaround, permanent fix), the verification note that closes them, the reason of a cancelled or
duplicate one, and the instants of the root cause and of the end. Known errors gain a CI, a status
(published | retired), who published them, and a version for stale saves. Articles gain a status (the ones
there were are published), an author's draft instant, a reviewer, the ticket they were written from, and a
version; ``published_at`` is empty until an article is published.

SQLite: ``problems`` is referred to by ``known_errors``, so it gains its columns by ``ALTER TABLE ADD
COLUMN`` (a table made again would be dropped under its references); the two others are made again.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROBLEM_COLUMNS = [
    sa.Column("category", sa.String(length=40), nullable=True),
    sa.Column("ci", sa.String(length=64), nullable=True),
    sa.Column("impact", sa.String(length=8), nullable=False, server_default="medium"),
    sa.Column("urgency", sa.String(length=8), nullable=False, server_default="medium"),
    sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="3"),
    sa.Column("five_whys", sa.Text(), nullable=True),
    sa.Column("cause_categories", sa.String(length=80), nullable=True),
    sa.Column("workaround", sa.Text(), nullable=True),
    sa.Column("permanent_fix", sa.Text(), nullable=True),
    sa.Column("verification", sa.Text(), nullable=True),
    sa.Column("status_reason", sa.Text(), nullable=True),
    sa.Column("root_cause_at", sa.DateTime(), nullable=True),
    sa.Column("closed_at", sa.DateTime(), nullable=True),
]
# column -> the table it refers to (by id)
PROBLEM_REFERENCES = {"created_by_id": "users", "duplicate_of_id": "problems"}

PROBLEM_INDEXES = {
    "ix_problems_status": ["status", "priority", "id"],
    "ix_problems_owner": ["owner_id", "status", "id"],
    "ix_problems_ci": ["ci", "status"],
    "ix_problems_service": ["service", "category", "status"],
    "ix_problems_opened": ["opened_at", "id"],
    "ix_problems_resolved": ["resolved_at", "id"],
}
# The live incidents (not cancelled) of a CI, and of a service and category, by opening: the clusters of
# candidate problems are counted along these (services/problems/candidates.py repeats the condition), the
# index alone: SQLite reads only the index when it holds the columns of the condition as well.
LIVE = "kind = 'incident' AND status != 'cancelled'"
INCIDENT_INDEXES = {
    "ix_tickets_incident_ci": ["ci", "opened_at", "id", "kind", "status"],
    "ix_tickets_incident_service": ["service", "category", "opened_at", "id", "kind", "status"],
}
KNOWN_ERROR_INDEXES = {
    "ix_known_errors_status": ["status", "published_at"],
    "ix_known_errors_service": ["service", "status"],
    "ix_known_errors_ci": ["ci", "status"],
}
ARTICLE_INDEXES = {
    "ix_articles_status": ["status", "updated_at"],
    "ix_articles_service": ["service", "status"],
    "ix_articles_author": ["author_id", "status"],
}


def upgrade() -> None:
    # Remaking a table on SQLite reflects the tables it refers to; the tickets' expression indexes (0012's)
    # are not reflected, which SQLAlchemy warns of on the upgrading command's error output.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        _upgrade()


def _upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for column in PROBLEM_COLUMNS:
        op.add_column("problems", column)
    for column, table in PROBLEM_REFERENCES.items():
        name = f"fk_problems_{column}_{table}"
        if sqlite:
            op.execute(
                f"ALTER TABLE problems ADD COLUMN {column} INTEGER CONSTRAINT {name} REFERENCES {table} (id)"
            )
        else:
            op.add_column("problems", sa.Column(column, sa.Integer(), nullable=True))
            op.create_foreign_key(op.f(name), "problems", table, [column], ["id"])
    # What the problems held before: a resolved one had its root cause then, a closed one ended then.
    op.execute(
        "UPDATE problems SET root_cause_at = COALESCE(resolved_at, opened_at) WHERE root_cause IS NOT NULL"
    )
    op.execute("UPDATE problems SET closed_at = resolved_at WHERE status = 'closed'")
    for name, columns in PROBLEM_INDEXES.items():
        op.create_index(name, "problems", columns)
    op.create_index("ix_tickets_kind_opened", "tickets", ["kind", "opened_at"])
    for name, columns in INCIDENT_INDEXES.items():
        op.create_index(name, "tickets", columns, sqlite_where=sa.text(LIVE), postgresql_where=sa.text(LIVE))

    with op.batch_alter_table("known_errors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ci", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("status", sa.String(length=10), nullable=False, server_default="published")
        )
        batch_op.add_column(sa.Column("published_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("retired_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.create_foreign_key(
            op.f("fk_known_errors_published_by_id_users"), "users", ["published_by_id"], ["id"]
        )
    op.execute("UPDATE known_errors SET updated_at = published_at")
    with op.batch_alter_table("known_errors", schema=None) as batch_op:
        batch_op.alter_column("updated_at", existing_type=sa.DateTime(), nullable=False)
        batch_op.alter_column("status", existing_type=sa.String(length=10), server_default=None)
        batch_op.alter_column("version", existing_type=sa.Integer(), server_default=None)
        for name, columns in KNOWN_ERROR_INDEXES.items():
            batch_op.create_index(name, columns)

    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=12), nullable=False, server_default="published")
        )
        batch_op.add_column(sa.Column("reviewer_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("source_ticket_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("review_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("created_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("retired_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.alter_column("published_at", existing_type=sa.DateTime(), nullable=True)
        batch_op.create_foreign_key(
            op.f("fk_knowledge_articles_reviewer_id_users"), "users", ["reviewer_id"], ["id"]
        )
        batch_op.create_foreign_key(
            op.f("fk_knowledge_articles_source_ticket_id_tickets"), "tickets", ["source_ticket_id"], ["id"]
        )
    op.execute("UPDATE knowledge_articles SET created_at = published_at")
    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        batch_op.alter_column("created_at", existing_type=sa.DateTime(), nullable=False)
        batch_op.alter_column("status", existing_type=sa.String(length=12), server_default=None)
        batch_op.alter_column("version", existing_type=sa.Integer(), server_default=None)
        for name, columns in ARTICLE_INDEXES.items():
            batch_op.create_index(name, columns)


def downgrade() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        _downgrade()


def _downgrade() -> None:
    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        for name in ARTICLE_INDEXES:
            batch_op.drop_index(name)
        batch_op.drop_constraint(op.f("fk_knowledge_articles_source_ticket_id_tickets"), type_="foreignkey")
        batch_op.drop_constraint(op.f("fk_knowledge_articles_reviewer_id_users"), type_="foreignkey")
        for column in (
            "version",
            "retired_at",
            "created_at",
            "review_note",
            "source_ticket_id",
            "reviewer_id",
            "status",
        ):
            batch_op.drop_column(column)
    op.execute("UPDATE knowledge_articles SET published_at = updated_at WHERE published_at IS NULL")
    with op.batch_alter_table("knowledge_articles", schema=None) as batch_op:
        batch_op.alter_column("published_at", existing_type=sa.DateTime(), nullable=False)
    with op.batch_alter_table("known_errors", schema=None) as batch_op:
        for name in KNOWN_ERROR_INDEXES:
            batch_op.drop_index(name)
        batch_op.drop_constraint(op.f("fk_known_errors_published_by_id_users"), type_="foreignkey")
        for column in ("version", "retired_at", "updated_at", "published_by_id", "status", "ci"):
            batch_op.drop_column(column)
    op.drop_index("ix_tickets_kind_opened", table_name="tickets")
    for name in INCIDENT_INDEXES:
        op.drop_index(name, table_name="tickets")
    for name in PROBLEM_INDEXES:
        op.drop_index(name, table_name="problems")
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        for column, table in PROBLEM_REFERENCES.items():
            op.drop_constraint(op.f(f"fk_problems_{column}_{table}"), "problems", type_="foreignkey")
    for column in [*PROBLEM_REFERENCES, *(c.name for c in reversed(PROBLEM_COLUMNS))]:
        op.drop_column("problems", column)
