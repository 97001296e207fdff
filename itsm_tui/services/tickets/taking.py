"""Taking the next ticket: the most urgent unassigned one of the actor's groups, whoever else presses at once.

"Most urgent" is the queue's SLA order (``services.queue.SORTS["sla"]``: running clocks by the due instant of
the nearer target, overdue first, then the paused ones, the id breaking ties), so the ticket taken is the one
the "Unassigned in my groups" view shows first. The take itself is :func:`.editing.take`, the same
conditional claim, audit rows, status move and first response as taking a chosen ticket.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Select, select, true
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Ticket
from itsm_tui.services.access import require
from itsm_tui.services.errors import ServiceError
from itsm_tui.services.tickets.editing import take
from itsm_tui.services.tickets.guards import AlreadyTaken
from itsm_tui.services.users import Actor

# The queue's SLA order with its tie-break: the columns of the partial index ix_tickets_open_assignee after
# the assignee, so that the unassigned tickets are read in this order from that index, the first one first.
NEXT_ORDER = (Ticket.sla_paused, Ticket.sla_due_at, Ticket.id)

TAKE_NEXT_ATTEMPTS = 5
"""How many candidates a take-next tries, one after another, when the one it chose turns out taken."""


class NothingToTake(ServiceError):
    """No open ticket of the actor's groups is waiting for someone to take it."""


def next_candidate(
    group_ids: Collection[int], skipped: Collection[int] = (), *, lock: bool = False
) -> Select:
    """The statement choosing the most urgent open, unassigned ticket of ``group_ids`` (one row: id, ref).

    With ``lock`` (PostgreSQL), the row is locked as it is chosen and rows other transactions hold locked
    are passed over (``FOR UPDATE SKIP LOCKED``): two consoles choosing at once each get a ticket of their
    own, without waiting for each other (a ticket someone is saving at that instant is passed over too, for
    this press only). ``skipped`` are tickets already tried by this take.
    """
    statement = (
        select(Ticket.id, Ticket.ref)
        .where(
            Ticket.is_open == true(),  # as the partial indexes are written (SQLite's is_open = 1)
            Ticket.assignee_id.is_(None),
            Ticket.group_id.in_(sorted(group_ids) or [-1]),
        )
        .order_by(*NEXT_ORDER)
        .limit(1)
    )
    if skipped:
        statement = statement.where(Ticket.id.not_in(sorted(skipped)))
    if lock:
        statement = statement.with_for_update(skip_locked=True, of=Ticket)
    return statement


def take_next(session: Session, config: DeskConfig, actor: Actor, *, now: datetime | None = None) -> Ticket:
    """Take the most urgent unassigned open ticket queued in one of the actor's groups, and return it.

    Two people pressing at once get two different tickets. On PostgreSQL the candidate's row is locked as
    it is chosen, rows locked by others skipped, so the take that follows cannot lose it. On SQLite a
    writer holds the database's write lock from the start of its transaction (``BEGIN IMMEDIATE``), so the
    candidate read is still unassigned when it is claimed. Either way the claim is the take's conditional
    UPDATE; should it find a candidate taken all the same, the next one is tried, a few times over.

    Refused with the take's own permission (before anything is read), and with :class:`NothingToTake`
    naming the groups looked in when none of them has a ticket to take.
    """
    require(actor.roles, "ticket.take")
    if not actor.group_ids:
        raise NothingToTake("you are in no group, so no ticket is queued for you; an admin adds you to one")
    lock = session.get_bind().dialect.name == "postgresql"
    tried: set[int] = set()
    for _ in range(TAKE_NEXT_ATTEMPTS):
        found = session.execute(next_candidate(actor.group_ids, tried, lock=lock)).first()
        if found is None:
            break
        ticket_id, ref = found
        try:
            return take(session, config, actor, ref, now=now)
        except AlreadyTaken:  # someone had it after all: the next one
            tried.add(ticket_id)
    else:
        raise NothingToTake("every ticket tried was taken by someone else at the same moment; try again")
    groups = ", ".join(sorted(actor.group_codes))
    raise NothingToTake(f"nothing unassigned in your groups ({groups})")
