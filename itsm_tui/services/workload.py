"""Who holds the open work: open tickets counted by assignee (or by group), priority and SLA state, and the
members of a group with their open counts (the assign form's picker).

Each is one statement over the open tickets, read through the partial indexes on them (``is_open``): the
counts come out of one GROUP BY, whose rows are at most people (or groups) x priorities x states, whatever
the number of tickets; the names are joined to those few rows only.

The SLA state is the resolution target's, as the KPI board and the queue's ``sla:`` filter count it:
``paused`` while the clocks stand still (pending), else ``breached`` once due, ``warning`` once past the
warning instant, else ``ok`` (a ticket without a resolution target counts as ``ok``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, literal, select, true
from sqlalchemy.orm import Session

from itsm_tui.models import Group, GroupMembership, Ticket, User

SLA_STATES = ("ok", "warning", "breached", "paused")
BY = ("assignee", "group")
MEMBER_LIMIT = 500  # a group's members shown in the assign form's picker at most


@dataclass(frozen=True)
class WorkloadRow:
    """One person's (or group's) open tickets; ``key`` None is the unassigned (or group-less) row."""

    by: str  # "assignee" or "group"
    key: str | None  # the login or the group's code
    name: str  # the person's or the group's name ("Unassigned", "No group")
    by_priority: dict[int, int] = field(default_factory=dict)
    by_state: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_priority.values())

    @property
    def filter_text(self) -> str | None:
        """The queue filter showing these tickets (the grammar of services.queue.parse_filter); None for the
        group-less tickets, which no filter picks out."""
        if self.by == "assignee":
            return f"assignee:{self.key or 'none'}"
        return f"group:{self.key}" if self.key is not None else None


UNASSIGNED = "Unassigned"
NO_GROUP = "No group"


@dataclass(frozen=True)
class Workload:
    by: str  # "assignee" or "group"
    rows: list[WorkloadRow]
    now: datetime

    @property
    def total(self) -> int:
        return sum(row.total for row in self.rows)


def sla_state_of(now: datetime):
    """The SQL expression of an open ticket's SLA state at ``now`` (see the module's docstring)."""
    return case(
        (Ticket.paused_at.is_not(None), literal("paused")),
        (Ticket.resolution_due_at <= now, literal("breached")),
        (Ticket.resolution_warn_at <= now, literal("warning")),
        else_=literal("ok"),
    )


def workload(session: Session, now: datetime, by: str = "assignee") -> Workload:
    """The open tickets counted by assignee (``by="assignee"``) or group, priority and SLA state, the busiest
    first; the unassigned (group-less) tickets are a row of their own, first."""
    if by not in BY:
        raise ValueError(f"workload by {by!r}: use assignee or group")
    owner = Ticket.assignee_id if by == "assignee" else Ticket.group_id
    state = sla_state_of(now).label("state")
    counts = (
        select(owner.label("owner"), Ticket.priority.label("priority"), state, func.count().label("n"))
        .where(Ticket.is_open == true())
        .group_by(owner, Ticket.priority, state)
        .subquery()
    )
    if by == "assignee":
        names = select(counts, User.login.label("key"), User.name.label("name")).outerjoin(
            User, User.id == counts.c.owner
        )
    else:
        names = select(counts, Group.code.label("key"), Group.name.label("name")).outerjoin(
            Group, Group.id == counts.c.owner
        )
    found: dict[str | None, tuple[str, dict[int, int], dict[str, int]]] = {}
    for row in session.execute(names):
        key = row.key if row.owner is not None else None
        name = row.name if key is not None else (UNASSIGNED if by == "assignee" else NO_GROUP)
        _, priorities, states = found.setdefault(key, (name, {}, {}))
        priorities[row.priority] = priorities.get(row.priority, 0) + row.n
        states[row.state] = states.get(row.state, 0) + row.n
    rows = [
        WorkloadRow(by, key, name, priorities, states) for key, (name, priorities, states) in found.items()
    ]
    rows.sort(key=lambda r: (r.key is not None, -r.total, (r.key or "").lower()))
    return Workload(by, rows, now)


@dataclass(frozen=True)
class Member:
    """A member of a group, with the open tickets assigned to them (in any group)."""

    login: str
    name: str
    open: int
    is_lead: bool = False


def group_members(session: Session, group: str) -> list[Member]:
    """The active members of the group ``group`` (its code, any case) with their open tickets, the least
    loaded first (then by login); [] for no such group. One statement: the members joined to their open
    tickets through the open-assignee index."""
    open_tickets = (Ticket.assignee_id == User.id) & (Ticket.is_open == true())
    statement = (
        select(User.login, User.name, func.count(Ticket.id), GroupMembership.is_lead)
        .join(GroupMembership, GroupMembership.user_id == User.id)
        .join(Group, Group.id == GroupMembership.group_id)
        .outerjoin(Ticket, open_tickets)
        .where(func.lower(Group.code) == group.lower(), User.active == true())
        .group_by(User.id, User.login, User.name, GroupMembership.is_lead)
        .order_by(func.count(Ticket.id), User.login)
        .limit(MEMBER_LIMIT)
    )
    return [Member(login, name, count, bool(lead)) for login, name, count, lead in session.execute(statement)]


def filter_members(members: list[Member], typed: str) -> list[Member]:
    """The members whose login or name holds every word of ``typed`` (any case), in their order."""
    words = typed.lower().split()
    return [m for m in members if all(w in m.login.lower() or w in m.name.lower() for w in words)]
