"""The queue service on a demo database, on SQLite and PostgreSQL: keyset pages stitch into exactly the
queue's order for every sort, a ticket is located and its page read around it, the window reads what the
screen needs from neighbours' keys, and SQLite serves each read from the open-ticket indexes."""

from __future__ import annotations

import dataclasses
import random
import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from plan_helpers import sqlite_plans
from sqlalchemy import event, func, insert, select, text

from itsm_tui.db import ReadCancel, ReadCancelled
from itsm_tui.demo import build_demo
from itsm_tui.models import Group, Ticket, User
from itsm_tui.screens.queue import PAUSED_TEXT, RESPONSE_MARK, sla_cell
from itsm_tui.services import queue, tickets
from itsm_tui.services.users import resolve_actor

ANCHOR = datetime(2026, 11, 20, 12, tzinfo=UTC)
ALL = 10**6


@pytest.fixture(scope="module")
def demo_db(module_db, config):
    """A 2,500-ticket demo on each backend, with its console user: built once, only read by the tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("itsm_tui.services.users.os_login", lambda: "deskuser")
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
            resolution_warn_at=None, resolution_due_at=stamp, paused_at=None, sla_due_at=stamp,
            sla_on_response=False, response_warn_at=None, key=(False, stamp, i),
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
    return sqlite_plans(db, run, "tickets")


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
    """The trigram index answers exactly what testing every open ticket with LIKE would; a word of one or
    two characters is found by the index as a whole word (without the index, anywhere)."""
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

    def holds(word: str, field: str, indexed: bool) -> bool:
        if indexed and len(word) < 3:  # a whole word of the field (ASCII: the demo's titles and names)
            return word.lower() in re.findall(r"[a-z0-9]+", field.lower())
        return word.lower() in field.lower()

    expected = {
        indexed: {
            r.id
            for r in rows
            if all(any(holds(w, f, indexed) for f in (r.ref, r.title, r.requester)) for w in words.split())
        }
        for indexed in (True, False)
    }
    assert found == expected


# --------------------------------------------------------------------------- the SLA column, in its order

SLA_NOW = datetime(2026, 3, 9, 12, tzinfo=UTC)  # Monday 13:00 in Berlin (office hours)
_FIGURE = re.compile(r"^(?P<mark>R?)\s*(?P<sign>-?)(?:(?P<d>\d+)d(?P<dh>\d\d)h|(?P<h>\d+)h(?P<m>\d\d)m)$")


def sla_order_of(text: str) -> tuple[int, int]:
    """What the SLA column shows, as the order it claims: (1, 0) for a paused row (after every running one),
    else (0, signed minutes to the due instant, as far as the figure tells)."""
    if text == PAUSED_TEXT:
        return (1, 0)
    found = _FIGURE.match(text.strip())
    assert found, f"not an SLA figure: {text!r}"
    if found["d"] is not None:
        minutes = int(found["d"]) * 1440 + int(found["dh"]) * 60
    else:
        minutes = int(found["h"]) * 60 + int(found["m"])
    return (0, -minutes if found["sign"] else minutes)


def build_sla_mix(db, config, staff) -> dict[str, str]:
    """Tickets whose nearer target differs, at :data:`SLA_NOW`: name -> reference."""
    agent = staff["agent1"]
    refs: dict[str, str] = {}

    def new(name: str, impact: str, urgency: str, opened: datetime) -> str:
        with db.session() as s:
            refs[name] = tickets.create_ticket(
                s, config, agent, title=f"Ticket {name}", requester="Ann Example", impact=impact,
                urgency=urgency, group="SD-L1", now=opened,
            ).ref  # fmt: skip
        return refs[name]

    def take(name: str, at: datetime) -> None:
        with db.session() as s:
            tickets.assign(s, config, agent, refs[name], now=at)

    def pend(name: str, at: datetime, reason: str) -> None:
        with db.session() as s:
            tickets.transition(s, config, agent, refs[name], "in_progress", now=at)
            tickets.transition(s, config, agent, refs[name], "pending", reason=reason, now=at)

    # P5, untouched since Wednesday: its response (16 office hours) was due Thursday 16:00 Berlin; its
    # resolution (80 office hours) is days away.
    new("response_overdue", "low", "low", datetime(2026, 3, 4, 9, tzinfo=UTC))
    # P1 (24x7), taken at once: its resolution (4 h) was due an hour ago.
    new("resolution_overdue", "high", "high", SLA_NOW - timedelta(hours=5))
    take("resolution_overdue", SLA_NOW - timedelta(hours=5) + timedelta(minutes=5))
    # P2 (24x7), untouched: its response (30 min) is due in 10 minutes.
    new("response_soon", "high", "medium", SLA_NOW - timedelta(minutes=20))
    # P3, untouched: its response (2 office hours) is due at 14:00 Berlin, in an hour.
    new("response_later", "medium", "medium", SLA_NOW - timedelta(hours=1))
    # P3, taken: its resolution (24 office hours from Monday 10:00) is due Wednesday 14:00 Berlin.
    new("resolution_later", "medium", "medium", SLA_NOW - timedelta(hours=3))
    take("resolution_later", SLA_NOW - timedelta(hours=2, minutes=30))
    # Paused: one waiting on the customer for a week, one on a vendor since this morning.
    new("paused_long", "medium", "low", datetime(2026, 3, 2, 9, tzinfo=UTC))
    take("paused_long", datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    pend("paused_long", datetime(2026, 3, 2, 10, tzinfo=UTC), "customer")
    new("paused_recent", "medium", "medium", SLA_NOW - timedelta(hours=4))
    take("paused_recent", SLA_NOW - timedelta(hours=3))
    pend("paused_recent", SLA_NOW - timedelta(hours=1), "vendor")
    # Resolved: not in the open views.
    new("resolved", "medium", "medium", SLA_NOW - timedelta(hours=6))
    take("resolved", SLA_NOW - timedelta(hours=5))
    with db.session() as s:
        tickets.transition(
            s, config, agent, refs["resolved"], "in_progress", now=SLA_NOW - timedelta(hours=5)
        )
        tickets.resolve(s, config, agent, refs["resolved"], code="fixed", note="done", now=SLA_NOW)
    return refs


RUNNING_ORDER = [
    "response_overdue",
    "resolution_overdue",
    "response_soon",
    "response_later",
    "resolution_later",
]
PAUSED_ORDER = ["paused_long", "paused_recent"]  # by the due instant each had when it paused


def test_the_sla_order_is_the_nearer_targets_due_and_the_column_shows_it(db, config, staff):
    """The queue is ordered by the due instant of each ticket's nearer running target, then the paused
    tickets; the column shows the wall-clock time to that instant, marked R for a response target, so that
    it reads in order from top to bottom, and the paused tickets stand together at the end, marked so."""
    refs = build_sla_mix(db, config, staff)
    name_of = {ref: name for name, ref in refs.items()}
    lead = staff["lead"]
    with db.read_session() as session:
        query = queue.query_for(lead, "all_open", queue.Filter(), None, None, SLA_NOW)
        rows = queue.fetch_page(session, query, limit=ALL)
        reverse = queue.fetch_page(
            session, queue.query_for(lead, "all_open", queue.Filter(), "sla", True, SLA_NOW)
        )
    assert [name_of[r.ref] for r in rows] == RUNNING_ORDER + PAUSED_ORDER
    assert [r.id for r in reverse] == [r.id for r in rows][::-1]
    cells = {name_of[r.ref]: sla_cell(r, SLA_NOW) for r in rows}
    assert cells == {
        # due Thursday 16:00 Berlin: 3 days 21 hours ago
        "response_overdue": (f"{RESPONSE_MARK}  -3d21h", "bold red"),
        "resolution_overdue": ("   -1h00m", "bold red"),
        "response_soon": (f"{RESPONSE_MARK}   0h10m", "green"),
        "response_later": (f"{RESPONSE_MARK}   1h00m", "green"),
        "resolution_later": ("    2d01h", "green"),
        "paused_long": (PAUSED_TEXT, "cyan"),
        "paused_recent": (PAUSED_TEXT, "cyan"),
    }
    overdue = next(r for r in rows if name_of[r.ref] == "response_overdue")
    assert overdue.sla_target == "response" and overdue.due_state(SLA_NOW) == "breached"
    assert overdue.sla_state(SLA_NOW) == "ok"  # its resolution target alone would look on track
    shown = [sla_order_of(sla_cell(r, SLA_NOW)[0]) for r in rows]
    assert shown == sorted(shown)
    assert [r.key[:-1] for r in rows] == sorted(r.key[:-1] for r in rows)
    assert all(r.key[0] == (r.paused_at is not None) for r in rows)
    assert all(r.key[1] == r.sla_due_at for r in rows)


def test_breaching_soon_is_the_nearer_target_and_reads_in_order(db, config, staff):
    """Breaching soon holds the running tickets whose nearer target is overdue or due within two hours
    (a response overdue counts), in the same order and with the same column as the other views."""
    refs = build_sla_mix(db, config, staff)
    name_of = {ref: name for name, ref in refs.items()}
    with db.read_session() as session:
        query = queue.query_for(staff["lead"], "breaching", queue.Filter(), None, None, SLA_NOW)
        rows = queue.fetch_page(session, query, limit=ALL)
        assert queue.count(session, query) == len(rows)
    assert [name_of[r.ref] for r in rows] == RUNNING_ORDER[:4]
    shown = [sla_order_of(sla_cell(r, SLA_NOW)[0]) for r in rows]
    assert shown == sorted(shown)


def test_the_sla_order_follows_each_change_of_the_clocks(db, config, staff):
    """The order columns follow every write that moves a target: a take (the response is made), a pause,
    a resume (the due moves by the paused time), a priority change."""
    agent = staff["agent1"]
    refs = build_sla_mix(db, config, staff)

    def order(name: str) -> tuple:
        with db.read_session() as s:
            return s.execute(
                select(Ticket.sla_paused, Ticket.sla_due_at).where(Ticket.ref == refs[name])
            ).one()

    def dues(name: str) -> tuple:
        with db.read_session() as s:
            t = tickets.get_ticket(s, refs[name])
            return t.response_due_at, t.resolution_due_at

    response, resolution = dues("response_overdue")
    assert tuple(order("response_overdue")) == (False, response)
    with db.session() as s:
        tickets.assign(s, config, agent, refs["response_overdue"], now=SLA_NOW)
    assert tuple(order("response_overdue")) == (False, resolution)
    paused = tuple(order("paused_recent"))
    assert paused == (True, dues("paused_recent")[1])
    with db.session() as s:
        tickets.transition(s, config, agent, refs["paused_recent"], "in_progress", now=SLA_NOW)
    resumed = tuple(order("paused_recent"))
    assert resumed[0] is False and resumed[1] == dues("paused_recent")[1] > paused[1]
    with db.session() as s:
        tickets.update_fields(
            s, config, staff["lead"], refs["resolution_later"], impact="high", urgency="high"
        )
    assert tuple(order("resolution_later")) == (False, dues("resolution_later")[1])


# --------------------------------------------------------------------------- each view's default sort


def _bulk_tickets(db, n: int = 3000) -> None:
    """``n`` tickets written in one bulk insert (as the demo writes them: a column list, the order columns
    left to the database), most of them closed, as in a desk's history."""
    rng = random.Random(5)
    with db.session() as s:
        groups = list(s.scalars(select(Group.id)))
        users = list(s.scalars(select(User.id)))
        rows = []
        for i in range(1, n + 1):
            opened = SLA_NOW - timedelta(minutes=rng.uniform(0, 200 * 1440))
            status = rng.choices(["new", "assigned", "in_progress", "pending", "closed"], [2, 3, 6, 2, 87])[0]
            taken = status != "new"
            response_due = opened + timedelta(minutes=rng.choice([15, 30, 120, 480, 960]))
            resolution_due = opened + timedelta(minutes=rng.choice([240, 480, 1440, 2880, 4800]))
            rows.append(
                {
                    "ref": f"INC{i:07d}", "kind": "incident", "title": f"Ticket {i}", "description": "",
                    "requester": "Ann Example", "impact": "medium", "urgency": "medium",
                    "priority": rng.randint(1, 5), "status": status, "is_open": status != "closed",
                    "group_id": rng.choice(groups), "assignee_id": rng.choice(users) if taken else None,
                    "opened_at": opened, "updated_at": opened, "version": 1,
                    "responded_at": opened + timedelta(minutes=10) if taken else None,
                    "resolved_at": resolution_due if status == "closed" else None,
                    "closed_at": resolution_due if status == "closed" else None,
                    "paused_at": opened + timedelta(minutes=20) if status == "pending" else None,
                    "response_warn_at": response_due, "response_due_at": response_due,
                    "resolution_warn_at": resolution_due, "resolution_due_at": resolution_due,
                    "reopen_count": 0, "escalation_count": 0, "reassignment_count": 0,
                }
            )  # fmt: skip
        s.execute(insert(Ticket), rows)
    with db.session() as s:
        s.execute(text("ANALYZE"))


# The indexes each view's default sort may read: the view's own (its rows, in the SLA order or few enough to
# sort), or the SLA order's own, filtered (which a planner may take for a short page near a bound).
# PostgreSQL may AND one of 0013's indexes of every ticket (the assignee's, the priority's) with the view's.
VIEW_INDEXES = {
    "my_work": {"ix_tickets_open_assignee", "ix_tickets_open_due", "ix_tickets_assignee"},
    "unassigned": {
        "ix_tickets_open_assignee",
        "ix_tickets_open_group",
        "ix_tickets_open_due",
        "ix_tickets_assignee",
    },
    "breaching": {"ix_tickets_open_due"},
    "all_open": {"ix_tickets_open_due"},
    "major": {"ix_tickets_open_priority", "ix_tickets_open_due", "ix_tickets_priority"},
    "resolved": {"ix_tickets_resolved"},
}


_SQLITE_READ = re.compile(r"^(SCAN|SEARCH) tickets(?: AS \w+)?(?: USING (?:COVERING )?INDEX (\w+))?")
_PG_READ = re.compile(r"(Seq Scan|Index Scan|Index Only Scan)(?: Backward)?(?: using (\w+))? on tickets\b")
_PG_BITMAP = re.compile(r"Bitmap Index Scan on (\w+)")


def _ticket_reads(db, run) -> list[tuple[str, list[str | None]]]:
    """For each statement on tickets that ``run(session)`` executes, its plan (SQLite's EXPLAIN QUERY PLAN,
    PostgreSQL's EXPLAIN) and the indexes it reads tickets by: None for a scan of the table; point reads by
    the primary key are left out."""
    captured: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if "tickets" in statement and not statement.startswith("EXPLAIN"):
            captured.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", grab)
    with db.read_session() as session:
        try:
            run(session)
        finally:
            event.remove(db.engine, "before_cursor_execute", grab)
        sqlite = db.backend == "sqlite"
        result = []
        for sql, params in captured:
            lines = [
                str(r[-1])
                for r in session.connection().exec_driver_sql(
                    ("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + sql, params
                )
            ]
            reads: list[str | None] = []
            for line, following in zip(lines, [*lines[1:], ""], strict=True):
                if sqlite:
                    found = _SQLITE_READ.match(line.strip())
                    if found and "PRIMARY KEY" not in line and "(id=?)" not in line:
                        reads.append(found[2])
                elif found := _PG_READ.search(line) or _PG_BITMAP.search(line):
                    name = found[found.re.groups]
                    if found.re is _PG_READ and found[1] == "Seq Scan":
                        name = None
                    if name != "pk_tickets" and not following.strip().startswith("Index Cond: (id = "):
                        reads.append(name)
            result.append((" / ".join(line.strip() for line in lines), reads))
        return result


# All tickets (the history) is read by its primary key: tests/test_search.py.
@pytest.mark.parametrize("view", [v for v in queue.VIEWS if v != "all_tickets"])
def test_every_views_default_sort_reads_its_index(db, config, staff, view):
    """On SQLite and PostgreSQL, a view's first page, the next one, the one before and a ticket's position
    are each read from an index on tickets, never by scanning the table (at a million tickets that is the
    difference between milliseconds and seconds)."""
    _bulk_tickets(db)
    with db.read_session() as s:
        busiest = s.scalar(
            select(Ticket.assignee_id).where(Ticket.is_open.is_(True), Ticket.assignee_id.is_not(None))
            .group_by(Ticket.assignee_id).order_by(func.count().desc()).limit(1)
        )  # fmt: skip
        actor = resolve_actor(s, s.scalar(select(User.login).where(User.id == busiest)))
        actor = dataclasses.replace(actor, group_ids=frozenset(s.scalars(select(Group.id).limit(2))))
    query = queue.query_for(actor, view, queue.Filter(), None, None, SLA_NOW)
    with db.read_session() as session:
        first = queue.fetch_page(session, query, limit=10)
    assert first, f"the {view} view should have tickets"

    def run(session):
        queue.fetch_page(session, query, limit=10)
        queue.fetch_page(session, query, after=first[-1].key, limit=10)
        queue.fetch_page(session, query, before=first[-1].key, limit=5)
        queue.locate(session, query, first[-1].id)

    wanted = VIEW_INDEXES[view]
    read = [(plan, reads) for plan, reads in _ticket_reads(db, run) if reads]
    assert len(read) == 4, read  # each of the four reads a range of tickets
    for plan, reads in read:
        assert all(name in wanted for name in reads), plan
