"""Acting on many tickets: marks in the queue (Space, ``*``, Esc) and one action over the marked set, each
ticket in its own transaction, refusals in the services' words.

Five tickets are built by hand with response targets 10, 20, ..., 50 minutes away, so the queue's SLA
order is the order they were made in (T1 first). The bulk service is tried alone first, on both databases:
a refusal among the tickets, a failure that stops the run; then the one statement reading the marked
tickets, and ``itsm ticket update`` with several references. Then one console at 80x24 marks rows, marks
all, clears, assigns three marked tickets of which one was closed meanwhile, and notes on two. Last,
snapshots of the demo queue with three marked rows.
"""

from __future__ import annotations

import pytest
from pilot_helpers import Toasts, screen_lines, settle, shows, wait_until
from sqlalchemy import event, func, select
from test_screen_snapshots import SIZES, _queue_ready
from test_take_next import minutes, new_ticket, set_clocks

from itsm_tui.app import ItsmApp
from itsm_tui.cli import main
from itsm_tui.models import AuditEvent, Ticket, TicketEntry
from itsm_tui.screens.bulk import ConfirmForm
from itsm_tui.screens.forms import AssignForm, TextForm
from itsm_tui.screens.queue import QueueScreen
from itsm_tui.services import tickets
from itsm_tui.services.errors import ValidationError
from itsm_tui.services.tickets import bulk


def make_five(db, config, staff) -> list[str]:
    """T1..T5 in SD-L1, unassigned, in that SLA order."""
    refs = [new_ticket(db, config, staff["lead"], f"T{n}") for n in range(1, 6)]
    for n, ref in enumerate(refs, start=1):
        set_clocks(db, ref, response_due=minutes(10 * n), resolution_due=minutes(600))
    return refs


@pytest.fixture
def five(db, staff, config):
    """The five tickets on each database: the database, the staff and the refs."""
    return db, staff, make_five(db, config, staff)


@pytest.fixture
def five_sqlite(staff_sqlite, config):
    """The five tickets on SQLite (the console's and the command line's tests)."""
    db, staff = staff_sqlite
    return db, staff, make_five(db, config, staff)


def assignee_of(db, ref: str) -> str | None:
    with db.read_session() as s:
        ticket = tickets.get_ticket(s, ref)
        return ticket.assignee.login if ticket.assignee else None


def audit_count(db, ref: str, field: str) -> int:
    with db.read_session() as s:
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.ref == ref))
        return s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.entity_type == "ticket",
                AuditEvent.entity_id == ticket_id,
                AuditEvent.field == field,
            )
        )


def close_behind_the_console(db, ref: str) -> None:
    with db.session() as s:
        ticket = tickets.get_ticket(s, ref)
        ticket.status, ticket.is_open = "closed", False


# --------------------------------------------------------------------------- the service


def test_each_ticket_is_its_own_transaction_and_a_refusal_leaves_the_others(five, config):
    db, staff, refs = five
    close_behind_the_console(db, refs[1])
    lead = staff["lead"]

    def assign(session, ref):
        tickets.assign(session, config, lead, ref, assignee="agent2")

    result = bulk.apply_each(db.session, refs[:3], assign)
    assert result.done == (refs[0], refs[2])
    assert [r.ref for r in result.refused] == [refs[1]]
    assert result.summary == f"2 done, 1 refused: {refs[1]} (the ticket is closed)"
    assert [assignee_of(db, ref) for ref in refs[:3]] == ["agent2", None, "agent2"]


def test_a_failure_stops_the_run_and_keeps_what_was_done(five, config):
    db, staff, refs = five

    def take_then_fail(session, ref):
        if ref == refs[1]:
            raise RuntimeError("the disk went away")
        tickets.take(session, config, staff["agent1"], ref)

    with pytest.raises(bulk.BulkStopped) as stopped:
        bulk.apply_each(db.session, refs[:4], take_then_fail)
    assert stopped.value.result.done == (refs[0],)
    assert stopped.value.ref == refs[1]
    assert stopped.value.not_tried == (refs[2], refs[3])
    assert isinstance(stopped.value.__cause__, RuntimeError)
    assert [assignee_of(db, ref) for ref in refs[:3]] == ["agent1", None, None]


def test_the_marked_tickets_are_read_by_primary_key_in_one_statement(five_sqlite):
    db, _, refs = five_sqlite
    with db.read_session() as s:
        ids = s.scalars(select(Ticket.id).where(Ticket.ref.in_(refs[:2]))).all()
        statements: list[str] = []

        def seen(conn, cursor, statement, *args) -> None:
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", seen)
        try:
            marked = bulk.marked_tickets(s, ids)
        finally:
            event.remove(db.engine, "before_cursor_execute", seen)
        assert [m.ref for m in marked] == refs[:2]
        assert [m.facts.status for m in marked] == ["new", "new"]
        assert len(statements) == 1
        plan = " ".join(
            str(row[-1])
            for row in s.connection().exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statements[0], tuple(sorted(ids))
            )
        )
        with pytest.raises(ValidationError, match="more than 500 at once"):
            bulk.marked_tickets(s, list(range(501)))
    # Each table by its primary key (the tickets by the ids given, their groups by theirs), nothing scanned.
    assert plan.count("USING INTEGER PRIMARY KEY") == 2 and "SCAN" not in plan, plan


def test_the_command_line_updates_several_tickets_each_on_its_own(five_sqlite, capsys, monkeypatch):
    db, _, refs = five_sqlite
    sqlite_url = db.url  # the desk the cast is on
    close_behind_the_console(db, refs[1])
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "lead")
    code = main(["ticket", "update", *refs[:3], "--assign", "agent2", "--db", sqlite_url])
    assert (code, capsys.readouterr().out) == (1, f"2 done, 1 refused: {refs[1]} (the ticket is closed)\n")
    code = main(["ticket", "update", refs[3], refs[4], refs[4], "--note", "Rebalanced", "--db", sqlite_url])
    assert (code, capsys.readouterr().out) == (0, "2 done\n")
    assert [assignee_of(db, ref) for ref in refs] == ["agent2", None, "agent2", None, None]
    assert [audit_count(db, ref, "assignee") for ref in refs] == [1, 0, 1, 0, 0]
    code = main(
        ["ticket", "update", refs[3], refs[4], "--note", "x", "--expected-version", "3", "--db", sqlite_url]
    )
    assert (code, capsys.readouterr().err) == (
        2,
        "itsm: error: --expected-version goes with one ticket, not several\n",
    )


# --------------------------------------------------------------------------- the console


def bar(screen: QueueScreen) -> str:
    return str(screen.query_one("#queue-bar").render())


async def test_marks_then_an_assign_over_them_with_a_closed_one_among_them(five_sqlite, config, monkeypatch):
    db, staff, refs = five_sqlite
    monkeypatch.setattr("itsm_tui.screens.queue.REFRESH_SECONDS", 3600.0)
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    toasts = Toasts(app, monkeypatch)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        await wait_until(pilot, lambda: screen.up_to_date and screen.table.total == 5, "the five tickets")

        # Space marks the row under the cursor and goes down; the bar counts the marks, the rows show them.
        await pilot.press("space", "space", "space")
        await settle(pilot)
        assert screen.marked_refs() == refs[:3]
        assert "3 marked" in bar(screen)
        assert screen.table.cursor == 3
        marked_lines = [line.split()[0] for line in screen_lines(app) if line.startswith("*")]
        assert marked_lines == [f"*{ref}" for ref in refs[:3]]
        await pilot.press("up", "space")  # Space on a marked row unmarks it
        assert screen.marked_refs() == refs[:2]

        # Esc clears them; * marks every ticket of the view, saying how many; above the cap it refuses.
        await pilot.press("escape")
        assert screen.marked_refs() == [] and "marked" not in bar(screen)
        await pilot.press("asterisk")
        await wait_until(pilot, lambda: len(screen.marked_refs()) == 5, "all five marked")
        assert screen.marked_refs() == refs
        assert "5 marked: every ticket of this view." in toasts.shown
        await pilot.press("escape")
        monkeypatch.setattr("itsm_tui.screens.queue.MARK_LIMIT", 4)
        await pilot.press("asterisk")
        await settle(pilot)
        assert screen.marked_refs() == []
        assert "This view holds 5 tickets; * marks at most 4. Narrow the filter first." in toasts.shown

        # Esc in the filter leaves the filter first, the marks stay; a second Esc clears them.
        await pilot.press("home", "space", "space", "space", "slash", "escape")
        assert screen.table.has_focus and len(screen.marked_refs()) == 3

        # T2 is closed by someone else; the mark stays on it. Assign the three to agent2.
        close_behind_the_console(db, refs[1])
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, AssignForm), "the assign form")
        assert app.screen.form_title == "Assign 3 tickets"
        await pilot.press(*"agent2", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmForm), "the confirmation")
        assert app.screen.question == "Assign 3 tickets to agent2?"
        assert shows(app, f"{refs[0]}, {refs[1]}, {refs[2]}")
        assert shows(app, "1 of them will be refused (the ticket is closed).")
        await pilot.press("y")
        summary = f"2 done, 1 refused: {refs[1]} (the ticket is closed)"
        await wait_until(pilot, lambda: summary in toasts.shown, "the summary line")

        # The refused one stays marked, the ones done are not.
        await wait_until(pilot, lambda: screen.up_to_date, "the queue again")
        assert screen.marked_refs() == [refs[1]]
        assert "1 marked" in bar(screen)

        # A work note on the cursor's ticket when nothing is marked opens that ticket with the note form;
        # with marks, one note goes to each marked ticket.
        await pilot.press("escape", "home", "space", "space")
        # T2 is closed and gone; T1 and T3, assigned, follow their resolution targets (600 min) now: T4
        # and T5 (responses due in 40 and 50 min) lead.
        assert screen.marked_refs() == [refs[3], refs[4]]
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, TextForm), "the note form")
        await pilot.press(*"Rebalanced", "ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmForm), "the note's confirmation")
        assert app.screen.question == "Add this work note to 2 tickets?"
        await pilot.press("enter")
        await wait_until(pilot, lambda: toasts.shown[-1:] == ["2 done"], "the notes' summary")
        await wait_until(pilot, lambda: screen.up_to_date and not screen.marked_refs(), "the queue, no marks")

        # Nothing marked: each key opens the ticket under the cursor (the third row, T1, where the two
        # Spaces left it) with its form (the ticket screen's own, tried in its tests).
        opened: list[tuple[int, str | None]] = []
        monkeypatch.setattr(
            app, "open_ticket", lambda ticket_id, action=None: opened.append((ticket_id, action))
        )
        await pilot.press("r", "c", "l")
        t1 = screen.table.current.id
        assert screen.table.current.ref == refs[0]
        assert opened == [(t1, "reply"), (t1, "note"), (t1, "link")]

    assert [assignee_of(db, ref) for ref in refs] == ["agent2", None, "agent2", None, None]
    assert [audit_count(db, ref, "assignee") for ref in refs] == [1, 0, 1, 0, 0]
    with db.read_session() as s:
        notes = s.execute(
            select(Ticket.ref, TicketEntry.body)
            .join(Ticket, Ticket.id == TicketEntry.ticket_id)
            .where(TicketEntry.kind == "note")
            .order_by(Ticket.ref)
        ).all()
    assert [tuple(n) for n in notes] == [(refs[3], "Rebalanced"), (refs[4], "Rebalanced")]


# --------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_queue_with_marks(snap_compare, demo_copy, demo_anchor, config, size):
    db, actor = demo_copy(1500, 3)
    app = ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: demo_anchor)

    async def run_before(pilot) -> None:
        await _queue_ready(pilot)
        await pilot.press("space", "space", "down", "space")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
