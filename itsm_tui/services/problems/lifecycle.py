"""Every step of a problem: raising it, its analysis, its moves, its links, its known error and its end.

Each step loads the problem (row-locked on PostgreSQL), checks the version the caller saw, enforces its
action's guard (:mod:`.guards`), validates its inputs, sets and audits the fields (``audit.set_field``,
entity type "problem"), notifies, and flushes (a lost race becomes ``StaleEdit``), all in the caller's
transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.constants import LEVELS
from itsm_tui.models import AuditEvent, Change, Group, KnownError, Link, Problem, Ticket, User, utc_or_now
from itsm_tui.services import audit, notifications, versions
from itsm_tui.services.errors import NotFound, ServiceError, ValidationError
from itsm_tui.services.inputs import active_user, known_service, required_title
from itsm_tui.services.problems.guards import enforce, guard_create, published_known_error
from itsm_tui.services.problems.reading import from_a_ticket, get_problem, normal_ref
from itsm_tui.services.problems.rules import (
    CAUSE_CATEGORIES,
    OPEN_STATUSES,
    STATUS_LABELS,
    TEXT_MAX,
    TITLE_MAX,
    WHY_MAX,
    WHYS_MAX,
)
from itsm_tui.services.tickets.bulk import BulkResult, apply_each
from itsm_tui.services.tickets.references import next_reference
from itsm_tui.services.users import Actor
from itsm_tui.text import strip_control

ENTITY = "problem"
LINK_MAX = 500  # incidents linked in one step

CLASSIFICATION = ("title", "description", "service", "ci", "category", "impact", "urgency")
ANALYSIS = ("root_cause", "five_whys", "cause_categories", "workaround", "permanent_fix")
FIELDS = (*CLASSIFICATION, "owner", *ANALYSIS)


# --------------------------------------------------------------------------- inputs


def _text(field: str, value: object, limit: int = TEXT_MAX) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(field, f"{field} must be text")
    text = value.strip()
    if len(text) > limit:
        raise ValidationError(field, f"{field} is {len(text)} characters; at most {limit}")
    return text or None


def _level(field: str, value: object) -> str:
    text = str(value or "").strip().lower()
    if text not in LEVELS:
        raise ValidationError(field, f"{field} is one of {', '.join(LEVELS)}, not {value!r}")
    return text


def _whys(value: object) -> str | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    lines = [strip_control(str(item), single_line=True).strip() for item in items]
    lines = [line for line in lines if line]
    if len(lines) > WHYS_MAX:
        raise ValidationError("five_whys", f"{len(lines)} whys; at most {WHYS_MAX}")
    for line in lines:
        if len(line) > WHY_MAX:
            raise ValidationError("five_whys", f"a why is {len(line)} characters; at most {WHY_MAX}")
    return "\n".join(lines) or None


def whys_of(problem: Problem) -> tuple[str, ...]:
    return tuple(line for line in (problem.five_whys or "").split("\n") if line)


def _categories(value: object) -> str | None:
    if value is None:
        return None
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    chosen: list[str] = []
    for item in items:
        word = str(item).strip().lower()
        if word not in CAUSE_CATEGORIES:
            raise ValidationError(
                "cause_categories", f"a cause category is one of {', '.join(CAUSE_CATEGORIES)}, not {item!r}"
            )
        if word not in chosen:
            chosen.append(word)
    ordered = [c for c in CAUSE_CATEGORIES if c in chosen]
    return ",".join(ordered) or None


def categories_of(problem: Problem) -> tuple[str, ...]:
    return tuple(c for c in (problem.cause_categories or "").split(",") if c)


def _category(config: DeskConfig, value: object) -> str | None:
    text = str(value or "").strip().lower()
    if not text:
        return None
    known = config.categories.get("incident", ())
    if text not in known:
        raise ValidationError("category", f"category is one of {', '.join(known)}, not {value!r}")
    return text


def _service(config: DeskConfig, value: object) -> str | None:
    text = str(value or "").strip().lower()
    return known_service(config, text) if text else None


def _ci(value: object) -> str | None:
    text = strip_control(str(value or ""), single_line=True).strip()
    if len(text) > 64:
        raise ValidationError("ci", "a CI name is at most 64 characters")
    return text or None


def _owner(session: Session, login: object) -> User | None:
    text = str(login or "").strip()
    if not text:
        return None
    user = active_user(session, text, "owner")
    if not {role.role for role in user.roles} & {"problem_manager", "support_l2", "support_l3"}:
        raise ValidationError(
            "owner",
            f"{user.login} cannot own a problem: it needs the role problem_manager, support_l2 or support_l3",
        )
    return user


# --------------------------------------------------------------------------- shared steps


def _now(now: datetime | None) -> datetime:
    return utc_or_now(now)


def _load(session: Session, ref: str, expected_version: int | None) -> Problem:
    problem = get_problem(session, ref, for_update=True)
    versions.check_version(session, ENTITY, problem, expected_version)
    return problem


def _set(
    session: Session,
    problem: Problem,
    field: str,
    value: object,
    actor: Actor,
    now: datetime,
    action: str = "update",
) -> bool:
    return audit.set_field(session, problem, ENTITY, field, value, actor.id, now, action)


def _status(session: Session, problem: Problem, to: str, actor: Actor, now: datetime) -> None:
    _set(session, problem, "status", to, actor, now, action="status")


def _flush(session: Session, problem: Problem, expected_version: int | None) -> Problem:
    versions.flush(session, ENTITY, problem, expected_version)
    return problem


def _login_names(session: Session, old: object, new: object) -> tuple[str | None, str | None]:
    logins = dict(
        session.execute(select(User.id, User.login).where(User.id.in_([i for i in (old, new) if i])))
        .tuples()
        .all()
    )
    return logins.get(old), logins.get(new)  # type: ignore[call-overload]


def _touch_ticket(session: Session, ticket_id: int, now: datetime) -> None:
    """A ticket linked or unlinked from the problem's side is saved as ``tickets.link`` saves it (its row
    locked, updated at ``now``, a new version): a save based on the version before is then refused."""
    ticket = session.scalar(
        select(Ticket)
        .where(Ticket.id == ticket_id)
        .with_for_update(of=Ticket)
        .execution_options(populate_existing=True)
    )
    if ticket is not None:
        ticket.updated_at = now


def linked_incident_ids(session: Session, problem: Problem) -> list[int]:
    return list(
        session.scalars(
            select(Link.source_id)
            .where(Link.target_type == ENTITY, Link.target_id == problem.id, from_a_ticket())
            .order_by(Link.source_id)
        )
    )


def _tell_assignees(
    session: Session, problem: Problem, actor: Actor, key: str, message: str, now: datetime
) -> int:
    """The assignees of the problem's open linked incidents are told (not whoever did it)."""
    ids = linked_incident_ids(session, problem)
    if not ids:
        return 0
    assignees = session.scalars(
        select(Ticket.assignee_id)
        .where(Ticket.id.in_(ids), Ticket.is_open, Ticket.assignee_id.is_not(None))
        .distinct()
    ).all()
    return notifications.notify(
        session,
        [a for a in assignees if a is not None],
        kind="problem",
        event_key=f"problem:{problem.id}:{key}",
        entity=(ENTITY, problem.id),
        message=message,
        now=now,
        exclude=actor.id,
    )


def _tell_raci(
    session: Session,
    config: DeskConfig,
    activity: str,
    letter: str,
    problem: Problem,
    actor: Actor,
    key: str,
    message: str,
    now: datetime,
) -> int:
    """The holders of ``letter`` for ``activity`` in raci.toml are told (not whoever did it)."""
    roles = config.raci_roles(activity, letter)
    if not roles:
        return 0
    return notifications.notify(
        session,
        notifications.users_with_roles(session, roles),
        kind="problem",
        event_key=f"problem:{problem.id}:{key}",
        entity=(ENTITY, problem.id),
        message=message,
        now=now,
        exclude=actor.id,
    )


def _tell_owner(session: Session, problem: Problem, owner_id: int, key: str, now: datetime) -> int:
    """The one made the problem's owner is told (whoever made them so is not: the callers leave them out)."""
    return notifications.notify(
        session,
        [owner_id],
        kind="problem",
        event_key=f"problem:{problem.id}:{key}",
        entity=(ENTITY, problem.id),
        message=f"{problem.ref} is yours to own: {_title_of(problem)}",
        now=now,
    )


def _one_line(text: str | None, width: int = 200) -> str:
    return strip_control(text or "", single_line=True)[:width]


def _title_of(problem: Problem) -> str:
    return strip_control(problem.title, single_line=True)


# --------------------------------------------------------------------------- raising and editing


def create_problem(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    *,
    title: str,
    description: str = "",
    service: str | None = None,
    ci: str | None = None,
    category: str | None = None,
    impact: str = "medium",
    urgency: str = "medium",
    owner: str | None = None,
    incidents: Sequence[str] = (),
    now: datetime | None = None,
) -> Problem:
    """A new problem (status new), its priority from the priority matrix; ``incidents`` linked to it."""
    now = _now(now)
    guard_create(actor)
    clean_title = required_title(title, "give the problem a title", TITLE_MAX)
    impact, urgency = _level("impact", impact), _level("urgency", urgency)
    owner_user = _owner(session, owner) if owner else None
    if owner_user is not None and owner_user.id != actor.id and not actor.has_role("problem_manager"):
        raise ValidationError("owner", "only a problem_manager gives a problem to another owner")
    service_code = _service(config, service)
    problem = Problem(
        ref=next_reference(session, "PRB"),
        title=clean_title,
        description=_text("description", description) or "",
        status="new",
        service=service_code,
        ci=_ci(ci),
        category=_category(config, category),
        impact=impact,
        urgency=urgency,
        priority=config.priority_for(impact, urgency),
        group_id=None,
        owner_id=owner_user.id if owner_user else None,
        created_by_id=actor.id,
        opened_at=now,
    )
    if service_code is not None:
        group_code = config.services[service_code].support_group
        problem.group_id = session.scalar(select(Group.id).where(Group.code == group_code))
    session.add(problem)
    session.flush()
    audit.record_for(session, ENTITY, problem, actor.id, now, "create", None, problem.ref)
    for field in ("title", "status", "priority", "service", "ci", "category"):
        value = getattr(problem, field)
        if value is not None:
            audit.record_for(session, ENTITY, problem, actor.id, now, "create", field, value)
    if owner_user is not None:
        audit.record_for(session, ENTITY, problem, actor.id, now, "create", "owner", owner_user.login)
        if owner_user.id != actor.id:
            _tell_owner(session, problem, owner_user.id, f"owner:{owner_user.id}", now)
    _tell_raci(
        session,
        config,
        "problem_identification",
        "A",
        problem,
        actor,
        "raised",
        f"{actor.login} raised {problem.ref} (P{problem.priority}): {_title_of(problem)}",
        now,
    )
    if incidents:
        _link_incidents(session, actor, problem, incidents, now)
    return _flush(session, problem, None)


def update_problem(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    changes: Mapping[str, object],
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Problem:
    """Change fields of the problem: classification ("edit"), the owner ("assign"), the analysis
    ("analyse"); each part enforced by its guard. The first root cause recorded sets ``root_cause_at``."""
    now = _now(now)
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise ValidationError(
            unknown[0], f"no problem field {unknown[0]!r}; the fields are: {', '.join(FIELDS)}"
        )
    problem = _load(session, ref, expected_version)
    keys = set(changes)
    if keys & set(CLASSIFICATION):
        enforce(session, config, actor, "edit", problem, now)
    if "owner" in keys:
        enforce(session, config, actor, "assign", problem, now)
    if keys & set(ANALYSIS):
        enforce(session, config, actor, "analyse", problem, now)
    values: dict[str, object] = {}
    for key, value in changes.items():
        if key == "title":
            values[key] = required_title(str(value or ""), "give the problem a title", TITLE_MAX)
        elif key == "description":
            values[key] = _text(key, value) or ""
        elif key == "service":
            values[key] = _service(config, value)
        elif key == "ci":
            values[key] = _ci(value)
        elif key == "category":
            values[key] = _category(config, value)
        elif key in ("impact", "urgency"):
            values[key] = _level(key, value)
        elif key == "five_whys":
            values[key] = _whys(value)
        elif key == "cause_categories":
            values[key] = _categories(value)
        elif key == "owner":
            user = _owner(session, value)
            values["owner_id"] = user.id if user else None
        else:
            values[key] = _text(key, value)
    for field, value in values.items():
        if field == "owner_id":
            changed = audit.set_field(
                session,
                problem,
                ENTITY,
                "owner_id",
                value,
                actor.id,
                now,
                "assign",
                names=lambda o, n: _login_names(session, o, n),
            )
            if changed and isinstance(value, int) and value != actor.id:
                _tell_owner(session, problem, value, f"owner:{value}:{problem.version}", now)
        else:
            _set(session, problem, field, value, actor, now, "analyse" if field in ANALYSIS else "update")
    if "impact" in values or "urgency" in values:
        _set(session, problem, "priority", config.priority_for(problem.impact, problem.urgency), actor, now)
    if problem.root_cause and problem.root_cause_at is None:
        problem.root_cause_at = now
    return _flush(session, problem, expected_version)


# --------------------------------------------------------------------------- moves


def start_investigation(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Problem:
    now = _now(now)
    problem = _load(session, ref, expected_version)
    enforce(session, config, actor, "investigate", problem, now)
    _status(session, problem, "investigating", actor, now)
    if problem.owner_id is None and actor.has_role("problem_manager", "support_l2", "support_l3"):
        audit.set_field(
            session,
            problem,
            ENTITY,
            "owner_id",
            actor.id,
            actor.id,
            now,
            "assign",
            names=lambda o, n: _login_names(session, o, n),
        )
    return _flush(session, problem, expected_version)


def start_fix(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Problem:
    now = _now(now)
    problem = _load(session, ref, expected_version)
    enforce(session, config, actor, "start_fix", problem, now)
    _status(session, problem, "fix_in_progress", actor, now)
    return _flush(session, problem, expected_version)


def resolve(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Problem:
    """The fix is in: the problem is resolved, its known error in force retired (its fix status says so), and
    the assignees of its open linked incidents told. The incidents themselves are resolved by
    :func:`resolve_linked_incidents`, each in its own transaction."""
    now = _now(now)
    problem = _load(session, ref, expected_version)
    enforce(session, config, actor, "resolve", problem, now)
    _status(session, problem, "resolved", actor, now)
    _set(session, problem, "resolved_at", now, actor, now, action="status")
    known = published_known_error(session, problem)
    if known is not None:
        _retire(session, actor, problem, known, now)
    _tell_raci(
        session,
        config,
        "problem_resolution",
        "I",
        problem,
        actor,
        f"resolved:{problem.version}:raci",
        f"{problem.ref} is resolved: {_title_of(problem)}",
        now,
    )
    _tell_assignees(
        session,
        problem,
        actor,
        f"resolved:{problem.version}",
        f"{problem.ref} is resolved, the permanent fix is in: {_one_line(problem.permanent_fix)}",
        now,
    )
    return _flush(session, problem, expected_version)


def close(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    verification: str,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Problem:
    """Closed once the fix is verified: the verification note says whether the fix stopped the incidents."""
    now = _now(now)
    problem = _load(session, ref, expected_version)
    enforce(session, config, actor, "close", problem, now)
    note = _text("verification", verification)
    if not note:
        raise ValidationError(
            "verification",
            "say how the fix was verified: did it stop the incidents? (see the incidents since the fix)",
        )
    _set(session, problem, "verification", note, actor, now, action="close")
    _status(session, problem, "closed", actor, now)
    _set(session, problem, "closed_at", now, actor, now, action="status")
    return _flush(session, problem, expected_version)


def reopen(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    reason: str,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Problem:
    """The fix did not hold: back to investigating, with the reason."""
    now = _now(now)
    problem = _load(session, ref, expected_version)
    enforce(session, config, actor, "reopen", problem, now)
    why = _text("reason", reason)
    if not why:
        raise ValidationError("reason", "say why the problem is reopened (what the fix did not stop)")
    _set(session, problem, "status_reason", why, actor, now, action="reopen")
    _status(session, problem, "investigating", actor, now)
    _set(session, problem, "resolved_at", None, actor, now, action="status")
    return _flush(session, problem, expected_version)


def _end(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    to: str,
    reason: str,
    expected_version: int | None,
    now: datetime | None,
    of: str | None = None,
) -> Problem:
    when = _now(now)
    problem = _load(session, ref, expected_version)
    enforce(session, config, actor, "cancel" if to == "cancelled" else "duplicate", problem, when)
    why = _text("reason", reason)
    if not why:
        raise ValidationError(
            "reason", f"say why the problem is {'cancelled' if to == 'cancelled' else 'a duplicate'}"
        )
    if to == "duplicate":
        original = get_problem(session, of or "")
        if original.id == problem.id:
            raise ValidationError("of", "a problem cannot be a duplicate of itself")
        if original.status not in OPEN_STATUSES and original.status != "closed":
            raise ValidationError("of", f"{original.ref} is {original.status}: name the problem that goes on")
        audit.set_field(
            session,
            problem,
            ENTITY,
            "duplicate_of_id",
            original.id,
            actor.id,
            when,
            "duplicate",
            names=lambda o, n: (None, original.ref),
        )
    _set(session, problem, "status_reason", why, actor, when, action=to)
    _status(session, problem, to, actor, when)
    _set(session, problem, "closed_at", when, actor, when, action="status")
    known = published_known_error(session, problem)
    if known is not None:
        _retire(session, actor, problem, known, when)
    return _flush(session, problem, expected_version)


def cancel(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    reason: str,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Problem:
    return _end(session, config, actor, ref, "cancelled", reason, expected_version, now)


def mark_duplicate(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    of: str,
    reason: str,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Problem:
    return _end(session, config, actor, ref, "duplicate", reason, expected_version, now, of=of)


# --------------------------------------------------------------------------- links


def _link_incidents(
    session: Session, actor: Actor, problem: Problem, refs: Sequence[str], now: datetime
) -> list[str]:
    wanted: list[str] = []
    for ref in refs:
        text = str(ref).strip().upper()
        if text and text not in wanted:
            wanted.append(text)
    if not wanted:
        raise ValidationError("incidents", "name the incidents to link (e.g. INC0000042)")
    if len(wanted) > LINK_MAX:
        raise ValidationError("incidents", f"{len(wanted)} incidents are more than {LINK_MAX} at once")
    found = dict(session.execute(select(Ticket.ref, Ticket.id).where(Ticket.ref.in_(wanted))).tuples().all())
    missing = [ref for ref in wanted if ref not in found]
    if missing:
        raise NotFound(f"no ticket {missing[0]!r} to link (itsm ticket list)")
    already = set(
        session.scalars(
            select(Link.source_id).where(
                Link.source_type == "ticket",
                Link.source_id.in_(list(found.values())),
                Link.target_type == ENTITY,
                Link.target_id == problem.id,
            )
        )
    )
    linked: list[str] = []
    events: list[AuditEvent] = []
    for ref in wanted:
        ticket_id = found[ref]
        if ticket_id in already:
            continue
        session.add(
            Link(
                source_type="ticket",
                source_id=ticket_id,
                target_type=ENTITY,
                target_id=problem.id,
                created_by_id=actor.id,
                created_at=now,
            )
        )
        _touch_ticket(
            session, ticket_id, now
        )  # the ticket has a new link: a new version of it, as tickets.link
        audit.record(
            session,
            entity_type="ticket",
            entity_id=ticket_id,
            actor_id=actor.id,
            at=now,
            action="link",
            field="link",
            new=problem.ref,
        )
        events.append(audit.record_for(session, ENTITY, problem, actor.id, now, "link", "incident", ref))
        linked.append(ref)
    if linked and problem.owner_id is not None:
        shown = ", ".join(linked[:5]) + (f" and {len(linked) - 5} more" if len(linked) > 5 else "")
        session.flush()  # the first link's audit row names the event: a ticket linked again is told again
        notifications.notify(
            session,
            [problem.owner_id],
            kind="problem",
            event_key=f"problem:{problem.id}:linked:{events[0].id}:{len(linked)}",
            entity=(ENTITY, problem.id),
            message=f"{len(linked)} incident(s) linked to {problem.ref}: {shown}",
            now=now,
            exclude=actor.id,
        )
    return linked


def link_incidents(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    incident_refs: Sequence[str],
    *,
    now: datetime | None = None,
) -> list[str]:
    """Link tickets to the problem (all of them or none); returns the ones newly linked (a ticket already
    linked is left as it is). The owner is told."""
    now = _now(now)
    problem = _load(session, ref, None)
    enforce(session, config, actor, "link_incident", problem, now)
    linked = _link_incidents(session, actor, problem, incident_refs, now)
    session.flush()
    return linked


def unlink_incident(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    incident_ref: str,
    *,
    now: datetime | None = None,
) -> None:
    now = _now(now)
    problem = _load(session, ref, None)
    enforce(session, config, actor, "link_incident", problem, now)
    text = (incident_ref or "").strip().upper()
    ticket_id = session.scalar(select(Ticket.id).where(Ticket.ref == text))
    row = None
    if ticket_id is not None:
        row = session.scalar(
            select(Link).where(
                Link.source_type == "ticket",
                Link.source_id == ticket_id,
                Link.target_type == ENTITY,
                Link.target_id == problem.id,
            )
        )
    if row is None or ticket_id is None:
        raise NotFound(f"{text or 'that ticket'} is not linked to {problem.ref}")
    session.delete(row)
    _touch_ticket(session, ticket_id, now)
    audit.record(
        session,
        entity_type="ticket",
        entity_id=ticket_id,
        actor_id=actor.id,
        at=now,
        action="unlink",
        field="link",
        old=problem.ref,
    )
    audit.record_for(session, ENTITY, problem, actor.id, now, "unlink", "incident", None, text)
    session.flush()


def link_change(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    change_ref: str,
    *,
    now: datetime | None = None,
) -> Link:
    """Link the change that carries the problem's fix (problem -> change)."""
    now = _now(now)
    problem = _load(session, ref, None)
    enforce(session, config, actor, "link_change", problem, now)
    from itsm_tui.services.changes.reading import get_change

    change: Change = get_change(session, change_ref, for_update=True)
    exists = session.scalar(
        select(Link.id).where(
            Link.source_type == ENTITY,
            Link.source_id == problem.id,
            Link.target_type == "change",
            Link.target_id == change.id,
        )
    )
    if exists:
        raise ValidationError("change", f"{problem.ref} is already linked to {change.ref}")
    row = Link(
        source_type=ENTITY,
        source_id=problem.id,
        target_type="change",
        target_id=change.id,
        created_by_id=actor.id,
        created_at=now,
    )
    session.add(row)
    audit.record_for(session, ENTITY, problem, actor.id, now, "link", "change", change.ref)
    change.updated_at = now  # the change has a new link: a new version of it
    audit.record(
        session,
        entity_type="change",
        entity_id=change.id,
        actor_id=actor.id,
        at=now,
        action="link",
        field="link",
        new=problem.ref,
    )
    session.flush()
    return row


# --------------------------------------------------------------------------- known errors


def publish_known_error(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    symptom: str | None = None,
    title: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> KnownError:
    """Publish the problem's known error into the KEDB (symptom, cause = root cause, workaround, the fix's
    status); a new or investigating problem becomes a known error. The assignees of its open linked incidents
    are told that a workaround is there."""
    now = _now(now)
    problem = _load(session, ref, expected_version)
    enforce(session, config, actor, "publish", problem, now)
    said = _text("symptom", symptom) or (problem.description or "").strip() or problem.title
    known = KnownError(
        ref=next_reference(session, "KE"),
        problem_id=problem.id,
        title=required_title(title or problem.title, "give the known error a title", TITLE_MAX),
        symptom=said,
        cause=problem.root_cause,
        workaround=problem.workaround,
        permanent_fix=problem.permanent_fix,
        service=problem.service,
        ci=problem.ci,
        status="published",
        published_by_id=actor.id,
        published_at=now,
        updated_at=now,
    )
    session.add(known)
    session.flush()
    audit.record_for(session, "known_error", known, actor.id, now, "publish", None, known.ref)
    audit.record_for(session, ENTITY, problem, actor.id, now, "publish", "known_error", known.ref)
    if problem.status in ("new", "investigating"):
        _status(session, problem, "known_error", actor, now)
    _tell_raci(
        session,
        config,
        "known_error_publication",
        "I",
        problem,
        actor,
        f"published:{known.ref}:raci",
        f"Known error {known.ref} published ({problem.ref}): {_one_line(known.title)}",
        now,
    )
    _tell_assignees(
        session,
        problem,
        actor,
        f"published:{known.ref}",
        f"Known error {known.ref} published for {problem.ref}: its workaround is ready (k on a ticket)",
        now,
    )
    _flush(session, problem, expected_version)
    return known


def _retire(session: Session, actor: Actor, problem: Problem, known: KnownError, now: datetime) -> None:
    audit.set_field(session, known, "known_error", "status", "retired", actor.id, now, "retire")
    audit.set_field(session, known, "known_error", "retired_at", now, actor.id, now, "retire")
    if problem.permanent_fix and known.permanent_fix != problem.permanent_fix:
        audit.set_field(
            session, known, "known_error", "permanent_fix", problem.permanent_fix, actor.id, now, "retire"
        )
    known.updated_at = now


def retire_known_error(
    session: Session, config: DeskConfig, actor: Actor, ke_ref: str, *, now: datetime | None = None
) -> KnownError:
    """Take a known error out of the KEDB's matches (the fix is in, or it was wrong)."""
    now = _now(now)
    text = (ke_ref or "").strip().upper()
    if text.startswith("KE") and text[2:].isdigit():
        text = f"KE{int(text[2:]):07d}"
    known = session.scalar(select(KnownError).where(KnownError.ref == text))
    if known is None:
        raise NotFound(f"no known error {text!r} in the KEDB")
    if known.problem_id is None:
        raise ServiceError(f"{known.ref} belongs to no problem")
    problem = _load(
        session, str(session.scalar(select(Problem.ref).where(Problem.id == known.problem_id))), None
    )
    if known.status != "published":
        raise ServiceError(f"{known.ref} is retired already")
    enforce(session, config, actor, "retire_known_error", problem, now)
    _retire(session, actor, problem, known, now)
    audit.record_for(session, ENTITY, problem, actor.id, now, "retire", "known_error", None, known.ref)
    versions.flush(session, "known_error", known, None)
    return known


# --------------------------------------------------------------------------- the linked incidents


SessionFactory = Callable[[], AbstractContextManager[Session]]


def open_linked_incidents(session: Session, ref: str) -> list[str]:
    """The open linked incidents not yet resolved, by id: what resolving the problem offers to resolve."""
    problem = get_problem(session, ref)
    ids = linked_incident_ids(session, problem)
    if not ids:
        return []
    return list(
        session.scalars(
            select(Ticket.ref)
            .where(Ticket.id.in_(ids), Ticket.is_open, Ticket.status != "resolved")
            .order_by(Ticket.id)
        )
    )


def resolve_linked_incidents(
    open_session: SessionFactory,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    code: str = "fixed",
    versions_seen: Mapping[str, int] | None = None,
    now: datetime | None = None,
) -> BulkResult:
    """Resolve the resolved problem's open linked incidents with its permanent fix, each in its own
    transaction through the ticket lifecycle (``tickets.resolve_by_problem``: its guard, version check,
    clocks and audit); a refusal refuses that ticket only. ``versions_seen``: the version of each ticket
    when the offer was shown; a ticket changed since is refused as stale, naming who changed it."""
    from itsm_tui.services import tickets

    with open_session() as session:
        problem = get_problem(session, normal_ref(ref))
        if problem.status not in ("resolved", "closed"):
            raise ServiceError(
                f"{problem.ref} is {STATUS_LABELS[problem.status]}: resolve it before its incidents"
            )
        fix = (problem.permanent_fix or "").strip()
        if not fix:
            raise ServiceError(
                f"{problem.ref} has no permanent fix described: record it in the analysis first"
            )
        refs = open_linked_incidents(session, problem.ref)
        problem_ref = problem.ref
    note = f"Resolved by the permanent fix of {problem_ref}: {fix}"
    seen = versions_seen or {}

    def action(session: Session, ticket_ref: str) -> object:
        return tickets.resolve_by_problem(
            session,
            config,
            actor,
            ticket_ref,
            note=note,
            code=code,
            expected_version=seen.get(ticket_ref),
            now=now,
        )

    return apply_each(open_session, refs, action)
