"""The shift lead's console used as a person does: keys typed faster than the console reads them (a paste,
keys an SSH connection sends in one packet) go where the key before them sent the focus
(screens/typeahead.py).

``pilot.press`` lets the app go idle after every key, which a terminal never promises; :func:`burst` hands
the app every key at once, as the terminal driver does with what it read in one go."""

from __future__ import annotations

from typing import Any

from pilot_helpers import Toasts, screen_lines, settle, shows, wait_until
from textual import events
from textual.app import App
from textual.widgets import Input
from ticket_helpers import new_ticket

from itsm_tui.app import ItsmApp
from itsm_tui.screens.commandline import CommandLine
from itsm_tui.screens.forms import NewTicketForm, TextForm
from itsm_tui.screens.goto import GotoForm
from itsm_tui.screens.help import HelpScreen
from itsm_tui.screens.queue import QueueScreen
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.screens.views import ViewForm

KEY_NAMES = {"/": "slash", ":": "colon", " ": "space", "\n": "enter", "*": "asterisk", "\x1b": "escape"}


def burst(app: App, text: str) -> None:
    """Every key of ``text`` handed to the app before it handles the first (a newline is Enter)."""
    driver = app._driver
    assert driver is not None
    for char in text:
        key = KEY_NAMES.get(char, char)
        event = events.Key(key, None if key in ("enter", "escape") else char)
        event.set_sender(app)
        driver.send_message(event)


async def burst_into_form(pilot, app: App, text: str, form: type, what: str) -> Any:
    """``burst`` the keys, then wait for the form they open (``what``) and for the keys to have landed."""
    burst(app, text)
    await wait_until(pilot, lambda: isinstance(app.screen, form), what)
    await settle(pilot)
    return app.screen


async def escape_to(pilot, app: App, screen: Any, what: str) -> None:
    """Esc, and wait until ``screen`` is shown again."""
    await pilot.press("escape")
    await wait_until(pilot, lambda: app.screen is screen, what)


async def test_keys_typed_fast_after_a_key_that_opens_a_field_go_into_that_field(
    staff_sqlite, config, monkeypatch
):
    db, staff = staff_sqlite
    monkeypatch.setattr("itsm_tui.screens.queue.REFRESH_SECONDS", 3600.0)
    toner = new_ticket(db, config, staff["lead"], title="Toner low")
    new_ticket(db, config, staff["lead"], title="Printer jam")
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=(80, 24)) as pilot:
        toasts = Toasts(app, monkeypatch)
        await wait_until(
            pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.up_to_date, "queue"
        )
        queue = app.screen
        assert isinstance(queue, QueueScreen)
        field = queue.query_one("#queue-filter", Input)

        # Help lists the table's moves too (README's Up Down PgUp PgDn Home End), with the keys in force.
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        described = [description for _, description in app.screen.rows()]
        assert {"Up", "Down", "Page up", "Page down", "First", "Last"} <= set(described)
        assert described.index("Command line") < described.index("Up") < described.index("Queue")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is queue, "the queue")

        # "/printer" in one packet: all of it is the filter; the "r" in it never opened a reply.
        burst(app, "/printer")
        await wait_until(pilot, lambda: queue.up_to_date and queue.filter_text == "printer", "the filter")
        assert field.value == "printer" and field.has_focus
        assert app.screen is queue and len(app.screen_stack) == 1
        footer = screen_lines(app)[-1]  # what types itself in the filter is not offered as a key there
        assert "Filter" not in footer and "New" not in footer
        window = queue.table.window
        assert window is not None and window.total == 1 and window.row(0).title == "Printer jam"

        # In the filter the keys that open fields are typed in: "/", "g", "n", "S".
        burst(app, " /gnS")
        await settle(pilot)
        assert field.value == "printer /gnS" and app.screen is queue
        field.value = ""
        await pilot.press("escape")  # back to the table
        await wait_until(pilot, lambda: queue.up_to_date and queue.table.has_focus, "the table")

        # Esc (clear the marks) then "/toner" at once: the marks go first, then all of it is the filter.
        await pilot.press("space")
        assert len(queue.table.marks) == 1
        burst(app, "\x1b/toner")
        await wait_until(pilot, lambda: queue.up_to_date and queue.filter_text == "toner", "the filter")
        assert not queue.table.marks and field.has_focus and field.value == "toner"
        field.value = ""
        await pilot.press("escape")
        await wait_until(pilot, lambda: queue.up_to_date and queue.table.has_focus, "the table")

        # ":" then a line holding "/" and "g": the line gets it all.
        burst(app, ":note a/g")
        line = queue.query_one(CommandLine)
        await settle(pilot)
        assert line.is_open and line.input.value == "note a/g"
        footer = screen_lines(app)[-1]  # the line's keys, not the queue's that it types in
        assert "Close" in footer and "Filter" not in footer
        await pilot.press("escape")
        assert not line.is_open

        # "n" then a title: the new-ticket form has all of it.
        form = await burst_into_form(pilot, app, "nPrinter smokes", NewTicketForm, "the new-ticket form")
        assert form.text_of("title") == "Printer smokes"
        await escape_to(pilot, app, queue, "the queue")

        # "S" then a name: the save-view form has all of it.
        form = await burst_into_form(pilot, app, "SNight shift", ViewForm, "the view form")
        assert form.text_of("name") == "Night shift"
        await escape_to(pilot, app, queue, "the queue")

        # "g", a reference and Enter in one packet: that ticket opens; the digits chose no view.
        view_before = queue.view_key
        number = str(int(toner[3:]))
        burst(app, f"g{number}\n")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the ticket")
        ticket = app.screen
        assert isinstance(ticket, TicketScreen)
        await wait_until(pilot, lambda: ticket.detail is not None, "the ticket read")
        assert ticket.detail.view.ref == toner and queue.view_key == view_before

        # "r" then a reply in one packet: the reply form has all of it (its "n", "e", "o" opened nothing).
        form = await burst_into_form(pilot, app, "rOn it: toner ordered", TextForm, "the reply form")
        assert form.text_of("text") == "On it: toner ordered" and len(app.screen_stack) == 3
        await escape_to(pilot, app, ticket, "the ticket")

        # Its : line: "r", "n", "g" and Esc are the line's there (Esc closes it, the ticket stays).
        burst(app, ":note ring")
        ticket_line = ticket.query_one(CommandLine)
        await settle(pilot)
        assert ticket_line.is_open and ticket_line.input.value == "note ring"
        footer = screen_lines(app)[-1]
        assert "Close" in footer and "Reply" not in footer and "Back" not in footer
        burst(app, "\x1b")
        await settle(pilot)
        assert not ticket_line.is_open and app.screen is ticket

        # The conversation of a ticket nobody has written on says so, and which key shows everything.
        await pilot.press("v")
        assert shows(app, "Conversation only: no replies or notes yet (v: all")
        await pilot.press("v")

        # On the ticket screen too: "g" then digits land in the reference field, "r" (reply) never fires.
        form = await burst_into_form(pilot, app, "g9r", GotoForm, "the reference form")
        assert form.text_of("ref") == "9r"
        await escape_to(pilot, app, ticket, "the ticket")

        # Esc then "g" at once: the ticket closes first, and the reference form opens over the queue (the
        # "g", a priority key, never overtakes the Esc to be closed by it).
        form = await burst_into_form(pilot, app, "\x1bg12", GotoForm, "the reference form")
        assert app.screen_stack[-2] is queue and form.text_of("ref") == "12"
        await escape_to(pilot, app, queue, "the queue")
        assert toasts.shown == []  # nothing refused, nothing done by a stray key
