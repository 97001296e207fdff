"""The database model: one typed SQLAlchemy class per record of the service desk.

All instants are stored as UTC (naive in the database, timezone-aware in Python). The schema itself is
created by the Alembic migrations in ``itsm_tui/migrations``; these classes must match them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, date, datetime

from sqlalchemy import (
    Boolean,
    Computed,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
    text,
)
from sqlalchemy import Index as SqlIndex
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# The condition of a partial index as PostgreSQL writes it waits here until a PostgreSQL database is first
# connected to: naming a dialect's option as an index is made imports that dialect (on SQLite, a sixth of
# the console's start-up imports).
_POSTGRESQL_WHERE: list[tuple[SqlIndex, object]] = []


class Index(SqlIndex):
    """SQLAlchemy's index, its ``postgresql_where`` given to it once PostgreSQL is in use."""

    def __init__(self, *expressions: object, postgresql_where: object = None, **options: object) -> None:
        super().__init__(*expressions, **options)  # type: ignore[arg-type]
        if postgresql_where is None:
            return
        if "sqlalchemy.dialects.postgresql" in sys.modules:
            self.dialect_kwargs["postgresql_where"] = postgresql_where
        else:
            _POSTGRESQL_WHERE.append((self, postgresql_where))


def for_postgresql() -> None:
    """Give the partial indexes their PostgreSQL condition (DDL, Alembic's comparison); done once."""
    while _POSTGRESQL_WHERE:
        index, where = _POSTGRESQL_WHERE.pop()
        index.dialect_kwargs["postgresql_where"] = where


@event.listens_for(Engine, "engine_connect")
def _first_postgresql_connection(connection: Connection) -> None:
    if _POSTGRESQL_WHERE and connection.dialect.name == "postgresql":
        for_postgresql()


OPEN_STATUSES = ("new", "assigned", "in_progress", "pending")
TICKET_STATUSES = (*OPEN_STATUSES, "resolved", "closed", "cancelled")
CHANGE_STATES = (
    "draft",
    "submitted",
    "assessed",
    "approved",
    "rejected",
    "scheduled",
    "implementing",
    "implemented",
    "failed",
    "backed_out",
    "review",
    "closed",
    "withdrawn",
    "cancelled",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def utc_or_now(instant: datetime | None) -> datetime:
    """``instant`` in UTC, or the current instant; a naive datetime is refused (its zone is unknown)."""
    if instant is None:
        return utcnow()
    if instant.tzinfo is None:
        raise ValueError("instants must carry a time zone")
    return instant.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An instant stored as naive UTC and returned as an aware UTC datetime."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC instant is required")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}


# --------------------------------------------------------------------------- people


class Group(Base):
    """A support group (Service Desk L1, L2 and L3 teams); synchronised from catalog.toml."""

    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    level: Mapped[int] = mapped_column(SmallInteger)


class User(Base):
    """A console user; ``login`` is the operating-system login."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column()  # the last console start or command

    roles: Mapped[list[RoleMembership]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    groups: Mapped[list[GroupMembership]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def role_names(self) -> list[str]:
        return sorted(m.role for m in self.roles)


class RoleMembership(Base):
    __tablename__ = "role_memberships"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)


class GroupMembership(Base):
    __tablename__ = "group_memberships"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    # The group's lead is told of SLA warnings on the group's tickets.
    is_lead: Mapped[bool] = mapped_column(Boolean, default=False)
    group: Mapped[Group] = relationship(lazy="joined")


class Counter(Base):
    """Per-prefix reference counters (INC, REQ, PRB, KE, KB, CHG)."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


# --------------------------------------------------------------------------- tickets


# The generated SLA order columns of tickets (see Ticket.sla_due_at); migration 0008 writes the same text.
SLA_DUE_SQL = (
    "CASE WHEN responded_at IS NULL AND (resolution_due_at IS NULL OR response_due_at <= resolution_due_at) "
    "THEN response_due_at ELSE resolution_due_at END"
)
SLA_PAUSED_SQL = "paused_at IS NOT NULL"


LIVE_INCIDENT_SQL = "kind = 'incident' AND status != 'cancelled'"


class Ticket(Base):
    """An incident (INC) or a service request (REQ) with its SLA clocks."""

    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # incident | request
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    requester: Mapped[str] = mapped_column(String(120))
    category: Mapped[str | None] = mapped_column(String(40))
    service: Mapped[str | None] = mapped_column(String(32))
    ci: Mapped[str | None] = mapped_column(String(64))
    impact: Mapped[str] = mapped_column(String(8))
    urgency: Mapped[str] = mapped_column(String(8))
    priority: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(12), default="new")
    # 1 while the status is open (new, assigned, in_progress, pending): the partial indexes key on it.
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    pending_reason: Mapped[str | None] = mapped_column(String(16))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"))
    # The group the ticket was first assigned to (its group at creation); never changes afterwards.
    first_group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution_code: Mapped[str | None] = mapped_column(String(40))
    resolution_note: Mapped[str | None] = mapped_column(Text)

    opened_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    responded_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    cancelled_at: Mapped[datetime | None] = mapped_column()

    # SLA clocks. Due and warning instants are computed by services/sla.py from the start, the policy of the
    # current priority and the pause intervals (ticket_pauses); the scan reads them by index.
    sla_calendar: Mapped[str | None] = mapped_column(String(32))
    # The start of the pause under way (pending, or resolved), None while the clocks run.
    paused_at: Mapped[datetime | None] = mapped_column()
    # The start of the current resolution target: None is the opening; a reopen may restart it.
    resolution_started_at: Mapped[datetime | None] = mapped_column()
    response_warn_at: Mapped[datetime | None] = mapped_column()
    response_due_at: Mapped[datetime | None] = mapped_column()
    resolution_warn_at: Mapped[datetime | None] = mapped_column()
    resolution_due_at: Mapped[datetime | None] = mapped_column()
    response_warned_at: Mapped[datetime | None] = mapped_column()
    response_breached_at: Mapped[datetime | None] = mapped_column()
    resolution_warned_at: Mapped[datetime | None] = mapped_column()
    resolution_breached_at: Mapped[datetime | None] = mapped_column()
    # The queue's SLA order, computed by the database from the instants above (so that every write keeps it,
    # bulk loads included): the due instant of the running target nearer to breaching (the response until it
    # is made, unless the resolution is due first; then the resolution), and whether the clocks stand still
    # (paused: the due instants are frozen until it resumes). The queue sorts on (sla_paused, sla_due_at, id).
    # On SQLite the migration makes them VIRTUAL (kept in the indexes only), on PostgreSQL STORED.
    sla_due_at: Mapped[datetime | None] = mapped_column(Computed(SLA_DUE_SQL, persisted=True))
    sla_paused: Mapped[bool | None] = mapped_column(Boolean, Computed(SLA_PAUSED_SQL, persisted=True))

    # When the ticket was announced as a major incident (services/tickets/major.py): set once, never cleared.
    major_announced_at: Mapped[datetime | None] = mapped_column()
    # Business seconds from opening to resolution on the ticket's SLA calendar, set at resolve (for MTTR).
    resolution_business_seconds: Mapped[int | None] = mapped_column(Integer)
    reopen_count: Mapped[int] = mapped_column(SmallInteger, default=0)
    escalation_count: Mapped[int] = mapped_column(SmallInteger, default=0)
    reassignment_count: Mapped[int] = mapped_column(SmallInteger, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)

    group: Mapped[Group | None] = relationship(foreign_keys=[group_id], lazy="joined")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")
    pauses: Mapped[list[TicketPause]] = relationship(
        order_by="TicketPause.started_at", cascade="all, delete-orphan", passive_deletes=True
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # Queue: default sort (the SLA order: running tickets by due instant, then the paused ones) and the
        # views, on open tickets only.
        Index(
            "ix_tickets_open_due",
            "sla_paused",
            "sla_due_at",
            "id",
            sqlite_where=text("is_open = 1"),
            postgresql_where=text("is_open"),
        ),
        Index(
            "ix_tickets_open_priority",
            "priority",
            "sla_paused",
            "sla_due_at",
            "id",
            sqlite_where=text("is_open = 1"),
            postgresql_where=text("is_open"),
        ),
        Index(
            "ix_tickets_open_group",
            "group_id",
            "sla_paused",
            "sla_due_at",
            "id",
            sqlite_where=text("is_open = 1"),
            postgresql_where=text("is_open"),
        ),
        Index(
            "ix_tickets_open_assignee",
            "assignee_id",
            "sla_paused",
            "sla_due_at",
            "id",
            sqlite_where=text("is_open = 1"),
            postgresql_where=text("is_open"),
        ),
        # The resolution target alone, on open tickets: the KPI board's breached and breaching counts and the
        # queue's sla: filter.
        Index(
            "ix_tickets_open_resolution_due",
            "resolution_due_at",
            "id",
            sqlite_where=text("is_open = 1"),
            postgresql_where=text("is_open"),
        ),
        # Queue sorts other than SLA, on open tickets only (small: the backlog, not the history).
        *[
            Index(
                f"ix_tickets_open_by_{name}",
                *columns,
                sqlite_where=text("is_open = 1"),
                postgresql_where=text("is_open"),
            )
            for name, columns in (
                ("id", ("id",)),
                ("status", ("status", "sla_paused", "sla_due_at", "id")),
                ("title", ("title", "id")),
                ("requester", ("requester", "id")),
                ("service", (func.coalesce(text("service"), ""), "sla_paused", "sla_due_at", "id")),
                ("assignee", (func.coalesce(text("assignee_id"), 0), "sla_paused", "sla_due_at", "id")),
                ("opened", ("opened_at", "id")),
                ("updated", ("updated_at", "id")),
            )
        ],
        Index("ix_tickets_status", "status", "id"),
        Index("ix_tickets_opened", "opened_at", "id"),
        Index("ix_tickets_kind_opened", "kind", "opened_at"),  # incidents opened in a period (KPIs)
        # The live incidents of a CI, and of a service and category, by opening: candidate problems' clusters
        # (kind and status too: SQLite reads a partial index alone only if it holds the condition's columns).
        Index(
            "ix_tickets_incident_ci",
            "ci",
            "opened_at",
            "id",
            "kind",
            "status",
            sqlite_where=text(LIVE_INCIDENT_SQL),
            postgresql_where=text(LIVE_INCIDENT_SQL),
        ),
        Index(
            "ix_tickets_incident_service",
            "service",
            "category",
            "opened_at",
            "id",
            "kind",
            "status",
            sqlite_where=text(LIVE_INCIDENT_SQL),
            postgresql_where=text(LIVE_INCIDENT_SQL),
        ),
        Index("ix_tickets_updated", "updated_at", "id"),
        Index("ix_tickets_resolved", "resolved_at", "id"),
        # The filter tokens of the "All tickets" view (every ticket, of any age): migration 0013.
        Index("ix_tickets_priority", "priority", "id"),
        Index("ix_tickets_group", "group_id", "id"),
        Index("ix_tickets_assignee", "assignee_id", "id"),
        Index("ix_tickets_service", "service", "id"),
        # SLA scan: what became due since the last run, among targets not yet flagged.
        Index(
            "ix_tickets_sla_response_warn",
            "response_warn_at",
            sqlite_where=text("is_open = 1 AND response_warned_at IS NULL AND responded_at IS NULL"),
            postgresql_where=text("is_open AND response_warned_at IS NULL AND responded_at IS NULL"),
        ),
        Index(
            "ix_tickets_sla_response_due",
            "response_due_at",
            sqlite_where=text("is_open = 1 AND response_breached_at IS NULL AND responded_at IS NULL"),
            postgresql_where=text("is_open AND response_breached_at IS NULL AND responded_at IS NULL"),
        ),
        Index(
            "ix_tickets_sla_resolution_warn",
            "resolution_warn_at",
            sqlite_where=text("is_open = 1 AND resolution_warned_at IS NULL AND paused_at IS NULL"),
            postgresql_where=text("is_open AND resolution_warned_at IS NULL AND paused_at IS NULL"),
        ),
        Index(
            "ix_tickets_sla_resolution_due",
            "resolution_due_at",
            sqlite_where=text("is_open = 1 AND resolution_breached_at IS NULL AND paused_at IS NULL"),
            postgresql_where=text("is_open AND resolution_breached_at IS NULL AND paused_at IS NULL"),
        ),
    )


class TicketPause(Base):
    """An interval in which a ticket's SLA clocks stood still: pending (with its reason) or resolved.

    Kept as intervals, not as a sum, so that a priority change onto another calendar re-measures each one on
    the new calendar. ``ended_at`` is None while the pause lasts.
    """

    __tablename__ = "ticket_pauses"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(16))  # customer | vendor | change | resolved
    started_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    __table_args__ = (Index("ix_ticket_pauses_ticket", "ticket_id", "started_at"),)


class TicketEntry(Base):
    """A public reply or an internal work note on a ticket."""

    __tablename__ = "ticket_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(8))  # reply | note
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
    __table_args__ = (Index("ix_ticket_entries_ticket", "ticket_id", "created_at"),)


class Attachment(Base):
    """An attachment kept by reference (a path or URL), never stored in the database."""

    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    reference: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(String(200))
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[datetime] = mapped_column()


class Link(Base):
    """A link from a record to another: ticket -> problem / known_error / change / article, etc."""

    __tablename__ = "links"
    id: Mapped[int] = mapped_column(primary_key=True)
    source_type: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[int] = mapped_column(Integer)
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[int] = mapped_column(Integer)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column()
    __table_args__ = (
        UniqueConstraint("source_type", "source_id", "target_type", "target_id", name="uq_links_pair"),
        Index("ix_links_target", "target_type", "target_id"),
    )


class SatisfactionRating(Base):
    __tablename__ = "satisfaction_ratings"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), unique=True)
    score: Mapped[int] = mapped_column(SmallInteger)  # 1..5
    comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime] = mapped_column()
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    __table_args__ = (Index("ix_ratings_rated", "rated_at"),)


# --------------------------------------------------------------------------- problems and knowledge


def _same_as(column: str) -> Callable[[DefaultExecutionContext], object]:
    """A column's default: the value given to another column of the same row."""

    def default(context: DefaultExecutionContext) -> object:
        return context.get_current_parameters()[column]

    return default


class Problem(Base):
    """A problem (PRBnnnnnnn): the cause of one or more incidents, analysed to a root cause and a fix.

    Lifecycle (services/problems/rules.py): new -> investigating -> known_error -> fix_in_progress ->
    resolved -> closed; cancelled and duplicate (of ``duplicate_of_id``) end it early with a reason.
    """

    __tablename__ = "problems"
    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="new")
    category: Mapped[str | None] = mapped_column(String(40))
    service: Mapped[str | None] = mapped_column(String(32))
    ci: Mapped[str | None] = mapped_column(String(64))
    impact: Mapped[str] = mapped_column(String(8), default="medium", server_default="medium")
    urgency: Mapped[str] = mapped_column(String(8), default="medium", server_default="medium")
    priority: Mapped[int] = mapped_column(SmallInteger, default=3, server_default="3")
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The analysis: the root cause, the five whys (one a line, in order), the cause categories (a comma list
    # of services.problems.rules.CAUSE_CATEGORIES), the workaround and the permanent fix.
    root_cause: Mapped[str | None] = mapped_column(Text)
    five_whys: Mapped[str | None] = mapped_column(Text)
    cause_categories: Mapped[str | None] = mapped_column(String(80))
    workaround: Mapped[str | None] = mapped_column(Text)
    permanent_fix: Mapped[str | None] = mapped_column(Text)
    verification: Mapped[str | None] = mapped_column(Text)  # did the fix stop the incidents? (to close)
    status_reason: Mapped[str | None] = mapped_column(Text)  # why it was cancelled or is a duplicate
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("problems.id"))
    opened_at: Mapped[datetime] = mapped_column()
    root_cause_at: Mapped[datetime | None] = mapped_column()  # when a root cause was first recorded
    resolved_at: Mapped[datetime | None] = mapped_column()  # the fix is in
    closed_at: Mapped[datetime | None] = mapped_column()  # closed, cancelled or made a duplicate
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_problems_status", "status", "priority", "id"),
        Index("ix_problems_owner", "owner_id", "status", "id"),
        Index("ix_problems_ci", "ci", "status"),
        Index("ix_problems_service", "service", "category", "status"),
        Index("ix_problems_opened", "opened_at", "id"),
        Index("ix_problems_resolved", "resolved_at", "id"),
    )


class KnownError(Base):
    """An entry of the known-error database, published from a problem; retired once the fix is in."""

    __tablename__ = "known_errors"
    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    problem_id: Mapped[int | None] = mapped_column(ForeignKey("problems.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    symptom: Mapped[str] = mapped_column(Text)
    cause: Mapped[str | None] = mapped_column(Text)
    workaround: Mapped[str | None] = mapped_column(Text)
    permanent_fix: Mapped[str | None] = mapped_column(Text)
    service: Mapped[str | None] = mapped_column(String(32))
    ci: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), default="published")  # published | retired
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=_same_as("published_at"))
    retired_at: Mapped[datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_known_errors_status", "status", "published_at"),
        Index("ix_known_errors_service", "service", "status"),
        Index("ix_known_errors_ci", "ci", "status"),
    )


class KnowledgeArticle(Base):
    """A knowledge article (KBnnnnnnn): draft -> in_review -> published -> retired."""

    __tablename__ = "knowledge_articles"
    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    service: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12), default="draft")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # who published it
    # the ticket whose resolution it was written from
    source_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    review_note: Mapped[str | None] = mapped_column(Text)  # why a review sent it back
    created_at: Mapped[datetime] = mapped_column(default=_same_as("updated_at"))
    published_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    retired_at: Mapped[datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_articles_status", "status", "updated_at"),
        Index("ix_articles_service", "service", "status"),
        Index("ix_articles_author", "author_id", "status"),
    )


# --------------------------------------------------------------------------- changes


class Change(Base):
    __tablename__ = "changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    change_type: Mapped[str] = mapped_column(String(10))  # standard | normal | emergency
    template: Mapped[str | None] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(14), default="draft")
    risk: Mapped[str] = mapped_column(String(8), default="low")
    planned_start: Mapped[datetime | None] = mapped_column()
    planned_end: Mapped[datetime | None] = mapped_column()
    actual_start: Mapped[datetime | None] = mapped_column()
    actual_end: Mapped[datetime | None] = mapped_column()
    implementation_plan: Mapped[str] = mapped_column(Text, default="")
    backout_plan: Mapped[str] = mapped_column(Text, default="")
    test_plan: Mapped[str] = mapped_column(Text, default="")
    implementer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    override_reason: Mapped[str | None] = mapped_column(Text)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    review_notes: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(12))  # implemented | failed | backed_out
    # The risk questionnaire of changes.toml: the score and the answers (JSON: question id -> answer).
    risk_score: Mapped[int | None] = mapped_column(Integer)
    risk_answers: Mapped[str | None] = mapped_column(Text)
    assessment_notes: Mapped[str | None] = mapped_column(Text)
    # Why it was withdrawn by its requester or cancelled by a change manager.
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime | None] = mapped_column()
    # The CAB meeting (its start, UTC) whose agenda the change is on.
    cab_meeting: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=1)

    targets: Mapped[list[ChangeTarget]] = relationship(cascade="all, delete-orphan", lazy="selectin")
    approvals: Mapped[list[ChangeApproval]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        Index("ix_changes_window", "planned_start", "planned_end"),
        Index("ix_changes_state", "state"),
        Index("ix_changes_cab", "cab_meeting", "state"),
    )


class ChangeTarget(Base):
    """A service, or one configuration item of it, affected by a change."""

    __tablename__ = "change_targets"
    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("changes.id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(32))
    ci: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (
        Index("ix_change_targets_service", "service", "change_id"),
        # A change's own targets (the relationship's selectin load, the conflict check's targets).
        Index("ix_change_targets_change", "change_id"),
    )


class ChangeApproval(Base):
    __tablename__ = "change_approvals"
    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("changes.id", ondelete="CASCADE"))
    approver_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(10), default="pending")  # pending | approved | rejected
    reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column()
    # The CAB meeting (its start, UTC) at which the decision was recorded, when it was taken there.
    meeting: Mapped[datetime | None] = mapped_column()
    __table_args__ = (
        UniqueConstraint("change_id", "approver_id", name="uq_change_approvals_pair"),
        Index("ix_change_approvals_approver", "approver_id", "decision"),
        Index("ix_change_approvals_meeting", "meeting"),
    )


class MaintenanceWindow(Base):
    """A recurring window (RFC 5545 RRULE, local start time, duration) in which a service may change."""

    __tablename__ = "maintenance_windows"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    service: Mapped[str] = mapped_column(String(32), index=True)
    timezone: Mapped[str] = mapped_column(String(64))
    rrule: Mapped[str] = mapped_column(String(200))  # e.g. FREQ=WEEKLY;BYDAY=SA
    start_local: Mapped[str] = mapped_column(String(5))  # HH:MM
    duration_minutes: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[datetime] = mapped_column()
    valid_until: Mapped[datetime | None] = mapped_column()
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}


class Blackout(Base):
    """A dated change freeze, for all services (service is NULL) or one."""

    __tablename__ = "blackouts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(Text)
    service: Mapped[str | None] = mapped_column(String(32))
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (Index("ix_blackouts_window", "starts_at", "ends_at"),)


# --------------------------------------------------------------------------- audit, notifications, presence


class AuditEvent(Base):
    """One change to one record: who, when, which field, old and new value.

    Each record's events form a hash chain (``services/audit.py``): ``seq`` numbers them 1, 2, ... per
    record, ``prev_hash`` is the previous link's ``hash`` (None for the first) and ``hash`` the SHA-256 of the
    row's canonical form, so an edited, removed or reordered row shows. ``seq``, ``prev_hash`` and ``hash``
    are set as the row is flushed; code never sets them.
    """

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[int] = mapped_column(Integer)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column()
    action: Mapped[str] = mapped_column(String(24))
    field: Mapped[str | None] = mapped_column(String(40))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    __table_args__ = (
        Index("ix_audit_entity", "entity_type", "entity_id", "at"),
        Index("ix_audit_actor", "actor_id", "at"),
        # A unique index, not a constraint: the demo's bulk load drops it and builds it once at the end.
        Index("ix_audit_chain", "entity_type", "entity_id", "seq", unique=True),
    )


class AuditHead(Base):
    """The newest link of one record's audit chain: its ``seq`` and ``hash``.

    The anchor that makes removing a record's newest events visible (the chain alone would just end
    earlier), and the row an append locks, so that concurrent writers of one record take turns.
    """

    __tablename__ = "audit_heads"
    entity_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    entity_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class AccessRefusal(Base):
    """A refused attempt at something privileged: who tried (the login, and the user if there is one), what,
    when. Written in its own transaction, so it stays when the refused one is rolled back."""

    __tablename__ = "access_refusals"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column()
    login: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(80))  # e.g. "demo --force", "user add", "ticket.assign_others"
    permission: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ix_access_refusals_at", "at"),)


class Notification(Base):
    """A stored notification for one user; ``event_key`` makes each event reach each recipient once."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    event_key: Mapped[str] = mapped_column(String(120))
    entity_type: Mapped[str | None] = mapped_column(String(16))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
    read_at: Mapped[datetime | None] = mapped_column()
    __table_args__ = (
        UniqueConstraint("user_id", "event_key", name="uq_notifications_event"),
        Index("ix_notifications_user", "user_id", "id"),
    )


class Presence(Base):
    """Who has which record open in a console, refreshed by a heartbeat."""

    __tablename__ = "presence"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    console_id: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[int] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime] = mapped_column()
    __table_args__ = (
        UniqueConstraint("console_id", "entity_type", "entity_id", name="uq_presence_console"),
        Index("ix_presence_entity", "entity_type", "entity_id"),
    )


class SavedView(Base):
    """A user's own queue view: a filter (the queue's filter grammar) and a sort, named, on a key of the
    queue; optionally shared with a group, whose members may apply it (only the owner edits it)."""

    __tablename__ = "saved_views"
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(1))  # a digit or a letter
    base_view: Mapped[str] = mapped_column(String(16))  # the built-in view it narrows (services/queue.VIEWS)
    filter_text: Mapped[str] = mapped_column(Text, default="")
    sort: Mapped[str] = mapped_column(String(16))
    descending: Mapped[bool] = mapped_column(Boolean, default=False)
    shared_group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    __table_args__ = (
        UniqueConstraint("owner_id", "name", name="uq_saved_views_name"),
        UniqueConstraint("owner_id", "key", name="uq_saved_views_key"),
        Index("ix_saved_views_shared", "shared_group_id"),
    )


# --------------------------------------------------------------------------- KPI roll-up


class KpiDaily(Base):
    """Per day, group and priority: the sums the KPIs are computed from (kept correct by recomputing the
    days that ``KpiDirtyDay`` marks whenever a ticket of that day changes). Each sum counts a ticket under
    its own group: the group it was first assigned to, or the group that resolved it (``services/kpi.py``)."""

    __tablename__ = "kpi_daily"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    group_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0: no group
    priority: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    opened: Mapped[int] = mapped_column(Integer, default=0)
    responded: Mapped[int] = mapped_column(Integer, default=0)
    response_seconds: Mapped[float] = mapped_column(Float, default=0)
    response_decided: Mapped[int] = mapped_column(Integer, default=0)
    response_met: Mapped[int] = mapped_column(Integer, default=0)
    resolved: Mapped[int] = mapped_column(Integer, default=0)
    resolve_seconds: Mapped[float] = mapped_column(Float, default=0)
    resolve_business_seconds: Mapped[float] = mapped_column(Float, default=0)
    resolution_met: Mapped[int] = mapped_column(Integer, default=0)
    incidents_resolved: Mapped[int] = mapped_column(Integer, default=0)
    first_contact: Mapped[int] = mapped_column(Integer, default=0)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    escalated: Mapped[int] = mapped_column(Integer, default=0)
    first_group_resolved: Mapped[int] = mapped_column(Integer, default=0)  # resolved, under the first group
    rated: Mapped[int] = mapped_column(Integer, default=0)
    satisfied: Mapped[int] = mapped_column(Integer, default=0)


class KpiDirtyDay(Base):
    """A day whose roll-up must be recomputed (written in the transaction that changed a ticket)."""

    __tablename__ = "kpi_dirty_days"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
