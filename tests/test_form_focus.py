"""Forms open with the focus where the first keystroke belongs: a reason typed straight after opening the
status, cancel or reopen form of a ticket is kept (Pilot, SQLite)."""

from __future__ import annotations

from pilot_helpers import settle, wait_until
from sqlalchemy import select
from textual.widgets import Input, Select

from itsm_tui.app import ItsmApp
from itsm_tui.models import Ticket, TicketEntry
from itsm_tui.screens.forms import TransitionForm
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import tickets

SIZE = (80, 24)


def ticket_in(db, config, staff, status: str) -> tuple[int, str]:
    """A printer ticket agent1 works on, brought to ``status`` (in_progress or resolved)."""
    with db.session() as s:
        ticket = tickets.create_ticket(s, config, staff["lead"], title="Printer jammed", requester="Rita")
        ticket_id, ref = ticket.id, ticket.ref
    with db.session() as s:
        tickets.transition(s, config, staff["agent1"], ref, "in_progress")
        if status == "resolved":
            tickets.resolve(s, config, staff["agent1"], ref, code="fixed", note="cleared the tray")
    return ticket_id, ref


def stored(db, ticket_id: int) -> tuple[str, list[str]]:
    """The ticket's status and its work notes, oldest first, as the database holds them."""
    with db.read_session() as s:
        status = s.execute(select(Ticket.status).where(Ticket.id == ticket_id)).scalar_one()
        notes = s.execute(
            select(TicketEntry.body)
            .where(TicketEntry.ticket_id == ticket_id, TicketEntry.kind == "note")
            .order_by(TicketEntry.id)
        )
        return status, list(notes.scalars())


async def open_form(app, pilot, ticket_id: int, key: str) -> TransitionForm:
    app.open_ticket(ticket_id)
    await wait_until(
        pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None, "the ticket"
    )
    await settle(pilot)
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(app.screen, TransitionForm), "the TransitionForm")
    return app.screen


async def test_the_cancel_form_takes_the_reason_typed_at_once(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, _ = ticket_in(db, config, staff, "in_progress")
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        form = await open_form(app, pilot, ticket_id, "c")
        # "cancelled" is its only choice: shown, not a stop on the way to the reason.
        status_select = form.field_of("to_status", Select)
        assert status_select.value == "cancelled" and not status_select.focusable
        assert form.focused is form.field_of("reason", Input)
        await pilot.press(*"duplicate of INC0000001", "ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, TransitionForm), "the save")
    assert stored(db, ticket_id) == ("cancelled", ["Cancelled: duplicate of INC0000001"])


async def test_the_reopen_form_takes_the_reason_typed_at_once(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, _ = ticket_in(db, config, staff, "resolved")
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        form = await open_form(app, pilot, ticket_id, "o")
        assert form.field_of("to_status", Select).value == "in_progress"
        await pilot.press(*"still jams", "ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, TransitionForm), "the save")
    assert stored(db, ticket_id) == ("in_progress", ["Reopened: still jams"])


async def test_the_status_form_of_a_resolved_ticket_takes_the_reopen_reason_typed_at_once(
    staff_sqlite, config
):
    db, staff = staff_sqlite
    ticket_id, _ = ticket_in(db, config, staff, "resolved")
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        form = await open_form(app, pilot, ticket_id, "s")
        # Two choices (reopen, close): the select stays a stop, but the reason it needs comes first.
        status_select = form.field_of("to_status", Select)
        assert status_select.value == "in_progress" and status_select.focusable
        await pilot.press(*"toner smears", "enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, TransitionForm), "the save")
    assert stored(db, ticket_id) == ("in_progress", ["Reopened: toner smears"])


async def test_the_status_form_starts_on_what_the_offered_status_still_needs(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, _ = ticket_in(db, config, staff, "in_progress")
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        form = await open_form(app, pilot, ticket_id, "s")
        # in_progress -> pending, resolved, cancelled: "pending" is offered first and needs what it waits for.
        assert form.field_of("to_status", Select).value == "pending"
        assert form.focused is form.field_of("pending_reason", Select)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, TransitionForm), "the cancel")
    assert stored(db, ticket_id) == ("in_progress", [])
