"""Candidate problems: clusters of incidents that keep coming back and that no problem covers yet.

A cluster is the incidents opened within the last ``window_days`` days (problems.toml ``[candidates]``; from
``now - window_days`` to ``now``, both instants counted) on one configuration item (``ci``) or of one service
and category (``service_category``), leaving out incidents already linked to a problem and cancelled ones;
open and resolved incidents alike count, since a cluster is about how often something happens. A cluster
of at least ``min_incidents`` incidents is a candidate unless an open problem (any status but closed,
cancelled and duplicate) covers it: one on that configuration item, or one of that service and category.
Candidates come largest first, then the most recent, at most ``limit`` of them.

Reading is bounded by the window, whatever the number of tickets: the window is a range of an index on the
opening instant (``ix_tickets_kind_opened``, the incidents', or ``ix_tickets_opened``), each incident's links
to problems a probe of ``uq_links_pair`` (source_type, source_id, target_type, target_id; PostgreSQL may hash
the links to problems instead); the counts come out of one GROUP BY, whose rows are at most the window's
distinct (ci, service, category); open problems are looked up by ``ix_problems_ci`` and
``ix_problems_service``; the references are read newest first along the window's index and the read stops
once every candidate has its newest :data:`REFS_SHOWN`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    exists,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.orm import QueryableAttribute, Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Link, Problem, Ticket, utc_or_now
from itsm_tui.services.errors import ValidationError
from itsm_tui.services.problems.rules import ENDED_STATUSES
from itsm_tui.services.users import Actor

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


# The incidents clusters are made of: the condition of the partial indexes ix_tickets_incident_ci and
# ix_tickets_incident_service (migration 0014), which every statement here repeats word for word so that
# both databases read those indexes.
_LIVE = (Ticket.kind == "incident", Ticket.status != "cancelled")


def _window() -> tuple[ColumnElement[bool], ...]:
    """The incidents a cluster is made of: opened in [:start, :now], not cancelled, linked to no problem."""
    linked = exists().where(
        Link.source_type == "ticket",
        Link.source_id == Ticket.id,
        Link.target_type == "problem",
    )
    return (
        *_LIVE,
        Ticket.opened_at >= bindparam("start"),
        Ticket.opened_at <= bindparam("now"),
        ~linked,
    )


def _next_value(column: QueryableAttribute[str | None], *where: ColumnElement[bool]) -> Select:
    """The least value of ``column`` above :after among the live incidents (one seek of a partial index)."""
    return select(func.min(column)).where(*_LIVE, *where, column > bindparam("after"))


_NEXT_CI = _next_value(Ticket.ci)
_NEXT_SERVICE = _next_value(Ticket.service)
_NEXT_CATEGORY = _next_value(Ticket.category, Ticket.service == bindparam("service"))

_IN_WINDOW = (Ticket.opened_at >= bindparam("start"), Ticket.opened_at <= bindparam("now"))
_COUNT_CI = select(func.count(), func.min(Ticket.opened_at), func.max(Ticket.opened_at)).where(
    *_LIVE, Ticket.ci == bindparam("ci"), *_IN_WINDOW
)
_COUNT_PAIR = select(func.count(), func.min(Ticket.opened_at), func.max(Ticket.opened_at)).where(
    *_LIVE, Ticket.service == bindparam("service"), Ticket.category == bindparam("category"), *_IN_WINDOW
)
_EXACT_CI = select(func.count(), func.min(Ticket.opened_at), func.max(Ticket.opened_at)).where(
    *_window(), Ticket.ci == bindparam("ci")
)
_EXACT_PAIR = select(func.count(), func.min(Ticket.opened_at), func.max(Ticket.opened_at)).where(
    *_window(), Ticket.service == bindparam("service"), Ticket.category == bindparam("category")
)


def _values(connection, statement: Select, **params: object) -> list[str]:
    """Every distinct value, one index seek each (a handful of CIs, services or categories)."""
    found: list[str] = []
    after = ""
    while True:
        value = connection.execute(statement, {**params, "after": after}).scalar()
        if value is None:
            return found
        found.append(value)
        after = value


def _linked_in_window(session: Session, start: datetime, now: datetime) -> dict[tuple, int]:
    """The window's live incidents linked to a problem, counted by (ci, service, category): read from the
    links to problems (``ix_links_target``) to their tickets by primary key. SQLite would rather walk the
    window's incidents and probe each one's links: the unary plus keeps it off the tickets' indexes."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    source: ColumnElement[str] = (
        literal_column("+links.source_type") if sqlite else Link.source_type.expression
    )
    linked = (
        select(Link.source_id).where(Link.target_type == "problem", source == "ticket").distinct().subquery()
    )
    if sqlite:
        opened = type_coerce(literal_column("+tickets.opened_at"), Ticket.opened_at.type)
        kind: ColumnElement[str] = literal_column("+tickets.kind")
        status: ColumnElement[str] = literal_column("+tickets.status")
        where = (kind == "incident", status != "cancelled", opened >= start, opened <= now)
    else:
        where = (*_LIVE, Ticket.opened_at >= start, Ticket.opened_at <= now)
    rows = session.execute(
        select(Ticket.ci, Ticket.service, Ticket.category, func.count())
        .select_from(linked)
        .join(Ticket, Ticket.id == linked.c.source_id)
        .where(*where)
        .group_by(Ticket.ci, Ticket.service, Ticket.category)
    )
    return {(ci, service, category): n for ci, service, category, n in rows}


def _clusters(session: Session, start: datetime, now: datetime, by: Sequence[str]) -> dict[str, _Cluster]:
    """Every cluster of the window, of the clusterings ``by``: each CI's and each (service, category)'s
    incidents of the window counted along its partial index (``ix_tickets_incident_ci`` /
    ``ix_tickets_incident_service``: the index alone), less those linked to a problem; a cluster that lost
    some is counted again exactly, for its first and last instants."""
    by = tuple(name for name in KINDS if name in by)
    clusters: dict[str, _Cluster] = {}
    if not by:
        return clusters
    connection = session.connection()
    window = {"start": start, "now": now}
    linked = _linked_in_window(session, start, now)
    if "ci" in by:
        less: dict[str, int] = {}
        for (ci, _service, _category), n in linked.items():
            if ci is not None:
                less[ci] = less.get(ci, 0) + n
        for ci in _values(connection, _NEXT_CI):
            params = {**window, "ci": ci}
            n, first, last = connection.execute(_EXACT_CI if less.get(ci) else _COUNT_CI, params).one()
            if n:
                clusters[ci_key(ci)] = _Cluster(
                    ci_key(ci), "ci", ci, None, None, n, _aware(first), _aware(last)
                )
    if "service_category" in by:
        less_pair: dict[tuple[str, str], int] = {}
        for (_ci, service, category), n in linked.items():
            if service is not None and category is not None:
                less_pair[(service, category)] = less_pair.get((service, category), 0) + n
        for service in _values(connection, _NEXT_SERVICE):
            for category in _values(connection, _NEXT_CATEGORY, service=service):
                params = {**window, "service": service, "category": category}
                exact = less_pair.get((service, category))
                n, first, last = connection.execute(_EXACT_PAIR if exact else _COUNT_PAIR, params).one()
                if n:
                    key = service_category_key(service, category)
                    clusters[key] = _Cluster(
                        key, "service_category", None, service, category, n, _aware(first), _aware(last)
                    )
    return clusters


def _aware(value: datetime | str) -> datetime:
    """An instant as a core statement returns it from either database (SQLite: text), made UTC-aware."""
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


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


_CLUSTER_REFS = {
    "ci": select(Ticket.ref).where(*_window(), Ticket.ci == bindparam("ci")),
    "service_category": select(Ticket.ref).where(
        *_window(), Ticket.service == bindparam("service"), Ticket.category == bindparam("category")
    ),
}


def _newest_refs(
    session: Session, start: datetime, now: datetime, chosen: Sequence[_Cluster], each: int
) -> dict[str, list[str]]:
    """The newest ``each`` references of every cluster of ``chosen``: each cluster's own partial index read
    backwards from ``now`` (``each`` rows, and those linked to a problem passed over)."""
    connection = session.connection()
    refs: dict[str, list[str]] = {}
    for c in chosen:
        params = {"start": start, "now": now, "ci": c.ci, "service": c.service, "category": c.category}
        stmt = _CLUSTER_REFS[c.kind].order_by(Ticket.opened_at.desc(), Ticket.id.desc()).limit(each)
        refs[c.key] = list(connection.scalars(stmt, params))
    return refs


def _ci_service(config: DeskConfig, ci: str) -> str | None:
    """The catalog's service whose configuration items hold ``ci`` (None: none, or more than one)."""
    owners = [code for code, service in config.services.items() if ci in service.cis]
    return owners[0] if len(owners) == 1 else None


def raise_problem(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    key: str,
    *,
    title: str | None = None,
    description: str | None = None,
    service: str | None = None,
    ci: str | None = None,
    category: str | None = None,
    impact: str = "medium",
    urgency: str = "medium",
    owner: str | None = None,
    incidents: Sequence[str] = (),
    now: datetime | None = None,
) -> tuple[Problem, int]:
    """A problem raised from the cluster ``key`` with every incident of it linked (and ``incidents`` too):
    the suggested title unless ``title``; the cluster's CI with the catalog's service of that CI, or its
    service and category; a CI cluster's category is its incidents' most frequent one (``service``, ``ci``,
    ``category`` given win). Returns the problem and how many incidents of the cluster it links. Refused
    when the cluster has no incident left."""
    from itsm_tui.services.problems.lifecycle import create_problem

    kind, key_ci, key_service, key_category = parse_key(key)
    refs = candidate_incident_refs(session, config, key, now)
    if not refs:
        raise ValidationError(
            "candidate",
            f"{key} has no incident left that no problem covers (itsm problem candidates lists them)",
        )
    if key_ci is not None:
        key_service = _ci_service(config, key_ci)
        common = session.execute(
            select(Ticket.category, func.count())
            .where(Ticket.ref.in_(refs), Ticket.category.is_not(None))
            .group_by(Ticket.category)
            .order_by(func.count().desc(), Ticket.category)
            .limit(1)
        ).first()
        key_category = common[0] if common else None
    ci, service, category = ci or key_ci, service or key_service, category or key_category
    first, last = session.execute(
        select(func.min(Ticket.opened_at), func.max(Ticket.opened_at)).where(Ticket.ref.in_(refs))
    ).one()
    where = key_ci if key_ci is not None else f"{key_service} / {key_category}"
    said = description
    if said is None:
        said = f"Raised from {len(refs)} incidents of {where} ({first:%Y-%m-%d} to {last:%Y-%m-%d})."
    problem = create_problem(
        session,
        config,
        actor,
        title=title or suggested_title(kind, key_ci, key_service, key_category),
        description=said,
        service=service,
        ci=ci,
        category=category,
        impact=impact,
        urgency=urgency,
        owner=owner,
        incidents=[*refs, *(ref for ref in incidents if ref not in refs)],
        now=now,
    )
    return problem, len(refs)
