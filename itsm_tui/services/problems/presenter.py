"""A problem as its page and ``itsm problem show`` see it: plain frozen data, never a live ORM object."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Change, KnownError, Link, Problem, Ticket, User, utc_or_now
from itsm_tui.services import audit
from itsm_tui.services.problems.guards import ActionOffer, available_actions
from itsm_tui.services.problems.lifecycle import categories_of, whys_of
from itsm_tui.services.problems.reading import from_a_ticket, get_problem
from itsm_tui.services.problems.rules import STATUS_LABELS
from itsm_tui.services.users import Actor

INCIDENTS_SHOWN = 100
HISTORY_SHOWN = 100


@dataclass(frozen=True)
class LinkedIncident:
    ref: str
    title: str
    status: str
    is_open: bool
    assignee: str | None
    opened_at: datetime


@dataclass(frozen=True)
class LinkedChange:
    ref: str
    title: str
    state: str


@dataclass(frozen=True)
class KnownErrorRef:
    ref: str
    title: str
    status: str
    published_at: datetime
    uses: int  # tickets linked to it (a workaround applied links it)


@dataclass(frozen=True)
class HistoryItem:
    at: datetime
    who: str
    action: str
    field: str | None
    old: str | None
    new: str | None


@dataclass(frozen=True)
class ProblemDetail:
    ref: str
    version: int
    title: str
    description: str
    status: str
    status_label: str
    category: str | None
    service: str | None
    ci: str | None
    impact: str
    urgency: str
    priority: int
    owner: str | None
    owner_name: str | None
    created_by: str | None
    opened_at: datetime
    root_cause_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    root_cause: str | None
    whys: tuple[str, ...]
    cause_categories: tuple[str, ...]
    workaround: str | None
    permanent_fix: str | None
    verification: str | None
    status_reason: str | None
    duplicate_of: str | None
    incidents: tuple[LinkedIncident, ...]  # the first INCIDENTS_SHOWN, newest first
    incidents_total: int
    incidents_open: int
    incidents_since_fix: int | None  # linked incidents opened after the fix was in (None: no fix yet)
    changes: tuple[LinkedChange, ...]
    known_errors: tuple[KnownErrorRef, ...]
    history: tuple[HistoryItem, ...]
    actions: tuple[ActionOffer, ...]
    history_warning: str | None

    def offered(self, action: str) -> bool:
        return any(offer.action == action and offer.refusal is None for offer in self.actions)

    def refusal(self, action: str) -> str | None:
        return next((offer.refusal for offer in self.actions if offer.action == action), None)

    def as_json(self) -> dict:
        data = asdict(self)
        data["actions"] = {offer.action: offer.refusal for offer in self.actions}
        return _instants(data)


def _instants(value: Any) -> Any:
    """``value`` with every instant inside it (lists, tuples, dicts) written as JSON instants are."""
    from itsm_tui.services.jsondata import instant

    if isinstance(value, datetime):
        return instant(value)
    if isinstance(value, dict):
        return {key: _instants(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_instants(item) for item in value]
    return value


def _login(session: Session, user_id: int | None) -> tuple[str | None, str | None]:
    if user_id is None:
        return None, None
    row = session.execute(select(User.login, User.name).where(User.id == user_id)).first()
    return (row[0], row[1]) if row else (None, None)


def detail(
    session: Session, config: DeskConfig, actor: Actor, ref: str, now: datetime | None = None
) -> ProblemDetail:
    now = utc_or_now(now)
    problem = get_problem(session, ref)
    owner, owner_name = _login(session, problem.owner_id)
    created_by, _ = _login(session, problem.created_by_id)
    links = (from_a_ticket(), Link.target_type == "problem", Link.target_id == problem.id)
    total, still_open = session.execute(
        select(func.count(Ticket.id), func.count(Ticket.id).filter(Ticket.is_open))
        .select_from(Link)
        .join(Ticket, Ticket.id == Link.source_id)
        .where(*links)
    ).one()
    since_fix: int | None = None
    if problem.resolved_at is not None:
        since_fix = session.scalar(
            select(func.count(Ticket.id))
            .select_from(Link)
            .join(Ticket, Ticket.id == Link.source_id)
            .where(*links, Ticket.opened_at > problem.resolved_at)
        )
    assignee = User.__table__.alias("assignee")
    incidents = tuple(
        LinkedIncident(r, t, s, bool(o), a, at)
        for r, t, s, o, a, at in session.execute(
            select(
                Ticket.ref, Ticket.title, Ticket.status, Ticket.is_open, assignee.c.login, Ticket.opened_at
            )
            .select_from(Link)
            .join(Ticket, Ticket.id == Link.source_id)
            .outerjoin(assignee, assignee.c.id == Ticket.assignee_id)
            .where(*links)
            .order_by(Ticket.opened_at.desc(), Ticket.id.desc())
            .limit(INCIDENTS_SHOWN)
        )
    )
    changes = tuple(
        LinkedChange(r, t, s)
        for r, t, s in session.execute(
            select(Change.ref, Change.title, Change.state)
            .select_from(Link)
            .join(Change, Change.id == Link.target_id)
            .where(Link.source_type == "problem", Link.source_id == problem.id, Link.target_type == "change")
            .order_by(Change.id)
        )
    )
    uses = (
        select(func.count(Link.id))
        .where(Link.target_type == "known_error", Link.target_id == KnownError.id)
        .correlate(KnownError)
        .scalar_subquery()
    )
    known_errors = tuple(
        KnownErrorRef(r, t, s, p, u)
        for r, t, s, p, u in session.execute(
            select(KnownError.ref, KnownError.title, KnownError.status, KnownError.published_at, uses)
            .where(KnownError.problem_id == problem.id)
            .order_by(KnownError.id)
        )
    )
    duplicate_of = (
        session.scalar(select(Problem.ref).where(Problem.id == problem.duplicate_of_id))
        if problem.duplicate_of_id
        else None
    )
    names: dict[int, str] = {}
    events = audit.history(session, "problem", problem.id, limit=HISTORY_SHOWN)
    actor_ids = {e.actor_id for e in events if e.actor_id is not None}
    if actor_ids:
        names = dict(
            session.execute(select(User.id, User.login).where(User.id.in_(actor_ids))).tuples().all()
        )
    history = tuple(
        HistoryItem(
            e.at,
            names.get(e.actor_id, "system") if e.actor_id else "system",
            e.action,
            e.field,
            e.old_value,
            e.new_value,
        )
        for e in events
    )
    return ProblemDetail(
        ref=problem.ref,
        version=problem.version,
        title=problem.title,
        description=problem.description or "",
        status=problem.status,
        status_label=STATUS_LABELS.get(problem.status, problem.status),
        category=problem.category,
        service=problem.service,
        ci=problem.ci,
        impact=problem.impact,
        urgency=problem.urgency,
        priority=problem.priority,
        owner=owner,
        owner_name=owner_name,
        created_by=created_by,
        opened_at=problem.opened_at,
        root_cause_at=problem.root_cause_at,
        resolved_at=problem.resolved_at,
        closed_at=problem.closed_at,
        root_cause=problem.root_cause,
        whys=whys_of(problem),
        cause_categories=categories_of(problem),
        workaround=problem.workaround,
        permanent_fix=problem.permanent_fix,
        verification=problem.verification,
        status_reason=problem.status_reason,
        duplicate_of=duplicate_of,
        incidents=incidents,
        incidents_total=int(total or 0),
        incidents_open=int(still_open or 0),
        incidents_since_fix=since_fix,
        changes=changes,
        known_errors=known_errors,
        history=history,
        actions=available_actions(session, config, actor, problem, now),
        history_warning=audit.history_warning(session, "problem", problem.id),
    )
