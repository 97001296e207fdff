"""Find anything: every ticket, open or closed, of any age, by words of its reference, title, requester,
description and entries (replies and internal notes), newest first; and a ticket by its reference.

The index is migration 0012's. On SQLite a word of three characters or more is looked up in the trigram
index ``ticket_search_all`` (found anywhere, inside longer words too: ``rint`` finds "printer"); a shorter
one in ``ticket_search_words``, as a whole word (``hr`` finds "HR", not "three"). On PostgreSQL the same
words go to pg_trgm (ILIKE) and to full-text (``to_tsvector('simple', ...)``) GIN indexes on the tickets'
text and on the entries' bodies. Every word must be found (in any of those fields); case does not matter.

Results are read newest first (by id) a page at a time: the next page is the one before the last row's id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, column, exists, func, literal_column, or_, select, text, true, union_all
from sqlalchemy.orm import Session

from itsm_tui.db import sqlite_has_table
from itsm_tui.models import Ticket, TicketEntry
from itsm_tui.services.tickets.reading import LIST_COLUMNS, with_names

LIMIT_MAX = 500
WORDS_MAX = 8  # more words narrow no further in practice; each costs an index lookup
TRIGRAM_MIN = 3  # the trigram index finds words of three characters or more; shorter ones are whole words

# The tickets' own text as PostgreSQL's search indexes of migration 0012 have it (the same expression).
_PG_TICKET_TEXT: ColumnElement[str] = literal_column(
    "(tickets.ref || ' ' || tickets.title || ' ' || tickets.requester || ' ' || tickets.description)"
)
_PG_SIMPLE: ColumnElement[str] = literal_column("'simple'::regconfig")


@dataclass(frozen=True)
class SearchHit:
    """One ticket found."""

    id: int
    ref: str
    priority: int
    status: str
    title: str
    requester: str
    group: str | None
    assignee: str | None
    opened_at: datetime
    is_open: bool


def search_words(text_or_words: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The distinct words searched for, as typed (case is ignored by the search), at most :data:`WORDS_MAX`;
    a short word with no letter or digit (``-``, ``#``) finds nothing and is left out. A control character
    (pasted in: a NUL, an escape) parts words: no database takes a NUL in a query."""
    if isinstance(text_or_words, str):
        parts = _CONTROLS.sub(" ", text_or_words).split()
    else:  # each as given (`itsm ticket search "disk full"`), cut only at a control character
        parts = [piece for part in text_or_words for piece in _CONTROLS.split(part)]
    words: list[str] = []
    for part in parts:
        word = part.strip()
        if not word or (len(word) < TRIGRAM_MIN and not any(ch.isalnum() for ch in word)):
            continue
        if word.lower() not in (w.lower() for w in words):
            words.append(word)
    return tuple(words[:WORDS_MAX])


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def backend(session: Session) -> tuple[str, bool]:
    """The session's dialect, and (SQLite) whether it has the FTS5 tables of migration 0012 (an SQLite
    built without the trigram tokenizer has not: the search then reads the rows themselves)."""
    dialect = session.get_bind().dialect.name
    if dialect != "sqlite":
        return dialect, True
    return dialect, sqlite_has_table(session, "ticket_search_all")


def _phrase(words: list[str]) -> str:
    """An FTS5 query finding every one of ``words``, each quoted (nothing in it is query syntax)."""
    return " AND ".join('"' + w.replace('"', '""') + '"' for w in words)


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def word_conditions(
    words: tuple[str, ...], dialect: str, indexed: bool = True, newest: tuple[int | None, int] | None = None
) -> list[ColumnElement[bool]]:
    """WHERE terms on ``tickets`` that hold for the tickets whose text has every one of ``words`` (the
    queue's "All tickets" view uses them too). ``newest`` (before which id, how many), for a read that
    wants only the newest matches and nothing else narrows: on SQLite, when one index answers, it stops
    there after that many instead of listing every match (a word found in most tickets)."""
    if not words:
        return []
    long = [w for w in words if len(w) >= TRIGRAM_MIN]
    short = [w for w in words if len(w) < TRIGRAM_MIN]
    terms: list[ColumnElement[bool]] = []
    if dialect == "sqlite" and indexed:
        tables = [
            (table, chosen, name)
            for table, chosen, name in (
                ("ticket_search_all", long, "long"),
                ("ticket_search_words", short, "short"),
            )
            if chosen
        ]
        for table, chosen, name in tables:
            sql = f"SELECT rowid FROM {table} WHERE {table} MATCH :search_{name}"
            params: dict[str, object] = {f"search_{name}": _phrase(chosen)}
            if newest is not None and len(tables) == 1:
                before, count = newest
                if before is not None:
                    sql += " AND rowid < :search_before"
                    params["search_before"] = before
                sql += " ORDER BY rowid DESC LIMIT :search_limit"
                params["search_limit"] = count
            found = text(sql).bindparams(**params).columns(column("rowid"))
            terms.append(Ticket.id.in_(found))
        return terms
    if dialect == "sqlite":  # no FTS5: every row is read (a desk on such an SQLite is a small one)
        for word in words:
            pattern = f"%{_escape_like(word)}%"
            fields = (Ticket.ref, Ticket.title, Ticket.requester, Ticket.description)
            in_entry = exists().where(
                TicketEntry.ticket_id == Ticket.id, TicketEntry.body.like(pattern, "\\")
            )
            terms.append(or_(*[f.like(pattern, escape="\\") for f in fields], in_entry))
        return terms
    for word in long:
        pattern = f"%{_escape_like(word)}%"
        either = union_all(
            select(Ticket.id).where(_PG_TICKET_TEXT.ilike(pattern, escape="\\")),
            select(TicketEntry.ticket_id).where(TicketEntry.body.ilike(pattern, escape="\\")),
        )
        terms.append(Ticket.id.in_(either))
    for word in short:
        query = func.plainto_tsquery(_PG_SIMPLE, word)
        either = union_all(
            select(Ticket.id).where(func.to_tsvector(_PG_SIMPLE, _PG_TICKET_TEXT).op("@@")(query)),
            select(TicketEntry.ticket_id).where(
                func.to_tsvector(_PG_SIMPLE, TicketEntry.body).op("@@")(query)
            ),
        )
        terms.append(Ticket.id.in_(either))
    return terms


def count_matches(session: Session, words: tuple[str, ...]) -> int | None:
    """How many tickets hold every one of ``words``, counted in SQLite's index alone (each of its documents
    is a ticket; a word found in most tickets is counted some five times faster than by reading them);
    None where there is no such index (the caller counts the tickets)."""
    dialect, indexed = backend(session)
    if dialect != "sqlite" or not indexed or not words:
        return None
    long = [w for w in words if len(w) >= TRIGRAM_MIN]
    short = [w for w in words if len(w) < TRIGRAM_MIN]
    lookups = [
        (f"SELECT rowid FROM {table} WHERE {table} MATCH :count_{name}", {f"count_{name}": _phrase(chosen)})
        for table, chosen, name in (
            ("ticket_search_all", long, "long"),
            ("ticket_search_words", short, "short"),
        )
        if chosen
    ]
    sql = f"SELECT count(*) FROM ({' INTERSECT '.join(lookup for lookup, _ in lookups)})"
    params = {key: value for _, bound in lookups for key, value in bound.items()}
    return int(session.scalar(text(sql), params) or 0)


def search(
    session: Session,
    words: str | tuple[str, ...] | list[str],
    *,
    open_only: bool = False,
    limit: int = 50,
    before_id: int | None = None,
) -> list[SearchHit]:
    """The tickets (all of them, or the open ones) whose text holds every word, newest first, at most
    ``limit``; pass the last hit's id as ``before_id`` for the next page. No words: no hits."""
    chosen = search_words(words)
    if not chosen:
        return []
    limit = max(1, min(limit, LIMIT_MAX))
    newest = None if open_only else (before_id, limit)
    stmt = (
        with_names(select(*LIST_COLUMNS, Ticket.opened_at, Ticket.is_open))
        .where(*word_conditions(chosen, *backend(session), newest=newest))
        .order_by(Ticket.id.desc())
        .limit(limit)
    )
    if open_only:
        stmt = stmt.where(Ticket.is_open == true())
    if before_id is not None:
        stmt = stmt.where(Ticket.id < before_id)
    return [SearchHit(**row._mapping) for row in session.execute(stmt)]


# ------------------------------------------------------------------------------------- by reference

TICKET_PREFIXES = ("INC", "REQ")  # the references of tickets (services/tickets: INC incidents, REQ requests)
_REF = re.compile(r"^\s*([A-Za-z]{3})?\s*-?\s*0*(\d{1,7})\s*$")


def ref_candidates(text: str) -> list[str]:
    """The ticket references ``text`` may mean, without reading the database: ``INC0000042``, ``inc42``
    and ``INC 42`` mean INC0000042; a bare number (``42``) means INC0000042 or REQ0000042. Anything else
    means none."""
    match = _REF.match(text or "")
    if match is None:
        return []
    prefix, digits = match.group(1), match.group(2)
    number = int(digits)
    if number == 0:
        return []
    prefixes = TICKET_PREFIXES if prefix is None else (prefix.upper(),)
    if any(p not in TICKET_PREFIXES for p in prefixes):
        return []
    return [f"{p}{number:07d}" for p in prefixes]


@dataclass(frozen=True)
class RefHit:
    """A ticket found by its reference."""

    id: int
    ref: str
    title: str
    status: str


def find_refs(session: Session, text: str) -> list[RefHit]:
    """The tickets ``text`` names by reference (see :func:`ref_candidates`), incidents first; one
    lookup by the unique reference index."""
    candidates = ref_candidates(text)
    if not candidates:
        return []
    rows = session.execute(
        select(Ticket.id, Ticket.ref, Ticket.title, Ticket.status).where(Ticket.ref.in_(candidates))
    ).all()
    order = {ref: index for index, ref in enumerate(candidates)}
    return sorted((RefHit(*row) for row in rows), key=lambda hit: order[hit.ref])


def find_ref(session: Session, text: str) -> str | None:
    """The reference of the ticket ``text`` names (``42``, ``inc42``, ``INC0000042``), or None when no
    ticket has it; a bare number that is both an incident's and a request's is the incident."""
    found = find_refs(session, text)
    return found[0].ref if found else None


def find_ticket_id(session: Session, text: str) -> int | None:
    """The id of the ticket ``text`` names by reference (as :func:`find_ref`), or None."""
    found = find_refs(session, text)
    return found[0].id if found else None
