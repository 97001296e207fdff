"""What the ticket mutations share: the clock, stale saves, audited field changes, lookups and validation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itsm_tui.config import LEVELS, DeskConfig
from itsm_tui.models import Group, Ticket, TicketEntry, User, utc_or_now
from itsm_tui.services import audit, kpi, versions
from itsm_tui.services.errors import NotFound, ValidationError
from itsm_tui.services.inputs import known_service
from itsm_tui.services.tickets.guards import Guard, enforce
from itsm_tui.services.tickets.reading import get_ticket
from itsm_tui.services.users import Actor

TITLE_MAX = 200


def _now(now: datetime | None) -> datetime:
    return utc_or_now(now)


def _check_version(session: Session, ticket: Ticket, expected_version: int | None) -> None:
    versions.check_version(session, "ticket", ticket, expected_version)


def _flush(session: Session, ticket: Ticket, expected_version: int | None) -> None:
    """Write the changes now (a lost race is :class:`StaleEdit`), then mark the ticket's KPI days."""
    days = (ticket.opened_at, ticket.resolved_at)
    versions.flush(session, "ticket", ticket, expected_version)
    kpi.mark_dirty(session, *days)


def _load(session: Session, ref: str, expected_version: int | None) -> Ticket:
    """The ticket to change, refused as stale unless it is still the version the caller saw (if given).

    Row-locked on PostgreSQL, so that two writers of one ticket take turns, and always in one order: the
    ticket's row first, then its audit head (taken as the audit rows are flushed), as a take's claim does
    too; two writers that took them the other way round would deadlock. A ticket this session had read
    before keeps what it read (the lock does not refresh it): the version check at flush then refuses a
    save based on that older read.
    """
    ticket = get_ticket(session, ref, for_update=True)
    _check_version(session, ticket, expected_version)
    return ticket


def _guarded(
    session: Session, actor: Actor, ref: str, guard: Guard, expected_version: int | None = None
) -> Ticket:
    """The ticket an action is taken on: as :func:`_load`, then refused unless ``actor`` passes the action's
    guard (before any input is looked at)."""
    ticket = _load(session, ref, expected_version)
    enforce(guard, actor, ticket)
    return ticket


def _save(session: Session, ticket: Ticket, now: datetime, expected_version: int | None) -> None:
    """The end of a change to a ticket: it was updated at ``now``, and the changes are written."""
    _touch(ticket, now)
    _flush(session, ticket, expected_version)


def _set(
    session: Session,
    ticket: Ticket,
    field: str,
    value: object,
    actor: Actor | None,
    now: datetime,
    action: str = "update",
) -> bool:
    """Set a field and audit it (``actor`` None: the system); assignee and group are audited by name."""
    actor_id = actor.id if actor is not None else None
    if field not in ("assignee_id", "group_id"):
        return audit.set_field(session, ticket, "ticket", field, value, actor_id, now, action)

    def name(row_id: object) -> str | None:
        if row_id is None:
            return None
        if field == "assignee_id":
            return session.scalar(select(User.login).where(User.id == row_id))
        return session.scalar(select(Group.code).where(Group.id == row_id))

    def names(old: object, new: object) -> tuple[str | None, str | None]:
        # Names read nothing this change touches: no flush for them, so that the change and whatever
        # follows it are written as one versioned UPDATE (one version bump per action).
        with session.no_autoflush:
            return name(old), name(new)

    return audit.set_field(session, ticket, "ticket", field, value, actor_id, now, action, names)


def _work_note(session: Session, ticket: Ticket, actor: Actor | None, now: datetime, body: str) -> None:
    """An internal work note on the ticket (``actor`` None: written by the system)."""
    session.add(
        TicketEntry(
            ticket_id=ticket.id,
            author_id=actor.id if actor is not None else None,
            kind="note",
            body=body,
            created_at=now,
        )
    )


def _touch(ticket: Ticket, now: datetime) -> None:
    ticket.updated_at = now


def _group_by_code(session: Session, code: str) -> Group:
    group = session.scalar(select(Group).where(func.lower(Group.code) == code.strip().lower()))
    if group is None:
        known = ", ".join(session.scalars(select(Group.code).order_by(Group.code)))
        raise ValidationError("group", f"unknown group {code!r}; groups are: {known}")
    return group


def _group_code(session: Session, group_id: int | None) -> str:
    """The code of a ticket's group (``-`` for none), for messages."""
    group = session.get(Group, group_id) if group_id is not None else None
    return group.code if group is not None else "-"


def _actor_user(session: Session, actor: Actor) -> User:
    """The acting user's own row."""
    user = session.get(User, actor.id)
    if user is None:
        raise NotFound(f"no user {actor.login!r}; `itsm user list` shows the users")
    return user


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
        service = known_service(config, service)
    return category or None, service or None, ci or None


def _mark_responded(session: Session, ticket: Ticket, actor: Actor, now: datetime) -> None:
    if ticket.responded_at is None:
        _set(session, ticket, "responded_at", now, actor, now, action="sla")
