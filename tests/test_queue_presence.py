"""Presence in the queue: a row says who else has its ticket open, and who types a reply or note in it,
within a second, from one statement per poll for the rows on screen."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from time import monotonic

from pilot_helpers import screen_lines, settle, type_text, wait_until
from sqlalchemy import event
from textual.widgets import Static

from itsm_tui.app import ItsmApp
from itsm_tui.screens.forms import TextForm
from itsm_tui.screens.queue import QueueScreen, presence_tag
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import presence, tickets
from itsm_tui.services.presence import Viewer

T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- the service


def test_viewers_of_many_tickets_in_one_statement(db, staff) -> None:
    now = T0 + timedelta(minutes=5)
    with db.session() as s:
        presence.heartbeat(s, staff["agent1"].id, "mine", "ticket", 1, now)
        presence.heartbeat(s, staff["agent2"].id, "a2", "ticket", 1, now - timedelta(seconds=5))
        presence.heartbeat(s, staff["lead"].id, "lead", "ticket", 1, now)
        presence.heartbeat(s, staff["lead"].id, "lead", "ticket.writing", 1, now)  # typing in ticket 1
        presence.heartbeat(s, staff["net1"].id, "n1", "ticket", 2, now - timedelta(seconds=31))  # stale
        presence.heartbeat(s, staff["app1"].id, "p1", "ticket", 3, now)
        presence.heartbeat(s, staff["app1"].id, "p1", "ticket.writing", 4, now)  # writes without viewing
        presence.heartbeat(s, staff["eng1"].id, "e1", "change", 3, now)  # a change of the same id
        presence.heartbeat(s, staff["eng1"].id, "e1", "ticket", 9, now)  # not asked about
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.read_session() as s:
            seen = presence.viewers(s, "ticket", [1, 2, 3, 4, 5], "mine", now)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert [statement for statement in statements if "presence" in statement.lower()] == statements[-1:]
    assert seen == {
        1: (Viewer("Agent2"), Viewer("Lead", writing=True)),
        3: (Viewer("App1"),),
        4: (Viewer("App1", writing=True),),
    }
    with db.read_session() as s:
        assert presence.viewers(s, "ticket", [], "mine", now) == {}
        assert presence.viewers(s, "ticket", [1], "a2", now)[1] == (Viewer("Agent1"), Viewer("Lead", True))


def test_the_viewers_are_read_through_the_presence_index(db, staff) -> None:
    with db.session() as s:
        for entity_id in range(1, 200):
            presence.heartbeat(s, staff["agent2"].id, f"c{entity_id % 7}", "ticket", entity_id, T0)
    captured: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if "FROM presence" in statement and not statement.startswith("EXPLAIN"):
            captured.append((statement, parameters))

    with db.read_session() as s:
        event.listen(db.engine, "before_cursor_execute", grab)
        try:
            presence.viewers(s, "ticket", list(range(40, 80)), "mine", T0)
        finally:
            event.remove(db.engine, "before_cursor_execute", grab)
        ((sql, params),) = captured
        if db.backend == "sqlite":
            plan = [str(r[-1]) for r in s.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)]
            assert any("presence USING INDEX ix_presence_entity" in line for line in plan), plan
            assert not any(re.match(r"SCAN presence\b", line) for line in plan), plan
        else:
            # A table this small is read whole when that is cheaper; the index is what serves a big one.
            s.connection().exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = [str(r[0]) for r in s.connection().exec_driver_sql("EXPLAIN " + sql, params)]
            assert any("ix_presence_entity" in line for line in plan), plan


def test_the_rows_tag_names_the_first_at_80_columns_and_everyone_when_wide() -> None:
    ana, bo = Viewer("Ana Lopez"), Viewer("Bo Chen", writing=True)
    assert presence_tag((ana,), wide=False) == " Ana "
    assert presence_tag((ana, bo), wide=False) == " ✎Bo+1 "  # the writer first
    assert presence_tag((ana, bo), wide=True) == " ✎Bo Chen, Ana Lopez "
    assert (
        presence_tag((Viewer("[b]x\x1b[31m"),), wide=True) == " [b]x^[[31m "
    )  # literally: markup as text, ESC made visible


# --------------------------------------------------------------------------- two consoles


def row_line(app: ItsmApp, ref: str) -> str:
    return next((line for line in screen_lines(app) if ref in line), "")


async def test_a_second_console_opening_a_ticket_shows_in_the_queue_within_a_second(staff_sqlite, config):
    """Two consoles in one process: the lead's queue, and an agent who opens the ticket and then types a
    note in it. The lead's row shows the agent at once (the poll is each second), then as writing."""
    db, staff = staff_sqlite
    with db.session() as s:
        made = [
            tickets.create_ticket(s, config, staff["lead"], title=f"Printer {n} jammed", requester="Rita")
            for n in range(3)
        ]
        ids = {t.ref: t.id for t in made}
    ref = made[1].ref
    lead = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    agent = ItsmApp(db, config, staff["agent2"], run_scheduler=False)
    async with lead.run_test(size=(80, 24)) as lead_pilot, agent.run_test(size=(80, 24)) as agent_pilot:
        queue_screen = lead.screen
        assert isinstance(queue_screen, QueueScreen)
        await wait_until(lead_pilot, lambda: ref in row_line(lead, ref), "the lead's queue")
        assert "Agent2" not in row_line(lead, ref)

        started = monotonic()
        agent.open_ticket(ids[ref])
        await wait_until(agent_pilot, lambda: isinstance(agent.screen, TicketScreen), "the agent's ticket")
        await wait_until(lead_pilot, lambda: row_line(lead, ref).rstrip().endswith("Agent2"), "the agent")
        took = monotonic() - started
        assert took <= 1.5, f"{took:.2f} s"  # a poll each second; some slack for a machine under load
        assert all("Agent2" not in row_line(lead, other) for other in ids if other != ref)

        await agent_pilot.press("n")  # a work note
        await wait_until(agent_pilot, lambda: isinstance(agent.screen, TextForm), "the note form")
        await type_text(agent_pilot, "Checking the spooler")
        await wait_until(lead_pilot, lambda: "✎Agent2" in row_line(lead, ref), "the agent writing")
        # The ticket screen says so too (opened with the lead's keys: each console in its own context).
        queue_screen.table.cursor = queue_screen.table.window.index_of(ids[ref])
        await lead_pilot.press("enter")
        await wait_until(lead_pilot, lambda: isinstance(lead.screen, TicketScreen), "the lead's ticket")
        line = lead.screen.query_one("#ticket-presence", Static)
        await wait_until(lead_pilot, lambda: "Agent2 (writing)" in str(line.render()), "said on the ticket")
        assert str(line.render()) == "Also open by: Agent2 (writing)"
        await lead_pilot.press("escape")
        await wait_until(lead_pilot, lambda: lead.screen is queue_screen, "the lead's queue again")

        await agent_pilot.press("escape")  # the form closes: no longer writing, still viewing
        await wait_until(
            lead_pilot,
            lambda: "✎" not in row_line(lead, ref) and "Agent2" in row_line(lead, ref),
            "the agent viewing only",
        )
        await agent_pilot.press("escape")  # back to the agent's queue: the ticket is left
        await wait_until(lead_pilot, lambda: "Agent2" not in row_line(lead, ref), "the agent gone")
        await settle(agent_pilot)
