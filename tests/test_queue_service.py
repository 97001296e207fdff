"""The queue service on a demo database, on SQLite and PostgreSQL: keyset pages stitch into exactly the
queue's order for every sort, a ticket is located and its page read around it, the window reads what the
screen needs from neighbours' keys, and SQLite serves each read from the open-ticket indexes."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select, text

from itsm_tui.db import ReadCancel, ReadCancelled
from itsm_tui.demo import build_demo
from itsm_tui.models import Ticket
from itsm_tui.services import queue
from itsm_tui.services.users import resolve_actor

ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)
ALL = 10**6


@pytest.fixture(scope="module")
def demo_db(module_db, config):
    """A 2,500-ticket demo on each backend, with its console user: built once, only read by the tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("getpass.getuser", lambda: "deskuser")
        build_demo(module_db, config, tickets=2500, seed=7, anchor=ANCHOR)
    with module_db.read_session() as session:
        return module_db, resolve_actor(session, "deskuser")


def reference(session, query) -> list[int]:
    """The whole queue in order, read in one statement (no keyset bounds)."""
    return [row.id for row in queue.fetch_page(session, query, limit=ALL)]


def walk(session, query, page_size: int = 50) -> list[int]:
    """Page through the queue as the screen does: each page from its neighbour's key."""
    window = queue.QueueWindow(query, page_size=page_size, max_pages=10**6)
    ids: list[int] = []
    while step := window.next_read(0, len(ids) + page_size - 1):
        page, plan = step
        assert "offset" not in plan, f"page {page} planned by OFFSET"
        rows = queue.fetch_page(session, query, **plan)
        window.store(page, rows)
        ids += [row.id for row in rows]
    return ids


@pytest.mark.parametrize("sort", [s for s in queue.SORTS if s != "resolved"])
@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
def test_keyset_pages_stitch_into_the_queue_order(demo_db, sort, descending):
    db, actor = demo_db
    with db.read_session() as session:
        query = queue.query_for(actor, "all_open", queue.Filter(), sort, descending, ANCHOR)
        expected = reference(session, query)
        open_ids = set(session.scalars(select(Ticket.id).where(Ticket.is_open.is_(True))))
        assert sorted(expected) == sorted(open_ids)  # every open ticket exactly once
        assert walk(session, query, page_size=37) == expected
        # and backwards from the end: the last page by from_end, then each one before its neighbour
        window = queue.QueueWindow(query, total=len(expected), page_size=37)
        last = (len(expected) - 1) // 37
        backwards: list[int] = []
        for page in range(last, -1, -1):
            plan = window.plan(page)
            assert "offset" not in plan
            rows = queue.fetch_page(session, query, **plan)
            window.store(page, rows)
            backwards = [row.id for row in rows] + backwards
        assert backwards == expected


@pytest.mark.parametrize(
    ("view", "words"), [("major", ""), ("breaching", ""), ("resolved", ""), ("all_open", "p:3,4 mail")]
)
def test_views_and_filters_page_the_same_way(demo_db, view, words):
    db, actor = demo_db
    with db.read_session() as session:
        query = queue.query_for(actor, view, queue.parse_filter(words, actor), None, None, ANCHOR)
        expected = reference(session, query)
        assert expected, "the demo should have tickets in this view"
        assert walk(session, query, page_size=20) == expected
        assert queue.count(session, query) == len(expected)


@pytest.mark.parametrize("sort", ["sla", "priority", "title", "assignee", "service", "opened"])
def test_locate_finds_a_ticket_and_its_page_is_read_around_it(demo_db, sort):
    db, actor = demo_db
    with db.read_session() as session:
        query = queue.query_for(actor, "all_open", queue.Filter(), sort, sort == "opened", ANCHOR)
        expected = reference(session, query)
        for position in (0, 1, 49, 50, 51, len(expected) // 2, len(expected) - 1):
            located = queue.locate(session, query, expected[position])
            assert located is not None and located[0] == position
            rows = queue.fetch_around(session, query, position, located[1], page_size=50)
            start = position - position % 50
            assert [row.id for row in rows] == expected[start : start + 50]
        closed = session.scalar(select(Ticket.id).where(Ticket.is_open.is_(False)).limit(1))
        assert queue.locate(session, query, closed) is None


def test_locate_counts_stored_utc_times_as_utc_whatever_the_server_time_zone(demo_db):
    db, actor = demo_db
    if db.engine.dialect.name != "postgresql":
        pytest.skip("a session time zone is PostgreSQL's")
    with db.read_session() as session:
        session.execute(text("SET LOCAL TIME ZONE 'Asia/Kolkata'"))  # UTC+05:30: half a day of SLA clocks
        query = queue.query_for(actor, "all_open", queue.Filter(), "sla", False, ANCHOR)
        expected = reference(session, query)
        for position in (1, len(expected) // 3, len(expected) // 2, len(expected) - 2):
            located = queue.locate(session, query, expected[position])
            assert located is not None and located[0] == position


# --------------------------------------------------------------------------- the window, without a database


def _rows(first: int, n: int) -> list[queue.QueueRow]:
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        queue.QueueRow(
            id=i, ref=f"INC{i:07d}", priority=3, status="new", title="t", requester="r", group=None,
            assignee=None, service=None, opened_at=stamp, updated_at=stamp, resolved_at=None,
            resolution_warn_at=None, resolution_due_at=stamp, paused_at=None, key=(stamp, i),
        )
        for i in range(first, first + n)
    ]  # fmt: skip


def test_window_reads_neighbours_by_key_and_waits_rather_than_offset():
    window = queue.QueueWindow(queue.QueueQuery(), page_size=10)
    assert window.next_read(0, 25) == (0, {"limit": 10})
    window.store(0, _rows(0, 10))
    page, plan = window.next_read(0, 25)
    assert page == 1 and plan == {"after": window.pages[0][-1].key, "limit": 10}
    # page 2's neighbour is being read: wait for it instead of reading page 2 by OFFSET
    assert window.next_read(15, 25, reading=frozenset({1})) is None
    # a jump far from anything read: the first page there is read by OFFSET, the rest from it
    page, plan = window.next_read(500, 525)
    assert page == 50 and plan == {"offset": 500, "limit": 10}
    window.store(50, _rows(500, 10))
    assert window.next_read(500, 525)[1] == {"after": window.pages[50][-1].key, "limit": 10}
    assert window.next_read(490, 499)[1] == {"before": window.pages[50][0].key, "limit": 10}
    # once the count is known, the last page is read from the end
    window.total = 1005
    assert window.next_read(1000, 1004) == (100, {"from_end": 5})


def test_window_learns_the_end_from_a_short_page_and_keeps_the_pages_near_the_screen():
    window = queue.QueueWindow(queue.QueueQuery(), page_size=10, max_pages=3)
    window.store(0, _rows(0, 10))
    window.store(1, _rows(10, 4))
    assert window.total == 14 and window.known_rows == 14
    assert window.next_read(0, 100) is None  # nothing past the end
    far = queue.QueueWindow(queue.QueueQuery(), page_size=10, max_pages=3)
    for page in (0, 1, 2, 3):
        far.store(page, _rows(page * 10, 10), near=3)
    assert sorted(far.pages) == [1, 2, 3]  # page 0, farthest from the screen, went first


# --------------------------------------------------------------------------- plans (SQLite)


def _plans(db, run) -> list[str]:
    """The query plans of the statements on the tickets table that ``run(session)`` executes."""
    captured: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if "tickets" in statement and not statement.startswith("EXPLAIN"):
            captured.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        with db.read_session() as session:
            run(session)
            return [
                " / ".join(
                    str(r[-1])
                    for r in session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
                )
                for sql, params in captured
            ]
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)


@pytest.mark.parametrize("sort", [s for s in queue.SORTS if s != "resolved"])
def test_sqlite_reads_pages_and_positions_from_the_open_ticket_indexes(demo_copy, sort):
    """After ANALYZE, every page read and position count of an open view walks an index on open tickets
    (SQLite would otherwise pick a full scan, or another index and a read of every row)."""
    db, actor = demo_copy(4000, 11)
    with db.session() as session:
        session.execute(text("ANALYZE"))
    query = queue.query_for(actor, "all_open", queue.Filter(), sort, None, ANCHOR)

    def run(session):
        first = queue.fetch_page(session, query)
        queue.fetch_page(session, query, after=first[-1].key)
        queue.fetch_page(session, query, before=first[-1].key, limit=10)
        queue.locate(session, query, first[-1].id)

    index = SORT_INDEXES[sort]
    for plan in _plans(db, run):
        for part in plan.split(" / "):
            if part.startswith(("SCAN tickets", "SEARCH tickets")) and "PRIMARY KEY" not in part:
                assert f"INDEX {index} " in part + " ", plan


SORT_INDEXES = {
    "sla": "ix_tickets_open_due",
    "priority": "ix_tickets_open_priority",
    "ref": "ix_tickets_open_by_id",
    "status": "ix_tickets_open_by_status",
    "title": "ix_tickets_open_by_title",
    "requester": "ix_tickets_open_by_requester",
    "group": "ix_tickets_open_group",
    "assignee": "ix_tickets_open_by_assignee",
    "service": "ix_tickets_open_by_service",
    "opened": "ix_tickets_open_by_opened",
    "updated": "ix_tickets_open_by_updated",
}


# --------------------------------------------------------------------------- stopping a read


def test_a_running_read_is_stopped_from_another_thread_and_the_pool_stays_usable(db):
    """A stale read (e.g. a count the next keystroke made useless) stops at once; its connection is fine."""
    slow = (
        "SELECT pg_sleep(20)"
        if db.backend == "postgresql"
        else "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    )
    cancel = ReadCancel()
    outcome: dict[str, object] = {}

    def read() -> None:
        started = time.monotonic()
        try:
            with db.read_session(cancel) as session:
                session.execute(text(slow)).all()
        except ReadCancelled:
            outcome["cancelled"] = time.monotonic() - started
        except Exception as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=read)
    worker.start()
    time.sleep(0.5)
    cancel.cancel()
    worker.join(10)
    assert not worker.is_alive()
    assert "error" not in outcome, outcome
    assert outcome["cancelled"] < 5
    with db.read_session() as session:  # the same pooled connection answers the next read
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0
    # a cancel that comes after the read ended reaches nobody
    done = ReadCancel()
    with db.read_session(done) as session:
        session.execute(text("SELECT 1")).all()
    done.cancel()
    with db.read_session() as session:
        assert session.execute(text("SELECT 1")).scalar() == 1


# --------------------------------------------------------------------------- free-text search (SQLite)


def test_the_search_index_follows_the_open_tickets(staff_sqlite, config):
    """SQLite's trigram index holds exactly the open tickets, as they are created, edited, resolved and
    reopened; a word finds a ticket by any part of its reference, title or requester, ignoring case."""
    from itsm_tui.services import tickets

    db, staff = staff_sqlite
    lead = staff["lead"]

    def found(word: str) -> set[str]:
        with db.read_session() as session:
            query = queue.query_for(lead, "all_open", queue.parse_filter(word), None, None, datetime.now(UTC))
            return {row.ref for row in queue.fetch_page(session, query, limit=ALL)}

    def indexed() -> set[int]:
        with db.read_session() as session:
            return set(session.scalars(text("SELECT rowid FROM ticket_search")))

    with db.session() as session:
        ref = tickets.create_ticket(
            session, config, lead, title="Plotter jams on floor 4", requester="Zoë Müller", group="SD-L1"
        ).ref
    assert found("PLOTTER") == {ref} and found("müll") == {ref} and found(ref[-5:]) == {ref}
    with db.session() as session:
        tickets.update_fields(session, config, lead, ref, title="Scanner offline")
    assert found("plotter") == set() and found("scanner") == {ref}
    with db.session() as session:
        tickets.assign(session, config, lead, ref)
        tickets.transition(session, config, lead, ref, "in_progress")
        tickets.resolve(session, config, lead, ref, code="fixed", note="replaced the cable")
    with db.read_session() as session:
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.ref == ref))
    assert ticket_id not in indexed() and found("scanner") == set()
    with db.session() as session:
        tickets.transition(session, config, lead, ref, "in_progress", reason="still offline")  # reopened
    assert ticket_id in indexed() and found("scanner") == {ref}
    with db.read_session() as session:
        open_ids = set(session.scalars(select(Ticket.id).where(Ticket.is_open.is_(True))))
    assert indexed() == open_ids


@pytest.mark.parametrize(
    "words",
    [
        "printer",
        "PRINTER floor",
        "mail",
        "vpn",
        "no such words",
        "inc00",
        "p",
        "ma",
        "50%",
        "a_b",
        'say "hi"',
    ],
)
def test_indexed_and_scanned_search_find_the_same_tickets(demo_copy, words):
    """The trigram index answers exactly what testing every open ticket with LIKE would."""
    db, actor = demo_copy(4000, 11)
    query = queue.query_for(actor, "all_open", queue.parse_filter(words), None, None, ANCHOR)
    with db.read_session() as session:
        conditions = {
            indexed: queue._conditions(query, "sqlite", search_index=indexed) for indexed in (True, False)
        }
        found = {
            indexed: set(session.scalars(select(Ticket.id).where(*terms)))
            for indexed, terms in conditions.items()
        }
        rows = session.execute(
            select(Ticket.id, Ticket.ref, Ticket.title, Ticket.requester).where(Ticket.is_open.is_(True))
        ).all()
    expected = {
        r.id
        for r in rows
        if all(any(w.lower() in f.lower() for f in (r.ref, r.title, r.requester)) for w in words.split())
    }
    assert found[True] == found[False] == expected
