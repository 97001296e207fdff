"""A ticket's page as plain data: what the ticket screen and ``itsm ticket show`` display, read at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Ticket, utcnow
from itsm_tui.services import audit, sla
from itsm_tui.services.tickets.guards import allowed_transitions, available_actions
from itsm_tui.services.tickets.links import LinkedRecord, linked_records, links_of
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
    # Everything linked with the ticket both ways (what it links to, then what links to it): the links the
    # page lists and follows.
    linked: tuple[LinkedRecord, ...] = ()
    # The time zones the ticket is worked in, as (what, zone name): "desk hours", its business calendar's
    # (unless that counts every hour alike); the page labels its times when one is not the viewer's.
    zones: tuple[tuple[str, str], ...] = ()


def ticket_zones(config: DeskConfig, ticket: Ticket) -> tuple[tuple[str, str], ...]:
    """(what, zone name) of the zones a ticket is worked in: the zone of its business hours."""
    policy = config.policies.get(ticket.priority)
    calendar = config.calendars.get(policy.calendar) if policy is not None else None
    if calendar is None or calendar.always_open:
        return ()
    return (("desk hours", calendar.timezone),)


def other_zones(zones: tuple[tuple[str, str], ...], mine: str) -> list[tuple[str, str]]:
    """The zones of :func:`ticket_zones` that are not the viewer's (``mine``): while there is one, the
    ticket's times are labelled with their zone."""
    return [(what, zone) for what, zone in zones if zone != mine]


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
    zones = ticket_zones(config, ticket)
    mixed = zone is not None and bool(other_zones(zones, getattr(zone, "key", "")))
    return TicketDetail(
        view=shown,
        links=links_of(session, ticket),
        timeline=timeline(session, ticket, limit, zone=zone, labelled=mixed),
        actions=available_actions(actor, shown),
        transitions=allowed_transitions(shown),
        left={target: sla.time_left(ticket, config, now, target) for target in SLA_TARGETS},
        history_warning=audit.history_warning(session, "ticket", ticket.id),
        linked=tuple(linked_records(session, "ticket", ticket.id)),
        zones=zones,
    )
