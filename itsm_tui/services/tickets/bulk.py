"""Acting on many tickets at once: one action applied to each ticket of a marked set, each in a transaction
of its own, through the same service function (guards, versions, audit) as the single action.

A refusal of one ticket (a :class:`ServiceError`) leaves the others to go on: the result lists the tickets
done and those refused with the service's own words. Anything else (the database failing) stops the run
with :class:`BulkStopped`, which carries what was done before it. Nothing here knows of a screen: the queue
and the command line both call :func:`apply_each`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from itsm_tui.models import TICKET_STATUSES, Group, Ticket
from itsm_tui.services.errors import ServiceError, ValidationError
from itsm_tui.services.tickets.guards import TicketFacts, allowed_transitions
from itsm_tui.text import strip_control

MARK_LIMIT = 500
"""The most tickets one bulk action takes on (the queue's ``*`` refuses a filter holding more)."""

SessionFactory = Callable[[], AbstractContextManager[Session]]
BulkAction = Callable[[Session, str], object]


@dataclass(frozen=True)
class Refusal:
    ref: str
    reason: str  # the ServiceError's message, as the single action would have said it

    @property
    def said(self) -> str:
        """The reason as the summary says it: one line, without the reference it often starts with."""
        reason = strip_control(self.reason, single_line=True).removeprefix(f"{self.ref}: ")
        return reason.removeprefix(f"{self.ref} ")  # "INC0000012 (was changed by ...)"


@dataclass(frozen=True)
class BulkResult:
    done: tuple[str, ...]
    refused: tuple[Refusal, ...]

    @property
    def summary(self) -> str:
        """One line: ``12 done, 2 refused: INC0000012 (reason), INC0000031 (reason)``."""
        line = f"{len(self.done)} done"
        if self.refused:
            reasons = ", ".join(f"{r.ref} ({r.said})" for r in self.refused)
            line += f", {len(self.refused)} refused: {reasons}"
        return line


class BulkStopped(Exception):
    """The run stopped at ``ref`` on something other than a refusal (the original error is the cause);
    ``result`` holds what was done and refused before it, ``not_tried`` the tickets after it."""

    def __init__(self, result: BulkResult, ref: str, not_tried: tuple[str, ...]) -> None:
        self.result, self.ref, self.not_tried = result, ref, not_tried
        super().__init__(f"{result.summary}; stopped at {ref}, {len(not_tried)} not tried")


def apply_each(open_session: SessionFactory, refs: Sequence[str], action: BulkAction) -> BulkResult:
    """Apply ``action(session, ref)`` to each ref in order, each in its own ``open_session()`` transaction
    (committed when it succeeded, rolled back when refused)."""
    if len(refs) > MARK_LIMIT:
        raise ValidationError("refs", f"{len(refs)} tickets are more than {MARK_LIMIT} at once; act on fewer")
    done: list[str] = []
    refused: list[Refusal] = []
    for index, ref in enumerate(refs):
        try:
            with open_session() as session:
                action(session, ref)
        except ServiceError as exc:
            refused.append(Refusal(ref, str(exc) or type(exc).__name__))
        except Exception as exc:
            raise BulkStopped(BulkResult(tuple(done), tuple(refused)), ref, tuple(refs[index + 1 :])) from exc
        else:
            done.append(ref)
    return BulkResult(tuple(done), tuple(refused))


@dataclass(frozen=True)
class MarkedTicket:
    """A marked ticket as it stands when a bulk action starts: the versions its saves are checked against,
    and the facts its guards look at."""

    id: int
    ref: str
    version: int
    facts: TicketFacts
    group: str | None  # the code of its support group


def marked_tickets(session: Session, ids: Collection[int]) -> list[MarkedTicket]:
    """The tickets of ``ids`` (at most :data:`MARK_LIMIT`, read by primary key in one statement, their
    groups' codes by theirs), by id; a ticket that no longer exists is left out."""
    if len(ids) > MARK_LIMIT:
        raise ValidationError("refs", f"{len(ids)} tickets are more than {MARK_LIMIT} at once; act on fewer")
    if not ids:
        return []
    rows = session.execute(
        select(
            Ticket.id,
            Ticket.ref,
            Ticket.version,
            Ticket.status,
            Ticket.group_id,
            Ticket.assignee_id,
            Group.code,
        )
        .outerjoin(Group, Group.id == Ticket.group_id)
        .where(Ticket.id.in_(sorted(ids)))
        .order_by(Ticket.id)
    )
    return [
        MarkedTicket(ticket_id, ref, version, TicketFacts(status, group_id, assignee_id), group)
        for ticket_id, ref, version, status, group_id, assignee_id, group in rows
    ]


def versions_of(session: Session, refs: Collection[str]) -> dict[str, int]:
    """The version each ticket of ``refs`` (at most :data:`MARK_LIMIT`) stands at now, by reference (one
    statement along the unique index of references); a reference no ticket has is left out. What a change
    confirmed over them is checked against: a ticket changed meanwhile is refused as stale, naming who."""
    if len(refs) > MARK_LIMIT:
        raise ValidationError("refs", f"{len(refs)} tickets are more than {MARK_LIMIT} at once; act on fewer")
    if not refs:
        return {}
    rows = session.execute(select(Ticket.ref, Ticket.version).where(Ticket.ref.in_(sorted(refs))))
    return {ref: version for ref, version in rows}


def common_targets(marked: Sequence[MarkedTicket]) -> tuple[str, ...]:
    """The statuses at least one of the tickets may move to, in the lifecycle's order (a status change over
    many offers these; a ticket that may not make the move chosen is refused with the lifecycle's words)."""
    offered = {status for ticket in marked for status in allowed_transitions(ticket.facts)}
    return tuple(status for status in TICKET_STATUSES if status in offered)
