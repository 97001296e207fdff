"""Working on a ticket: editing its fields, taking and assigning it, escalating it, replies and work notes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.db import rowcount
from itsm_tui.models import AuditEvent, Group, GroupMembership, Ticket, TicketEntry, User, utc_or_now
from itsm_tui.services import audit, notifications, sla, versions
from itsm_tui.services.access import has_permission
from itsm_tui.services.errors import ValidationError
from itsm_tui.services.inputs import active_user
from itsm_tui.services.tickets.guards import (
    AlreadyTaken,
    enforce,
    guard_assign,
    guard_edit,
    guard_escalate,
    guard_escalate_lead,
    guard_note,
    guard_reply,
    guard_take,
)
from itsm_tui.services.tickets.helpers import (
    TITLE_MAX,
    _actor_user,
    _flush,
    _group_by_code,
    _group_code,
    _guarded,
    _mark_responded,
    _now,
    _save,
    _set,
    _touch,
    _validate_classification,
    _validate_level,
    _work_note,
)
from itsm_tui.services.tickets.major import announce_major
from itsm_tui.services.tickets.reading import get_ticket
from itsm_tui.services.users import Actor

EDITABLE = ("title", "description", "requester", "category", "service", "ci", "impact", "urgency")


def update_fields(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
    **changes: str | None,
) -> Ticket:
    """Edit title, description, requester, category, service, CI, impact or urgency (priority follows)."""
    now = _now(now)
    ticket = _guarded(session, actor, ref, guard_edit, expected_version)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValidationError(sorted(unknown)[0], f"cannot edit {', '.join(sorted(unknown))} this way")
    values = {k: v for k, v in changes.items() if v is not None}
    if "title" in values:
        title = values["title"].strip()
        if not title or len(title) > TITLE_MAX:
            raise ValidationError("title", f"a title is required, at most {TITLE_MAX} characters")
        values["title"] = title
    if "requester" in values and not values["requester"].strip():
        raise ValidationError("requester", "a requester is required")
    for level in ("impact", "urgency"):
        if level in values:
            values[level] = _validate_level(level, values[level])
    classified: dict[str, str | None] = dict(values)
    if {"category", "service", "ci"} & set(values):
        category, service, ci = _validate_classification(
            config,
            ticket.kind,
            values.get("category", ticket.category),
            values.get("service", ticket.service if "ci" not in values else None),
            values.get("ci", ticket.ci if "service" not in values else None),
        )
        classified.update(category=category, service=service, ci=ci)
    changed = False
    for field, value in classified.items():
        changed |= _set(session, ticket, field, value, actor, now)
    priority = config.priority_for(ticket.impact, ticket.urgency)
    if priority != ticket.priority:
        _set(session, ticket, "priority", priority, actor, now)
        with session.no_autoflush:  # it reads the pauses only: the edit is written in one UPDATE below
            sla.retarget(ticket, config)  # from the original start, paused time kept out
        changed = True
    if changed:
        _save(session, ticket, now, expected_version)
        announce_major(session, config, ticket, actor, now)  # raised to a major priority: announced once
    return ticket


TAKE_ATTEMPTS = 3
"""How often a take looks again at a ticket that changed (but stayed unassigned) between reading it and
claiming it, before it gives up as a lost race (PostgreSQL only: SQLite writers queue)."""
JUST_NOW = timedelta(minutes=2)
"""An assignment this recent is told as "a moment ago" (else by its time)."""


def take(
    session: Session, config: DeskConfig, actor: Actor, ref: str, *, now: datetime | None = None
) -> Ticket:
    """Take a ticket if it is still unassigned; one that is already the actor's is left as it is.

    The database decides between people taking the same ticket at once, lead or agent alike: one
    conditional UPDATE claims it only while it has no assignee and is still the version read here, so
    exactly one taker wins; everyone else is refused with :class:`AlreadyTaken` naming who has it and
    writes nothing (no audit row, no notification). A take needs no expected version: whatever else
    changed, it only ever takes a ticket nobody has. The taker is not notified of their own take.
    """
    now = _now(now)
    for _ in range(TAKE_ATTEMPTS):
        ticket = get_ticket(session, ref)
        try:
            enforce(guard_take, actor, ticket)
        except AlreadyTaken as refusal:
            raise refusal.explained(_taken_message(session, ticket, actor, now)) from None
        if ticket.assignee_id == actor.id:
            return ticket  # already the actor's: nothing to write
        me = _actor_user(session, actor)
        group_id = _taking_group(session, actor, ticket, me)
        if _claim(session, ticket, me.id):
            break
        session.expire(ticket)  # changed since it was read (taken, or edited): look at it again
    else:
        raise versions.raced(session, "ticket", ticket)
    # The ticket is this transaction's now (its row is locked on PostgreSQL; SQLite has one writer): the
    # assignment and what goes with it are written as any change, in one versioned UPDATE that follows.
    if group_id != ticket.group_id:
        _set(session, ticket, "group_id", group_id, actor, now, action="assign")
        ticket.reassignment_count += 1
    _set(session, ticket, "assignee_id", me.id, actor, now, action="assign")
    if ticket.status == "new":
        _set(session, ticket, "status", "assigned", actor, now, action="transition")
    _mark_responded(session, ticket, actor, now)
    _save(session, ticket, now, None)
    return ticket


def _claim(session: Session, ticket: Ticket, user_id: int) -> bool:
    """The one statement that decides a take: the ticket becomes ``user_id``'s only if it still has no
    assignee and is still the version read (so still what the guard passed). On PostgreSQL a rival's
    UPDATE of the row waits for this transaction and then finds the condition false."""
    session.flush()  # what this session changed before is written (and versioned) first
    claimed = session.execute(
        update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.assignee_id.is_(None), Ticket.version == ticket.version)
        .values(assignee_id=user_id)
        .execution_options(synchronize_session=False)
    )
    # The in-session ticket still shows no assignee: setting it below audits the change and writes it with
    # the version bump (the same value again in this very row).
    return rowcount(claimed) == 1


def _taking_group(session: Session, actor: Actor, ticket: Ticket, user: User) -> int | None:
    """The group a take leaves the ticket in: its own, unless a shift lead takes it from a group they are
    not in (then their first group). The guard has seen to everyone else's being one of theirs."""
    member_groups = set(
        session.scalars(select(GroupMembership.group_id).where(GroupMembership.user_id == user.id))
    )
    if ticket.group_id in member_groups:
        return ticket.group_id
    if actor.has_role("shift_lead") and member_groups:
        return sorted(member_groups)[0]
    raise ValidationError(
        "assignee",
        f"{user.login} is not a member of group {_group_code(session, ticket.group_id)}; "
        f"choose a member or another group",
    )


def _taken_message(session: Session, ticket: Ticket, actor: Actor, now: datetime) -> str:
    """Who has the ticket and since when, for a take that came too late."""
    holder = session.get(User, ticket.assignee_id)
    holder_name = f"{holder.name} ({holder.login})" if holder else "someone else"
    last = session.execute(
        select(AuditEvent.at, AuditEvent.actor_id, User.name, User.login)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .where(
            AuditEvent.entity_type == "ticket",
            AuditEvent.entity_id == ticket.id,
            AuditEvent.field == "assignee",
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(1)
    ).first()
    if last is None:
        told = f"{ticket.ref} is assigned to {holder_name}"
    else:
        ago = (
            "a moment ago"
            if abs(now - utc_or_now(last.at)) <= JUST_NOW
            else f"at {last.at:%Y-%m-%d %H:%M} UTC"
        )
        if last.actor_id == ticket.assignee_id:
            told = f"{ticket.ref} was taken by {holder_name} {ago}"
        else:
            by = f"{last.name} ({last.login})" if last.login else "the system"
            told = f"{ticket.ref} was assigned to {holder_name} by {by} {ago}"
    hint = " (assign reassigns it)" if actor.has_role("shift_lead") else ""
    return f"{told}; it is not yours{hint}"


def _is_take(actor: Actor, assignee: str | None, group: str | None) -> bool:
    """Whether an assignment is a take: no assignee and no group, or naming oneself without the right to
    assign (a shift lead naming themselves assigns explicitly, over whoever has the ticket)."""
    if group:
        return False
    if not assignee:
        return True
    return assignee.strip() == actor.login and not has_permission(actor.roles, "ticket.assign_others")


def assign(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    assignee: str | None = None,
    group: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Assign a ticket to ``assignee`` (and/or ``group``): the explicit assign, the only way a ticket
    someone has goes to someone else. Without either (or naming oneself without the right to assign
    others) it is a :func:`take`.

    Version-checked: an assign based on a version that is no longer the ticket's is refused as stale. The
    new assignee is told, and so is the previous one that it is no longer theirs (not the one assigning).
    """
    if _is_take(actor, assignee, group):
        return take(session, config, actor, ref, now=now)
    now = _now(now)
    ticket = _guarded(session, actor, ref, guard_assign, expected_version)
    target_user = active_user(session, assignee, "assignee") if assignee else _actor_user(session, actor)
    target_group = _group_by_code(session, group) if group else None
    group_id = target_group.id if target_group else ticket.group_id
    member_groups = set(
        session.scalars(select(GroupMembership.group_id).where(GroupMembership.user_id == target_user.id))
    )
    if group_id not in member_groups:
        raise ValidationError(
            "assignee",
            f"{target_user.login} is not a member of group {_group_code(session, group_id)}; "
            f"choose a member or another group",
        )
    previous = session.get(User, ticket.assignee_id) if ticket.assignee_id is not None else None
    if group_id != ticket.group_id:
        _set(session, ticket, "group_id", group_id, actor, now, action="assign")
        ticket.reassignment_count += 1
    reassigned = _set(session, ticket, "assignee_id", target_user.id, actor, now, action="assign")
    if ticket.status == "new":
        _set(session, ticket, "status", "assigned", actor, now, action="transition")
    _mark_responded(session, ticket, actor, now)
    _save(session, ticket, now, expected_version)  # the versioned UPDATE first: a stale assign tells nobody
    if reassigned:
        event = f"{ticket.id}:{ticket.reassignment_count}:{now.isoformat()}"
        notifications.notify(
            session,
            [target_user.id],
            kind="assigned",
            event_key=f"assigned:{event}",
            entity=("ticket", ticket.id),
            message=f"{ticket.ref} (P{ticket.priority}) assigned to you by {actor.name}: {ticket.title}",
            now=now,
            exclude=actor.id,
        )
        if previous is not None:  # whoever was working it hears that it has gone, to whom and by whom
            notifications.notify(
                session,
                [previous.id],
                kind="assigned",
                event_key=f"unassigned:{event}",
                entity=("ticket", ticket.id),
                message=(
                    f"{ticket.ref} (P{ticket.priority}) is no longer yours: assigned to "
                    f"{target_user.name} ({target_user.login}) by {actor.name}"
                ),
                now=now,
                exclude=actor.id,
            )
    return ticket


def escalate(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    group: str | None = None,
    reason: str,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Functional escalation: hand the ticket to another group (by default the service's support group)."""
    now = _now(now)
    ticket = _guarded(session, actor, ref, guard_escalate, expected_version)
    if not (reason or "").strip():
        raise ValidationError("reason", "say why the ticket is escalated (it goes into the work notes)")
    if group is None:
        service = config.services.get(ticket.service or "")
        current = session.get(Group, ticket.group_id) if ticket.group_id is not None else None
        if service is None or (current is not None and current.code == service.support_group):
            raise ValidationError("group", "name the group to escalate to (e.g. --group NET-L2)")
        group = service.support_group
    target = _group_by_code(session, group)
    if target.id == ticket.group_id:
        raise ValidationError("group", f"{ticket.ref} is already with {target.code}")
    move_to_group(session, config, ticket, target, actor, reason.strip(), now)
    _flush(session, ticket, expected_version)
    return ticket


def escalate_to_lead(
    session: Session, config: DeskConfig, actor: Actor, ref: str, *, reason: str, now: datetime | None = None
) -> int:
    """Hierarchical escalation: tell the Accountable shift lead of the ticket's group why it needs them.

    Writes a work note and an audit event and notifies; returns how many people were told. Whoever may
    escalate a ticket may call its shift lead.
    """
    now = _now(now)
    ticket = _guarded(session, actor, ref, guard_escalate_lead)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("text", "say why the shift lead is needed")
    leads = notifications.users_with_roles(
        session,
        config.raci_roles("functional_escalation", "A"),
        [ticket.group_id] if ticket.group_id else None,
    )
    _work_note(session, ticket, actor, now, f"Escalated to the shift lead: {reason}")
    audit.record_for(session, "ticket", ticket, actor.id, now, "escalate", "hierarchical", reason)
    told = notifications.notify(
        session,
        leads,
        kind="escalated",
        event_key=f"lead:{ticket.id}:{now.isoformat()}",
        entity=("ticket", ticket.id),
        message=f"{ticket.ref} (P{ticket.priority}) needs you, says {actor.name}: {reason}",
        now=now,
        exclude=actor.id,
    )
    _save(session, ticket, now, None)
    return told


def move_to_group(
    session: Session,
    config: DeskConfig,
    ticket: Ticket,
    target: Group,
    actor: Actor | None,
    reason: str,
    now: datetime,
) -> int:
    """Hand a ticket to another group's queue (unassigned, status new), audited, noted and notified.

    Used by a person's escalation and by the SLA job's functional escalation (``actor`` None). The target
    group's leads (else its members) and the person who had the ticket are told; returns how many were.
    """
    if ticket.paused_at is not None and ticket.status == "pending":
        sla.resume(ticket, config, now)
    previous_assignee = ticket.assignee_id
    _set(session, ticket, "group_id", target.id, actor, now, action="escalate")
    _set(session, ticket, "assignee_id", None, actor, now, action="escalate")
    _set(session, ticket, "status", "new", actor, now, action="escalate")
    _set(session, ticket, "pending_reason", None, actor, now, action="escalate")
    ticket.escalation_count += 1
    ticket.reassignment_count += 1
    _work_note(session, ticket, actor, now, f"Escalated to {target.code}: {reason}")
    _touch(ticket, now)
    by = f" by {actor.name}" if actor else ""
    told = notifications.notify(
        session,
        notifications.group_leads(session, [target.id]) or notifications.group_members(session, [target.id]),
        kind="escalated",
        event_key=f"escalated:{ticket.id}:{ticket.escalation_count}",
        entity=("ticket", ticket.id),
        message=f"{ticket.ref} (P{ticket.priority}) escalated to {target.code}{by}: {ticket.title}",
        now=now,
        exclude=actor.id if actor else None,
    )
    if previous_assignee is not None:  # whoever was working it hears that it has gone, and where
        told += notifications.notify(
            session,
            [previous_assignee],
            kind="escalated",
            event_key=f"escalated-away:{ticket.id}:{ticket.escalation_count}",
            entity=("ticket", ticket.id),
            message=(
                f"{ticket.ref} (P{ticket.priority}) is no longer yours: escalated to {target.code}{by}"
                f" ({reason})"
            ),
            now=now,
            exclude=actor.id if actor else None,
        )
    return told


def add_entry(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    body: str,
    public: bool,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> TicketEntry:
    """Add a public reply (``public``) or an internal work note. A first public reply is the response.

    Version-checked like every other change: a reply written to a ticket that has moved on since it was
    read (resolved meanwhile, answered by a colleague) is refused as stale rather than sent blind.
    """
    now = _now(now)
    ticket = _guarded(session, actor, ref, guard_reply if public else guard_note, expected_version)
    body = (body or "").strip()
    if not body:
        raise ValidationError("body", "the text is empty")
    entry = TicketEntry(
        ticket_id=ticket.id, author_id=actor.id, kind="reply" if public else "note", body=body, created_at=now
    )
    session.add(entry)
    session.flush()
    audit.record_for(
        session, "ticket", ticket, actor.id, now, "reply" if public else "note", "entry", entry.id
    )
    if public:
        _mark_responded(session, ticket, actor, now)
    _save(session, ticket, now, expected_version)
    return entry
