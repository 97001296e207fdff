"""Incidents and service requests: lifecycle, priority, assignment, replies and notes, links, resolution.

Every function takes a session, the validated configuration and the acting user; every mutation writes its
audit events in the same session, and a save based on a stale version is refused (:class:`StaleEdit`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, tzinfo

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from itsm_tui.config import KINDS, LEVELS, DeskConfig
from itsm_tui.models import (
    OPEN_STATUSES,
    Change,
    Counter,
    Group,
    GroupMembership,
    KnowledgeArticle,
    KnownError,
    Link,
    Problem,
    SatisfactionRating,
    Ticket,
    TicketEntry,
    User,
    utc_or_now,
    utcnow,
)
from itsm_tui.services import audit, kpi, notifications, sla
from itsm_tui.services.access import PERMISSIONS, PermissionDenied, has_permission, require
from itsm_tui.services.errors import InvalidTransition, NotFound, StaleEdit, ValidationError
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
PENDING_REASONS = ("customer", "vendor", "change")
PREFIX = {"incident": "INC", "request": "REQ"}
TITLE_MAX = 200

# Link targets by reference prefix.
LINK_TARGETS = {
    "PRB": ("problem", Problem),
    "KE": ("known_error", KnownError),
    "KB": ("article", KnowledgeArticle),
    "CHG": ("change", Change),
    "INC": ("ticket", Ticket),
    "REQ": ("ticket", Ticket),
}


# --------------------------------------------------------------------------- references


def next_reference(session: Session, prefix: str) -> str:
    """Allocate the next reference (INC0000001 ...) inside the caller's transaction."""
    # One upsert, so two first tickets of a kind created at once cannot both insert the counter row.
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(Counter).values(name=prefix, value=1)
    stmt = stmt.on_conflict_do_update(index_elements=[Counter.name], set_={"value": Counter.value + 1})
    value = session.execute(stmt.returning(Counter.value)).scalar_one()
    return f"{prefix}{value:07d}"


# --------------------------------------------------------------------------- reading


def get_ticket(session: Session, ref: str, *, for_update: bool = False) -> Ticket:
    stmt = select(Ticket).where(Ticket.ref == ref.strip().upper())
    if for_update:
        stmt = stmt.with_for_update()
    ticket = session.scalar(stmt)
    if ticket is None:
        raise NotFound(f"no ticket {ref!r}; `itsm ticket list` shows the tickets")
    return ticket


@dataclass
class TicketView:
    """A ticket as plain data, for screens and JSON (no lazy loading outside the session)."""

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

    def as_json(self) -> dict:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return data


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
        select(
            Ticket.id,
            Ticket.ref,
            Ticket.priority,
            Ticket.status,
            Ticket.title,
            Ticket.requester,
            Group.code.label("group"),
            User.login.label("assignee"),
            Ticket.opened_at,
            Ticket.resolution_due_at,
        )
        .outerjoin(Group, Group.id == Ticket.group_id)
        .outerjoin(User, User.id == Ticket.assignee_id)
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


# --------------------------------------------------------------------------- helpers


def _now(now: datetime | None) -> datetime:
    return utc_or_now(now)


def _check_version(session: Session, ticket: Ticket, expected_version: int | None) -> None:
    if expected_version is not None and ticket.version != expected_version:
        last = audit.last_change(session, "ticket", ticket.id)
        who, when = last if last else (None, None)
        raise StaleEdit(ticket.ref, expected_version, ticket.version, who, when)


def _flush(session: Session, ticket: Ticket, expected_version: int | None) -> None:
    """Write the changes now; a concurrent save that won the race turns into :class:`StaleEdit`."""
    ticket_id, ref, loaded_version = ticket.id, ticket.ref, ticket.version  # expired once the flush fails
    days = (ticket.opened_at, ticket.resolved_at)
    try:
        session.flush()  # first, so that a lost race is caught here and nowhere else
        kpi.mark_dirty(session, *days)
    except StaleDataError:
        # This session must be rolled back by its owner; read who won the race through a fresh one
        # (a reader: on SQLite the writer's BEGIN IMMEDIATE would wait for this very transaction).
        reader = session.get_bind().execution_options(sqlite_begin="DEFERRED")
        with Session(bind=reader) as fresh:
            current = fresh.scalar(select(Ticket.version).where(Ticket.id == ticket_id)) or 0
            last = audit.last_change(fresh, "ticket", ticket_id)
        who, when = last if last else (None, None)
        raise StaleEdit(ref, expected_version or loaded_version, current, who, when) from None


def _set(
    session: Session,
    ticket: Ticket,
    field: str,
    value,
    actor: Actor | None,
    now: datetime,
    action: str = "update",
) -> bool:
    """Set a field and audit it (``actor`` None: the system); assignee and group are audited by name."""
    actor_id = actor.id if actor is not None else None
    if field not in ("assignee_id", "group_id"):
        return audit.set_field(session, ticket, "ticket", field, value, actor_id, now, action)
    old = getattr(ticket, field)
    if old == value:
        return False
    model, label = (User, User.login) if field == "assignee_id" else (Group, Group.code)

    def name(row_id):
        return None if row_id is None else session.scalar(select(label).where(model.id == row_id))

    setattr(ticket, field, value)
    audit.record(
        session,
        entity_type="ticket",
        entity_id=ticket.id,
        actor_id=actor_id,
        at=now,
        action=action,
        field=field.removesuffix("_id"),
        old=name(old),
        new=name(value),
    )
    return True


def _touch(ticket: Ticket, now: datetime) -> None:
    ticket.updated_at = now


def _group_by_code(session: Session, code: str) -> Group:
    group = session.scalar(select(Group).where(func.lower(Group.code) == code.strip().lower()))
    if group is None:
        known = ", ".join(session.scalars(select(Group.code).order_by(Group.code)))
        raise ValidationError("group", f"unknown group {code!r}; groups are: {known}")
    return group


def _user_by_login(session: Session, login: str) -> User:
    user = session.scalar(select(User).where(User.login == login.strip()))
    if user is None or not user.active:
        raise ValidationError("assignee", f"no active user {login!r}; `itsm user list` shows the users")
    return user


def _require_worker(actor: Actor, ticket: Ticket, action: str = "work on") -> None:
    """Support roles may work on tickets assigned to them or queued in their groups; shift leads on any."""
    require(actor.roles, "ticket.work")
    if actor.has_role("shift_lead") or ticket.assignee_id == actor.id:
        return
    if ticket.group_id in actor.group_ids:
        return
    raise PermissionDenied(
        "ticket.work",
        actor.roles,
        f"You may not {action} {ticket.ref}: it is queued for another group and not assigned to you. "
        f"A shift_lead may, or can reassign it to you.",
    )


def _validate_level(field: str, value: str) -> str:
    value = (value or "").strip().lower()
    if value not in LEVELS:
        raise ValidationError(field, f"{field} must be one of {', '.join(LEVELS)}, not {value!r}")
    return value


def _validate_classification(
    config: DeskConfig, kind: str, category: str | None, service: str | None, ci: str | None
) -> tuple[str | None, str | None, str | None]:
    if category:
        category = category.strip().lower()
        if category not in config.categories[kind]:
            raise ValidationError(
                "category",
                f"unknown {kind} category {category!r}; use one of {', '.join(config.categories[kind])}",
            )
    if ci:
        ci = ci.strip()
        owner = config.service_for_ci(ci)
        if owner is None:
            raise ValidationError("ci", f"unknown configuration item {ci!r}")
        if service and service.strip().lower() != owner.code:
            raise ValidationError(
                "ci", f"configuration item {ci!r} belongs to service {owner.code!r}, not {service!r}"
            )
        service = owner.code
    if service:
        service = service.strip().lower()
        if service not in config.services:
            raise ValidationError(
                "service", f"unknown service {service!r}; use one of {', '.join(config.services)}"
            )
    return category or None, service or None, ci or None


def _mark_responded(session: Session, ticket: Ticket, actor: Actor, now: datetime) -> None:
    if ticket.responded_at is None:
        _set(session, ticket, "responded_at", now, actor, now, action="sla")


# --------------------------------------------------------------------------- creating


def create_ticket(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    *,
    title: str,
    kind: str = "incident",
    description: str = "",
    impact: str = "medium",
    urgency: str = "medium",
    requester: str,
    category: str | None = None,
    service: str | None = None,
    ci: str | None = None,
    group: str | None = None,
    opened_at: datetime | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Log a new incident or request; priority comes from the matrix, SLA targets from its policy."""
    require(actor.roles, "ticket.create")
    now = _now(now)
    kind = (kind or "").strip().lower()
    if kind not in KINDS:
        raise ValidationError("kind", f"kind must be incident or request, not {kind!r}")
    title = (title or "").strip()
    if not title:
        raise ValidationError("title", "a title is required (one line saying what is wrong or wanted)")
    if len(title) > TITLE_MAX:
        raise ValidationError("title", f"the title is {len(title)} characters; keep it within {TITLE_MAX}")
    requester = (requester or "").strip()
    if not requester:
        raise ValidationError("requester", "a requester is required (who reported it)")
    impact = _validate_level("impact", impact)
    urgency = _validate_level("urgency", urgency)
    category, service, ci = _validate_classification(config, kind, category, service, ci)
    if opened_at is not None:
        opened_at = _now(opened_at)
        if opened_at > now:
            raise ValidationError("opened_at", "the opening instant lies in the future")
    else:
        opened_at = now
    group_row = _group_by_code(session, group) if group else _default_group(session, config)
    ticket = Ticket(
        ref=next_reference(session, PREFIX[kind]),
        kind=kind,
        title=title,
        description=description or "",
        requester=requester,
        category=category,
        service=service,
        ci=ci,
        impact=impact,
        urgency=urgency,
        priority=config.priority_for(impact, urgency),
        status="new",
        is_open=True,
        group_id=group_row.id,
        created_by_id=actor.id,
        opened_at=opened_at,
        updated_at=now,
        paused_seconds=0,
        reopen_count=0,
        escalation_count=0,
        reassignment_count=0,
    )
    sla.retarget(ticket, config)
    session.add(ticket)
    session.flush()
    kpi.mark_dirty(session, ticket.opened_at)
    audit.record(
        session,
        entity_type="ticket",
        entity_id=ticket.id,
        actor_id=actor.id,
        at=now,
        action="create",
        field="status",
        new="new",
    )
    audit.record(
        session,
        entity_type="ticket",
        entity_id=ticket.id,
        actor_id=actor.id,
        at=now,
        action="create",
        field="priority",
        new=ticket.priority,
    )
    audit.record(
        session,
        entity_type="ticket",
        entity_id=ticket.id,
        actor_id=actor.id,
        at=now,
        action="create",
        field="group",
        new=group_row.code,
    )
    return ticket


def _default_group(session: Session, config: DeskConfig) -> Group:
    first_line = next(g for g in config.groups.values() if g.level == 1)
    return _group_by_code(session, first_line.code)


# --------------------------------------------------------------------------- editing


def update_fields(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
    **changes,
) -> Ticket:
    """Edit title, description, requester, category, service, CI, impact or urgency (priority follows)."""
    allowed = {"title", "description", "requester", "category", "service", "ci", "impact", "urgency"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(sorted(unknown)[0], f"cannot edit {', '.join(sorted(unknown))} this way")
    now = _now(now)
    ticket = get_ticket(session, ref)
    _check_version(session, ticket, expected_version)
    _require_worker(actor, ticket, "edit")
    if not ticket.is_open:
        raise ValidationError("status", f"{ticket.ref} is {ticket.status}; reopen it before editing")
    changes = {k: v for k, v in changes.items() if v is not None}
    if "title" in changes:
        title = changes["title"].strip()
        if not title or len(title) > TITLE_MAX:
            raise ValidationError("title", f"a title is required, at most {TITLE_MAX} characters")
        changes["title"] = title
    if "requester" in changes and not changes["requester"].strip():
        raise ValidationError("requester", "a requester is required")
    for level in ("impact", "urgency"):
        if level in changes:
            changes[level] = _validate_level(level, changes[level])
    if {"category", "service", "ci"} & set(changes):
        category, service, ci = _validate_classification(
            config,
            ticket.kind,
            changes.get("category", ticket.category),
            changes.get("service", ticket.service if "ci" not in changes else None),
            changes.get("ci", ticket.ci if "service" not in changes else None),
        )
        changes.update(category=category, service=service, ci=ci)
    changed = False
    for field, value in changes.items():
        changed |= _set(session, ticket, field, value, actor, now)
    priority = config.priority_for(ticket.impact, ticket.urgency)
    if priority != ticket.priority:
        _set(session, ticket, "priority", priority, actor, now)
        sla.retarget(ticket, config)  # from the original start, paused time kept out
        changed = True
    if changed:
        _touch(ticket, now)
        _flush(session, ticket, expected_version)
    return ticket


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
    """Assign a ticket. Without ``assignee`` (or with one's own login) it is a take."""
    now = _now(now)
    ticket = get_ticket(session, ref)
    _check_version(session, ticket, expected_version)
    if not ticket.is_open:
        raise ValidationError("status", f"{ticket.ref} is {ticket.status}; only open tickets are assigned")
    target_user = _user_by_login(session, assignee) if assignee else session.get(User, actor.id)
    target_group = _group_by_code(session, group) if group else None
    taking = target_user.id == actor.id and target_group is None
    if taking:
        require(actor.roles, "ticket.take")
        if not actor.has_role("shift_lead"):
            if ticket.assignee_id not in (None, actor.id):
                raise PermissionDenied(
                    "ticket.assign_others",
                    actor.roles,
                    f"{ticket.ref} is already assigned to someone else; only a shift_lead may reassign it.",
                )
            if ticket.group_id not in actor.group_ids:
                raise PermissionDenied(
                    "ticket.assign_others",
                    actor.roles,
                    f"{ticket.ref} is queued for another group; agents take tickets of "
                    f"their own groups; a shift_lead may assign it to you.",
                )
    else:
        require(actor.roles, "ticket.assign_others")
    group_id = target_group.id if target_group else ticket.group_id
    member_groups = set(
        session.scalars(select(GroupMembership.group_id).where(GroupMembership.user_id == target_user.id))
    )
    if group_id not in member_groups:
        if taking and actor.has_role("shift_lead") and member_groups:
            group_id = sorted(member_groups)[0] if ticket.group_id not in member_groups else ticket.group_id
        else:
            code = session.get(Group, group_id).code
            raise ValidationError(
                "assignee",
                f"{target_user.login} is not a member of group {code}; choose a member or another group",
            )
    if group_id != ticket.group_id:
        _set(session, ticket, "group_id", group_id, actor, now, action="assign")
        ticket.reassignment_count += 1
    if _set(session, ticket, "assignee_id", target_user.id, actor, now, action="assign"):
        notifications.notify(
            session,
            [target_user.id],
            kind="assigned",
            event_key=f"assigned:{ticket.id}:{ticket.reassignment_count}:{now.isoformat()}",
            entity=("ticket", ticket.id),
            message=f"{ticket.ref} (P{ticket.priority}) assigned to you by {actor.name}: {ticket.title}",
            now=now,
            exclude=actor.id,
        )
    if ticket.status == "new":
        _set(session, ticket, "status", "assigned", actor, now, action="transition")
    _mark_responded(session, ticket, actor, now)
    _touch(ticket, now)
    _flush(session, ticket, expected_version)
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
    require(actor.roles, "ticket.escalate")
    now = _now(now)
    ticket = get_ticket(session, ref)
    _check_version(session, ticket, expected_version)
    _require_worker(actor, ticket, "escalate")
    if not ticket.is_open:
        raise ValidationError("status", f"{ticket.ref} is {ticket.status}; only open tickets are escalated")
    if not (reason or "").strip():
        raise ValidationError("reason", "say why the ticket is escalated (it goes into the work notes)")
    if group is None:
        service = config.services.get(ticket.service or "")
        current = session.get(Group, ticket.group_id)
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

    Writes a work note and an audit event and notifies; returns how many people were told.
    """
    require(actor.roles, "ticket.escalate")
    now = _now(now)
    ticket = get_ticket(session, ref)
    _require_worker(actor, ticket, "escalate")
    if not ticket.is_open:
        raise ValidationError("status", f"{ticket.ref} is {ticket.status}; only open tickets are escalated")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("text", "say why the shift lead is needed")
    leads = notifications.users_with_roles(
        session,
        config.raci_roles("functional_escalation", "A"),
        [ticket.group_id] if ticket.group_id else None,
    )
    session.add(
        TicketEntry(
            ticket_id=ticket.id,
            author_id=actor.id,
            kind="note",
            body=f"Escalated to the shift lead: {reason}",
            created_at=now,
        )
    )
    audit.record(
        session,
        entity_type="ticket",
        entity_id=ticket.id,
        actor_id=actor.id,
        at=now,
        action="escalate",
        field="hierarchical",
        new=reason,
    )
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
    _touch(ticket, now)
    _flush(session, ticket, None)
    return told


def move_to_group(
    session: Session,
    config: DeskConfig,
    ticket: Ticket,
    target: Group,
    actor: Actor | None,
    reason: str,
    now: datetime,
) -> None:
    """Hand a ticket to another group's queue (unassigned, status new), audited, noted and notified.

    Used by a person's escalation and by the SLA job's functional escalation (``actor`` None).
    """
    if ticket.paused_at is not None and ticket.status == "pending":
        sla.resume(ticket, config, now)
    _set(session, ticket, "group_id", target.id, actor, now, action="escalate")
    _set(session, ticket, "assignee_id", None, actor, now, action="escalate")
    _set(session, ticket, "status", "new", actor, now, action="escalate")
    _set(session, ticket, "pending_reason", None, actor, now, action="escalate")
    ticket.escalation_count += 1
    ticket.reassignment_count += 1
    session.add(
        TicketEntry(
            ticket_id=ticket.id,
            author_id=actor.id if actor else None,
            kind="note",
            body=f"Escalated to {target.code}: {reason}",
            created_at=now,
        )
    )
    _touch(ticket, now)
    by = f" by {actor.name}" if actor else ""
    notifications.notify(
        session,
        notifications.group_leads(session, [target.id]) or notifications.group_members(session, [target.id]),
        kind="escalated",
        event_key=f"escalated:{ticket.id}:{ticket.escalation_count}",
        entity=("ticket", ticket.id),
        message=f"{ticket.ref} (P{ticket.priority}) escalated to {target.code}{by}: {ticket.title}",
        now=now,
        exclude=actor.id if actor else None,
    )


def add_entry(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    body: str,
    public: bool,
    now: datetime | None = None,
) -> TicketEntry:
    """Add a public reply (``public``) or an internal work note. A first public reply is the response."""
    now = _now(now)
    ticket = get_ticket(session, ref)
    _require_worker(actor, ticket, "reply to" if public else "add a note to")
    body = (body or "").strip()
    if not body:
        raise ValidationError("body", "the text is empty")
    entry = TicketEntry(
        ticket_id=ticket.id, author_id=actor.id, kind="reply" if public else "note", body=body, created_at=now
    )
    session.add(entry)
    session.flush()
    audit.record(
        session,
        entity_type="ticket",
        entity_id=ticket.id,
        actor_id=actor.id,
        at=now,
        action="reply" if public else "note",
        field="entry",
        new=entry.id,
    )
    if public:
        _mark_responded(session, ticket, actor, now)
    _touch(ticket, now)
    _flush(session, ticket, None)
    return entry


def transition(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    to_status: str,
    *,
    reason: str | None = None,
    code: str | None = None,
    note: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Move a ticket along its lifecycle; illegal moves are refused naming the allowed ones.

    ``pending`` needs a reason (customer, vendor, change); ``resolved`` needs a code and a note;
    ``cancelled`` needs a reason; ``in_progress`` from ``resolved`` is a reopen (reason required).
    """
    now = _now(now)
    to_status = (to_status or "").strip().lower()
    ticket = get_ticket(session, ref)
    _check_version(session, ticket, expected_version)
    current = ticket.status
    allowed = TRANSITIONS.get(current, ())
    if to_status not in allowed:
        raise InvalidTransition(ticket.ref, current, to_status, allowed)

    if to_status == "cancelled":
        require(actor.roles, "ticket.cancel")
    elif current == "resolved" and to_status == "in_progress":
        require(actor.roles, "ticket.reopen")
    _require_worker(actor, ticket, "change the status of")
    reopening = current == "resolved" and to_status == "in_progress"
    code, note, reason = _transition_inputs(ticket, config, to_status, reopening, code, note, reason)

    # Everything is checked; from here on the changes are made.
    if to_status == "in_progress" and not reopening and ticket.assignee_id is None:
        _set(session, ticket, "assignee_id", actor.id, actor, now, action="assign")
        _mark_responded(session, ticket, actor, now)
    if to_status == "pending":
        _set(session, ticket, "pending_reason", reason, actor, now, action="transition")
        sla.pause(ticket, now)
    elif current == "pending":
        _set(session, ticket, "pending_reason", None, actor, now, action="transition")
        if to_status in ("in_progress", "resolved"):  # the pause ends: its time moves the due instants
            sla.resume(ticket, config, now)
    if to_status == "resolved":
        _set(session, ticket, "resolution_code", code, actor, now, action="resolve")
        _set(session, ticket, "resolution_note", note, actor, now, action="resolve")
        _set(session, ticket, "resolved_at", now, actor, now, action="resolve")
        ticket.resolution_business_seconds = int(
            sla.policy_clock(config, ticket.priority).elapsed(ticket.opened_at, now)
        )
        _mark_responded(session, ticket, actor, now)
        sla.pause(ticket, now)
    elif to_status == "cancelled":
        _set(session, ticket, "cancelled_at", now, actor, now, action="cancel")
        session.add(
            TicketEntry(
                ticket_id=ticket.id,
                author_id=actor.id,
                kind="note",
                body=f"Cancelled: {reason.strip()}",
                created_at=now,
            )
        )
    elif to_status == "closed":
        _set(session, ticket, "closed_at", now, actor, now, action="close")
    elif reopening:
        ticket.reopen_count += 1  # a new resolution cycle: its warning and breach are new events
        ticket.resolution_warned_at = ticket.resolution_breached_at = None
        kpi.mark_dirty(session, ticket.resolved_at)  # the day it had been resolved loses it
        ticket.resolution_business_seconds = None
        for field in ("resolved_at", "resolution_code", "resolution_note"):
            _set(session, ticket, field, None, actor, now, action="reopen")
        sla.resume(ticket, config, now, restart=config.reopen_restarts_resolution)
        session.add(
            TicketEntry(
                ticket_id=ticket.id,
                author_id=actor.id,
                kind="note",
                body=f"Reopened: {reason.strip()}",
                created_at=now,
            )
        )

    _set(session, ticket, "status", to_status, actor, now, action="transition")
    ticket.is_open = to_status in OPEN_STATUSES
    _touch(ticket, now)
    _flush(session, ticket, expected_version)
    return ticket


def _transition_inputs(
    ticket: Ticket,
    config: DeskConfig,
    to_status: str,
    reopening: bool,
    code: str | None,
    note: str | None,
    reason: str | None,
) -> tuple[str | None, str | None, str | None]:
    """Check what a transition needs before anything changes; return the cleaned code, note and reason."""
    reason = (reason or "").strip() or None
    if to_status == "assigned" and ticket.assignee_id is None:
        raise ValidationError("assignee", f"assign {ticket.ref} to someone first (take it or assign it)")
    if to_status == "pending":
        reason = (reason or "").lower()
        if reason not in PENDING_REASONS:
            raise ValidationError("reason", f"pending needs a reason: {', '.join(PENDING_REASONS)}")
    elif to_status == "resolved":
        code = (code or "").strip().lower()
        if code not in config.resolution_codes:
            raise ValidationError(
                "code", f"resolving needs a resolution code: {', '.join(config.resolution_codes)}"
            )
        note = (note or "").strip()
        if not note:
            raise ValidationError("note", "resolving needs a resolution note saying what was done")
    elif to_status == "cancelled" and not reason:
        raise ValidationError("reason", "cancelling needs a reason (e.g. duplicate of INC0000123)")
    elif reopening and not reason:
        raise ValidationError("reason", "reopening needs a reason (what is still wrong)")
    return code, note, reason


def resolve(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    code: str,
    note: str,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    return transition(
        session,
        config,
        actor,
        ref,
        "resolved",
        code=code,
        note=note,
        expected_version=expected_version,
        now=now,
    )


def reopen(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    reason: str,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    return transition(
        session, config, actor, ref, "in_progress", reason=reason, expected_version=expected_version, now=now
    )


def cancel(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    reason: str,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    return transition(
        session, config, actor, ref, "cancelled", reason=reason, expected_version=expected_version, now=now
    )


def close(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    return transition(session, config, actor, ref, "closed", expected_version=expected_version, now=now)


def link(session: Session, actor: Actor, ref: str, target_ref: str, now: datetime | None = None) -> Link:
    """Link a ticket to a problem, known error, knowledge article, change or another ticket."""
    require(actor.roles, "ticket.link")
    now = _now(now)
    ticket = get_ticket(session, ref)
    target_ref = (target_ref or "").strip().upper()
    prefix = target_ref.rstrip("0123456789")
    if prefix not in LINK_TARGETS:
        raise ValidationError(
            "target", f"{target_ref!r} is not a reference to link (PRB, KE, KB, CHG, INC, REQ)"
        )
    target_type, model = LINK_TARGETS[prefix]
    target_id = session.scalar(select(model.id).where(model.ref == target_ref))
    if target_id is None:
        raise NotFound(f"no record {target_ref!r} to link to")
    if target_type == "ticket" and target_id == ticket.id:
        raise ValidationError("target", "a ticket cannot be linked to itself")
    exists = session.scalar(
        select(Link.id).where(
            Link.source_type == "ticket",
            Link.source_id == ticket.id,
            Link.target_type == target_type,
            Link.target_id == target_id,
        )
    )
    if exists:
        raise ValidationError("target", f"{ticket.ref} is already linked to {target_ref}")
    row = Link(
        source_type="ticket",
        source_id=ticket.id,
        target_type=target_type,
        target_id=target_id,
        created_by_id=actor.id,
        created_at=now,
    )
    session.add(row)
    audit.record(
        session,
        entity_type="ticket",
        entity_id=ticket.id,
        actor_id=actor.id,
        at=now,
        action="link",
        field="link",
        new=target_ref,
    )
    _touch(ticket, now)
    _flush(session, ticket, None)
    return row


def links_of(session: Session, ticket: Ticket) -> list[str]:
    """References of everything linked from a ticket."""
    refs = []
    for target_type, target_id in session.execute(
        select(Link.target_type, Link.target_id)
        .where(Link.source_type == "ticket", Link.source_id == ticket.id)
        .order_by(Link.id)
    ):
        model = next(m for t, m in LINK_TARGETS.values() if t == target_type)
        refs.append(session.scalar(select(model.ref).where(model.id == target_id)))
    return refs


def rate(
    session: Session,
    actor: Actor,
    ref: str,
    *,
    score: int,
    comment: str | None = None,
    now: datetime | None = None,
) -> SatisfactionRating:
    """Record the requester's satisfaction (1-5) with a resolved or closed ticket."""
    require(actor.roles, "ticket.rate")
    now = _now(now)
    ticket = get_ticket(session, ref)
    if ticket.status not in ("resolved", "closed"):
        raise ValidationError("score", f"{ticket.ref} is {ticket.status}; ratings are for resolved tickets")
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise ValidationError("score", "the rating is a whole number from 1 (poor) to 5 (excellent)")
    if session.scalar(select(SatisfactionRating.id).where(SatisfactionRating.ticket_id == ticket.id)):
        raise ValidationError("score", f"{ticket.ref} already has a rating")
    rating = SatisfactionRating(
        ticket_id=ticket.id, score=score, comment=comment, rated_at=now, recorded_by_id=actor.id
    )
    session.add(rating)
    audit.record(
        session,
        entity_type="ticket",
        entity_id=ticket.id,
        actor_id=actor.id,
        at=now,
        action="rate",
        field="rating",
        new=score,
    )
    _touch(ticket, now)
    kpi.mark_dirty(session, now)  # the rating counts on the day it was given
    _flush(session, ticket, None)
    return rating


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
    kind: str  # reply | note | audit
    by: str
    text: str


def timeline(
    session: Session, ticket: Ticket, limit: int = 200, zone: tzinfo | None = None
) -> list[TimelineItem]:
    """Replies, work notes and audit events of a ticket, newest first (the newest ``limit`` of each);
    with ``zone``, times in audited values read in that zone (they are stored in UTC)."""
    names: dict[int | None, str] = {None: "system"}

    def who(user_id: int | None) -> str:
        if user_id not in names:
            names[user_id] = session.scalar(select(User.login).where(User.id == user_id)) or f"#{user_id}"
        return names[user_id]

    items = [
        TimelineItem(e.created_at, e.kind, who(e.author_id), e.body) for e in entries(session, ticket, limit)
    ]
    for event in audit.history(session, "ticket", ticket.id, limit):
        change = f"{audit.shown_value(event.old_value, zone)} -> {audit.shown_value(event.new_value, zone)}"
        items.append(
            TimelineItem(
                event.at, "audit", who(event.actor_id), f"{event.action} {event.field or ''}: {change}"
            )
        )
    items.sort(key=lambda item: item.at, reverse=True)
    return items


def find_ticket_by_id(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket with id {ticket_id}")
    return ticket


# --------------------------------------------------------------------------- what a user may do


ACTIONS = (
    "take",
    "assign",
    "escalate",
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


def _needs(permission: str) -> str:
    roles = PERMISSIONS[permission][0]
    names = " or ".join(roles) if len(roles) <= 2 else ", ".join(roles[:-1]) + " or " + roles[-1]
    return f"needs the role {names}"


def allowed_transitions(ticket: Ticket | TicketView) -> tuple[str, ...]:
    """The statuses a ticket may move to from its current one (``assigned`` only once it has an assignee)."""
    unassigned = (
        ticket.assignee_id is None
        if isinstance(ticket, Ticket)
        else getattr(ticket, "assignee", None) is None
    )
    return tuple(
        status for status in TRANSITIONS.get(ticket.status, ()) if not (status == "assigned" and unassigned)
    )


def available_actions(actor: Actor, ticket: Ticket | TicketView) -> dict[str, str | None]:
    """For each action of :data:`ACTIONS`: None if ``actor`` may do it on ``ticket`` now, else why not.

    The same rules as the functions above (which still enforce them); the reason names the role that may,
    or the status that would allow it. Accepts a live :class:`Ticket` or a :class:`TicketView`.
    """
    if isinstance(ticket, Ticket):
        mine = ticket.assignee_id == actor.id
        unassigned = ticket.assignee_id is None
        in_my_groups = ticket.group_id in actor.group_ids
        rated = False
    else:
        mine = ticket.assignee is not None and ticket.assignee == actor.login
        unassigned = ticket.assignee is None
        in_my_groups = ticket.group is not None and ticket.group in actor.group_codes
        rated = ticket.rating is not None
    status = ticket.status
    is_open = status in OPEN_STATUSES
    lead = actor.has_role("shift_lead")
    closed_reason = f"the ticket is {status}"

    def worker() -> str | None:
        if not has_permission(actor.roles, "ticket.work"):
            return _needs("ticket.work")
        if lead or mine or in_my_groups:
            return None
        return "queued for another group and not yours; a shift_lead may"

    work = worker()
    result: dict[str, str | None] = {}

    if not has_permission(actor.roles, "ticket.take"):
        result["take"] = _needs("ticket.take")
    elif not is_open:
        result["take"] = closed_reason
    elif mine:
        result["take"] = "it is already yours"
    elif not lead and not unassigned:
        result["take"] = "assigned to someone else; a shift_lead may reassign it"
    elif not lead and not in_my_groups:
        result["take"] = "queued for another group; a shift_lead may assign it to you"
    else:
        result["take"] = None

    if not has_permission(actor.roles, "ticket.assign_others"):
        result["assign"] = _needs("ticket.assign_others")
    else:
        result["assign"] = None if is_open else closed_reason

    if not has_permission(actor.roles, "ticket.escalate"):
        result["escalate"] = _needs("ticket.escalate")
    else:
        result["escalate"] = work or (None if is_open else closed_reason)

    result["reply"] = work
    result["note"] = work
    targets = allowed_transitions(ticket)
    result["transition"] = work or (None if targets else f"no status change from {status}")
    result["edit"] = work or (None if is_open else f"{closed_reason}; reopen it before editing")
    result["link"] = None if has_permission(actor.roles, "ticket.link") else _needs("ticket.link")
    result["apply_workaround"] = result["link"] or work

    if "resolved" not in TRANSITIONS.get(status, ()):
        result["resolve"] = "not in progress yet" if is_open else closed_reason
    else:
        result["resolve"] = work

    if not has_permission(actor.roles, "ticket.reopen"):
        result["reopen"] = _needs("ticket.reopen")
    elif status != "resolved":
        result["reopen"] = "not resolved"
    else:
        result["reopen"] = work

    if not has_permission(actor.roles, "ticket.cancel"):
        result["cancel"] = _needs("ticket.cancel")
    elif "cancelled" not in TRANSITIONS.get(status, ()):
        result["cancel"] = closed_reason
    else:
        result["cancel"] = work

    if not has_permission(actor.roles, "ticket.rate"):
        result["rate"] = _needs("ticket.rate")
    elif status not in ("resolved", "closed"):
        result["rate"] = "not resolved"
    elif rated:
        result["rate"] = "it already has a rating"
    else:
        result["rate"] = None
    return result
