"""What a change touches: the open incidents and problems on its services and configuration items, and the
changes on them that failed lately (the change detail, ``itsm change show`` and the new-change form).

Which records a change's targets reach (the conflict rule's, seen from the records' side):

- a record on a configuration item the change names (its CI is one of ``cis``);
- a record of a service the change affects as a whole (its service is one of ``services``, any CI);
- a record of the service of one of the CIs that names no CI itself (reported on the service, it may be
  about that CI); a record on another CI of that service is not reached.

Open incidents are those of an open status (new, assigned, in progress, pending): the most urgent first,
the newest first within a priority. Open problems are those not resolved, closed, cancelled or duplicate.
Failed changes are those whose outcome is failed or backed out and that ended (their actual end, else their
planned end) in the last ``[impact] failed_days`` days of changes.toml, the latest first.

Every list is cut at ``limit`` rows and comes with its full count. A ticket's CI always belongs to its
service, so the incidents are read among the open tickets of the services concerned, along the partial index
of the open tickets by service (``ix_tickets_open_by_service``), never the whole history; problems along
``ix_problems_ci`` / ``ix_problems_service``; the failed changes from ``ix_change_targets_service`` to the
changes by primary key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, false, func, or_, select, text, true
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Change, ChangeTarget, Problem, Ticket
from itsm_tui.services.changes.helpers import _now
from itsm_tui.services.jsondata import jsonable

FAILED_OUTCOMES = ("failed", "backed_out")
OPEN_PROBLEM_STATUSES = ("new", "investigating", "known_error", "fix_in_progress")
LIMIT = 10


@dataclass(frozen=True)
class ImpactIncident:
    ref: str
    title: str
    priority: int
    status: str
    service: str | None
    ci: str | None
    opened_at: datetime


@dataclass(frozen=True)
class ImpactProblem:
    ref: str
    title: str
    priority: int
    status: str
    service: str | None
    ci: str | None


@dataclass(frozen=True)
class ImpactChange:
    ref: str
    title: str
    change_type: str
    outcome: str
    ended_at: datetime


@dataclass(frozen=True)
class Impact:
    """What a change's targets touch; each list cut at the limit, its count the whole number."""

    incidents: tuple[ImpactIncident, ...] = ()
    incident_count: int = 0
    problems: tuple[ImpactProblem, ...] = ()
    problem_count: int = 0
    failed_changes: tuple[ImpactChange, ...] = ()
    failed_count: int = 0
    failed_days: int = 30

    @property
    def empty(self) -> bool:
        return not (self.incident_count or self.problem_count or self.failed_count)

    def summary(self) -> str:
        """One line: "2 open incidents, 1 open problem, no failed change in 30 days"."""
        incidents = _counted(self.incident_count, "open incident")
        problems = _counted(self.problem_count, "open problem")
        failed = _counted(self.failed_count, "failed change")
        return f"{incidents}, {problems}, {failed} in {self.failed_days} days"

    def as_json(self) -> dict:
        data = asdict(self)
        for key in ("incidents", "problems", "failed_changes"):
            data[key] = [jsonable(item) for item in data[key]]
        return data


def _counted(count: int, noun: str) -> str:
    if count == 0:
        return f"no {noun}"
    return f"{count} {noun}" + ("" if count == 1 else "s")


def impact(
    session: Session,
    config: DeskConfig,
    *,
    services: Iterable[str],
    cis: Iterable[str],
    exclude_change_id: int | None = None,
    now: datetime | None = None,
    limit: int = LIMIT,
) -> Impact:
    """What the targets touch: ``services`` affected as a whole, ``cis`` the configuration items affected
    (see the module's docstring); ``exclude_change_id`` leaves the change itself out of the failed ones."""
    now = _now(now)
    whole, items, concerned = _scope(config, services, cis)
    days = config.changes.failed_days
    if not concerned and not items:
        return Impact(failed_days=days)

    def reached(service, ci):
        return _reached(service, ci, whole, items, concerned)

    # Open incidents: the open tickets of the services concerned, by the open tickets' service index.
    total = func.count().over().label("total")
    rows = session.execute(
        select(
            Ticket.ref,
            Ticket.title,
            Ticket.priority,
            Ticket.status,
            Ticket.service,
            Ticket.ci,
            Ticket.opened_at,
            total,
        )
        .where(
            Ticket.is_open == true(),
            func.coalesce(Ticket.service, text("''")).in_(concerned),
            Ticket.kind == "incident",
            or_(
                Ticket.ci.in_(items) if items else false(),
                Ticket.service.in_(whole) if whole else false(),
                Ticket.ci.is_(None),
            ),
        )
        .order_by(Ticket.priority, Ticket.opened_at.desc(), Ticket.id.desc())
        .limit(limit)
    ).all()
    incidents = tuple(ImpactIncident(*row[:7]) for row in rows)
    incident_count = rows[0].total if rows else 0

    problem_rows = session.execute(
        select(
            Problem.ref,
            Problem.title,
            Problem.priority,
            Problem.status,
            Problem.service,
            Problem.ci,
            func.count().over().label("total"),
        )
        .where(
            Problem.status.in_(OPEN_PROBLEM_STATUSES),
            # along ix_problems_ci or ix_problems_service, then the finer rule
            or_(Problem.ci.in_(items) if items else false(), Problem.service.in_(concerned)),
            or_(Problem.ci.in_(items) if items else false(), reached(Problem.service, Problem.ci)),
        )
        .order_by(Problem.priority, Problem.opened_at.desc(), Problem.id.desc())
        .limit(limit)
    ).all()
    problems = tuple(ImpactProblem(*row[:6]) for row in problem_rows)
    problem_count = problem_rows[0].total if problem_rows else 0

    failed, failed_count = failed_changes(
        session, config, services=whole, cis=items, exclude_change_id=exclude_change_id, now=now, limit=limit
    )
    return Impact(
        incidents=incidents,
        incident_count=incident_count,
        problems=problems,
        problem_count=problem_count,
        failed_changes=failed,
        failed_count=failed_count,
        failed_days=days,
    )


def _scope(
    config: DeskConfig, services: Iterable[str], cis: Iterable[str]
) -> tuple[list[str], list[str], list[str]]:
    """The services affected as a whole, the CIs, and every service concerned (those and the CIs')."""
    whole = sorted(set(services))
    items = sorted(set(cis))
    owners = {owner.code for owner in (config.service_for_ci(ci) for ci in items) if owner is not None}
    return whole, items, sorted(set(whole) | owners)


def _reached(service, ci, whole: list[str], items: list[str], concerned: list[str]):
    """The records of ``concerned`` services that the targets reach (a CI named, or none)."""
    return and_(
        service.in_(concerned),
        or_(ci.in_(items) if items else false(), service.in_(whole) if whole else false(), ci.is_(None)),
    )


def failed_changes(
    session: Session,
    config: DeskConfig,
    *,
    services: Iterable[str],
    cis: Iterable[str],
    exclude_change_id: int | None = None,
    now: datetime | None = None,
    limit: int = LIMIT,
) -> tuple[tuple[ImpactChange, ...], int]:
    """The changes the targets reach that failed or were backed out and ended (actually, else as planned)
    in the last ``[impact] failed_days`` days, the latest first, cut at ``limit``, and how many there are:
    the one rule of a recent failure (the impact list and the risk questionnaire's suggestion)."""
    now = _now(now)
    whole, items, concerned = _scope(config, services, cis)
    if not concerned and not items:
        return (), 0
    days = config.changes.failed_days
    ended = func.coalesce(Change.actual_end, Change.planned_end)
    touched = select(ChangeTarget.change_id).where(
        _reached(ChangeTarget.service, ChangeTarget.ci, whole, items, concerned)
    )
    if exclude_change_id is not None:
        touched = touched.where(ChangeTarget.change_id != exclude_change_id)
    change_rows = session.execute(
        select(
            Change.ref,
            Change.title,
            Change.change_type,
            Change.outcome,
            ended.label("ended"),
            func.count().over().label("total"),
        )
        .where(
            Change.id.in_(touched), Change.outcome.in_(FAILED_OUTCOMES), ended >= now - timedelta(days=days)
        )
        .order_by(ended.desc(), Change.id.desc())
        .limit(limit)
    ).all()
    return tuple(ImpactChange(*row[:5]) for row in change_rows), change_rows[0].total if change_rows else 0


def impact_of(
    session: Session, config: DeskConfig, change: Change, *, now: datetime | None = None, limit: int = LIMIT
) -> Impact:
    """What ``change``'s targets touch (its own failure left out)."""
    services, cis = targets_scope((t.service, t.ci) for t in change.targets)
    return impact(
        session,
        config,
        services=services,
        cis=cis,
        exclude_change_id=change.id,
        now=now,
        limit=limit,
    )


def targets_scope(targets: Iterable[tuple[str, str | None]]) -> tuple[list[str], list[str]]:
    """The services affected as a whole and the CIs of (service, CI) targets, as :func:`impact` takes them."""
    pairs = list(targets)
    return sorted({s for s, ci in pairs if ci is None}), sorted({ci for _, ci in pairs if ci is not None})
