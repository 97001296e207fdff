"""Major incidents: a ticket of a major priority is announced once, to those who must act on it now.

A ticket whose priority is in ``major_incident_priorities`` (sla.toml; P1 by default) is announced, however
it came to be one (logged in a console, by ``itsm ticket create`` from a monitoring hook, or raised by an
update), to:

- the Accountable of the ``major_incident`` activity in raci.toml for the ticket's group (the group's shift
  lead; the desk's shift leads when the group has none, as for SLA breaches), whether on shift or not: the
  notification waits in their inbox;
- the group's members on shift: active members who, in the last ``on_shift_minutes`` (sla.toml, 60 by
  default), changed a ticket (an audited change of theirs) or had a record open in a console (a presence
  heartbeat). The changes are read through indexes (the tickets by their update instant, then their
  audit events by ticket); presence rows are few (a console's row goes when it closes the record).

Each person is told once, never the one who raised it. A ticket is announced once in its lifetime: a P1
downgraded and raised again, or reopened, is the same incident, and the people who were told of it know it;
paging them again for it teaches them to ignore the page. ``tickets.major_announced_at`` records it, set by
a conditional update (``IS NULL``) that only one transaction can win, as the SLA job flags its warnings, so
two consoles or two processes announcing the same ticket at once announce it once; the notifications'
``(user, event)`` uniqueness keeps each person to one notification besides. The announcement is audited on
the ticket, naming who was told, in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, true, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from itsm_tui.config import MAJOR_INCIDENT_ACTIVITY, DeskConfig
from itsm_tui.db import rowcount
from itsm_tui.models import AuditEvent, Group, GroupMembership, Presence, Ticket, User, utc_or_now
from itsm_tui.services import audit, notifications
from itsm_tui.services.users import Actor

KIND = "major_incident"


@dataclass(frozen=True)
class MajorAnnouncement:
    """A major incident just announced: the ticket and the logins told (sorted)."""

    ticket_id: int
    ref: str
    priority: int
    told: tuple[str, ...]


def is_major(config: DeskConfig, priority: int) -> bool:
    return priority in config.major_incident_priorities


def members_on_shift(session: Session, group_id: int, now: datetime, minutes: int) -> list[int]:
    """Active members of the group who changed a ticket or had a record open in a console in the last
    ``minutes`` before ``now``."""
    since = now - timedelta(minutes=minutes)
    members = (
        select(GroupMembership.user_id)
        .join(User, User.id == GroupMembership.user_id)
        .where(GroupMembership.group_id == group_id, User.active.is_(True))
    )
    # A ticket changed at some instant was updated at that instant or later, so the tickets updated since
    # ``since`` (an index range) hold every recent change; their audit events are found by ticket (an index
    # lookup each), never by a scan of the whole trail.
    recent = select(Ticket.id).where(Ticket.updated_at >= since)
    changed = select(AuditEvent.actor_id).where(
        AuditEvent.entity_type == "ticket",
        AuditEvent.entity_id.in_(recent),
        AuditEvent.at >= since,
        AuditEvent.at <= now,
        AuditEvent.actor_id.in_(members),
    )
    viewing = select(Presence.user_id).where(
        Presence.heartbeat_at >= since, Presence.heartbeat_at <= now, Presence.user_id.in_(members)
    )
    return sorted({uid for uid in session.scalars(changed.union(viewing)) if uid is not None})


def recipients(session: Session, config: DeskConfig, ticket: Ticket, now: datetime) -> list[int]:
    """Who hears of the ticket as a major incident: the Accountable for its group and its members on shift."""
    groups = [ticket.group_id] if ticket.group_id is not None else None
    accountable = notifications.users_with_roles(
        session, config.raci_roles(MAJOR_INCIDENT_ACTIVITY, "A"), groups
    )
    on_shift = (
        members_on_shift(session, ticket.group_id, now, config.on_shift_minutes)
        if ticket.group_id is not None
        else []
    )
    return sorted(set(accountable) | set(on_shift))


def announce_major(
    session: Session, config: DeskConfig, ticket: Ticket, actor: Actor | None, now: datetime | None = None
) -> MajorAnnouncement | None:
    """Announce the ticket as a major incident if its priority is a major one and it never was announced.

    Call it where a ticket is logged and wherever its priority may have been raised (``actor`` None: the
    system); it does nothing for a ticket of another priority, a closed one, or one announced before.
    Returns what it announced, or None.
    """
    now = utc_or_now(now)
    if not is_major(config, ticket.priority) or not ticket.is_open or ticket.major_announced_at is not None:
        return None
    session.flush()  # the ticket's pending changes (a new priority) are what the claim below reads
    claimed = rowcount(
        session.execute(
            update(Ticket)
            .where(
                Ticket.id == ticket.id,
                Ticket.major_announced_at.is_(None),
                Ticket.is_open == true(),
                Ticket.priority.in_(sorted(config.major_incident_priorities)),
            )
            .values(major_announced_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if not claimed:  # another transaction announced it first (or changed it since it was read)
        return None
    set_committed_value(ticket, "major_announced_at", now)
    actor_id = actor.id if actor is not None else None
    told_ids = [uid for uid in recipients(session, config, ticket, now) if uid != actor_id]
    logins = dict(session.execute(select(User.id, User.login).where(User.id.in_(told_ids))).tuples().all())
    told = tuple(sorted(logins[uid] for uid in told_ids))
    group = session.scalar(select(Group.code).where(Group.id == ticket.group_id)) or "no group"
    by = f", by {actor.name}" if actor is not None else ""
    notifications.notify(
        session,
        told_ids,
        kind=KIND,
        event_key=f"major:{ticket.id}",
        entity=("ticket", ticket.id),
        message=f"Major incident {ticket.ref} (P{ticket.priority}, {group}{by}): {ticket.title}",
        now=now,
        exclude=actor_id,
    )
    audit.record_for(
        session, "ticket", ticket, actor_id, now, "announce", KIND, ", ".join(told) if told else "nobody"
    )
    return MajorAnnouncement(ticket.id, ticket.ref, ticket.priority, told)
