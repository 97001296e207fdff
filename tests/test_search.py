"""Find anything: every ticket, open or closed, of any age, by words of its reference, title, requester,
description and entries (services/search.py over migration 0012's index), by reference (``find_ref``,
``g``, the command palette), in the queue's "All tickets" view (``7``) and ``itsm ticket search``."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from access_helpers import run_as
from pilot_helpers import settle, shows, type_text, wait_shown, wait_until
from plan_helpers import captured_statements, sqlite_plans
from sqlalchemy import text
from textual.widgets import Input
from ticket_helpers import T0, move, new_ticket, take

from itsm_tui.app import ItsmApp
from itsm_tui.screens.goto import GotoForm
from itsm_tui.screens.queue import QueueScreen
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import queue, search, tickets
from itsm_tui.services import users as user_service
from itsm_tui.services.users import Actor

NOW = T0 + timedelta(days=61)  # the searches run two months after the old ticket was worked
OLD = T0  # when the old ticket was opened, noted, resolved and closed
NOTE = "Swapped the frobnicator in the docking station; the caller confirmed it works"


def old_closed_ticket(db, config, staff) -> str:
    """A ticket of two months ago, closed, whose only mention of 'frobnicator' is an internal note."""
    agent = staff["agent1"]
    ref = new_ticket(db, config, agent, now=OLD, title="Laptop does not charge", requester="Ann Example")
    take(db, config, agent, ref, now=OLD + timedelta(minutes=5))
    with db.session() as s:
        tickets.add_entry(s, config, agent, ref, body=NOTE, public=False, now=OLD + timedelta(minutes=10))
    move(db, config, agent, ref, "in_progress", OLD + timedelta(minutes=11))
    move(db, config, agent, ref, "resolved", OLD + timedelta(minutes=20), code="fixed", note="Part swapped")
    move(db, config, agent, ref, "closed", OLD + timedelta(days=5))
    return ref


def add_staff(db) -> dict[str, Actor]:
    with db.session() as s:
        user_service.add_user(s, actor_login="admin1", login="admin1", roles=["admin"], groups=[])
        user_service.add_user(s, actor_login="admin1", login="agent1", roles=["agent"], groups=["SD-L1"])
        user_service.add_user(s, actor_login="admin1", login="lead", roles=["shift_lead"], groups=["SD-L1"])
    with db.read_session() as s:
        return {login: user_service.resolve_actor(s, login) for login in ("agent1", "lead")}


@pytest.fixture(scope="module")
def desk(module_db, config):
    """Four tickets, read by the tests of this module (none writes): the old closed one (INC0000001), two
    open incidents and a request (REQ0000001); and the staff."""
    db = module_db
    staff = add_staff(db)
    agent = staff["agent1"]
    old = old_closed_ticket(db, config, staff)
    hr = new_ticket(db, config, agent, now=NOW, title="New starter in HR needs a laptop", requester="Bo Li")
    three = new_ticket(
        db,
        config,
        agent,
        now=NOW,
        title="Three monitors flicker",
        requester="Cy Dee",
        description="Dock QX-77",
    )
    request = new_ticket(
        db, config, agent, now=NOW, kind="request", title="Access to the share", requester="Dee Frobisher"
    )
    assert (old, hr, three, request) == ("INC0000001", "INC0000002", "INC0000003", "REQ0000001")
    return db, staff


def refs(hits) -> list[str]:
    return [h.ref for h in hits]


# --------------------------------------------------------------------------- the service, both databases


def test_a_closed_ticket_of_two_months_ago_is_found_by_a_word_of_its_note(desk):
    db, _ = desk
    with db.read_session() as s:
        found = search.search(s, "frobnicator")
        assert refs(found) == ["INC0000001"]
        assert found[0].status == "closed" and not found[0].is_open
        assert refs(search.search(s, "FROBNIC docking")) == ["INC0000001"]  # any case, part of a word
        assert refs(search.search(s, "frobnicator", open_only=True)) == []  # closed: not among the open
        assert refs(search.search(s, "frobnicator nowhere")) == []  # every word must be found
        # 'Frobisher' is a requester's name: 'frob' is in both, newest first.
        assert refs(search.search(s, "frob")) == ["REQ0000001", "INC0000001"]


def test_a_word_of_two_letters_is_found_as_a_whole_word(desk):
    db, _ = desk
    with db.read_session() as s:
        assert refs(search.search(s, "hr")) == ["INC0000002"]  # not 'three' (INC0000003), which holds 'hr'
        assert refs(search.search(s, "li laptop")) == ["INC0000002"]  # short and long words together
        assert refs(search.search(s, "-")) == []  # no letter or digit: nothing to find


def test_the_ticket_is_found_by_its_reference_and_by_words_of_its_description(desk):
    db, _ = desk
    with db.read_session() as s:
        assert refs(search.search(s, "qx-77")) == ["INC0000003"]
        assert refs(search.search(s, "INC0000003")) == ["INC0000003"]
        assert refs(search.search(s, "monitors dock")) == ["INC0000003"]
        assert search.find_ref(s, "3") == "INC0000003"
        assert search.find_ref(s, "inc3") == "INC0000003"
        assert search.find_ref(s, "INC0000003") == "INC0000003"
        assert search.find_ref(s, " req 1 ") == "REQ0000001"
        # A bare number that is an incident's and a request's: both offered, the incident first.
        assert [h.ref for h in search.find_refs(s, "1")] == ["INC0000001", "REQ0000001"]
        assert search.find_ref(s, "INC0000099") is None
        assert search.find_ref(s, "printer") is None


def test_pages_go_on_before_the_last_id(desk):
    db, _ = desk
    with db.read_session() as s:
        first = search.search(s, "dee", limit=1)  # Cy Dee's and Dee Frobisher's tickets
        assert refs(first) == ["REQ0000001"]
        second = search.search(s, "dee", limit=1, before_id=first[-1].id)
        assert refs(second) == ["INC0000003"]
        assert search.search(s, "dee", limit=1, before_id=second[-1].id) == []


def test_the_all_tickets_view_finds_closed_tickets_with_the_queues_filter(desk):
    db, staff = desk
    actor = staff["lead"]
    with db.read_session() as s:
        every = queue.query_for(actor, "all_tickets", queue.Filter(), None, None, NOW)
        assert (every.sort, every.descending) == ("ref", True)  # newest first
        assert queue.count(s, every) == 4
        flt = queue.parse_filter("frobnicator status:closed", actor)
        found = queue.query_for(actor, "all_tickets", flt, None, None, NOW)
        assert [r.ref for r in queue.fetch_page(s, found)] == ["INC0000001"]
        assert queue.count(s, found) == 1
        for words, matches in (("frob", 2), ("frob li", 0), ("laptop li", 1), ("hr li", 1)):
            only_words = queue.query_for(
                actor, "all_tickets", queue.parse_filter(words, actor), None, None, NOW
            )
            assert queue.count(s, only_words) == matches, words
        # The open views still match the reference, title and requester only, of open tickets.
        open_view = queue.query_for(actor, "all_open", queue.parse_filter("frob", actor), None, None, NOW)
        assert [r.ref for r in queue.fetch_page(s, open_view)] == ["REQ0000001"]
    assert not queue.sort_offered("all_tickets", "sla") and queue.sort_offered("all_tickets", "ref")
    assert queue.sort_offered("all_open", "sla")


def test_ref_candidates_read_no_database():
    assert search.ref_candidates("42") == ["INC0000042", "REQ0000042"]
    assert search.ref_candidates("inc42") == ["INC0000042"]
    assert search.ref_candidates("REQ-0000042") == ["REQ0000042"]
    assert search.ref_candidates("CHG0000001") == []  # a change is no ticket
    assert search.ref_candidates("0") == []
    assert search.ref_candidates("42 printers") == []
    assert search.ref_candidates("12345678") == []  # more digits than a reference has


def test_search_words_drop_repeats_and_empty_short_words():
    assert search.search_words("Printer printer - ab # ...") == ("Printer", "ab", "...")
    assert len(search.search_words(" ".join(f"w{i:02d}" for i in range(20)))) == search.WORDS_MAX


# --------------------------------------------------------------------------- the index (SQLite)


def test_the_sqlite_index_stays_whole_through_edits_entries_and_deletes(sqlite_url, config):
    """FTS5 external-content tables must be given back exactly what they indexed: after creating, noting,
    editing and deleting, their own integrity check against the documents passes."""
    from itsm_tui.db import Database

    db = Database.connect(sqlite_url)
    db.sync_catalog(config)
    agent = add_staff(db)["agent1"]
    ref = new_ticket(db, config, agent, title="Scanner offline")
    with db.session() as s:
        tickets.add_entry(s, config, agent, ref, body="Rebooted the scanner", public=False, now=T0)
        tickets.add_entry(s, config, agent, ref, body="Replaced its cable", public=True, now=T0)
        tickets.update_fields(
            s, config, agent, ref, title="Scanner on floor 2 offline", description="Model X"
        )
    other = new_ticket(db, config, agent, title="Doomed")
    with db.engine.begin() as conn:
        for table in ("ticket_search_all", "ticket_search_words"):
            conn.exec_driver_sql(f"INSERT INTO {table} ({table}) VALUES ('integrity-check')")
    with db.read_session() as s:
        assert refs(search.search(s, "cable floor 2 model")) == [ref]
        assert refs(search.search(s, "offline")) == [ref]
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM ticket_entries WHERE body = 'Replaced its cable'"))
        conn.execute(text("DELETE FROM tickets WHERE ref = :ref"), {"ref": other})
        for table in ("ticket_search_all", "ticket_search_words"):
            conn.exec_driver_sql(f"INSERT INTO {table} ({table}) VALUES ('integrity-check')")
    with db.read_session() as s:
        assert refs(search.search(s, "cable")) == []
        assert refs(search.search(s, "rebooted")) == [ref]
        assert refs(search.search(s, "doomed")) == []
    db.dispose()


def _plans(db, run) -> list[str]:
    """The query plans (SQLite) of the statements on tickets that ``run(session)`` executes."""
    return sqlite_plans(db, run, "FROM tickets")


def test_sqlite_searches_go_by_the_index_and_the_primary_key(demo_copy):
    db, actor = demo_copy(1500, 3)  # the template other modules use too (analysed as the demo is built)

    def run(session):
        assert search.search(session, "vendor")
        search.search(session, "on vpn", open_only=True)
        search.search(session, "on", before_id=1000)
        flt = queue.parse_filter("vendor on", actor)
        history = queue.query_for(actor, "all_tickets", flt, None, None, NOW)
        first = queue.fetch_page(session, history)
        queue.fetch_page(session, history, after=first[-1].key)
        assert queue.count(session, history) == len(search.search(session, "vendor on", limit=500))

    plans = _plans(db, run)
    assert len(plans) == 6  # the count of words alone reads the index only: no tickets
    for plan in plans:
        assert "VIRTUAL TABLE" in plan, plan
        assert "SCAN tickets" not in plan, plan  # never a walk over every ticket
    assert "SCAN ticket_search_all" in plans[0] and "ticket_search_words" not in plans[0]
    assert "SCAN ticket_search_words" in plans[2] and "ticket_search_all" not in plans[2]
    assert "SCAN ticket_search_all" in plans[1] and "SCAN ticket_search_words" in plans[1]


def test_sqlite_reads_the_history_newest_first_by_its_primary_key(demo_copy):
    """Without words, the pages of All tickets walk the primary key backwards from where they start and stop
    at the page's end (no sort of the history under the page's limit); a position is counted on it too."""
    db, actor = demo_copy(1500, 3)
    history = queue.query_for(actor, "all_tickets", queue.Filter(), None, None, NOW)
    with db.read_session() as session:
        first = queue.fetch_page(session, history, limit=10)

    def run(session):
        queue.fetch_page(session, history, limit=10)
        queue.fetch_page(session, history, after=first[-1].key, limit=10)
        queue.fetch_page(session, history, before=first[-1].key, limit=5)
        queue.locate(session, history, first[-1].id)

    plans = _plans(db, run)
    assert len(plans) == 5  # the locate: the ticket's key, then the count before it
    for plan in plans:
        page = plan.split(" / SCAN anon_1")[0]  # the choice of the page's ids
        reads = [part for part in page.split(" / ") if " tickets" in part]
        assert reads and all(r == "SCAN tickets" or "INTEGER PRIMARY KEY" in r for r in reads), plan
        assert "TEMP B-TREE" not in page, plan


# --------------------------------------------------------------------------- PostgreSQL


def _pg_plans(db, session, run) -> list[str]:
    """The EXPLAIN (PostgreSQL) of each statement on tickets that ``run()`` executes in ``session``."""
    with captured_statements(db, "FROM tickets") as captured:
        run()
    return [
        "\n".join(r[0] for r in session.connection().exec_driver_sql("EXPLAIN " + sql, params))
        for sql, params in captured
    ]


def test_postgresql_searches_and_the_history_can_go_by_their_indexes(desk):
    db, staff = desk
    if db.backend != "postgresql":
        pytest.skip("PostgreSQL's plans (SQLite's: test_sqlite_searches_go_by_the_index_and_the_primary_key)")
    with db.read_session() as s:
        s.execute(text("SET LOCAL enable_seqscan = off"))  # a handful of rows: else it reads the table
        for words, indexes in (
            ("frobnicator", ("ticket_search_trgm", "ticket_search_entry_trgm")),
            ("hr", ("ticket_search_tsv", "ticket_search_entry_tsv")),
        ):
            (plan,) = _pg_plans(db, s, lambda words=words: search.search(s, words))
            for index in indexes:
                assert f"Bitmap Index Scan on {index}" in plan, plan
        history = queue.query_for(staff["lead"], "all_tickets", queue.Filter(), None, None, NOW)
        first = queue.fetch_page(s, history, limit=2)

        def pages() -> None:
            queue.fetch_page(s, history, limit=2)
            queue.fetch_page(s, history, after=first[-1].key, limit=2)
            queue.fetch_page(s, history, before=first[-1].key, limit=1)

        for plan in _pg_plans(db, s, pages):  # newest first: along the primary key from the page's start
            assert re.search(r"Index (Only )?Scan (Backward )?using pk_tickets on tickets", plan), plan
            assert "Sort" not in plan.split("Limit")[1], plan  # no sort under the page's limit


# --------------------------------------------------------------------------- the command line


def test_itsm_ticket_search_prints_the_tickets_found_and_refuses_nothing_to_find(desk, monkeypatch, capsys):
    url = str(desk[0].url)
    code, out, err = run_as(monkeypatch, capsys, "agent1", "ticket", "search", "frobnicator", "--db", url)
    assert code == 0, err
    assert "INC0000001" in out and "closed" in out and "Laptop does not charge" in out
    code, out, _ = run_as(
        monkeypatch, capsys, "agent1", "ticket", "search", "frobnicator", "--open", "--db", url
    )
    assert code == 0 and "INC0000001" not in out
    code, out, err = run_as(monkeypatch, capsys, "agent1", "ticket", "search", "#", "--db", url)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "itsm: error: ticket search: give a word to find (a short one needs a letter or a digit)"
    ]


# --------------------------------------------------------------------------- the console


async def test_seven_shows_every_ticket_and_g_and_the_palette_open_one_by_its_ref(staff_sqlite, config):
    db, staff = staff_sqlite
    old = old_closed_ticket(db, config, staff)
    new_ticket(db, config, staff["agent1"], title="Open one", requester="Bo Li")
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False, clock=lambda: NOW)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        await pilot.press("7")
        await wait_until(pilot, lambda: screen.up_to_date and screen.view_key == "all_tickets", "All tickets")
        await wait_shown(pilot, "All tickets (2)")
        assert shows(app, old) and shows(app, "closed")
        await pilot.press("slash")
        await type_text(pilot, "frobn")  # part of a word of the old ticket's note
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.up_to_date and screen.table.total == 1, "the filter")
        assert screen.table.current is not None and screen.table.current.ref == old

        await pilot.press("g")  # an unknown reference is refused beside the field, the form stays
        await wait_until(pilot, lambda: isinstance(app.screen, GotoForm), "the go-to form")
        await type_text(pilot, "inc77")
        await pilot.press("enter")
        await wait_shown(pilot, "no ticket 'inc77'")
        assert isinstance(app.screen, GotoForm)
        app.screen.field_of("ref", Input).value = "1"
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None,
            "the ticket",
        )
        assert app.screen.detail.view.ref == old
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "back to the queue")

        await pilot.press("ctrl+p")  # the palette offers the ticket of a typed number
        await settle(pilot)
        await type_text(pilot, "2")
        await wait_shown(pilot, "Open INC0000002 Open one (new)")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None, "opened"
        )
        assert app.screen.detail.view.ref == "INC0000002"

        second = app.screen  # g on the ticket screen too: the other ticket opens over this one
        await pilot.press("g")
        await wait_until(pilot, lambda: isinstance(app.screen, GotoForm), "the go-to form over the ticket")
        await type_text(pilot, "1\n")
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, TicketScreen) and app.screen is not second and app.screen.detail,
            "the old ticket over the other",
        )
        assert app.screen.detail.view.ref == old
