"""A ticket's page as plain data: what the ticket screen and ``itsm ticket show`` display, read at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Ticket, utcnow
from itsm_tui.services import audit, sla
from itsm_tui.services.tickets.guards import allowed_transitions, available_actions
from itsm_tui.services.tickets.links import links_of
from itsm_tui.services.tickets.reading import (
    TicketView,
    TimelineItem,
    find_ticket_by_id,
    get_ticket,
    timeline,
    view,
)
from itsm_tui.services.users import Actor

SLA_TARGETS = ("response", "resolution")


@dataclass(frozen=True)
class TicketDetail:
    """Everything a ticket's page shows, read in one session, so that nothing loads lazily afterwards."""

    view: TicketView
    links: list[str]
    timeline: list[TimelineItem]  # newest first
    actions: dict[str, str | None]  # action -> None when the actor may, else why not
    transitions: tuple[str, ...]  # the statuses it may move to now
    left: dict[str, float | None]  # SLA target -> business seconds left (negative: overdue; None: stopped)
    # "history does not verify: ..." when the ticket's audit chain is broken (audit.history_warning)
    history_warning: str | None = None


def detail(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ticket: Ticket | str | int,
    now: datetime | None = None,
    zone: tzinfo | None = None,
    limit: int = 200,
) -> TicketDetail:
    """The page of a ticket (a live one, a reference or an id) as ``actor`` sees it at ``now``.

    ``zone``: the zone in which instants inside audited values read in the timeline (None: as stored, UTC);
    ``limit``: how many of the newest replies, notes and audit events the timeline holds of each.
    """
    if isinstance(ticket, str):
        ticket = get_ticket(session, ticket)
    elif isinstance(ticket, int):
        ticket = find_ticket_by_id(session, ticket)
    now = now or utcnow()
    shown = view(session, ticket, now)
    return TicketDetail(
        view=shown,
        links=links_of(session, ticket),
        timeline=timeline(session, ticket, limit, zone=zone),
        actions=available_actions(actor, shown),
        transitions=allowed_transitions(shown),
        left={target: sla.time_left(ticket, config, now, target) for target in SLA_TARGETS},
        history_warning=audit.history_warning(session, "ticket", ticket.id),
    )
