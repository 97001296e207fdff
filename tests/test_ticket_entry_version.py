"""A note or reply typed on the ticket screen is saved against the version the agent was looking at: one
written while someone else changed the ticket is refused as stale, keeps its text, and saves once the agent
has seen the change (Pilot, SQLite)."""

from __future__ import annotations

import pytest
from pilot_helpers import type_text, wait_until
from sqlalchemy import select

from itsm_tui.app import ItsmApp
from itsm_tui.models import TicketEntry
from itsm_tui.screens.forms import TextForm
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import tickets

SIZE = (100, 30)


def entries_by(db, ticket_id: int, author_id: int) -> list[tuple[str, str]]:
    with db.read_session() as s:
        rows = s.execute(
            select(TicketEntry.kind, TicketEntry.body)
            .where(TicketEntry.ticket_id == ticket_id, TicketEntry.author_id == author_id)
            .order_by(TicketEntry.id)
        ).all()
    return [tuple(r) for r in rows]


def printer_ticket(db, config, staff) -> tuple[int, str]:
    """A ticket of agent1's, in progress."""
    with db.session() as s:
        ticket = tickets.create_ticket(s, config, staff["lead"], title="Printer jammed", requester="Rita")
        ref = ticket.ref
        ticket_id = ticket.id
    with db.session() as s:
        tickets.assign(s, config, staff["lead"], ref, assignee="agent1")
    with db.session() as s:
        tickets.transition(s, config, staff["agent1"], ref, "in_progress")
    return ticket_id, ref


async def open_ticket(app, pilot, ticket_id: int) -> TicketScreen:
    app.open_ticket(ticket_id)
    await wait_until(
        pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None, "the ticket"
    )
    return app.screen


def change_meanwhile(db, config, staff, ref: str, how: str) -> None:
    """The shift lead works on the ticket from another console."""
    with db.session() as s:
        if how == "impact":
            tickets.update_fields(s, config, staff["lead"], ref, impact="high", urgency="high")
        else:  # only a note of theirs: still a change the agent has not seen
            tickets.add_entry(s, config, staff["lead"], ref, body="Vendor already called", public=False)


@pytest.mark.parametrize(
    ("key", "kind", "how"),
    [("n", "note", "impact"), ("n", "note", "note"), ("r", "reply", "note"), ("r", "reply", "impact")],
)
async def test_an_entry_written_while_the_ticket_changed_is_refused_then_saved_once_seen(
    staff_sqlite, config, key, kind, how
):
    db, staff = staff_sqlite
    ticket_id, ref = printer_ticket(db, config, staff)
    agent = staff["agent1"]
    app = ItsmApp(db, config, agent, run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        shown_version = screen.detail.view.version
        await pilot.press(key)
        await wait_until(pilot, lambda: isinstance(app.screen, TextForm), "the TextForm")
        form = app.screen
        await type_text(pilot, "Spooler restarted")

        change_meanwhile(db, config, staff, ref, how)

        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.error_shown is not None, "the refusal")
        assert app.screen is form  # still open, with what was typed
        assert form.text_of("text") == "Spooler restarted"
        assert form.error_shown.field is None  # on the form's top line, in the words of every stale save
        message = form.error_shown.message
        assert f"{ref} was changed by Lead (lead)" in message
        assert f"after you opened it (version {shown_version}, now {shown_version + 1})" in message
        assert entries_by(db, ticket_id, agent.id) == []  # nothing of the agent's was written

        # The screen underneath reloads with the lead's change; saving again applies on top of it.
        await wait_until(
            pilot, lambda: screen.detail.view.version == shown_version + 1, "the reload after the refusal"
        )
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen, "the ticket again")
    assert entries_by(db, ticket_id, agent.id) == [(kind, "Spooler restarted")]


async def test_an_entry_on_an_unchanged_ticket_saves_at_once(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, _ = printer_ticket(db, config, staff)
    agent = staff["agent1"]
    app = ItsmApp(db, config, agent, run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, TextForm), "the TextForm")
        await type_text(pilot, "Toner low")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen, "the ticket again")
    assert entries_by(db, ticket_id, agent.id) == [("note", "Toner low")]
