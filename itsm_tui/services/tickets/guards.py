"""What a user may do with a ticket: one guard per action, the only place where its rules are written.

A guard takes the acting user and a ticket's :class:`TicketFacts` and returns, or raises the refusal: a
:class:`PermissionDenied` naming the role that may, a :class:`ValidationError` naming the status that
would allow it, or :class:`AlreadyTaken` for a take of a ticket someone else has. Each service function
calls its action's guard before it looks at its inputs, and :func:`available_actions` asks the very same
guards, so what a screen offers is what the services allow, and a refusal reads the same in both places.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from itsm_tui.models import OPEN_STATUSES, SatisfactionRating, Ticket
from itsm_tui.services.access import PERMISSIONS, PermissionDenied, has_permission
from itsm_tui.services.errors import ServiceError, ValidationError
from itsm_tui.services.tickets.reading import TicketView
from itsm_tui.services.users import Actor

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("assigned", "in_progress", "cancelled"),
    "assigned": ("in_progress", "cancelled"),
    "in_progress": ("pending", "resolved", "cancelled"),
    "pending": ("in_progress", "resolved", "cancelled"),
    "resolved": ("in_progress", "closed"),
    "closed": (),
    "cancelled": (),
}
RATEABLE = ("resolved", "closed")

ACTIONS = (
    "take",
    "assign",
    "escalate",
    "escalate_lead",
    "reply",
    "note",
    "transition",
    "edit",
    "link",
    "apply_workaround",
    "resolve",
    "reopen",
    "cancel",
    "rate",
)


@dataclass(frozen=True)
class TicketFacts:
    """What the guards look at, the same ids whether read from a live ticket or from a :class:`TicketView`.

    ``rated`` is only looked up where a rating could be given (resolved or closed): elsewhere no rule reads
    it, and a live ticket's services are spared the query.
    """

    status: str
    group_id: int | None
    assignee_id: int | None
    rated: bool = False

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @classmethod
    def of(cls, ticket: Ticket | TicketView | TicketFacts) -> TicketFacts:
        """The facts of a ticket; a live one's rating is read through its session (none when detached)."""
        if isinstance(ticket, TicketFacts):
            return ticket
        rateable = ticket.status in RATEABLE
        if isinstance(ticket, TicketView):
            rated = rateable and ticket.rating is not None
            return cls(ticket.status, ticket.group_id, ticket.assignee_id, rated)
        session = object_session(ticket) if rateable else None
        rated = session is not None and ticket.id is not None and _has_rating(session, ticket.id)
        return cls(ticket.status, ticket.group_id, ticket.assignee_id, rated)


def _has_rating(session: Session, ticket_id: int) -> bool:
    stmt = select(SatisfactionRating.id).where(SatisfactionRating.ticket_id == ticket_id)
    return session.scalar(stmt) is not None


def allowed_transitions(ticket: Ticket | TicketView | TicketFacts) -> tuple[str, ...]:
    """The statuses a ticket may move to from its current one (``assigned`` only once it has an assignee)."""
    if isinstance(ticket, TicketView):
        # A view names its assignee by login and by id: either says that the ticket has one.
        unassigned = ticket.assignee_id is None and ticket.assignee is None
    else:
        unassigned = ticket.assignee_id is None
    return tuple(
        status for status in TRANSITIONS.get(ticket.status, ()) if not (status == "assigned" and unassigned)
    )


def move_action(current: str, to_status: str) -> str:
    """The action of :data:`ACTIONS` a status change amounts to: its guard decides who may make it."""
    if to_status == "cancelled":
        return "cancel"
    if current == "resolved" and to_status == "in_progress":
        return "reopen"
    if to_status == "resolved":
        return "resolve"
    return "transition"


# --------------------------------------------------------------------------- the refusals

Guard = Callable[[Actor, TicketFacts], None]


def _needs(permission: str) -> str:
    roles = PERMISSIONS[permission][0]
    names = " or ".join(roles) if len(roles) <= 2 else ", ".join(roles[:-1]) + " or " + roles[-1]
    return f"needs the role {names}"


def _permit(actor: Actor, permission: str) -> None:
    if not has_permission(actor.roles, permission):
        raise PermissionDenied(permission, actor.roles, _needs(permission))


def _work(actor: Actor, facts: TicketFacts) -> None:
    """Support roles work on tickets assigned to them or queued in their groups; shift leads on any."""
    _permit(actor, "ticket.work")
    if actor.has_role("shift_lead") or facts.assignee_id == actor.id or facts.group_id in actor.group_ids:
        return
    raise PermissionDenied(
        "ticket.work", actor.roles, "queued for another group and not yours; a shift_lead may"
    )


def _status(message: str, field: str = "status") -> ValidationError:
    return ValidationError(field, message)


def _closed(facts: TicketFacts) -> ValidationError:
    return _status(f"the ticket is {facts.status}")


# --------------------------------------------------------------------------- one guard per action


class AlreadyTaken(ServiceError):
    """Someone else has the ticket. A take never reassigns one, a shift lead's no more than anyone's: only
    the explicit assign does, naming the new assignee (``editing.take`` names who has it)."""


def guard_take(actor: Actor, facts: TicketFacts) -> None:
    """Take an open ticket if it is still unassigned (one's own already: nothing to do), from one's own
    groups; a shift lead from any group."""
    _permit(actor, "ticket.take")
    if not facts.is_open:
        raise _closed(facts)
    if facts.assignee_id == actor.id:
        return
    lead = actor.has_role("shift_lead")
    if facts.assignee_id is not None:
        raise AlreadyTaken(
            "assigned to someone else; assign reassigns it"
            if lead
            else "assigned to someone else; a shift_lead may reassign it"
        )
    if not lead and facts.group_id not in actor.group_ids:
        raise PermissionDenied(
            "ticket.assign_others", actor.roles, "queued for another group; a shift_lead may assign it to you"
        )


def guard_assign(actor: Actor, facts: TicketFacts) -> None:
    """Assign an open ticket to someone else (or to another group)."""
    _permit(actor, "ticket.assign_others")
    if not facts.is_open:
        raise _closed(facts)


def guard_escalate(actor: Actor, facts: TicketFacts) -> None:
    """Hand an open ticket one works on to another group, or call its shift lead."""
    _permit(actor, "ticket.escalate")
    _work(actor, facts)
    if not facts.is_open:
        raise _closed(facts)


def guard_escalate_lead(actor: Actor, facts: TicketFacts) -> None:
    """Tell the shift lead why an open ticket needs them (a hierarchical escalation): whoever may escalate
    the ticket may."""
    guard_escalate(actor, facts)


def guard_reply(actor: Actor, facts: TicketFacts) -> None:
    """Write a public reply (any status: a requester may still ask about a closed ticket)."""
    _work(actor, facts)


def guard_note(actor: Actor, facts: TicketFacts) -> None:
    """Write an internal work note."""
    _work(actor, facts)


def guard_transition(actor: Actor, facts: TicketFacts) -> None:
    """Change the status (the target's own rules come from the lifecycle and the move's action)."""
    _work(actor, facts)
    if not allowed_transitions(facts):
        raise _status(f"no status change from {facts.status}")


def guard_edit(actor: Actor, facts: TicketFacts) -> None:
    """Edit the fields of an open ticket."""
    _work(actor, facts)
    if not facts.is_open:
        raise _status(f"the ticket is {facts.status}; reopen it before editing")


def guard_link(actor: Actor, facts: TicketFacts) -> None:
    """Link a ticket to a problem, known error, article, change or ticket (whoever works on it or not)."""
    _permit(actor, "ticket.link")


def guard_apply_workaround(actor: Actor, facts: TicketFacts) -> None:
    """Apply a known error's workaround: a link and a work note."""
    guard_link(actor, facts)
    _work(actor, facts)


def guard_resolve(actor: Actor, facts: TicketFacts) -> None:
    """Resolve a ticket in progress or pending."""
    if "resolved" not in TRANSITIONS.get(facts.status, ()):
        raise _status("not in progress yet") if facts.is_open else _closed(facts)
    _work(actor, facts)


def guard_resolve_by_problem(actor: Actor, facts: TicketFacts) -> None:
    """Resolve an open incident with the permanent fix of the resolved problem it is linked to: whoever
    may work the ticket, or a problem manager (``problem.own``) for any such ticket. Not an action a ticket
    offers; the problem's resolution does (``problems.resolve_linked_incidents``)."""
    if not facts.is_open or facts.status == "resolved":
        raise _closed(facts) if not facts.is_open else _status("resolved already")
    if has_permission(actor.roles, "problem.own"):
        return
    _work(actor, facts)


def guard_reopen(actor: Actor, facts: TicketFacts) -> None:
    """Reopen a resolved ticket."""
    _permit(actor, "ticket.reopen")
    if facts.status != "resolved":
        raise _status("not resolved")
    _work(actor, facts)


def guard_cancel(actor: Actor, facts: TicketFacts) -> None:
    """Cancel a ticket not yet resolved."""
    _permit(actor, "ticket.cancel")
    if "cancelled" not in TRANSITIONS.get(facts.status, ()):
        raise _closed(facts)
    _work(actor, facts)


def guard_rate(actor: Actor, facts: TicketFacts) -> None:
    """Record the requester's satisfaction, once, with a resolved or closed ticket."""
    _permit(actor, "ticket.rate")
    if facts.status not in RATEABLE:
        raise _status("not resolved", "score")
    if facts.rated:
        raise _status("it already has a rating", "score")


GUARDS: dict[str, Guard] = {
    "take": guard_take,
    "assign": guard_assign,
    "escalate": guard_escalate,
    "escalate_lead": guard_escalate_lead,
    "reply": guard_reply,
    "note": guard_note,
    "transition": guard_transition,
    "edit": guard_edit,
    "link": guard_link,
    "apply_workaround": guard_apply_workaround,
    "resolve": guard_resolve,
    "reopen": guard_reopen,
    "cancel": guard_cancel,
    "rate": guard_rate,
}


# How a refusal names what was tried ("You may not reply to INC0000123: ...").
_TRIED = {
    "take": "take",
    "assign": "assign",
    "escalate": "escalate",
    "escalate_lead": "call the shift lead to",
    "reply": "reply to",
    "note": "add a note to",
    "transition": "change the status of",
    "edit": "edit",
    "link": "link",
    "apply_workaround": "apply a workaround to",
    "resolve": "resolve",
    "reopen": "reopen",
    "cancel": "cancel",
    "rate": "rate",
}
_ACTION_OF = {guard: action for action, guard in GUARDS.items()}


def enforce(guard: Guard, actor: Actor, ticket: Ticket) -> None:
    """Refuse unless ``actor`` passes ``guard`` on ``ticket``: the refusal's ``reason`` is what
    :func:`available_actions` offers; its message adds the ticket and, for a missing permission, the roles
    the actor has."""
    try:
        guard(actor, TicketFacts.of(ticket))
    except PermissionDenied as refusal:
        have = ", ".join(sorted(actor.roles)) or "no role"
        tried = _TRIED[_ACTION_OF[guard]]
        raise refusal.explained(
            f"You may not {tried} {ticket.ref}: {refusal.reason} (you have {have})."
        ) from None
    except ServiceError as refusal:
        raise refusal.explained(f"{ticket.ref}: {refusal.reason}") from None


def available_actions(actor: Actor, ticket: Ticket | TicketView | TicketFacts) -> dict[str, str | None]:
    """For each action of :data:`ACTIONS`: None if ``actor`` may do it on ``ticket`` now, else why not.

    The answer of each action's guard, the one its service function calls: the reason is the message that
    function's refusal carries (it names the role that may, or the status that would allow it).
    """
    facts = TicketFacts.of(ticket)
    result: dict[str, str | None] = {}
    for action in ACTIONS:
        try:
            GUARDS[action](actor, facts)
        except ServiceError as refusal:
            result[action] = refusal.reason
        else:
            result[action] = None
    return result


def _situations(actor: Actor) -> list[TicketFacts]:
    """Tickets in every status, unassigned, the actor's own and someone else's, queued in one of the
    actor's groups, in none and in another: every case a guard tells apart."""
    groups = [None, -1, *sorted(actor.group_ids)[:1]]
    return [
        TicketFacts(status, group_id, assignee_id)
        for status in TRANSITIONS
        for assignee_id in (None, actor.id, -1)
        for group_id in groups
    ]


def role_actions(actor: Actor) -> dict[str, str | None]:
    """For each action of :data:`ACTIONS`: None if ``actor`` may do it to some ticket, else why never (the
    refusal of its guard, which names the role that may). What a screen without one ticket in view, such
    as the queue, offers: the very guards decide, over every situation they tell apart."""
    situations = _situations(actor)
    result: dict[str, str | None] = {}
    for action in ACTIONS:
        reason: str | None = None
        for facts in situations:
            try:
                GUARDS[action](actor, facts)
            except PermissionDenied as refusal:
                reason = reason or refusal.reason
            except ServiceError:
                continue
            else:
                reason = None
                break
        else:
            reason = reason or "never open to you"
        result[action] = reason
    return result
