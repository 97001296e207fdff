"""Changes: lifecycle, CAB approval, conflicts at every step, the calendar's data and the reminder job.

Lifecycle (SPEC): draft -> submitted -> assessed -> approved | rejected -> scheduled -> implementing ->
implemented | failed | backed_out -> review -> closed.

- A **standard** change is raised from a pre-approved template of changes.toml (its risk, plans, services
  and longest duration) and is approved on submit: no CAB.
- A **normal** change is assessed by a change manager, which asks the CAB members assigned to its services
  (changes.toml ``[approval]``); it is approved when the rule is met (``all`` of them, or ``quorum`` N of
  the M asked) and rejected once a rejection makes the rule unreachable.
- An **emergency** change is approved (or rejected) by a change manager, without assessment.
- A rejection needs a reason. A change inside a blackout is refused at submit, schedule and reschedule,
  unless it is an emergency change whose change manager recorded an override reason (audited).
- A failed, backed-out or emergency change needs a post-implementation review (notes) before it closes.

Every function takes a session, the configuration and the acting user; permissions are checked here (a
refusal names the role needed); every mutation writes its audit events in the same session; a save based on a
stale version is refused with :class:`StaleEdit`. Screens get plain dataclasses, never ORM objects.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from itsm_tui.config import DeskConfig
from itsm_tui.models import (
    Blackout,
    Change,
    ChangeApproval,
    ChangeTarget,
    Group,
    GroupMembership,
    MaintenanceWindow,
    RoleMembership,
    User,
    utc_or_now,
)
from itsm_tui.services import audit, conflicts, notifications
from itsm_tui.services.access import PermissionDenied, has_permission, require
from itsm_tui.services.conflicts import Conflict, Planned
from itsm_tui.services.errors import InvalidTransition, NotFound, ServiceError, StaleEdit, ValidationError
from itsm_tui.services.users import Actor

TYPES = ("standard", "normal", "emergency")
RISKS = ("low", "medium", "high")
OUTCOMES = ("implemented", "failed", "backed_out")
PRE_IMPLEMENTATION = ("draft", "submitted", "assessed", "approved", "scheduled")
TITLE_MAX = 200

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("submitted",),
    "submitted": ("assessed", "approved", "rejected"),  # approved: standard on submit, emergency at once
    "assessed": ("approved", "rejected"),
    "approved": ("scheduled",),
    "rejected": ("closed",),
    "scheduled": ("implementing",),
    "implementing": ("implemented", "failed", "backed_out"),
    "implemented": ("review", "closed"),
    "failed": ("review",),
    "backed_out": ("review",),
    "review": ("closed",),
    "closed": (),
}

# The actions of a change, in lifecycle order (available_actions says, for each, whether one may).
ACTIONS = (
    "submit",
    "assess",
    "approve",
    "reject",
    "schedule",
    "reschedule",
    "start",
    "complete",
    "review",
    "close",
)


class ChangeBlocked(ServiceError):
    """The change would land in a blackout (and is no emergency with an override); nothing was written."""

    def __init__(self, ref: str, doing: str, blocking: list[Conflict]) -> None:
        self.ref, self.conflicts = ref, blocking
        reasons = "; ".join(c.message for c in blocking)
        super().__init__(f"{ref} cannot be {doing}: {reasons}")


# --------------------------------------------------------------------------- reading


def ref_of(session: Session, change_id: int) -> str | None:
    """The reference of the change with this id, or None if there is none (e.g. from a notification)."""
    return session.scalar(select(Change.ref).where(Change.id == change_id))


def get_change(session: Session, ref: str, *, for_update: bool = False) -> Change:
    """A change by reference (CHG0000001, case and zero padding forgiven: chg1 works)."""
    text = (ref or "").strip().upper()
    if text.isdigit():
        text = f"CHG{int(text):07d}"
    elif text.startswith("CHG") and text[3:].isdigit():
        text = f"CHG{int(text[3:]):07d}"
    stmt = select(Change).where(Change.ref == text)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    change = session.scalar(stmt)
    if change is None:
        raise NotFound(f"no change {ref!r}; `itsm change list` shows the changes")
    return change


@dataclass(frozen=True)
class ChangeRow:
    """One change on the calendar or in a list."""

    ref: str
    title: str
    change_type: str
    state: str
    risk: str
    planned_start: datetime | None
    planned_end: datetime | None
    services: tuple[str, ...]
    id: int = 0
    implementer: str | None = None
    version: int = 1

    def as_json(self) -> dict:
        return _jsonable(asdict(self))


def list_changes(
    session: Session,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    states: Sequence[str] | None = None,
    change_type: str | None = None,
    service: str | None = None,
    limit: int = 200,
) -> list[ChangeRow]:
    """Changes whose planned window overlaps [start, end), by planned start (bounded; plain columns, two
    queries however many rows)."""
    stmt = (
        select(
            Change.id,
            Change.ref,
            Change.title,
            Change.change_type,
            Change.state,
            Change.risk,
            Change.planned_start,
            Change.planned_end,
            Change.version,
            User.login,
        )
        .outerjoin(User, User.id == Change.implementer_id)
        .order_by(Change.planned_start, Change.id)
        .limit(max(1, min(limit, 100_000)))
    )
    if start is not None:
        stmt = stmt.where(Change.planned_end > start)
    if end is not None:
        stmt = stmt.where(Change.planned_start < end)
    if states:
        stmt = stmt.where(Change.state.in_(list(states)))
    if change_type:
        stmt = stmt.where(Change.change_type == change_type)
    if service:
        stmt = stmt.where(
            Change.id.in_(select(ChangeTarget.change_id).where(ChangeTarget.service == service.lower()))
        )
    rows = session.execute(stmt).all()
    services: dict[int, set[str]] = {}
    ids = [r.id for r in rows]
    for offset in range(0, len(ids), 900):  # stay below every backend's bound-parameter limit
        for change_id, target in session.execute(
            select(ChangeTarget.change_id, ChangeTarget.service).where(
                ChangeTarget.change_id.in_(ids[offset : offset + 900])
            )
        ):
            services.setdefault(change_id, set()).add(target)
    return [
        ChangeRow(
            r.ref,
            r.title,
            r.change_type,
            r.state,
            r.risk,
            r.planned_start,
            r.planned_end,
            tuple(sorted(services.get(r.id, ()))),
            r.id,
            r.login,
            r.version,
        )
        for r in rows
    ]


def upcoming(session: Session, now: datetime, *, days: int = 14, limit: int = 200) -> list[ChangeRow]:
    """Changes whose planned window ends after ``now`` and starts within ``days`` days, soonest first."""
    return list_changes(session, start=now, end=now + timedelta(days=days), limit=limit)


@dataclass(frozen=True)
class ApprovalView:
    login: str
    name: str
    decision: str
    reason: str | None
    decided_at: datetime | None


@dataclass(frozen=True)
class HistoryItem:
    at: datetime
    by: str
    action: str
    field: str | None
    old: str | None
    new: str | None


@dataclass
class ChangeView:
    """A change with everything the detail screen and ``itsm change show`` need, as plain data."""

    id: int
    ref: str
    title: str
    description: str
    change_type: str
    template: str | None
    state: str
    risk: str
    planned_start: datetime | None
    planned_end: datetime | None
    actual_start: datetime | None
    actual_end: datetime | None
    targets: tuple[str, ...]
    services: tuple[str, ...]
    implementer: str | None
    requested_by: str | None
    implementation_plan: str
    backout_plan: str
    test_plan: str
    override_reason: str | None
    rejection_reason: str | None
    review_notes: str | None
    outcome: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    approvals: list[ApprovalView]
    approval_rule: str
    review_required: bool
    conflicts: list[Conflict]
    history: list[HistoryItem]
    # action -> None when the viewer may do it now, else the reason they may not
    actions: dict[str, str | None] = field(default_factory=dict)

    def as_json(self) -> dict:
        data = _jsonable({k: v for k, v in self.__dict__.items() if k not in ("conflicts", "history")})
        data["approvals"] = [_jsonable(asdict(a)) for a in self.approvals]
        data["conflicts"] = [c.as_json() for c in self.conflicts]
        data["history"] = [_jsonable(asdict(h)) for h in self.history]
        return data


def _jsonable(data: dict) -> dict:
    return {
        k: (v.astimezone(UTC).isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v)
        for k, v in data.items()
    }


def view(
    session: Session,
    config: DeskConfig,
    change: Change,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> ChangeView:
    """The change as plain data; with ``actor``, which actions they may take now (or why not)."""
    now = _now(now)
    users = _logins(
        session, {change.implementer_id, change.requested_by_id} | {a.approver_id for a in change.approvals}
    )
    approvals = [
        ApprovalView(
            users.get(a.approver_id, ("?", "?"))[0],
            users.get(a.approver_id, ("?", "?"))[1],
            a.decision,
            a.reason,
            a.decided_at,
        )
        for a in sorted(change.approvals, key=lambda a: (users.get(a.approver_id, ("",))[0], a.id))
    ]
    history = [
        HistoryItem(
            e.at,
            (users.get(e.actor_id) or _login_pair(session, e.actor_id))[0],
            e.action,
            e.field,
            e.old_value,
            e.new_value,
        )
        for e in audit.history(session, "change", change.id, limit=100)
    ]
    live = change.state in (*PRE_IMPLEMENTATION, "implementing")
    found = conflicts.check(session, planned_of(session, change)) if live and change.planned_start else []
    found.sort(key=lambda c: (conflicts.SEVERITY_ORDER[c.severity], c.start))  # the worst first
    result = ChangeView(
        id=change.id,
        ref=change.ref,
        title=change.title,
        description=change.description,
        change_type=change.change_type,
        template=change.template,
        state=change.state,
        risk=change.risk,
        planned_start=change.planned_start,
        planned_end=change.planned_end,
        actual_start=change.actual_start,
        actual_end=change.actual_end,
        targets=tuple(_target_text(t.service, t.ci) for t in sorted(change.targets, key=lambda t: t.id)),
        services=tuple(sorted({t.service for t in change.targets})),
        implementer=users.get(change.implementer_id, (None,))[0],
        requested_by=users.get(change.requested_by_id, (None,))[0],
        implementation_plan=change.implementation_plan,
        backout_plan=change.backout_plan,
        test_plan=change.test_plan,
        override_reason=change.override_reason,
        rejection_reason=change.rejection_reason,
        review_notes=change.review_notes,
        outcome=change.outcome,
        created_at=change.created_at,
        updated_at=change.updated_at,
        version=change.version,
        approvals=approvals,
        approval_rule=_rule_text(config, change),
        review_required=review_required(change),
        conflicts=found,
        history=history,
    )
    if actor is not None:
        result.actions = available_actions(session, config, actor, change, now)
    return result


def _login_pair(session: Session, user_id: int | None) -> tuple[str, str]:
    if user_id is None:
        return ("system", "the system")
    row = session.execute(select(User.login, User.name).where(User.id == user_id)).first()
    return (row.login, row.name) if row else ("?", "?")


def _logins(session: Session, user_ids: Iterable[int | None]) -> dict[int, tuple[str, str]]:
    ids = sorted({i for i in user_ids if i is not None})
    if not ids:
        return {}
    return {
        r.id: (r.login, r.name)
        for r in session.execute(select(User.id, User.login, User.name).where(User.id.in_(ids)))
    }


def _target_text(service: str, ci: str | None) -> str:
    return f"{service}:{ci}" if ci else service


def _rule_text(config: DeskConfig, change: Change) -> str:
    if change.change_type == "standard":
        return f"pre-approved (template {change.template})"
    if change.change_type == "emergency":
        return "a change manager approves"
    asked = len(change.approvals)
    policy = config.changes
    if policy.rule == "all":
        return "every CAB member assigned to its services" + (f" ({asked})" if asked else "")
    needed = min(policy.quorum, asked) if asked else policy.quorum
    return f"{needed} of the CAB members assigned to its services" + (
        f" ({needed} of {asked})" if asked else ""
    )


def review_required(change: Change) -> bool:
    """A failed, backed-out or emergency change needs a post-implementation review before it closes."""
    return change.outcome in ("failed", "backed_out") or change.change_type == "emergency"


def planned_of(session: Session, change: Change) -> Planned:
    """The change as the conflict check sees it."""
    login = (
        session.scalar(select(User.login).where(User.id == change.implementer_id))
        if change.implementer_id
        else None
    )
    return Planned(
        id=change.id,
        ref=change.ref,
        change_type=change.change_type,
        state=change.state,
        start=change.planned_start,
        end=change.planned_end,
        services=frozenset(t.service for t in change.targets),
        cis=frozenset(t.ci for t in change.targets if t.ci),
        implementer_id=change.implementer_id,
        implementer=login,
        override_reason=change.override_reason,
    )


# --------------------------------------------------------------------------- helpers


def _now(now: datetime | None) -> datetime:
    return utc_or_now(now)


def _instant(field_name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValidationError(field_name, f"{field_name} needs a time zone (e.g. 2026-11-21T22:00Z)")
    return value.astimezone(UTC).replace(second=0, microsecond=0)


def _check_version(session: Session, change: Change, expected_version: int | None) -> None:
    if expected_version is not None and change.version != expected_version:
        last = audit.last_change(session, "change", change.id)
        who, when = last if last else (None, None)
        raise StaleEdit(change.ref, expected_version, change.version, who, when)


def _flush(session: Session, change: Change, expected_version: int | None) -> None:
    """Write now; a concurrent save that won the race turns into :class:`StaleEdit`."""
    change_id, ref, loaded_version = change.id, change.ref, change.version
    try:
        session.flush()
    except StaleDataError:
        reader = session.get_bind().execution_options(sqlite_begin="DEFERRED")
        with Session(bind=reader) as fresh:
            current = fresh.scalar(select(Change.version).where(Change.id == change_id)) or 0
            last = audit.last_change(fresh, "change", change_id)
        who, when = last if last else (None, None)
        raise StaleEdit(ref, expected_version or loaded_version, current, who, when) from None


def _load(session: Session, ref: str, expected_version: int | None) -> Change:
    """The change, row-locked on PostgreSQL: two approvers' decisions are counted one after the other."""
    change = get_change(session, ref, for_update=True)
    _check_version(session, change, expected_version)
    return change


def _set(
    session: Session, change: Change, name: str, value, actor: Actor | None, now: datetime, action="update"
):
    actor_id = actor.id if actor else None
    if name != "implementer_id":
        return audit.set_field(session, change, "change", name, value, actor_id, now, action)
    old = change.implementer_id
    if old == value:
        return False
    change.implementer_id = value
    names = _logins(session, [old, value])
    audit.record(
        session,
        entity_type="change",
        entity_id=change.id,
        actor_id=actor_id,
        at=now,
        action=action,
        field="implementer",
        old=names.get(old, (None,))[0],
        new=names.get(value, (None,))[0],
    )
    return True


def _move(session: Session, change: Change, to: str, actor: Actor | None, now: datetime, action="transition"):
    allowed = TRANSITIONS[change.state]
    if to not in allowed:
        raise InvalidTransition(change.ref, change.state, to, allowed)
    _set(session, change, "state", to, actor, now, action)


def _note(session: Session, change: Change, actor: Actor | None, now: datetime, action: str, name: str, text):
    audit.record(
        session,
        entity_type="change",
        entity_id=change.id,
        actor_id=actor.id if actor else None,
        at=now,
        action=action,
        field=name,
        new=text,
    )


def _require_state(change: Change, wanted: str, *states: str) -> None:
    if change.state not in states:
        allowed = TRANSITIONS[change.state]
        raise InvalidTransition(change.ref, change.state, wanted, allowed)


def _is_requester(actor: Actor, change: Change) -> bool:
    return change.requested_by_id == actor.id


def _denied(permission: str, actor: Actor, detail: str) -> PermissionDenied:
    return PermissionDenied(permission, actor.roles, detail)


def _validate_title(title: str | None) -> str:
    title = (title or "").strip()
    if not title:
        raise ValidationError("title", "a title is required (one line saying what changes)")
    if len(title) > TITLE_MAX:
        raise ValidationError("title", f"the title is {len(title)} characters; keep it within {TITLE_MAX}")
    return title


def parse_targets(config: DeskConfig, items: Iterable[str]) -> list[tuple[str, str | None]]:
    """Affected services and CIs from text: ``network``, ``core-sw-01`` (a CI: its service is found) or
    ``network:core-sw-01``; commas separate several."""
    result: list[tuple[str, str | None]] = []
    for item in items:
        for part in str(item).replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            service, _, ci = part.partition(":")
            service, ci = service.strip(), ci.strip() or None
            if ci is None and service.lower() not in config.services:
                owner = config.service_for_ci(service)
                if owner is None:
                    raise ValidationError(
                        "targets",
                        f"{service!r} is neither a service ({', '.join(config.services)}) nor a known "
                        f"configuration item",
                    )
                service, ci = owner.code, service
            service = service.lower()
            if service not in config.services:
                raise ValidationError(
                    "targets", f"unknown service {service!r}; use one of {', '.join(config.services)}"
                )
            if ci is not None and ci not in config.services[service].cis:
                owner = config.service_for_ci(ci)
                where = f"it belongs to {owner.code}" if owner else "it is not a known configuration item"
                raise ValidationError(
                    "targets", f"configuration item {ci!r} is not part of {service} ({where})"
                )
            if (service, ci) not in result:
                result.append((service, ci))
    if not result:
        raise ValidationError("targets", "name at least one affected service or configuration item")
    # A whole service covers its CIs.
    whole = {s for s, ci in result if ci is None}
    return [(s, ci) for s, ci in result if ci is None or s not in whole]


def _implementer(session: Session, login: str | None) -> User | None:
    if not login or not login.strip():
        return None
    user = session.scalar(select(User).where(User.login == login.strip()))
    if user is None or not user.active:
        raise ValidationError("implementer", f"no active user {login!r}; `itsm user list` shows the users")
    return user


def _window(
    config: DeskConfig,
    change_type: str,
    template: str | None,
    start: datetime | None,
    end: datetime | None,
) -> tuple[datetime, datetime]:
    start = _instant("start", start)
    end = _instant("end", end)
    if start is None:
        raise ValidationError("start", "give the planned start")
    if change_type == "standard" and template in config.changes.templates:
        longest = timedelta(minutes=config.changes.templates[template].duration_minutes)
        if end is None:
            end = start + longest
        elif end - start > longest:
            raise ValidationError(
                "end",
                f"template {template} is pre-approved for at most {_minutes(longest)}; "
                f"shorten the window or raise a normal change",
            )
    if end is None:
        raise ValidationError("end", "give the planned end")
    if end <= start:
        raise ValidationError("end", "the planned end must be after the planned start")
    if end - start > timedelta(days=14):
        raise ValidationError("end", "a change window is at most 14 days; split longer work into changes")
    return start, end


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


# --------------------------------------------------------------------------- permissions per action


def _guard(
    session: Session, config: DeskConfig, actor: Actor, change: Change, action: str, now: datetime
) -> None:
    """Raise unless ``actor`` may do ``action`` on ``change`` now (state and permission, not the inputs)."""
    manager = has_permission(actor.roles, "change.manage")
    if action == "submit":
        _require_state(change, "submitted", "draft")
        require(actor.roles, "change.create")
        if not (manager or _is_requester(actor, change)):
            raise _denied(
                "change.manage", actor, f"Only who raised {change.ref} or a change_manager may submit it."
            )
    elif action == "assess":
        _require_state(change, "assessed", "submitted")
        if change.change_type != "normal":
            raise ServiceError(
                f"{change.ref} is a {change.change_type} change: "
                + (
                    "it was approved by its template"
                    if change.change_type == "standard"
                    else "a change manager approves it directly, without CAB assessment"
                )
            )
        require(actor.roles, "change.manage")
    elif action in ("approve", "reject"):
        wanted = "approved" if action == "approve" else "rejected"
        if change.change_type == "standard":
            raise ServiceError(
                f"{change.ref} is a standard change, pre-approved by template {change.template}"
            )
        if change.change_type == "emergency":
            _require_state(change, wanted, "submitted", "assessed")
            require(actor.roles, "change.approve_emergency")
            if _is_requester(actor, change):
                raise _denied(
                    "change.approve_emergency",
                    actor,
                    f"You raised {change.ref}; another change_manager must approve or reject it.",
                )
            return
        if change.state == "submitted":
            raise ServiceError(f"{change.ref} awaits assessment by a change_manager before the CAB decides")
        _require_state(change, wanted, "assessed")
        require(actor.roles, "change.approve")
        mine = next((a for a in change.approvals if a.approver_id == actor.id), None)
        if mine is None:
            names = _logins(session, [a.approver_id for a in change.approvals])
            asked = ", ".join(sorted(login for login, _ in names.values()))
            raise _denied(
                "change.approve",
                actor,
                f"You are not one of the CAB members asked to decide on {change.ref} "
                f"(asked: {asked or 'nobody'}).",
            )
        if mine.decision != "pending":
            raise ServiceError(f"you already {mine.decision} {change.ref}")
    elif action == "schedule":
        _require_state(change, "scheduled", "approved")
        if not manager and not (
            change.change_type == "standard"
            and has_permission(actor.roles, "change.create")
            and actor.id in (change.requested_by_id, change.implementer_id)
        ):
            raise _denied(
                "change.manage",
                actor,
                f"You may not schedule {change.ref}: it needs the role change_manager "
                f"(a standard change may also be scheduled by who raised or implements it).",
            )
    elif action == "reschedule":
        if change.state not in PRE_IMPLEMENTATION:
            raise ServiceError(
                f"{change.ref} is {change.state}; only a change not yet implementing can be rescheduled"
            )
        if manager:
            return
        require(actor.roles, "change.create")
        own = actor.id in (change.requested_by_id, change.implementer_id)
        if not own or not (
            change.state in ("draft", "submitted")
            or (change.change_type == "standard" and change.state in ("approved", "scheduled"))
        ):
            raise _denied(
                "change.manage",
                actor,
                f"You may not reschedule {change.ref} ({change.state}): it needs the role change_manager "
                f"(who raised a change may move it while it is a draft or submitted).",
            )
    elif action in ("start", "complete"):
        if action == "start":
            _require_state(change, "implementing", "scheduled")
        else:
            _require_state(change, "implemented", "implementing")
        if not (manager or change.implementer_id == actor.id):
            raise _denied(
                "change.manage",
                actor,
                f"Only the implementer of {change.ref} or a change_manager may "
                f"{'start' if action == 'start' else 'record the outcome of'} it.",
            )
    elif action == "review":
        _require_state(change, "review", "implemented", "failed", "backed_out")
        require(actor.roles, "change.manage")
    elif action == "close":
        _require_state(change, "closed", "implemented", "failed", "backed_out", "review", "rejected")
        require(actor.roles, "change.manage")
        if change.state in ("implemented", "failed", "backed_out") and review_required(change):
            why = (
                f"it {change.outcome.replace('_', ' ')}"
                if change.outcome in ("failed", "backed_out")
                else "an emergency change"
            )
            raise ServiceError(
                f"{change.ref} needs a post-implementation review before it closes ({why}): "
                f"move it to review and record the review notes"
            )
    else:
        raise ValueError(f"unknown change action {action!r}")


def available_actions(
    session: Session, config: DeskConfig, actor: Actor, change: Change, now: datetime | None = None
) -> dict[str, str | None]:
    """For each action, None if ``actor`` may take it now, else the reason why not."""
    now = _now(now)
    result: dict[str, str | None] = {}
    for action in ACTIONS:
        try:
            _guard(session, config, actor, change, action, now)
        except (ServiceError, PermissionDenied) as exc:
            result[action] = str(exc)
        else:
            result[action] = None
    return result


# --------------------------------------------------------------------------- creating


def create_change(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    *,
    change_type: str,
    targets: Iterable[str],
    start: datetime | None,
    end: datetime | None = None,
    title: str | None = None,
    template: str | None = None,
    risk: str | None = None,
    description: str = "",
    implementation_plan: str | None = None,
    backout_plan: str | None = None,
    test_plan: str | None = None,
    implementer: str | None = None,
    now: datetime | None = None,
) -> Change:
    """Raise a change (a draft). A standard change takes title, risk, plans and longest window from its
    template and may only touch the template's services."""
    require(actor.roles, "change.create")
    now = _now(now)
    values = _validate_new(
        session,
        config,
        change_type=change_type,
        targets=targets,
        start=start,
        end=end,
        title=title,
        template=template,
        risk=risk,
        implementation_plan=implementation_plan,
        backout_plan=backout_plan,
        test_plan=test_plan,
        implementer=implementer,
    )
    from itsm_tui.services.tickets import next_reference

    change = Change(
        ref=next_reference(session, "CHG"),
        title=values["title"],
        description=(description or "").strip(),
        change_type=values["change_type"],
        template=values["template"],
        state="draft",
        risk=values["risk"],
        planned_start=values["start"],
        planned_end=values["end"],
        implementation_plan=values["implementation_plan"],
        backout_plan=values["backout_plan"],
        test_plan=values["test_plan"],
        implementer_id=values["implementer"].id if values["implementer"] else None,
        requested_by_id=actor.id,
        created_at=now,
        updated_at=now,
    )
    change.targets = [ChangeTarget(service=s, ci=ci) for s, ci in values["targets"]]
    session.add(change)
    session.flush()
    for name, value in (
        ("state", "draft"),
        ("change_type", change.change_type),
        ("template", change.template),
        ("targets", ", ".join(_target_text(s, ci) for s, ci in values["targets"])),
        ("planned_start", change.planned_start),
        ("planned_end", change.planned_end),
        ("risk", change.risk),
        ("implementer", values["implementer"].login if values["implementer"] else None),
    ):
        if value is not None:
            audit.record(
                session,
                entity_type="change",
                entity_id=change.id,
                actor_id=actor.id,
                at=now,
                action="create",
                field=name,
                new=value,
            )
    return change


def _validate_new(session: Session, config: DeskConfig, **given) -> dict:
    change_type = (given["change_type"] or "").strip().lower()
    if change_type not in TYPES:
        raise ValidationError(
            "change_type", f"the type must be one of {', '.join(TYPES)}, not {change_type!r}"
        )
    templates = config.changes.templates
    template_code = (given["template"] or "").strip() or None
    targets = parse_targets(config, given["targets"])
    risk = (given["risk"] or "").strip().lower() or None
    if risk is not None and risk not in RISKS:
        raise ValidationError("risk", f"the risk must be one of {', '.join(RISKS)}, not {risk!r}")
    plans = {k: (given[k] or "").strip() for k in ("implementation_plan", "backout_plan", "test_plan")}
    if change_type == "standard":
        if template_code is None:
            known = ", ".join(templates) or "none (add [[templates]] to changes.toml)"
            raise ValidationError("template", f"a standard change comes from a template; templates: {known}")
        if template_code not in templates:
            raise ValidationError(
                "template", f"unknown template {template_code!r}; templates: {', '.join(templates) or 'none'}"
            )
        template = templates[template_code]
        outside = sorted({s for s, _ in targets} - set(template.services))
        if outside:
            raise ValidationError(
                "targets",
                f"template {template.code} is pre-approved only for {', '.join(template.services)}, "
                f"not {', '.join(outside)}; raise a normal change instead",
            )
        if risk is not None and risk != template.risk:
            raise ValidationError("risk", f"template {template.code} is pre-approved at risk {template.risk}")
        if any(value and value != getattr(template, key) for key, value in plans.items()):
            raise ValidationError(
                "implementation_plan", f"a standard change follows the plans of template {template.code}"
            )
        title = _validate_title(given["title"] or template.title)
        risk = template.risk
        plans = {k: getattr(template, k) for k in plans}
    else:
        if template_code is not None:
            raise ValidationError("template", "only standard changes come from a template")
        title = _validate_title(given["title"])
        risk = risk or "medium"
    start, end = _window(config, change_type, template_code, given["start"], given["end"])
    return {
        "change_type": change_type,
        "template": template_code,
        "targets": targets,
        "risk": risk,
        "title": title,
        "start": start,
        "end": end,
        "implementer": _implementer(session, given["implementer"]),
        **plans,
    }


def preview(
    session: Session,
    config: DeskConfig,
    *,
    change_type: str,
    targets: Iterable[str],
    start: datetime | None,
    end: datetime | None = None,
    template: str | None = None,
    implementer: str | None = None,
    override_reason: str | None = None,
    ref: str | None = None,
) -> list[Conflict]:
    """The conflicts a new change (or ``ref`` moved to the given window) would have; nothing is written.

    Raises :class:`ValidationError` for inputs that cannot be checked yet (as the save would).
    """
    change_type = (change_type or "").strip().lower()
    if change_type not in TYPES:
        raise ValidationError("change_type", f"the type must be one of {', '.join(TYPES)}")
    parsed = parse_targets(config, targets)
    start, end = _window(config, change_type, (template or "").strip() or None, start, end)
    user = _implementer(session, implementer)
    existing = get_change(session, ref) if ref else None
    planned = Planned(
        id=existing.id if existing else None,
        ref=existing.ref if existing else "(new)",
        change_type=change_type,
        state=existing.state if existing else "draft",
        start=start,
        end=end,
        services=frozenset(s for s, _ in parsed),
        cis=frozenset(ci for _, ci in parsed if ci),
        implementer_id=user.id if user else None,
        implementer=user.login if user else None,
        override_reason=(override_reason or "").strip() or (existing.override_reason if existing else None),
    )
    return conflicts.check(session, planned)


def preview_move(
    session: Session,
    config: DeskConfig,
    ref: str,
    start: datetime | None,
    end: datetime | None,
    override_reason: str | None = None,
) -> list[Conflict]:
    """The conflicts ``ref`` would have in a new window (for the reschedule form); without ``end`` the
    change keeps its length."""
    change = get_change(session, ref)
    start, end = _new_window(config, change, start, end)
    planned = planned_of(session, change)
    return conflicts.check(
        session,
        dataclasses.replace(
            planned,
            start=start,
            end=end,
            override_reason=(override_reason or "").strip() or planned.override_reason,
        ),
    )


# --------------------------------------------------------------------------- the lifecycle


def _apply_override(session, change: Change, actor: Actor, reason: str | None, now: datetime) -> None:
    reason = (reason or "").strip()
    if not reason:
        return
    if change.change_type != "emergency":
        raise ValidationError(
            "override_reason", "only an emergency change may override a blackout; move the change out of it"
        )
    if not has_permission(actor.roles, "change.manage"):
        raise _denied(
            "change.manage",
            actor,
            f"Overriding a blackout for {change.ref} needs the role change_manager.",
        )
    _set(session, change, "override_reason", reason, actor, now, action="override")


def _check_blocking(session: Session, change: Change, doing: str) -> list[Conflict]:
    found = conflicts.check(session, planned_of(session, change))
    blocked = conflicts.blocking(found)
    if blocked:
        raise ChangeBlocked(change.ref, doing, blocked)
    return found


def _not_in_past(change: Change, now: datetime) -> None:
    if change.change_type != "emergency" and change.planned_start < now:
        raise ValidationError(
            "start",
            f"{change.ref} was planned to start in the past "
            f"({change.planned_start:%Y-%m-%d %H:%M} UTC); reschedule it",
        )


def submit(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    override_reason: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Submit a draft: checked for blackouts (blocked) and conflicts (notified). A standard change is
    approved by its template at once; an emergency change goes to the change managers."""
    now = _now(now)
    change = _load(session, ref, expected_version)
    _guard(session, config, actor, change, "submit", now)
    if change.change_type != "standard":
        missing = [
            n
            for n, v in (
                ("implementation_plan", change.implementation_plan),
                ("backout_plan", change.backout_plan),
            )
            if not v.strip()
        ]
        if missing:
            raise ValidationError(
                missing[0],
                f"a {change.change_type} change needs an implementation plan and a back-out plan "
                f"before it is submitted",
            )
    _not_in_past(change, now)
    _apply_override(session, change, actor, override_reason, now)
    found = _check_blocking(session, change, "submitted")
    _move(session, change, "submitted", actor, now)
    managers = notifications.users_with_roles(session, ["change_manager"])
    if change.change_type == "standard":
        _move(session, change, "approved", None, now, action="preapproved")
        _note(
            session,
            change,
            actor,
            now,
            "preapproved",
            "approval",
            f"pre-approved by template {change.template}",
        )
    elif change.change_type == "emergency":
        notifications.notify(
            session,
            [m for m in managers if m != change.requested_by_id],
            kind="change_approval",
            event_key=f"change_approval:{change.id}",
            entity=("change", change.id),
            message=f"Emergency change {change.ref} awaits your approval: {change.title}",
            now=now,
            exclude=actor.id,
        )
    else:
        notifications.notify(
            session,
            managers,
            kind="change_approval",
            event_key=f"change_assess:{change.id}",
            entity=("change", change.id),
            message=f"{change.ref} submitted: assess it for the CAB: {change.title}",
            now=now,
            exclude=actor.id,
        )
    notify_conflicts(session, found, now)
    change.updated_at = now
    _flush(session, change, expected_version)
    return change


def approvers_for(session: Session, config: DeskConfig, change: Change) -> list[int]:
    """Who the CAB rule asks: CAB members assigned to the change's services (by support group and
    changes.toml), else every CAB member, else the change managers; never who raised the change."""
    policy = config.changes
    services = {t.service for t in change.targets}
    active_cab = (
        select(User.id)
        .join(RoleMembership, RoleMembership.user_id == User.id)
        .where(
            RoleMembership.role == "cab_member",
            User.active.is_(True),
            User.id != (change.requested_by_id or 0),
        )
    )
    assigned: set[int] = set()
    if policy.assign_by_support_group:
        groups = {config.services[s].support_group for s in services if s in config.services}
        if groups:
            assigned |= set(
                session.scalars(
                    active_cab.join(GroupMembership, GroupMembership.user_id == User.id)
                    .join(Group, Group.id == GroupMembership.group_id)
                    .where(Group.code.in_(sorted(groups)))
                )
            )
    logins = sorted({login for s in services for login in policy.members.get(s, ())})
    if logins:
        assigned |= set(session.scalars(active_cab.where(User.login.in_(logins))))
    if assigned:
        return sorted(assigned)
    everyone = sorted(set(session.scalars(active_cab)))
    if everyone:
        return everyone
    return sorted(
        m for m in notifications.users_with_roles(session, ["change_manager"]) if m != change.requested_by_id
    )


def required_approvals(config: DeskConfig, asked: int) -> int:
    """How many of ``asked`` CAB members must approve (all, or N of M with N capped at M)."""
    if config.changes.rule == "all":
        return asked
    return min(config.changes.quorum, asked)


def approval_progress(session: Session, config: DeskConfig, change: Change) -> str:
    """Where a change's approval stands, in words: "approved", or "1 of 3 approvals; waiting for x, y"."""
    if change.state != "assessed":
        return change.state
    asked = len(change.approvals)
    approved = sum(1 for a in change.approvals if a.decision == "approved")
    names = _logins(session, [a.approver_id for a in change.approvals if a.decision == "pending"])
    waiting = ", ".join(sorted(login for login, _ in names.values())) or "nobody"
    return f"{approved} of {required_approvals(config, asked)} approvals; waiting for {waiting}"


def assess(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    risk: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """A change manager assesses a submitted normal change and asks the CAB members the rule names."""
    now = _now(now)
    change = _load(session, ref, expected_version)
    _guard(session, config, actor, change, "assess", now)
    if risk:
        risk = risk.strip().lower()
        if risk not in RISKS:
            raise ValidationError("risk", f"the risk must be one of {', '.join(RISKS)}, not {risk!r}")
        _set(session, change, "risk", risk, actor, now)
    pool = approvers_for(session, config, change)
    if not pool:
        raise ServiceError(
            f"nobody can approve {change.ref}: give someone the cab_member role "
            f"(itsm user role LOGIN --add cab_member)"
        )
    _move(session, change, "assessed", actor, now)
    existing = {a.approver_id for a in change.approvals}
    for user_id in pool:
        if user_id not in existing:
            change.approvals.append(ChangeApproval(approver_id=user_id, decision="pending"))
    names = _logins(session, pool)
    needed = required_approvals(config, len(pool))
    _note(
        session,
        change,
        actor,
        now,
        "assess",
        "approvers",
        f"{needed} of {len(pool)} must approve: " + ", ".join(names[u][0] for u in pool),
    )
    notifications.notify(
        session,
        pool,
        kind="change_approval",
        event_key=f"change_approval:{change.id}",
        entity=("change", change.id),
        message=f"{change.ref} awaits your approval ({change.risk} risk): {change.title}",
        now=now,
        exclude=actor.id,
    )
    change.updated_at = now
    _flush(session, change, expected_version)
    return change


def approve(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    reason: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    return decide(
        session, config, actor, ref, approve=True, reason=reason, expected_version=expected_version, now=now
    )


def reject(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    reason: str | None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    return decide(
        session, config, actor, ref, approve=False, reason=reason, expected_version=expected_version, now=now
    )


def decide(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    approve: bool,
    reason: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Record one approver's decision; the change is approved once the rule is met and rejected once a
    rejection makes it unreachable (an emergency change: the change manager's decision is final)."""
    now = _now(now)
    reason = (reason or "").strip() or None
    if not approve and not reason:
        raise ValidationError("reason", "say why the change is rejected (the requester reads it)")
    change = _load(session, ref, expected_version)
    action = "approve" if approve else "reject"
    _guard(session, config, actor, change, action, now)
    decision = "approved" if approve else "rejected"
    mine = next((a for a in change.approvals if a.approver_id == actor.id), None)
    if mine is None:  # an emergency change: the change manager's own row
        mine = ChangeApproval(approver_id=actor.id, decision="pending")
        change.approvals.append(mine)
    mine.decision, mine.reason, mine.decided_at = decision, reason, now
    _note(
        session,
        change,
        actor,
        now,
        action,
        "approval",
        f"{decision} by {actor.login}" + (f": {reason}" if reason else ""),
    )
    if change.change_type == "emergency":
        outcome = decision
    else:
        asked = len(change.approvals)
        approved = sum(1 for a in change.approvals if a.decision == "approved")
        rejected = sum(1 for a in change.approvals if a.decision == "rejected")
        needed = required_approvals(config, asked)
        outcome = "approved" if approved >= needed else "rejected" if asked - rejected < needed else None
    if outcome == "rejected":
        reasons = "; ".join(
            f"{_login_pair(session, a.approver_id)[0]}: {a.reason}"
            for a in change.approvals
            if a.decision == "rejected"
        )
        _set(session, change, "rejection_reason", reasons, actor, now, action="reject")
    if outcome is not None:
        _move(session, change, outcome, actor, now, action=action)
        notifications.notify(
            session,
            [change.requested_by_id, change.implementer_id],
            kind="change_approval",
            event_key=f"change_{outcome}:{change.id}",
            entity=("change", change.id),
            message=f"{change.ref} {outcome}"
            + (f": {change.rejection_reason}" if outcome == "rejected" else f": {change.title}"),
            now=now,
            exclude=actor.id,
        )
    change.updated_at = now
    _flush(session, change, expected_version)
    return change


def schedule(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    override_reason: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Put an approved change on the schedule (optionally in a new window); blackouts block it."""
    now = _now(now)
    change = _load(session, ref, expected_version)
    _guard(session, config, actor, change, "schedule", now)
    if start is not None or end is not None:
        _move_window(session, config, change, actor, start, end, now)
    _not_in_past(change, now)
    _apply_override(session, change, actor, override_reason, now)
    found = _check_blocking(session, change, "scheduled")
    _move(session, change, "scheduled", actor, now)
    notify_conflicts(session, found, now)
    change.updated_at = now
    _flush(session, change, expected_version)
    return change


def reschedule(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    start: datetime | None,
    end: datetime | None,
    override_reason: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Move a change not yet implementing to a new window; past the draft, blackouts block the move."""
    now = _now(now)
    change = _load(session, ref, expected_version)
    _guard(session, config, actor, change, "reschedule", now)
    _move_window(session, config, change, actor, start, end, now)
    _apply_override(session, change, actor, override_reason, now)
    if change.state != "draft":
        _not_in_past(change, now)
        found = _check_blocking(session, change, "moved there")
        notify_conflicts(session, found, now)
    change.updated_at = now
    _flush(session, change, expected_version)
    return change


def _new_window(config: DeskConfig, change: Change, start, end) -> tuple[datetime, datetime]:
    """The validated window of a move: a missing start keeps the current one, a missing end the length."""
    if start is None:
        start = change.planned_start
    if end is None and start is not None and change.planned_start and change.planned_end:
        end = start + (change.planned_end - change.planned_start)
    return _window(config, change.change_type, change.template, start, end)


def _move_window(session, config, change: Change, actor: Actor, start, end, now) -> None:
    start, end = _new_window(config, change, start, end)
    _set(session, change, "planned_start", start, actor, now, action="reschedule")
    _set(session, change, "planned_end", end, actor, now, action="reschedule")


def start_implementation(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Begin implementing a scheduled change; a blackout laid over it since it was scheduled stops it."""
    now = _now(now)
    change = _load(session, ref, expected_version)
    _guard(session, config, actor, change, "start", now)
    _check_blocking(session, change, "started")
    _move(session, change, "implementing", actor, now)
    _set(session, change, "actual_start", now, actor, now)
    change.updated_at = now
    _flush(session, change, expected_version)
    return change


def complete(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    outcome: str,
    note: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Record how the implementation ended: implemented, failed or backed_out."""
    now = _now(now)
    outcome = (outcome or "").strip().lower().replace("-", "_")
    if outcome not in OUTCOMES:
        raise ValidationError("outcome", f"the outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    change = _load(session, ref, expected_version)
    _guard(session, config, actor, change, "complete", now)
    if outcome != "implemented" and not (note or "").strip():
        raise ValidationError("note", f"say what happened (a {outcome.replace('_', ' ')} change is reviewed)")
    _move(session, change, outcome, actor, now)
    _set(session, change, "outcome", outcome, actor, now)
    _set(session, change, "actual_end", now, actor, now)
    if (note or "").strip():
        _note(session, change, actor, now, "note", "outcome_note", note.strip())
    change.updated_at = now
    _flush(session, change, expected_version)
    return change


def start_review(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    notes: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Begin the post-implementation review (notes may be recorded now or when closing)."""
    now = _now(now)
    change = _load(session, ref, expected_version)
    _guard(session, config, actor, change, "review", now)
    _move(session, change, "review", actor, now)
    if (notes or "").strip():
        _set(session, change, "review_notes", notes.strip(), actor, now, action="review")
    change.updated_at = now
    _flush(session, change, expected_version)
    return change


def close(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    review_notes: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Close a change: a reviewed one needs its review notes; one needing review cannot skip it."""
    now = _now(now)
    change = _load(session, ref, expected_version)
    _guard(session, config, actor, change, "close", now)
    if (review_notes or "").strip():
        if change.state not in ("review", "implemented"):
            raise ValidationError("review_notes", f"{change.ref} is {change.state}; it has no review")
        _set(session, change, "review_notes", review_notes.strip(), actor, now, action="review")
    if change.state == "review" and not (change.review_notes or "").strip():
        raise ValidationError(
            "review_notes",
            f"record the post-implementation review of {change.ref} "
            f"(what happened, what was learnt) to close it",
        )
    _move(session, change, "closed", actor, now)
    change.updated_at = now
    _flush(session, change, expected_version)
    return change


# --------------------------------------------------------------------------- notifications


def notify_conflicts(
    session: Session, found: Iterable[Conflict], now: datetime, *, exclude: int | None = None
) -> int:
    """Tell who raised and who implements each change of a conflict, and the change managers of the
    serious ones, once per conflict (a moved change makes a new conflict)."""
    found = [c for c in found if c.severity != "overridden"]
    if not found:
        return 0
    ids = sorted({i for c in found for i in c.change_ids if i is not None})
    people = {
        r.id: (r.requested_by_id, r.implementer_id)
        for r in session.execute(
            select(Change.id, Change.requested_by_id, Change.implementer_id).where(Change.id.in_(ids))
        )
    }
    managers = notifications.users_with_roles(session, ["change_manager"])
    sent = 0
    for conflict in found:
        recipients = {u for i in conflict.change_ids if i in people for u in people[i] if u}
        if conflict.severity in ("blocked", "conflict"):
            recipients |= set(managers)
        subject = next((i for i in conflict.change_ids if i is not None), None)
        sent += notifications.notify(
            session,
            recipients,
            kind="change_conflict",
            event_key=f"change_conflict:{conflict.key}",
            entity=("change", subject) if subject else None,
            message=conflict.message,
            now=now,
            exclude=exclude,
        )
    return sent


@dataclass
class ReminderResult:
    approvals: int = 0
    conflicts: int = 0
    starting: int = 0
    reviews: int = 0
    notifications: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict:
        return asdict(self)


def remind(db, config: DeskConfig, now: datetime | None = None) -> ReminderResult:
    """The reminder job (run by the scheduler in every console and headless): awaiting your approval,
    conflicts ahead, starting within the lead time, overdue post-implementation reviews.

    Each reminder has a unique event key, so however many processes run it, each person hears once.
    """
    now = _now(now)
    began = time.perf_counter()
    result = ReminderResult()
    policy = config.changes
    with db.session() as session:
        managers = notifications.users_with_roles(session, ["change_manager"])
        # Awaiting your approval: CAB members asked on assessed changes, change managers on emergencies.
        pending = session.execute(
            select(Change.id, Change.ref, Change.title, ChangeApproval.approver_id)
            .join(ChangeApproval, ChangeApproval.change_id == Change.id)
            .where(Change.state == "assessed", ChangeApproval.decision == "pending")
        ).all()
        for row in pending:
            sent = notifications.notify(
                session,
                [row.approver_id],
                kind="change_approval",
                event_key=f"change_approval:{row.id}",
                entity=("change", row.id),
                message=f"{row.ref} awaits your approval: {row.title}",
                now=now,
            )
            result.approvals += sent
        for row in session.execute(
            select(Change.id, Change.ref, Change.title, Change.requested_by_id).where(
                Change.change_type == "emergency", Change.state.in_(("submitted", "assessed"))
            )
        ):
            result.approvals += notifications.notify(
                session,
                [m for m in managers if m != row.requested_by_id],
                kind="change_approval",
                event_key=f"change_approval:{row.id}",
                entity=("change", row.id),
                message=f"Emergency change {row.ref} awaits your approval: {row.title}",
                now=now,
            )
        # Conflicts ahead.
        found = conflicts.between(session, now, now + timedelta(days=policy.conflict_horizon_days))
        result.conflicts = notify_conflicts(session, found, now)
        # Starting soon.
        lead = timedelta(hours=policy.lead_time_hours)
        for row in session.execute(
            select(
                Change.id,
                Change.ref,
                Change.title,
                Change.planned_start,
                Change.state,
                Change.requested_by_id,
                Change.implementer_id,
            ).where(
                Change.state.in_(("approved", "scheduled")),
                Change.planned_start > now,
                Change.planned_start <= now + lead,
            )
        ):
            hours = (row.planned_start - now).total_seconds() / 3600
            text = f"{row.ref} starts in {hours:.0f} h ({row.planned_start:%Y-%m-%d %H:%M} UTC): {row.title}"
            if row.state == "approved":
                text += " - approved but not scheduled yet"
            result.starting += notifications.notify(
                session,
                [row.implementer_id, row.requested_by_id] + (managers if row.state == "approved" else []),
                kind="change_starting",
                event_key=f"change_starting:{row.id}:{row.planned_start:%Y%m%dT%H%M}",
                entity=("change", row.id),
                message=text,
                now=now,
            )
        # Overdue post-implementation reviews.
        due = now - timedelta(days=policy.review_due_days)
        ended = func.coalesce(Change.actual_end, Change.planned_end)
        for row in session.execute(
            select(
                Change.id, Change.ref, Change.title, Change.state, Change.implementer_id, ended.label("ended")
            ).where(
                (Change.state.in_(("failed", "backed_out", "review")))
                | ((Change.state == "implemented") & (Change.change_type == "emergency")),
                (Change.review_notes.is_(None)) | (Change.review_notes == ""),
                ended <= due,
            )
        ):
            result.reviews += notifications.notify(
                session,
                [*managers, row.implementer_id],
                kind="change_review",
                event_key=f"change_review:{row.id}",
                entity=("change", row.id),
                message=f"Post-implementation review of {row.ref} ({row.state.replace('_', ' ')}) "
                f"is overdue: {row.title}",
                now=now,
            )
    result.notifications = result.approvals + result.conflicts + result.starting + result.reviews
    result.seconds = time.perf_counter() - began
    return result


# --------------------------------------------------------------------------- the calendar


@dataclass
class CalendarData:
    """What the calendar shows for [start, end): changes, window occurrences, blackouts, conflicts."""

    start: datetime
    end: datetime
    changes: list[ChangeRow]
    occurrences: list[conflicts.Occurrence]
    blackouts: list[conflicts.BlackoutSpec]
    conflicts: list[Conflict]
    truncated: bool = False

    @property
    def conflicted(self) -> dict[str, str]:
        """ref -> the worst severity of its conflicts."""
        worst: dict[str, str] = {}
        for c in self.conflicts:
            for ref in c.refs:
                if (
                    ref not in worst
                    or conflicts.SEVERITY_ORDER[c.severity] < conflicts.SEVERITY_ORDER[worst[ref]]
                ):
                    worst[ref] = c.severity
        return worst


def calendar(session: Session, start: datetime, end: datetime, *, limit: int = 5000) -> CalendarData:
    """Everything the calendar draws for a range: each change read once (two queries) serves both the rows
    and the conflict check among the live ones."""
    in_range = [Change.planned_start < end, Change.planned_end > start]
    rows = (
        session.execute(
            select(
                Change.id,
                Change.ref,
                Change.title,
                Change.change_type,
                Change.state,
                Change.risk,
                Change.planned_start,
                Change.planned_end,
                Change.version,
                Change.implementer_id,
                Change.override_reason,
                User.login,
            )
            .outerjoin(User, User.id == Change.implementer_id)
            .where(*in_range)
            .order_by(Change.planned_start, Change.id)
            .limit(limit + 1)
        )
        .tuples()
        .all()
    )
    truncated = len(rows) > limit
    targets = conflicts.targets_where(session, in_range)
    change_rows, planned = [], []
    for (
        change_id,
        ref,
        title,
        kind,
        state,
        risk,
        begin,
        finish,
        version,
        implementer,
        override,
        login,
    ) in rows[:limit]:
        mine = targets.get(change_id, ())
        services = frozenset(service for service, _ in mine)
        change_rows.append(
            ChangeRow(
                ref,
                title,
                kind,
                state,
                risk,
                begin,
                finish,
                tuple(sorted(services)),
                change_id,
                login,
                version,
            )
        )
        if state in conflicts.LIVE_STATES:
            cis = frozenset(ci for _, ci in mine if ci)
            planned.append(
                Planned(
                    change_id, ref, kind, state, begin, finish, services, cis, implementer, login, override
                )
            )
    windows = conflicts.window_specs(session)
    blackouts = conflicts.blackout_specs(session, start, end)
    return CalendarData(
        start=start,
        end=end,
        changes=change_rows,
        occurrences=conflicts.expand(windows, start, end),
        blackouts=blackouts,
        conflicts=conflicts.find_conflicts(planned, windows, blackouts),
        truncated=truncated,
    )


def fingerprint(session: Session) -> tuple:
    """A cheap summary that changes whenever a change, window or blackout does (for live refresh)."""
    changes_now = session.execute(select(func.count(), func.max(Change.updated_at), func.sum(Change.version)))
    blackouts_now = session.execute(select(func.count(), func.max(Blackout.id), func.max(Blackout.ends_at)))
    return (
        tuple(changes_now.one()),
        session.scalar(select(func.count()).select_from(MaintenanceWindow)),
        tuple(blackouts_now.one()),
    )


# --------------------------------------------------------------------------- windows and blackouts


def add_window(
    session: Session,
    actor: Actor,
    *,
    name: str,
    service: str,
    rrule: str,
    start_local: str,
    duration_minutes: int,
    timezone: str,
    config: DeskConfig,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    now: datetime | None = None,
) -> MaintenanceWindow:
    """Add a recurring maintenance window to a service (change managers)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    require(actor.roles, "change.manage")
    now = _now(now)
    name = (name or "").strip()
    if not name:
        raise ValidationError("name", "give the window a name (e.g. Network weekly window)")
    service = (service or "").strip().lower()
    if service not in config.services:
        raise ValidationError(
            "service", f"unknown service {service!r}; use one of {', '.join(config.services)}"
        )
    try:
        rule = conflicts.validate_rrule(rrule)
        conflicts.validate_start_local(start_local)
    except ValueError as exc:
        raise ValidationError("rrule" if "RULE" in str(exc).upper() else "start_local", str(exc)) from None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("timezone", f"unknown time zone {timezone!r} (e.g. Europe/Berlin)") from None
    if not 1 <= int(duration_minutes) <= 7 * 1440:
        raise ValidationError("duration_minutes", "the duration is between 1 minute and 7 days")
    window = MaintenanceWindow(
        name=name,
        service=service,
        timezone=timezone,
        rrule=rule,
        start_local=start_local,
        duration_minutes=int(duration_minutes),
        valid_from=_instant("valid_from", valid_from) or now,
        valid_until=_instant("valid_until", valid_until),
    )
    session.add(window)
    session.flush()
    audit.record(
        session,
        entity_type="window",
        entity_id=window.id,
        actor_id=actor.id,
        at=now,
        action="create",
        field="rule",
        new=f"{service}: {rule} at {start_local} {timezone} for {duration_minutes} min",
    )
    return window


def add_blackout(
    session: Session,
    actor: Actor,
    *,
    name: str,
    start: datetime,
    end: datetime,
    config: DeskConfig,
    service: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> Blackout:
    """Add a change freeze for every service or one (change managers)."""
    require(actor.roles, "change.manage")
    now = _now(now)
    name = (name or "").strip()
    if not name:
        raise ValidationError("name", "give the freeze a name (e.g. Year-end change freeze)")
    if service:
        service = service.strip().lower()
        if service not in config.services:
            raise ValidationError(
                "service", f"unknown service {service!r}; use one of {', '.join(config.services)}"
            )
    start, end = _instant("start", start), _instant("end", end)
    if start is None or end is None or end <= start:
        raise ValidationError("end", "a blackout needs a start and a later end")
    blackout = Blackout(
        name=name,
        reason=(reason or "").strip() or None,
        service=service or None,
        starts_at=start,
        ends_at=end,
    )
    session.add(blackout)
    session.flush()
    audit.record(
        session,
        entity_type="blackout",
        entity_id=blackout.id,
        actor_id=actor.id,
        at=now,
        action="create",
        field="period",
        new=f"{service or 'all services'}: {start.isoformat()} to {end.isoformat()}",
    )
    return blackout
