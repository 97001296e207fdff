"""The ticket queue: saved views, filters and sorts, read a page at a time.

Pages are read by keyset on the current sort (``(sort key, id) > (last key, last id)``), served by the
partial indexes on open tickets, so a page costs the same at any depth. :class:`QueueWindow` keeps the pages
near what is shown and says which page to read next, from its neighbour's key; only a jump far from anything
read falls back to OFFSET.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import (
    ColumnElement,
    Integer,
    bindparam,
    case,
    column,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.orm import Session

from itsm_tui.db import sqlite_has_table
from itsm_tui.models import TICKET_STATUSES, Group, Ticket, User
from itsm_tui.services.search import _PG_SIMPLE, _PG_TICKET_TEXT, count_matches, search_words, word_conditions
from itsm_tui.services.tickets.reading import LIST_COLUMNS, with_names
from itsm_tui.services.users import Actor

if TYPE_CHECKING:
    from itsm_tui.config import DeskConfig

PAGE_SIZE = 50
BREACHING_WINDOW = timedelta(hours=2)
RECENTLY_RESOLVED = timedelta(days=7)


@dataclass(frozen=True)
class View:
    key: str
    title: str
    default_sort: str = "sla"
    descending: bool = False


VIEWS: dict[str, View] = {
    v.key: v
    for v in (
        View("my_work", "My work"),
        View("unassigned", "Unassigned in my groups"),
        View("breaching", "Breaching soon"),
        View("all_open", "All open"),
        View("major", "Major (P1/P2)"),
        View("resolved", "Recently resolved", "resolved", True),
        # Every ticket, open or closed, of any age (the history), newest first (by reference: in the order
        # of the search index, cheaper than by opening time for a word found in most tickets); words are found
        # in the descriptions and entries too (services/search.py).
        View("all_tickets", "All tickets", "ref", True),
    )
}
# The sorts a view over every ticket offers: those the full indexes serve (the others sort the history).
HISTORY_SORTS = ("opened", "ref", "updated", "resolved")


def sort_offered(view: str, sort: str) -> bool:
    """Whether the queue offers ``sort`` in ``view`` (the "All tickets" view: :data:`HISTORY_SORTS` only)."""
    return view != "all_tickets" or sort in HISTORY_SORTS


# The SLA order: the tickets whose clocks run by the due instant of their nearer target (response until it is
# made, unless the resolution is due first), overdue first; then the paused ones (their clocks stand still),
# by the due instant frozen at their pause. Both are columns the database computes (models.Ticket).
SLA_ORDER = (Ticket.sla_paused, Ticket.sla_due_at)

# sort key -> (column title, expressions in order; the ticket id is always appended as a tie-break)
SORTS: dict[str, tuple[str, tuple]] = {
    "sla": ("SLA due", SLA_ORDER),
    "priority": ("Priority", (Ticket.priority, *SLA_ORDER)),
    "ref": ("Ref", ()),
    "status": ("Status", (Ticket.status, *SLA_ORDER)),
    "title": ("Title", (Ticket.title,)),
    "requester": ("Requester", (Ticket.requester,)),
    # Group and assignee sorts bring each one's tickets together (by id, so the partial indexes serve them).
    "group": ("Group", (Ticket.group_id, *SLA_ORDER)),
    # Nullable keys are coalesced: a keyset comparison with NULL would skip those rows.
    # Written as in the expression indexes (literal defaults, not parameters) so that SQLite uses them.
    "assignee": ("Assignee", (func.coalesce(Ticket.assignee_id, text("0")), *SLA_ORDER)),
    "service": ("Service", (func.coalesce(Ticket.service, text("''")), *SLA_ORDER)),
    "opened": ("Opened", (Ticket.opened_at,)),
    "updated": ("Updated", (Ticket.updated_at,)),
    "resolved": ("Resolved", (Ticket.resolved_at,)),
}

TOKENS = ("p", "status", "group", "assignee", "svc", "sla")
SLA_TOKENS = ("breached", "1h", "warning")


class FilterError(ValueError):
    """A filter token the queue does not understand; the message says what would work."""


@dataclass(frozen=True)
class Filter:
    words: tuple[str, ...] = ()
    priorities: tuple[int, ...] = ()
    statuses: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()  # logins; "me" resolved by the caller; "none" for unassigned
    services: tuple[str, ...] = ()
    sla: tuple[str, ...] = ()  # breached (overdue now), 1h (due within the hour), warning (past the warning)


def parse_filter(text: str, actor: Actor | None = None, config: DeskConfig | None = None) -> Filter:
    """Free words match reference, title or requester; tokens narrow: ``p:1,2 status:pending group:network
    assignee:me svc:email``. Raises :class:`FilterError` naming the bad token and the valid ones. Reads no
    database: whether an ``assignee:`` login is a desk user is :func:`check_assignees`'s to say. Given the
    desk's ``config``, a ``svc:`` that is no service of the catalog and a ``group:`` that matches no group's
    code or name are refused too (else they would show an empty queue, as if nothing were open)."""
    result = Filter()
    for part in text.split():
        if ":" not in part:
            result = replace(result, words=(*result.words, part))
            continue
        name, _, value = part.partition(":")
        name = name.lower()
        values = [v for v in value.split(",") if v]
        if name not in TOKENS:
            raise FilterError(
                f"unknown filter {name + ':'!r}; use {', '.join(t + ':' for t in TOKENS)} or plain words"
            )
        if not values:
            raise FilterError(f"{name}: needs a value, e.g. {_EXAMPLES[name]}")
        if name == "p":
            try:
                priorities = tuple(int(v.lstrip("pP")) for v in values)
            except ValueError:
                raise FilterError(f"p: takes priorities 1 to 5, e.g. p:1 or p:1,2 (not {value!r})") from None
            if not all(1 <= p <= 5 for p in priorities):
                raise FilterError(f"p: takes priorities 1 to 5, not {value!r}")
            result = replace(result, priorities=result.priorities + priorities)
        elif name == "status":
            statuses = _among(
                values,
                TICKET_STATUSES,
                lambda v: f"status: {v!r} is not a status; use {', '.join(TICKET_STATUSES)}",
            )
            result = replace(result, statuses=result.statuses + statuses)
        elif name == "group":
            groups = tuple(v.lower() for v in values)
            if config is not None:
                _known_groups(groups, config)
            result = replace(result, groups=result.groups + groups)
        elif name == "assignee":
            logins = tuple((actor.login if actor and v.lower() == "me" else v) for v in values)
            result = replace(result, assignees=result.assignees + logins)
        elif name == "svc":
            services = tuple(v.lower() for v in values)
            if config is not None:
                _known_services(services, config)
            result = replace(result, services=result.services + services)
        elif name == "sla":
            states = _among(values, SLA_TOKENS, lambda v: f"sla: takes {', '.join(SLA_TOKENS)}, not {v!r}")
            result = replace(result, sla=result.sla + states)
    return result


def _known_services(wanted: tuple[str, ...], config: DeskConfig) -> None:
    """Each ``svc:`` value must be a service code of the catalog (the query matches them whole)."""
    codes = tuple(sorted(code.lower() for code in config.services))
    _among(list(wanted), codes, lambda v: f"svc: {v!r} is no service; use {', '.join(codes)}")


def _known_groups(wanted: tuple[str, ...], config: DeskConfig) -> None:
    """Each ``group:`` value must be part of some group's code or name (as the query matches them)."""
    for value in wanted:
        if not any(value in g.code.lower() or value in g.name.lower() for g in config.groups.values()):
            codes = ", ".join(sorted(config.groups))
            raise FilterError(f"group: {value!r} matches no group; use part of a code or name: {codes}")


def check_assignees(session: Session, flt: Filter) -> None:
    """Refuse an ``assignee:`` login that is no user of the desk: such a filter would show an empty queue
    as if nobody had work, when it was only mistyped. Users no longer active still filter (the tickets left
    assigned to them are what a lead looks for to hand on)."""
    wanted = [a for a in flt.assignees if a.lower() != "none"]
    if not wanted:
        return
    known = set(session.scalars(select(User.login).where(User.login.in_(wanted))))
    unknown = next((login for login in wanted if login not in known), None)
    if unknown is not None:
        raise FilterError(
            f"assignee: no desk user {unknown!r}; use assignee:me, assignee:none (unassigned) or a login"
        )


def _among(values: list[str], allowed: tuple[str, ...], refusal: Callable[[str], str]) -> tuple[str, ...]:
    """A token's values in lower case; the first one not ``allowed`` is refused in ``refusal``'s words."""
    lowered = tuple(v.lower() for v in values)
    for value in lowered:
        if value not in allowed:
            raise FilterError(refusal(value))
    return lowered


_EXAMPLES = {
    "p": "p:1",
    "status": "status:pending",
    "group": "group:network",
    "assignee": "assignee:me",
    "svc": "svc:email",
    "sla": "sla:breached",
}


@dataclass(frozen=True)
class QueueQuery:
    """What the queue shows: a view, a filter and a sort, for one user at one instant."""

    view: str = "all_open"
    filter: Filter = field(default_factory=Filter)
    sort: str = "sla"
    descending: bool = False
    actor_id: int = 0
    actor_group_ids: tuple[int, ...] = ()
    now: datetime | None = None


@dataclass(frozen=True)
class QueueRow:
    id: int
    ref: str
    priority: int
    status: str
    title: str
    requester: str
    group: str | None
    assignee: str | None
    service: str | None
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    resolution_warn_at: datetime | None
    resolution_due_at: datetime | None
    paused_at: datetime | None
    sla_due_at: datetime | None
    sla_on_response: bool | None  # whether sla_due_at is the response target's (the database says)
    response_warn_at: datetime | None  # read only while the SLA order follows the response target
    key: tuple = field(default=(), kw_only=True)  # the sort key; by keyword, never from a row's columns

    @property
    def sla_target(self) -> str | None:
        """The target the SLA order (and column) follows: ``response`` until it is made (unless the resolution
        is due first), else ``resolution``; None when neither runs."""
        if self.sla_due_at is None or self.resolved_at is not None:
            return None
        return "response" if self.sla_on_response else "resolution"

    def due_in(self, now: datetime) -> float | None:
        """Wall-clock seconds from ``now`` to the due instant of :attr:`sla_target` (negative when
        overdue); None while the clocks stand still (paused) or when no target runs. They only grow down
        the SLA order."""
        if self.sla_target is None or self.paused_at is not None or self.sla_due_at is None:
            return None
        return (self.sla_due_at - now).total_seconds()

    def due_state(self, now: datetime) -> str:
        """``ok``, ``warning`` or ``breached`` for :attr:`sla_target`, as of ``now`` (or of the pause under
        way); ``stopped`` when no target runs."""
        target, due = self.sla_target, self.sla_due_at
        if target is None or due is None:
            return "stopped"
        warn = self.response_warn_at if target == "response" else self.resolution_warn_at
        moment = self.paused_at or now
        if moment >= due:
            return "breached"
        if warn is not None and moment >= warn:
            return "warning"
        return "ok"

    def sla_state(self, now: datetime) -> str:
        """The state of the resolution target (what the ``sla:`` filter and the KPI board count)."""
        if self.resolution_due_at is None:
            return "stopped"
        if self.resolved_at is not None:
            return "met" if self.resolved_at <= self.resolution_due_at else "breached"
        moment = self.paused_at or now
        if moment >= self.resolution_due_at:
            return "breached"
        if self.resolution_warn_at is not None and moment >= self.resolution_warn_at:
            return "warning"
        return "ok"


SEARCH_MIN_CHARS = 3  # the trigram index finds words of three characters or more


def _clock(query: QueueQuery) -> datetime:
    """The query's instant, for the views and filters that compare with the clock (they need one)."""
    if query.now is None:
        raise ValueError(f"the {query.view!r} view or its SLA filter needs the query's instant (now)")
    return query.now


def _conditions(query: QueueQuery, dialect: str = "sqlite", search_index: bool = False) -> list:
    """The WHERE terms of a view and filter, on the tickets table alone (so counts need no join).

    A word matches the reference, title or requester, ignoring case (in "All tickets" the description and
    entries too), looked up in an index (:func:`_field_words`); ``search_index``: SQLite has the FTS5
    tables of 0004 and 0012.
    """
    view = query.view
    terms: list = []
    if view == "resolved":
        terms += [Ticket.resolved_at >= _clock(query) - RECENTLY_RESOLVED]
    elif view == "all_tickets":
        pass  # open or closed, any age
    else:
        terms += [Ticket.is_open == true()]
    if view == "my_work":
        terms.append(Ticket.assignee_id == query.actor_id)
    elif view == "unassigned":
        terms += [Ticket.assignee_id.is_(None), Ticket.group_id.in_(query.actor_group_ids or (-1,))]
    elif view == "breaching":  # the nearer target overdue or due within the window, clocks running
        terms += [Ticket.sla_paused == false(), Ticket.sla_due_at <= _clock(query) + BREACHING_WINDOW]
    elif view == "major":
        terms.append(Ticket.priority.in_((1, 2)))
    flt = query.filter
    words = search_words(flt.words)
    if view == "all_tickets":  # ref, title, requester, description and entries, by 0012's index
        # (on SQLite 0012's tables exist where 0004's do: both need FTS5's trigram tokenizer)
        terms += word_conditions(words, dialect, search_index)
    else:
        terms += _field_words(words, dialect, search_index, open_only=view != "resolved")
    # The tokens' indexes of every ticket (0013) serve "All tickets". In Recently resolved SQLite would rather
    # read one of them (a fifth of every ticket, say) than the week's resolved tickets by time: there each
    # token is tested on a copy of its column (coalesce(x, x) is x), out of the indexes' reach.
    hidden = dialect == "sqlite" and view == "resolved"

    def token(column):
        return func.coalesce(column, column) if hidden else column

    if flt.priorities:
        terms.append(token(Ticket.priority).in_(flt.priorities))
    if flt.statuses:
        terms.append(Ticket.status.in_(flt.statuses))
    if flt.groups:
        matching = select(Group.id).where(
            or_(
                *[
                    or_(
                        func.lower(Group.code).contains(g, autoescape=True),
                        func.lower(Group.name).contains(g, autoescape=True),
                    )
                    for g in flt.groups
                ]
            )
        )
        terms.append(token(Ticket.group_id).in_(matching))
    if flt.assignees:
        wanted = [a for a in flt.assignees if a.lower() != "none"]
        either: list[ColumnElement[bool]] = (
            [token(Ticket.assignee_id).in_(select(User.id).where(User.login.in_(wanted)))] if wanted else []
        )
        if len(wanted) != len(flt.assignees):
            either.append(token(Ticket.assignee_id).is_(None))
        terms.append(or_(*either))
    if flt.services:
        terms.append(token(Ticket.service).in_(flt.services))
    if flt.sla:
        now = _clock(query)
        running = [Ticket.paused_at.is_(None), Ticket.resolved_at.is_(None)]
        either = []
        if "breached" in flt.sla:
            either.append(Ticket.resolution_due_at < now)
        if "1h" in flt.sla:
            either.append(Ticket.resolution_due_at.between(now, now + timedelta(hours=1)))
        if "warning" in flt.sla:
            either.append((Ticket.resolution_warn_at <= now) & (Ticket.resolution_due_at >= now))
        terms += [*running, or_(*either)]
    return terms


# The fields a queue view finds its words in (the "All tickets" view: the entries and description too).
_FIELDS = (Ticket.ref, Ticket.title, Ticket.requester)
_FTS_FIELDS = "{ref title requester}"  # an FTS5 column filter on 0012's tables (their body column left out)
_PG_FIELDS_TEXT: ColumnElement[str] = literal_column(
    "(tickets.ref || ' ' || tickets.title || ' ' || tickets.requester)"
)


def _field_words(words: tuple[str, ...], dialect: str, search_index: bool, open_only: bool) -> list:
    """WHERE terms for tickets whose reference, title or requester holds every one of ``words`` (as
    :func:`~itsm_tui.services.search.search_words` gives them), each looked up in an index.

    SQLite: a word of three characters or more is found anywhere (inside longer words too) by a trigram
    index, 0004's ``ticket_search`` of the open tickets in an open view (``open_only``), else 0012's
    ``ticket_search_all`` asked for those three fields; a shorter one as a whole word (``hr`` finds "HR",
    not "three"), by 0013's ``ticket_search_words_open`` of the open tickets in an open view, else
    0012's ``ticket_search_words`` (0013: it knows the fields). PostgreSQL: the three
    fields' text (pg_trgm for ILIKE, ``to_tsvector('simple', ...)`` for the short words), by 0013's GIN
    indexes of the open tickets in an open view; else looked up in 0012's of every ticket's text, and kept
    where those three fields hold them. An SQLite without FTS5's trigram tokenizer (no index: a small desk)
    tests every row with LIKE.
    """
    long = [w for w in words if len(w) >= SEARCH_MIN_CHARS]
    short = [w for w in words if len(w) < SEARCH_MIN_CHARS]
    terms: list = []
    if dialect == "sqlite" and search_index:
        if open_only:
            lookups = [("ticket_search", _phrase(long)), ("ticket_search_words_open", _phrase(short))]
        else:
            lookups = [("ticket_search_all", _in_fields(long)), ("ticket_search_words", _in_fields(short))]
        # In Recently resolved the ids found (of any age) are tested as the week's resolved tickets are read
        # by time, on a copy of the id (coalesce(x, x) is x): else SQLite reads each ticket found, one by one.
        key = Ticket.id if open_only else func.coalesce(Ticket.id, Ticket.id)
        for (table, phrase), chosen in zip(lookups, (long, short), strict=True):
            if chosen:
                found = text(f"SELECT rowid FROM {table} WHERE {table} MATCH :{table}")
                terms.append(key.in_(found.bindparams(**{table: phrase}).columns(column("rowid"))))
        return terms
    if dialect == "sqlite":
        for word in words:
            pattern = f"%{_escape_like(word)}%"  # SQLite's LIKE ignores ASCII case by itself
            terms.append(or_(*[c.like(pattern, escape="\\") for c in _FIELDS]))
        return terms
    for word in long:
        pattern = f"%{_escape_like(word)}%"
        terms.append(_PG_FIELDS_TEXT.ilike(pattern, escape="\\"))  # 0013's index of the open tickets
        if not open_only:
            terms.append(_PG_TICKET_TEXT.ilike(pattern, escape="\\"))  # 0012's of every ticket
    for word in short:
        words_of = func.plainto_tsquery(_PG_SIMPLE, word)
        terms.append(func.to_tsvector(_PG_SIMPLE, _PG_FIELDS_TEXT).op("@@")(words_of))
        if not open_only:
            terms.append(func.to_tsvector(_PG_SIMPLE, _PG_TICKET_TEXT).op("@@")(words_of))
    return terms


def _phrase(words: list[str]) -> str:
    """An FTS5 query finding every one of ``words``, each quoted (nothing in it is query syntax)."""
    return " AND ".join('"' + w.replace('"', '""') + '"' for w in words)


def _in_fields(words: list[str]) -> str:
    """An FTS5 query finding every one of ``words`` in the reference, title or requester of 0012's tables."""
    return f"{_FTS_FIELDS} : ({_phrase(words)})"


# For these narrow views SQLite's planner would rather walk a sort index and filter (tens of thousands of
# rows) than read the few matching rows by the view's own index and sort them. Sorting on a copy of the
# key (coalesce(x, x) is x) keeps the sort indexes out of its reach. PostgreSQL chooses well by itself.
_NARROW_VIEWS = ("major", "breaching")


def _backend(session: Session) -> tuple[str, bool]:
    """The session's dialect, and whether it has SQLite's trigram index of open tickets (ticket_search)."""
    dialect = session.get_bind().dialect.name
    if dialect != "sqlite":
        return dialect, False
    return dialect, sqlite_has_table(session, "ticket_search")


def _where(session: Session, query: QueueQuery) -> list:
    """:func:`_conditions` for the session's database."""
    return _conditions(query, *_backend(session))


def _sort_columns(query: QueueQuery, dialect: str) -> list:
    columns = list(SORTS[query.sort][1])
    # The breaching view in the SLA order is a range of the SLA index itself, read in its order.
    in_own_order = (query.view, query.sort) == ("breaching", "sla")
    if dialect == "sqlite" and query.view in _NARROW_VIEWS and not in_own_order:
        columns = [func.coalesce(c, c) for c in columns]
    return columns


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def fetch_page(
    session: Session,
    query: QueueQuery,
    *,
    after: tuple | None = None,
    before: tuple | None = None,
    start: tuple | None = None,
    offset: int | None = None,
    from_end: int | None = None,
    limit: int = PAGE_SIZE,
) -> list[QueueRow]:
    """One page in display order: the first, the one after/before a row's key, the one starting at a row's
    key (``start``, inclusive), at an offset, or the last ``from_end`` rows."""
    dialect, search_index = _backend(session)
    if after is not None:
        how, bound = "after", after
    elif before is not None:
        how, bound = "before", before
    elif start is not None:
        how, bound = "start", start
    else:
        how, bound = ("from_end" if from_end is not None else "first"), ()
    statement = _page_statement(query, dialect, search_index, how, bool(offset))
    params = {f"bound{i}": value for i, value in enumerate(bound)}
    params["page_limit"] = from_end if from_end is not None else limit
    if offset:
        params["page_offset"] = offset
    rows = [
        QueueRow(*row[:_ROW_FIELDS], key=(*row[_ROW_FIELDS:], row[0]))
        for row in session.execute(statement, params)
    ]
    return rows[::-1] if how in ("before", "from_end") else rows


_ROW_FIELDS = len(QueueRow.__dataclass_fields__) - 1  # the selected columns before the sort key's
# Whether a ticket's SLA order follows its response target (as the generated sla_due_at chose it).
_ON_RESPONSE = (Ticket.responded_at.is_(None) & (Ticket.sla_due_at == Ticket.response_due_at)).label(
    "on_response"
)


@functools.lru_cache(maxsize=128)
def _page_statement(query: QueueQuery, dialect: str, search_index: bool, how: str, offset: bool):
    """The statement reading one kind of page of a query, built once per query (a window reads many pages of
    the same query; building and keying a statement costs more than SQLite takes to run it).

    The page's ids are chosen on the tickets table alone (where the sort's index serves them); the names of
    groups and assignees are joined to those few rows only.
    """
    sort_columns = _sort_columns(query, dialect)
    keys = [*sort_columns, Ticket.id]
    key = tuple_(*keys)
    bounds = [bindparam(f"bound{i}", type_=c.type) for i, c in enumerate(keys)]
    bound = tuple_(*bounds)
    descending = query.descending != (how in ("before", "from_end"))
    page = select(Ticket.id.label("page_id"), *[c.label(f"k{i}") for i, c in enumerate(sort_columns)]).where(
        *_conditions(query, dialect, search_index)
    )
    if how in ("after", "before", "start"):
        upwards = (how == "before") == query.descending  # towards larger keys
        if how == "start":
            page = page.where(key >= bound if upwards else key <= bound)
        else:
            page = page.where(key > bound if upwards else key < bound)
        # The same bound on the first key alone: SQLite does not range-scan an expression index (the
        # assignee and service sorts) by a row value, but does by this; it then starts at the bound.
        page = page.where(keys[0] >= bounds[0] if upwards else keys[0] <= bounds[0])
    page = page.order_by(*[c.desc() if descending else c.asc() for c in keys])
    page = page.limit(bindparam("page_limit", type_=Integer))
    if offset:
        page = page.offset(bindparam("page_offset", type_=Integer))
    chosen = page.subquery()
    page_keys = [*[chosen.c[f"k{i}"] for i in range(len(sort_columns))], chosen.c.page_id]
    rows = select(
        *LIST_COLUMNS,
        Ticket.service,
        Ticket.opened_at,
        Ticket.updated_at,
        Ticket.resolved_at,
        Ticket.resolution_warn_at,
        Ticket.resolution_due_at,
        Ticket.paused_at,
        Ticket.sla_due_at,
        _ON_RESPONSE,
        case((_ON_RESPONSE, Ticket.response_warn_at)).label("on_response_warn_at"),
        *page_keys[:-1],
    ).join(chosen, chosen.c.page_id == Ticket.id)
    return with_names(rows).order_by(*[c.desc() if descending else c.asc() for c in page_keys])


def count(session: Session, query: QueueQuery) -> int:
    flt = query.filter
    if query.view == "all_tickets" and flt.words and flt == Filter(words=flt.words):
        counted = count_matches(session, search_words(flt.words))  # words alone: the index counts them
        if counted is not None:
            return counted
    return session.scalar(select(func.count()).select_from(Ticket).where(*_where(session, query))) or 0


def locate(session: Session, query: QueueQuery, ticket_id: int) -> tuple[int, tuple] | None:
    """Where a ticket now stands in the queue: the number of rows before it and its sort key; None if it is
    no longer in the queue."""
    dialect = session.get_bind().dialect.name
    sort_columns = _sort_columns(query, dialect)
    found = session.execute(
        select(*sort_columns, Ticket.id).where(Ticket.id == ticket_id, *_where(session, query))
    ).first()
    if found is None:
        return None
    key_columns = [*sort_columns, Ticket.id]
    key = tuple_(*key_columns)
    # Typed by their column, so that a stored-as-UTC time is bound as one whatever the server's time zone.
    bounds = [literal(value, type_=c.type) for value, c in zip(found, key_columns, strict=True)]
    bound = tuple_(*bounds)
    first, first_bound = key_columns[0], bounds[0]
    conditions = _where(session, query)
    if query.descending:
        conditions += [key > bound, first >= first_bound]  # the latter: see _page_statement
    else:
        conditions += [key < bound, first <= first_bound]
    before = select(Ticket.id).where(*conditions)
    if dialect == "sqlite":
        # Counted in the order of a page read, so that SQLite walks the sort's own index as a page does;
        # a bare COUNT with a row-value bound makes it scan another index and read every row (0.2-0.8 s).
        order = [c.desc() if query.descending else c.asc() for c in (*sort_columns, Ticket.id)]
        before = before.order_by(*order).limit(2**62)
    position = session.scalar(select(func.count()).select_from(before.subquery())) or 0
    return position, tuple(found)


def fetch_around(
    session: Session, query: QueueQuery, position: int, key: tuple, page_size: int = PAGE_SIZE
) -> list[QueueRow]:
    """The page holding the row at ``position`` (whose key is ``key``), read by keyset from it both ways."""
    before = position % page_size
    rows = fetch_page(session, query, before=key, limit=before) if before else []
    if len(rows) != before:  # rows went between the count and this read (a server reading per statement)
        return fetch_page(session, query, offset=position - before, limit=page_size)
    return rows + fetch_page(session, query, start=key, limit=page_size - before)


def newest_change(session: Session) -> tuple:
    """A cheap fingerprint of the ticket table: it changes when any ticket is created or saved."""
    # Two single-aggregate subqueries: SQLite answers each max() from an index end, but not both in one.
    newest = select(
        select(func.max(Ticket.updated_at)).scalar_subquery(), select(func.max(Ticket.id)).scalar_subquery()
    )
    return tuple(session.execute(newest).one())


def default_view(actor: Actor) -> str:
    """The view the queue opens on: one's own work for those who work tickets in groups, else all open."""
    if actor.has_role("agent", "support_l2", "support_l3") and actor.group_ids:
        return "my_work"
    return "all_open"


@dataclass(frozen=True)
class FirstRows:
    """The queue's first page read before the console draws anything (``itsm`` reads it right after the
    schema check and the user), so that the first frame shows rows; the screen takes it only for the query
    it opens with (:meth:`matches`), and reads its count and the rest as it always does."""

    window: QueueWindow
    fingerprint: tuple

    def matches(self, query: QueueQuery) -> bool:
        return replace(self.window.query, now=query.now) == query


def first_rows(session: Session, actor: Actor, now: datetime) -> FirstRows:
    """The first page of the queue's opening view (its default sort, no filter), and the fingerprint taken
    before it (:func:`newest_change`), as the screen's own first read takes them."""
    query = query_for(actor, default_view(actor), Filter(), None, None, now)
    fingerprint = newest_change(session)
    window = QueueWindow(query)
    window.store(0, fetch_page(session, query, limit=window.page_size))
    return FirstRows(window, fingerprint)


# --------------------------------------------------------------------------- the window of read pages


class QueueWindow:
    """The pages of one query read so far, and which page to read next to show a range of rows.

    A page next to one already read is read by keyset from its neighbour's edge, the first and the last page
    from their ends; only a page far from anything read (or being read) falls back to OFFSET. Holds at most
    ``max_pages``, dropping those farthest from the rows shown.
    """

    def __init__(
        self, query: QueueQuery, total: int | None = None, page_size: int = PAGE_SIZE, max_pages: int = 40
    ) -> None:
        self.query, self.total, self.page_size, self.max_pages = query, total, page_size, max_pages
        self.pages: dict[int, list[QueueRow]] = {}

    def row(self, index: int) -> QueueRow | None:
        page = self.pages.get(index // self.page_size)
        if page is None:
            return None
        offset = index % self.page_size
        return page[offset] if offset < len(page) else None

    @property
    def known_rows(self) -> int:
        """How many rows are known to exist: the count once known, else up to the last row read."""
        if self.total is not None:
            return self.total
        if not self.pages:
            return 0
        last = max(self.pages)
        return last * self.page_size + len(self.pages[last])

    def missing_pages(self, first_index: int, last_index: int) -> list[int]:
        last = last_index if self.total is None else min(last_index, self.total - 1)
        return [
            p
            for p in range(max(0, first_index) // self.page_size, max(0, last) // self.page_size + 1)
            if p not in self.pages
        ]

    def plan(self, page: int) -> dict:
        """How to read ``page``: the arguments of :func:`fetch_page` (from a neighbour's key if read)."""
        return self._keyset_plan(page) or {"offset": page * self.page_size, "limit": self.page_size}

    def _keyset_plan(self, page: int) -> dict | None:
        size = self.page_size
        if page == 0:
            return {"limit": size}
        previous, following = self.pages.get(page - 1), self.pages.get(page + 1)
        if previous is not None and len(previous) == size:
            return {"after": previous[-1].key, "limit": size}
        if following:
            return {"before": following[0].key, "limit": size}
        if self.total is not None and page == (self.total - 1) // size:
            return {"from_end": self.total - page * size}
        return None

    def next_read(
        self, first_index: int, last_index: int, reading: frozenset[int] = frozenset()
    ) -> tuple[int, dict] | None:
        """The page to read next so that rows ``first_index..last_index`` can be shown, and how; None when
        they are all read (or all being read).

        Pages are taken nearest the start of the range first. One whose neighbour is being read waits for
        it (then it is a keyset read); OFFSET is used only when nothing in the range can be read otherwise.
        """
        missing = [p for p in self.missing_pages(first_index, last_index) if p not in reading]
        if self.total is None and self.pages:
            # Past a short page there is nothing more to read.
            short = [p for p, rows in self.pages.items() if len(rows) < self.page_size]
            if short:
                missing = [p for p in missing if p < min(short)]
        for page in missing:
            plan = self._keyset_plan(page)
            if plan is not None:
                return page, plan
        waiting = any(p - 1 in reading or p + 1 in reading for p in missing)
        if missing and not waiting:
            return missing[0], self.plan(missing[0])
        return None

    def store(self, page: int, rows: list[QueueRow], near: int | None = None) -> None:
        """Keep a page read; past ``max_pages``, drop the pages farthest from ``near`` (default: this one)."""
        self.pages[page] = rows
        if self.total is None and len(rows) < self.page_size:
            self.total = page * self.page_size + len(rows)
        centre = page if near is None else near
        while len(self.pages) > self.max_pages:
            del self.pages[max(self.pages, key=lambda p: abs(p - centre))]

    def load(self, session: Session, page: int) -> list[QueueRow]:
        """Read a page now (plan, fetch and store in one go)."""
        rows = fetch_page(session, self.query, **self.plan(page))
        self.store(page, rows)
        return rows

    def index_of(self, ticket_id: int) -> int | None:
        for page, rows in self.pages.items():
            for offset, row in enumerate(rows):
                if row.id == ticket_id:
                    return page * self.page_size + offset
        return None


def query_for(
    actor: Actor, view: str, flt: Filter, sort: str | None, descending: bool | None, now: datetime
) -> QueueQuery:
    """The query of a view for an actor; the view's default sort unless one is given."""
    v = VIEWS[view]
    return QueueQuery(
        view=view,
        filter=flt,
        sort=sort or v.default_sort,
        descending=v.descending if descending is None else descending,
        actor_id=actor.id,
        actor_group_ids=tuple(sorted(actor.group_ids)),
        now=now,
    )
