"""Every filter path of every queue view by an index, on SQLite and PostgreSQL (services/queue.py
``_field_words``): words of three characters or more by a trigram index (0004's of the open tickets in the
open views, 0012's of every ticket in "Recently resolved"), shorter ones as whole words (0012's, with the
fields 0013 gave it; PostgreSQL: 0012's GIN indexes), what they find, and the query plans at a million-like
table (SQLite: its statistics scaled up; PostgreSQL: real statistics of a few thousand tickets).
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from plan_helpers import captured_statements
from sqlalchemy import func, insert, select, text

from itsm_tui.db import Database
from itsm_tui.models import Group, Ticket, User
from itsm_tui.services import queue

NOW = datetime(2026, 3, 9, 12, tzinfo=UTC)


def _row(i: int, title: str, *, closed_days: float | None = None, description: str = "", **extra) -> dict:
    """A ticket row for a bulk insert: open, or closed ``closed_days`` before :data:`NOW`."""
    opened = NOW - timedelta(days=(closed_days or 0) + 1)
    resolved = None if closed_days is None else NOW - timedelta(days=closed_days)
    due = opened + timedelta(hours=8)
    return {
        "ref": f"INC{i:07d}", "kind": "incident", "title": title, "description": description,
        "requester": "Ann Example", "impact": "medium", "urgency": "medium", "priority": 3,
        "status": "new" if resolved is None else "closed", "is_open": resolved is None,
        "group_id": None, "assignee_id": None, "opened_at": opened, "updated_at": opened, "version": 1,
        "resolved_at": resolved, "closed_at": resolved, "response_warn_at": due, "response_due_at": due,
        "resolution_warn_at": due, "resolution_due_at": due,
        "reopen_count": 0, "escalation_count": 0, "reassignment_count": 0, **extra,
    }  # fmt: skip


# ------------------------------------------------------------------------------------ what words find

TICKETS = {
    1: _row(1, "HR laptop for the new starter"),
    2: _row(2, "Three monitors flicker", description="asked by HR; the printer is fine"),
    3: _row(3, "Printer jam on the HR floor", closed_days=1),
    4: _row(4, "Scanner offline", closed_days=2, description="the printer next to it works"),
    5: _row(5, "Printer toner empty", closed_days=30),
    6: _row(6, "Printer offline", requester="Jo Ma"),
}

# (view, filter) -> the tickets found, worked out from TICKETS above: a queue view looks in the reference,
# title and requester (All tickets in the description too); a short word is a whole word ("hr" is not in
# "three"), a longer one is found inside words ("thr" is); Recently resolved is the last 7 days.
FOUND = {
    ("all_open", "hr"): {1},
    ("all_open", "HR lap"): {1},
    ("all_open", "thr"): {2},
    ("all_open", "printer"): {6},
    ("all_open", "ma"): {6},
    ("all_open", "printer ma"): {6},
    ("all_open", "a"): set(),
    ("resolved", "printer"): {3},
    ("resolved", "hr"): {3},
    ("resolved", "print jam"): {3},
    ("resolved", "offline"): {4},
    ("resolved", "fine"): set(),
    ("all_tickets", "printer"): {2, 3, 4, 5, 6},
    ("all_tickets", "hr"): {1, 2, 3},
}


def test_words_find_what_each_view_shows(db, staff):
    with db.session() as s:
        s.execute(insert(Ticket), list(TICKETS.values()))
    found = {}
    with db.read_session() as s:
        for view, words in FOUND:
            query = queue.query_for(staff["lead"], view, queue.parse_filter(words), None, None, NOW)
            refs = {row.ref for row in queue.fetch_page(s, query, limit=100)}
            assert queue.count(s, query) == len(refs), (view, words)
            found[view, words] = {int(ref[3:]) for ref in refs}
    assert found == FOUND


# ------------------------------------------------------------------------------ plans at a million rows

WORDS = ["printer", "laptop", "vpn", "mailbox", "monitor", "password", "access", "offline", "slow", "new"]


def _bulk(db: Database, this_week: float, n: int = 4000) -> None:
    """``n`` tickets of a desk's history (a tenth open, the share ``this_week`` of them resolved in the last
    seven days, the others before), titles of a few common words;
    one ticket holds the rare word "zebra", one "ox"."""
    rng = random.Random(7)
    with db.session() as s:
        groups = list(s.scalars(select(Group.id)))
        users = list(s.scalars(select(User.id)))
        rows = []
        for i in range(100, 100 + n):
            title = " ".join(rng.sample(WORDS, 3)) + (" zebra" if i == 500 else " ox" if i == 600 else "")
            share = rng.random()
            closed = (
                None if share < 0.1 else rng.uniform(0, 7) if share < 0.1 + this_week else rng.uniform(7, 200)
            )
            rows.append(
                _row(i, title, closed_days=closed, priority=rng.randint(1, 5), group_id=rng.choice(groups),
                     assignee_id=rng.choice(users) if rng.random() < 0.7 else None)
            )  # fmt: skip
        s.execute(insert(Ticket), rows)


def _million_like(db: Database) -> Database:
    """SQLite: its statistics as a table 250 times larger would have them (the same share of open tickets
    and of each value), read by a new engine (a connection reads them when it opens)."""
    with db.session() as s:
        s.execute(text("ANALYZE"))
        for tbl, idx, stat in s.execute(text("SELECT tbl, idx, stat FROM sqlite_stat1")).all():
            figures = [str(int(f) * 250) if f.isdigit() and int(f) > 1 else f for f in stat.split()]
            s.execute(
                text("UPDATE sqlite_stat1 SET stat = :stat WHERE tbl = :tbl AND idx IS :idx"),
                {"stat": " ".join(figures), "tbl": tbl, "idx": idx},
            )
    db.dispose()
    return Database.connect(db.url)


# The filters of each kind: a rare word, a common one, a short word, two words, words and tokens, tokens only.
FILTERS = ["zebra", "printer", "ox", "printer zebra", "vpn ox", "p:1 zebra", "status:new ox", "p:2"]
VIEWS = ["all_open", "my_work", "unassigned", "major", "breaching", "resolved"]
# The indexes of tickets a view may read (its own rows, a share of the table; the status token's) besides the
# word indexes.
VIEW_INDEXES = {
    "ix_tickets_open_due", "ix_tickets_open_assignee", "ix_tickets_open_group", "ix_tickets_open_priority",
    "ix_tickets_open_by_id", "ix_tickets_open_by_status", "ix_tickets_resolved", "ix_tickets_status",
}  # fmt: skip
# 0013's indexes of every ticket, for the tokens of "All tickets"
TOKEN_INDEXES = {"ix_tickets_priority", "ix_tickets_group", "ix_tickets_assignee", "ix_tickets_service"}
# PostgreSQL's word indexes: 0013's of the open tickets' fields, 0012's of every ticket's text
PG_WORD_INDEXES = {
    "ticket_search_open_trgm",
    "ticket_search_open_tsv",
    "ticket_search_trgm",
    "ticket_search_tsv",
}
_SQLITE_READ = re.compile(r"^(SCAN|SEARCH) tickets(?: USING (?:COVERING )?INDEX (\w+))?")
_PG_READ = re.compile(r"(Seq Scan|Index Scan|Index Only Scan)(?: Backward)?(?: using (\w+))? on tickets\b")
_PG_BITMAP = re.compile(r"Bitmap Index Scan on (\w+)")


def _plans(db: Database, query: queue.QueueQuery) -> list[str]:
    """The plans of the statements that a first page, the count and the next page read tickets by."""
    with captured_statements(db, "tickets") as captured, db.read_session() as s:
        first = queue.fetch_page(s, query, limit=10)
        queue.count(s, query)
        if first:
            queue.fetch_page(s, query, after=first[-1].key, limit=10)
    explain = "EXPLAIN QUERY PLAN " if db.backend == "sqlite" else "EXPLAIN "
    with db.read_session() as s:
        return [
            "\n".join(str(r[-1]) for r in s.connection().exec_driver_sql(explain + sql, params))
            for sql, params in captured
        ]


def _index_reads(plan: str, sqlite: bool) -> list[str | None]:
    """The indexes a plan reads tickets by (None: the table itself, scanned), point reads by id left out."""
    reads: list[str | None] = []
    for line in plan.splitlines():
        if sqlite:
            found = _SQLITE_READ.match(line.strip())
            if found and "PRIMARY KEY" not in line and "id=?)" not in line:  # by the ids a word index found
                reads.append(found[2])
        elif found := _PG_READ.search(line):
            if found[1] == "Seq Scan" or found[2] != "pk_tickets":
                reads.append(found[2])
        elif (found := _PG_BITMAP.search(line)) and found[1] != "pk_tickets":
            reads.append(found[1])
    return reads


@pytest.fixture
def planned(request, db, staff):
    this_week = getattr(request, "param", 0.1)
    if "rare_word" in request.node.name and db.backend != "postgresql":
        pytest.skip("PostgreSQL's GIN indexes")
    _bulk(db, this_week)
    if db.backend == "sqlite":
        bigger = _million_like(db)
        yield bigger, staff
        bigger.dispose()
    else:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE tickets")  # as autovacuum would: GIN's pending list merged
        yield db, staff


def test_every_view_and_filter_reads_tickets_by_an_index(planned):
    """No statement of any view's filter scans the tickets or tests a word row by row: each reads the view's
    own index (the open tickets, or the resolved ones by time), the word index, or rows by id."""
    db, staff = planned
    sqlite = db.backend == "sqlite"
    # PostgreSQL may join a token's index of every ticket to the view's (a bitmap AND); SQLite reads one index
    allowed = VIEW_INDEXES | (set() if sqlite else TOKEN_INDEXES | PG_WORD_INDEXES)
    for view in VIEWS:
        for words in FILTERS:
            query = queue.query_for(staff["lead"], view, queue.parse_filter(words), None, None, NOW)
            for plan in _plans(db, query):
                reads = _index_reads(plan, sqlite)
                assert all(name in allowed for name in reads), (view, words, reads, plan)
                has_word = any(not w.startswith("p:") and ":" not in w for w in words.split())
                if sqlite and has_word:
                    assert "VIRTUAL TABLE" in plan, (view, words, plan)


def test_all_tickets_counts_its_tokens_by_an_index(planned):
    """In "All tickets" (every ticket, of any age) a token is counted in an index of every ticket (0013's),
    not by reading the table; the page, newest first, may walk the tickets until it has its rows."""
    db, staff = planned
    sqlite = db.backend == "sqlite"
    for words in ("p:2", "svc:email", "assignee:none", f"assignee:{staff['agent1'].login}", "group:sd"):
        query = queue.query_for(staff["lead"], "all_tickets", queue.parse_filter(words), None, None, NOW)
        counted = _plans(db, query)[1]
        assert all(name in TOKEN_INDEXES for name in _index_reads(counted, sqlite)), (words, counted)


@pytest.mark.parametrize("planned", [0.1, 0.8], indirect=True)
@pytest.mark.parametrize("words", ["zebra", "ox"])
def test_postgresql_finds_a_rare_word_in_its_gin_index(planned, words):
    """On PostgreSQL a rare word (one ticket of thousands) is looked up in a GIN index, for the page and for
    the count: in the open views 0013's of the open tickets, in Recently resolved 0012's of every ticket
    (here most of the table, as it would be of a million tickets)."""
    db, staff = planned
    with db.read_session() as s:
        recent = s.scalar(select(func.count()).where(Ticket.resolved_at >= NOW - timedelta(days=7)))
    view, index = ("resolved", "ticket_search") if recent > 2000 else ("all_open", "ticket_search_open")
    index += "_trgm" if len(words) >= 3 else "_tsv"
    query = queue.query_for(staff["lead"], view, queue.parse_filter(words), None, None, NOW)
    plans = _plans(db, query)
    assert plans and all(f"Bitmap Index Scan on {index}" in plan for plan in plans), (
        view,
        [line for plan in plans for line in plan.splitlines() if "Scan" in line],
    )
