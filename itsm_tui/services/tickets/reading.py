"""Reading tickets: one by reference or id, as plain data, in lists, and their history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import Select, func, select, true
from sqlalchemy.orm import Session

from itsm_tui.models import Group, SatisfactionRating, Ticket, TicketEntry, User, utcnow
from itsm_tui.services import sla
from itsm_tui.services.errors import NotFound
from itsm_tui.services.jsondata import jsonable

# Fields of a view that are the database's own row ids: the JSON names the group and the assignee instead.
_INTERNAL_IDS = ("group_id", "assignee_id")


def get_ticket(session: Session, ref: str, *, for_update: bool = False) -> Ticket:
    stmt = select(Ticket).where(Ticket.ref == ref.strip().upper())
    if for_update:  # the ticket's row only: its group and assignee come outer-joined
        stmt = stmt.with_for_update(of=Ticket)
    ticket = session.scalar(stmt)
    if ticket is None:
        raise NotFound(f"no ticket {ref!r}; `itsm ticket list` shows the tickets")
    return ticket


# The columns every list of tickets starts with (``itsm ticket list`` and the queue's pages).
LIST_COLUMNS = (
    Ticket.id,
    Ticket.ref,
    Ticket.priority,
    Ticket.status,
    Ticket.title,
    Ticket.requester,
    Group.code.label("group"),
    User.login.label("assignee"),
)


def with_names(stmt: Select[Any]) -> Select[Any]:
    """A statement over tickets joined to the names of their group and assignee (:data:`LIST_COLUMNS`)."""
    return stmt.outerjoin(Group, Group.id == Ticket.group_id).outerjoin(User, User.id == Ticket.assignee_id)


def find_ticket_by_id(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket with id {ticket_id}")
    return ticket


@dataclass
class TicketView:
    """A ticket as plain data, for screens and JSON (no lazy loading outside the session).

    ``group_id`` and ``assignee_id`` beside the code and the login let the rules of what a user may do
    compare the same ids on a view as on a live ticket.
    """

    ref: str
    kind: str
    title: str
    description: str
    requester: str
    category: str | None
    service: str | None
    ci: str | None
    impact: str
    urgency: str
    priority: int
    status: str
    pending_reason: str | None
    group: str | None
    assignee: str | None
    resolution_code: str | None
    resolution_note: str | None
    opened_at: datetime
    updated_at: datetime
    responded_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None
    response_due_at: datetime | None
    resolution_due_at: datetime | None
    response_state: str
    resolution_state: str
    reopen_count: int
    escalation_count: int
    version: int
    rating: int | None = None
    group_id: int | None = None
    assignee_id: int | None = None

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        for key in _INTERNAL_IDS:
            del data[key]
        return jsonable(data)


def view(session: Session, ticket: Ticket, now: datetime | None = None) -> TicketView:
    now = now or utcnow()
    assignee = session.get(User, ticket.assignee_id) if ticket.assignee_id else None
    group = session.get(Group, ticket.group_id) if ticket.group_id else None
    rating = session.scalar(select(SatisfactionRating.score).where(SatisfactionRating.ticket_id == ticket.id))
    return TicketView(
        ref=ticket.ref,
        kind=ticket.kind,
        title=ticket.title,
        description=ticket.description,
        requester=ticket.requester,
        category=ticket.category,
        service=ticket.service,
        ci=ticket.ci,
        impact=ticket.impact,
        urgency=ticket.urgency,
        priority=ticket.priority,
        status=ticket.status,
        pending_reason=ticket.pending_reason,
        group=group.code if group else None,
        assignee=assignee.login if assignee else None,
        resolution_code=ticket.resolution_code,
        resolution_note=ticket.resolution_note,
        opened_at=ticket.opened_at,
        updated_at=ticket.updated_at,
        responded_at=ticket.responded_at,
        resolved_at=ticket.resolved_at,
        closed_at=ticket.closed_at,
        cancelled_at=ticket.cancelled_at,
        response_due_at=ticket.response_due_at,
        resolution_due_at=ticket.resolution_due_at,
        response_state=sla.sla_state(ticket, now, "response"),
        resolution_state=sla.sla_state(ticket, now, "resolution"),
        reopen_count=ticket.reopen_count,
        escalation_count=ticket.escalation_count,
        version=ticket.version,
        rating=rating,
        group_id=ticket.group_id,
        assignee_id=ticket.assignee_id,
    )


@dataclass(frozen=True)
class TicketRow:
    """One line of a ticket list."""

    id: int
    ref: str
    priority: int
    status: str
    title: str
    requester: str
    group: str | None
    assignee: str | None
    opened_at: datetime
    resolution_due_at: datetime | None


def list_tickets(
    session: Session,
    *,
    open_only: bool = True,
    status: str | None = None,
    group: str | None = None,
    assignee: str | None = None,
    priority: int | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[TicketRow]:
    """Newest tickets first, at most ``limit``; pass the last row's id as ``before_id`` for the next page."""
    limit = max(1, min(limit, 1000))
    stmt = (
        with_names(select(*LIST_COLUMNS, Ticket.opened_at, Ticket.resolution_due_at))
        .order_by(Ticket.id.desc())
        .limit(limit)
    )
    if status:
        stmt = stmt.where(Ticket.status == status)
    elif open_only:
        stmt = stmt.where(Ticket.is_open == true())
    if group:
        stmt = stmt.where(func.lower(Group.code) == group.lower())
    if assignee:
        stmt = stmt.where(User.login == assignee)
    if priority:
        stmt = stmt.where(Ticket.priority == priority)
    if before_id:
        stmt = stmt.where(Ticket.id < before_id)
    return [TicketRow(**row._mapping) for row in session.execute(stmt)]


def entries(session: Session, ticket: Ticket, limit: int = 200) -> Sequence[TicketEntry]:
    return session.scalars(
        select(TicketEntry)
        .where(TicketEntry.ticket_id == ticket.id)
        .order_by(TicketEntry.created_at.desc(), TicketEntry.id.desc())
        .limit(limit)
    ).all()


@dataclass(frozen=True)
class TimelineItem:
    """One line of a ticket's history: a reply, a work note or an audit event."""

    at: datetime
    kind: str  # reply | note | rating | audit
    by: str
    text: str


# Audit events the timeline shows as their own items (the reply or note itself, the rating with its
# comment): the audit row holds the entry's row id, which is no one's business.
_SHOWN_AS_ITEMS = {("reply", "entry"), ("note", "entry"), ("rate", "rating")}
# The conversation: what people wrote and the requester's rating, without the audit events.
CONVERSATION = frozenset({"reply", "note", "rating"})


def timeline(
    session: Session, ticket: Ticket, limit: int = 200, zone: tzinfo | None = None, labelled: bool = False
) -> list[TimelineItem]:
    """Replies, work notes, the rating and audit events of a ticket, newest first (the newest ``limit`` of
    each); with ``zone``, times in audited values read in that zone (they are stored in UTC), ``labelled``
    with its abbreviation."""
    names: dict[int | None, str] = {None: "system"}

    def who(user_id: int | None) -> str:
        if user_id not in names:
            names[user_id] = session.scalar(select(User.login).where(User.id == user_id)) or f"#{user_id}"
        return names[user_id]

    items = [
        TimelineItem(e.created_at, e.kind, who(e.author_id), e.body) for e in entries(session, ticket, limit)
    ]
    rating = session.execute(
        select(SatisfactionRating.score, SatisfactionRating.comment, SatisfactionRating.rated_at)
        .where(SatisfactionRating.ticket_id == ticket.id)
        .limit(1)
    ).first()
    from itsm_tui.services import audit  # a ticket's page, not the queue's rows

    if rating is not None:
        said = f"rated {rating.score} of 5" + (f": {rating.comment}" if rating.comment else "")
        items.append(TimelineItem(rating.rated_at, "rating", ticket.requester, said))
    for event in audit.history(session, "ticket", ticket.id, limit):
        if (event.action, event.field) in _SHOWN_AS_ITEMS:
            continue
        old, new = (audit.shown_value(value, zone, labelled) for value in (event.old_value, event.new_value))
        change = f"{old} -> {new}"
        items.append(
            TimelineItem(
                event.at, "audit", who(event.actor_id), f"{event.action} {event.field or ''}: {change}"
            )
        )
    items.sort(key=lambda item: item.at, reverse=True)
    return items
