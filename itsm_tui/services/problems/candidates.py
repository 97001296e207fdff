"""Candidate problems: clusters of incidents that keep coming back and that no problem covers yet.

A cluster is the incidents opened within the last ``window_days`` days (problems.toml ``[candidates]``; from
``now - window_days`` to ``now``, both instants counted) on one configuration item (``ci``) or of one service
and category (``service_category``), leaving out incidents already linked to a problem and cancelled ones;
open and resolved incidents alike count, since a cluster is about how often something happens. A cluster
of at least ``min_incidents`` incidents is a candidate unless an open problem (any status but closed,
cancelled and duplicate) covers it: one on that configuration item, or one of that service and category.
Candidates come largest first, then the most recent, at most ``limit`` of them.

Reading is bounded whatever the number of tickets: the opening window is a range of ``ix_tickets_opened``
(opened_at, id), each incident's links to problems a probe of ``uq_links_pair`` (source_type, source_id,
target_type, target_id); the counts come out of one GROUP BY, whose rows are at most the window's distinct
(ci, service, category); open problems are looked up by ``ix_problems_ci`` and ``ix_problems_service``; the
references are read newest first along the same index and the read stops once every candidate has its
newest :data:`REFS_SHOWN`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, func, or_, select, tuple_
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Link, Problem, Ticket, utc_or_now
from itsm_tui.services.errors import ValidationError
from itsm_tui.services.problems.rules import ENDED_STATUSES

REFS_SHOWN = 50  # the newest incident references a candidate carries
REFS_MAX = 500  # the references candidate_incident_refs gives at most (to raise a problem from a cluster)
KINDS = ("ci", "service_category")
_CHUNK = 400  # cluster keys per statement of the open problems' look-up
_FETCH = 500  # rows fetched at a time while collecting references


@dataclass(frozen=True)
class Candidate:
    """A cluster of incidents no problem covers: ``key`` names it stably ("ci:<CI>", or
    "svc:<service>/<category>"), ``kind`` is "ci" or "service_category"; ``incident_refs`` are the newest
    (at most :data:`REFS_SHOWN`), newest first; ``count`` is all of them."""

    key: str
    kind: str
    ci: str | None
    service: str | None
    category: str | None
    count: int
    first_opened: datetime
    last_opened: datetime
    incident_refs: tuple[str, ...]
    suggested_title: str


def ci_key(ci: str) -> str:
    return f"ci:{ci}"


def service_category_key(service: str, category: str) -> str:
    return f"svc:{service}/{category}"


def parse_key(key: str) -> tuple[str, str | None, str | None, str | None]:
    """(kind, ci, service, category) of a candidate's key; a malformed key is a :class:`ValidationError`."""
    text = (key or "").strip()
    if text.startswith("ci:") and text[3:]:
        return "ci", text[3:], None, None
    if text.startswith("svc:"):
        service, slash, category = text[4:].partition("/")
        if service and slash and category:
            return "service_category", None, service, category
    raise ValidationError(
        "key", f"{text!r} names no incident cluster; write ci:<CI> or svc:<service>/<category>"
    )


def suggested_title(kind: str, ci: str | None, service: str | None, category: str | None) -> str:
    if kind == "ci":
        return f"Repeated incidents on {ci}"
    return f"Repeated {service} / {category} incidents"


def candidates(session: Session, config: DeskConfig, now: datetime | None = None) -> list[Candidate]:
    """The candidate problems at ``now`` (default: the current instant), largest cluster first, then the
    most recent; at most problems.toml's ``limit``."""
    settings = config.problems
    now = utc_or_now(now)
    start = now - timedelta(days=settings.window_days)
    clusters = _clusters(session, start, now, settings.by)
    big = {key: c for key, c in clusters.items() if c.count >= settings.min_incidents}
    for key in _covered(session, big.values()):
        del big[key]
    chosen = sorted(big.values(), key=lambda c: (-c.count, -c.last_opened.timestamp(), c.key))
    chosen = chosen[: settings.limit]
    refs = _newest_refs(session, start, now, chosen, REFS_SHOWN)
    return [
        Candidate(
            key=c.key,
            kind=c.kind,
            ci=c.ci,
            service=c.service,
            category=c.category,
            count=c.count,
            first_opened=c.first_opened,
            last_opened=c.last_opened,
            incident_refs=tuple(refs.get(c.key, ())),
            suggested_title=suggested_title(c.kind, c.ci, c.service, c.category),
        )
        for c in chosen
    ]


def candidate_incident_refs(
    session: Session, config: DeskConfig, key: str, now: datetime | None = None
) -> list[str]:
    """The references of the incidents of the cluster ``key`` at ``now``, newest first (at most
    :data:`REFS_MAX`): those a problem raised from the candidate links. The cluster's members are those of
    :func:`candidates` (in the window, not linked to a problem, not cancelled), whether or not the cluster
    is (still) a candidate."""
    kind, ci, service, category = parse_key(key)
    now = utc_or_now(now)
    start = now - timedelta(days=config.problems.window_days)
    stmt = _CLUSTER_REFS[kind].order_by(Ticket.opened_at.desc(), Ticket.id.desc()).limit(REFS_MAX)
    params = {"start": start, "now": now, "ci": ci, "service": service, "category": category}
    return list(session.connection().scalars(stmt, params))


# --------------------------------------------------------------------------- the statements


@dataclass
class _Cluster:
    key: str
    kind: str
    ci: str | None
    service: str | None
    category: str | None
    count: int
    first_opened: datetime
    last_opened: datetime


def _window() -> tuple[ColumnElement[bool], ...]:
    """The incidents a cluster is made of: opened in [:start, :now], not cancelled, linked to no problem."""
    linked = exists().where(
        Link.source_type == "ticket",
        Link.source_id == Ticket.id,
        Link.target_type == "problem",
    )
    return (
        Ticket.opened_at >= bindparam("start"),
        Ticket.opened_at <= bindparam("now"),
        Ticket.kind == "incident",
        Ticket.status != "cancelled",
        ~linked,
    )


_GROUPED: dict[tuple[str, ...], Select] = {}


def _grouped(by: tuple[str, ...]) -> Select:
    """One GROUP BY on (ci, service, category) over the window's incidents that some clustering of ``by``
    takes (built once per ``by``)."""
    stmt = _GROUPED.get(by)
    if stmt is None:
        wanted: list[ColumnElement[bool]] = []
        if "ci" in by:
            wanted.append(Ticket.ci.is_not(None))
        if "service_category" in by:
            wanted.append(and_(Ticket.service.is_not(None), Ticket.category.is_not(None)))
        stmt = _GROUPED[by] = (
            select(
                Ticket.ci,
                Ticket.service,
                Ticket.category,
                func.count(),
                func.min(Ticket.opened_at),
                func.max(Ticket.opened_at),
            )
            .where(*_window(), or_(*wanted))
            .group_by(Ticket.ci, Ticket.service, Ticket.category)
        )
    return stmt


def _clusters(session: Session, start: datetime, now: datetime, by: Sequence[str]) -> dict[str, _Cluster]:
    """Every cluster of the window, of the clusterings ``by``: the rows of one GROUP BY on (ci, service,
    category) rolled up into the clusters of each clustering."""
    by = tuple(name for name in KINDS if name in by)
    if not by:
        return {}
    clusters: dict[str, _Cluster] = {}

    def add(key: str, kind: str, ci, service, category, n: int, first: datetime, last: datetime) -> None:
        found = clusters.get(key)
        if found is None:
            clusters[key] = _Cluster(key, kind, ci, service, category, n, first, last)
            return
        found.count += n
        found.first_opened = min(found.first_opened, first)
        found.last_opened = max(found.last_opened, last)

    rows = session.connection().execute(_grouped(by), {"start": start, "now": now})
    for ci, service, category, n, first, last in rows:
        if ci is not None and "ci" in by:
            add(ci_key(ci), "ci", ci, None, None, n, first, last)
        if service is not None and category is not None and "service_category" in by:
            key = service_category_key(service, category)
            add(key, "service_category", None, service, category, n, first, last)
    return clusters


_STILL_OPEN = Problem.status.not_in(ENDED_STATUSES)
_COVERING_CI = select(Problem.ci).where(Problem.ci.in_(bindparam("cis", expanding=True)), _STILL_OPEN)
# The services' and the categories' open problems (a few more than the pairs asked for, sorted out after).
_COVERING_PAIR = select(Problem.service, Problem.category).where(
    Problem.service.in_(bindparam("services", expanding=True)),
    Problem.category.in_(bindparam("categories", expanding=True)),
    _STILL_OPEN,
)


def _chunks(items: list, size: int = _CHUNK) -> Iterable[list]:
    for at in range(0, len(items), size):
        yield items[at : at + size]


def _covered(session: Session, clusters: Iterable[_Cluster]) -> set[str]:
    """The keys of the clusters an open problem covers (on its CI, or of its service and category)."""
    cis: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    for c in clusters:
        if c.ci is not None:
            cis.add(c.ci)
        elif c.service is not None and c.category is not None:
            pairs.add((c.service, c.category))
    connection = session.connection()
    covered: set[str] = set()
    for part in _chunks(sorted(cis)):
        covered.update(ci_key(ci) for (ci,) in connection.execute(_COVERING_CI, {"cis": part}))
    for part in _chunks(sorted(pairs)):
        services = sorted({service for service, _ in part})
        categories = sorted({category for _, category in part})
        rows = connection.execute(_COVERING_PAIR, {"services": services, "categories": categories})
        covered.update(service_category_key(*pair) for pair in rows if tuple(pair) in pairs)
    return covered


_NEWEST = (
    select(Ticket.ref, Ticket.ci, Ticket.service, Ticket.category)
    .where(
        *_window(),
        or_(
            Ticket.ci.in_(bindparam("cis", expanding=True)),
            tuple_(Ticket.service, Ticket.category).in_(bindparam("pairs", expanding=True)),
        ),
    )
    .order_by(Ticket.opened_at.desc(), Ticket.id.desc())
)
_CLUSTER_REFS = {
    "ci": select(Ticket.ref).where(*_window(), Ticket.ci == bindparam("ci")),
    "service_category": select(Ticket.ref).where(
        *_window(), Ticket.service == bindparam("service"), Ticket.category == bindparam("category")
    ),
}


def _newest_refs(
    session: Session, start: datetime, now: datetime, chosen: Sequence[_Cluster], each: int
) -> dict[str, list[str]]:
    """The newest ``each`` references of every cluster of ``chosen``: the window read newest first along
    ``ix_tickets_opened``, only the chosen clusters' incidents, stopping once every cluster has its share."""
    if not chosen:
        return {}
    cis = [c.ci for c in chosen if c.ci is not None]
    pairs = [(c.service, c.category) for c in chosen if c.ci is None]
    needed = {c.key: min(c.count, each) for c in chosen}
    wanted_ci, wanted_pair = set(cis), set(pairs)
    refs: dict[str, list[str]] = {key: [] for key in needed}
    missing = sum(needed.values())
    params = {"start": start, "now": now, "cis": cis or [""], "pairs": pairs or [("", "")]}
    result = session.connection().execute(_NEWEST, params, execution_options={"yield_per": _FETCH})
    try:
        for ref, ci, service, category in result:
            if ci in wanted_ci:
                key = ci_key(ci)
                if len(refs[key]) < needed[key]:
                    refs[key].append(ref)
                    missing -= 1
            if (service, category) in wanted_pair:
                key = service_category_key(service, category)
                if len(refs[key]) < needed[key]:
                    refs[key].append(ref)
                    missing -= 1
            if not missing:
                break
    finally:
        result.close()
    return refs
