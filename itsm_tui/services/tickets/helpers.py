"""What the ticket mutations share: the clock, stale saves, audited field changes, lookups and validation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from itsm_tui.config import LEVELS, DeskConfig
from itsm_tui.models import Group, Ticket, User, utc_or_now
from itsm_tui.services import audit, kpi
from itsm_tui.services.errors import NotFound, StaleEdit, ValidationError
from itsm_tui.services.users import Actor

TITLE_MAX = 200


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
    value: object,
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

    def name(row_id: object) -> str | None:
        if row_id is None:
            return None
        if field == "assignee_id":
            return session.scalar(select(User.login).where(User.id == row_id))
        return session.scalar(select(Group.code).where(Group.id == row_id))

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


def _group_code(session: Session, group_id: int | None) -> str:
    """The code of a ticket's group (``-`` for none), for messages."""
    group = session.get(Group, group_id) if group_id is not None else None
    return group.code if group is not None else "-"


def _user_by_login(session: Session, login: str) -> User:
    user = session.scalar(select(User).where(User.login == login.strip()))
    if user is None or not user.active:
        raise ValidationError("assignee", f"no active user {login!r}; `itsm user list` shows the users")
    return user


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
        service = service.strip().lower()
        if service not in config.services:
            raise ValidationError(
                "service", f"unknown service {service!r}; use one of {', '.join(config.services)}"
            )
    return category or None, service or None, ci or None


def _mark_responded(session: Session, ticket: Ticket, actor: Actor, now: datetime) -> None:
    if ticket.responded_at is None:
        _set(session, ticket, "responded_at", now, actor, now, action="sla")
