"""Building tickets for the ticket-service tests: a fixed instant, driving a ticket through its lifecycle,
reading its columns and its audit events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import func, inspect, select

from itsm_tui.models import AuditEvent, Ticket, TicketEntry
from itsm_tui.services import tickets

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 in Berlin (office hours)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def new_ticket(db, config, actor, *, now: datetime = T0, **fields) -> str:
    fields = {"title": "Printer on fire", "requester": "Ann Example", **fields}
    with db.session() as s:
        return tickets.create_ticket(s, config, actor, now=now, **fields).ref


def snapshot(db, ref: str) -> SimpleNamespace:
    """Every column of a ticket as plain data, plus the assignee's login and the group's code."""
    with db.read_session() as s:
        ticket = tickets.get_ticket(s, ref)
        data = {attr.key: getattr(ticket, attr.key) for attr in inspect(Ticket).column_attrs}
        data["assignee"] = ticket.assignee.login if ticket.assignee else None
        data["group"] = ticket.group.code if ticket.group else None
    return SimpleNamespace(**data)


def counts(db) -> tuple[int, int, int]:
    with db.read_session() as s:
        models = (Ticket, AuditEvent, TicketEntry)
        return tuple(s.scalar(select(func.count()).select_from(model)) for model in models)


def take(db, config, actor, ref: str, now: datetime = T0) -> None:
    with db.session() as s:
        tickets.assign(s, config, actor, ref, now=now)


def move(db, config, actor, ref: str, to: str, now: datetime = T0, **kwargs) -> None:
    with db.session() as s:
        tickets.transition(s, config, actor, ref, to, now=now, **kwargs)


def edge_args(source: str, target: str) -> dict[str, str]:
    """What each lifecycle edge needs besides the target status."""
    if target == "pending":
        return {"reason": "vendor"}
    if target == "resolved":
        return {"code": "fixed", "note": "Replaced the toner"}
    if target == "cancelled":
        return {"reason": "duplicate of INC0000999"}
    if source == "resolved" and target == "in_progress":
        return {"reason": "still broken"}
    return {}


PATHS = {
    "new": [],
    "assigned": ["assigned"],
    "in_progress": ["assigned", "in_progress"],
    "pending": ["assigned", "in_progress", "pending"],
    "resolved": ["assigned", "in_progress", "resolved"],
    "closed": ["assigned", "in_progress", "resolved", "closed"],
    "cancelled": ["cancelled"],
}


def drive(db, config, actor, state: str, **fields) -> str:
    """A new SD-L1 ticket taken by ``actor`` and moved to ``state``."""
    ref = new_ticket(db, config, actor, **fields)
    current = "new"
    for step, target in enumerate(PATHS[state], start=1):
        if target == "assigned":
            take(db, config, actor, ref, now=at(step))
        else:
            move(db, config, actor, ref, target, now=at(step), **edge_args(current, target))
        current = target
    assert snapshot(db, ref).status == state
    return ref


def events_after(db, ticket_id: int, after_id: int) -> list[AuditEvent]:
    with db.read_session() as s:
        rows = list(
            s.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.entity_type == "ticket",
                    AuditEvent.entity_id == ticket_id,
                    AuditEvent.id > after_id,
                )
                .order_by(AuditEvent.id)
            )
        )
        s.expunge_all()
    return rows


def last_event_id(db) -> int:
    with db.read_session() as s:
        return s.scalar(select(func.max(AuditEvent.id))) or 0


def pauses(db, ref: str) -> list[tuple[str, datetime, datetime | None]]:
    """A ticket's stored pause intervals: (reason, start, end), in order."""
    from itsm_tui.models import TicketPause

    with db.session() as s:
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.ref == ref))
        rows = s.execute(
            select(TicketPause.reason, TicketPause.started_at, TicketPause.ended_at)
            .where(TicketPause.ticket_id == ticket_id)
            .order_by(TicketPause.started_at, TicketPause.id)
        )
        return [tuple(row) for row in rows]
