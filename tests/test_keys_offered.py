"""Keys of your own, the gaps: the queue and the change screen offer (footer, palette, help) only what the
role may take, through the same guards the services enforce; help opens over a form and a change with their
keys; the key hints written in screens name the keys in force, remapped or unbound."""

from __future__ import annotations

from calendar_data import FIXED, build_calendar
from pilot_helpers import Toasts, settle, shows, type_text, wait_until
from test_keymap import footer_keys, keys_file, palette_entries
from textual.widgets import Static, TextArea

from itsm_tui.app import ItsmApp, binding_table
from itsm_tui.keymap import load
from itsm_tui.screens.change import ChangeScreen
from itsm_tui.screens.forms import TextForm
from itsm_tui.screens.help import HelpScreen
from itsm_tui.screens.queue import QueueScreen
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import tickets

SIZE = (100, 30)
TICKET_ACTIONS = ("Take", "Assign", "Escalate", "Status")


async def help_rows(app: ItsmApp, pilot, key: str = "question_mark") -> list[tuple[str, str]]:
    """Open the key help with ``key``, read its rows and close it again."""
    under = app.screen
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
    rows = app.screen.rows()
    await pilot.press("escape")
    await wait_until(pilot, lambda: app.screen is under, "the help to close")
    return rows


# --------------------------------------------------------------------------- the queue, by role


async def queue_offers(db, config, actor, monkeypatch) -> tuple[list[str], list[str], list[str], list[str]]:
    """What the queue offers ``actor``: footer, palette and help descriptions, and what pressing t says."""
    app = ItsmApp(db, config, actor, run_scheduler=False)
    async with app.run_test(size=SIZE) as pilot:
        toasts = Toasts(app, monkeypatch)
        await wait_until(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue")
        await settle(pilot)
        footer = [description for _, description in footer_keys(app)]
        palette = [name for name, _ in await palette_entries(app, pilot)]
        rows = [description for _, description in await help_rows(app, pilot)]
        await pilot.press("t")  # nothing under the cursor for the agent either: a refusal or nothing
        await settle(pilot)
        return footer, palette, rows, toasts.shown


async def test_the_queue_offers_only_what_the_role_may_take(staff_sqlite, config, monkeypatch):
    db, staff = staff_sqlite
    footer, palette, rows, said = await queue_offers(db, config, staff["analyst1"], monkeypatch)
    # An analyst reads: no ticket action and no new ticket, in any of the three; the key says why.
    for action in (*TICKET_ACTIONS, "New", "Take next", "Reply", "Note", "Link"):
        assert action not in footer and action not in palette and action not in rows, action
    for action in ("Open", "Filter", "View"):
        assert action in palette and action in rows, action
    assert said == ["needs the role agent, support_l2, support_l3 or shift_lead"]

    footer, palette, rows, _ = await queue_offers(db, config, staff["agent1"], monkeypatch)
    # An agent takes, escalates and changes status, but only a shift lead assigns to someone else.
    for action in ("Take", "Escalate", "Status", "New"):
        assert action in footer and action in palette and action in rows, action
    assert "Assign" not in footer and "Assign" not in palette and "Assign" not in rows


# --------------------------------------------------------------------------- the ticket and its forms

TICKET_KEYS = """
[keys]
"ticket.reply" = "R"      # reply moves from r to R
"ticket.note" = ""        # no key for a note
"form.save" = "ctrl+w"    # forms save with ctrl+w
"form.editor" = ""        # and cannot hand the text to an editor
"ticket.reload" = "f9"
"""


async def test_remapped_and_unbound_ticket_and_form_keys_in_help_footer_palette_and_hints(
    staff_sqlite, config, tmp_path
):
    db, staff = staff_sqlite
    with db.session() as s:
        ticket_id = tickets.create_ticket(
            s, config, staff["lead"], title="Printer jammed", requester="Rita"
        ).id
    keys = load(binding_table, keys_file(tmp_path, TICKET_KEYS))
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False, keys=keys)
    async with app.run_test(size=SIZE) as pilot:
        app.open_ticket(ticket_id)
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None,
            "the ticket",
        )
        ticket = app.screen
        await settle(pilot)
        footer = footer_keys(app)  # the remapped key in its place, not last (where it would be cut off)
        assert ("R", "Reply") in footer and ("r", "Reply") not in footer
        assert "Note" not in [description for _, description in footer]
        rows = await help_rows(app, pilot)
        assert ("R", "Reply") in rows and "Note" not in [description for _, description in rows]
        assert ("h", "Tell shift lead") in rows  # the agent may escalate this ticket, so call its lead
        helps = dict(await palette_entries(app, pilot))
        assert helps["Reply"] == "this screen; key R" and helps["Note"] == "this screen; no key"
        assert helps["Tell shift lead"] == "this screen; key h"

        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, TextForm), "the reply form")
        form = app.screen
        await settle(pilot)
        # A hint written in the ticket screen names the key in force: someone saved the ticket meanwhile.
        ticket.show_presence([], ticket.detail.view.version + 1)
        notice = str(ticket.query_one("#ticket-notice", Static).render())
        assert "a save now is refused. f9 reloads." in notice
        # Its keys line: save on ctrl+w, no editor key, the template and help keys as shipped.
        assert shows(app, "ctrl+w save · ctrl+t template · esc cancel · F1 keys")
        await type_text(pilot, "Is it the tray?")  # ? types itself into the text
        assert app.screen is form and form.query_one(TextArea).text == "Is it the tray?"

        rows = await help_rows(app, pilot, "f1")  # help over the form: the form's keys in force
        assert app.screen is form
        assert ("^w", "Save") in rows and ("^t", "Insert a reply or note template") in rows
        assert ("esc", "Cancel") in rows and ("F1", "Keys of this form") in rows
        described = [description for _, description in rows]
        assert "Edit the text in $EDITOR" not in described  # unbound
        assert "Queue" not in described and "Help" not in described  # the app's keys do not work here
        assert ("^q", "Quit") in rows  # but quitting does


# --------------------------------------------------------------------------- a change


async def change_offers(db, config, actor, ref, keys, monkeypatch):
    """What the change screen offers ``actor``: its actions line, the palette, help, and what pressing A
    (approve, remapped) says."""
    app = ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: FIXED, keys=keys)
    async with app.run_test(size=(80, 24)) as pilot:
        toasts = Toasts(app, monkeypatch)
        await wait_until(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue")
        app.push_screen(ChangeScreen(ref))
        await wait_until(
            pilot, lambda: isinstance(app.screen, ChangeScreen) and app.screen.view, "the change"
        )
        await settle(pilot)
        actions = str(app.screen.query_one("#change-actions", Static).render())
        palette = dict(await palette_entries(app, pilot))
        rows = await help_rows(app, pilot)  # ? opens over the change
        await pilot.press("A")
        await settle(pilot)
        return actions, palette, rows, toasts.shown


async def test_the_change_screen_offers_what_its_guards_allow_with_the_keys_in_force(
    staff_sqlite, config, tmp_path, monkeypatch
):
    db, staff = staff_sqlite
    refs = build_calendar(db, config, staff)
    keys = load(binding_table, keys_file(tmp_path, '[keys]\n"change.approve" = "A"\n"change.back" = "q"\n'))
    # The switch change is assessed: the CAB member asked decides it; an agent may not.
    agent = await change_offers(db, config, staff["agent1"], refs["switch"], keys, monkeypatch)
    actions, palette, rows, said = agent
    assert actions.endswith("q back") and "approve" not in actions, actions
    assert "Approve" not in palette and ("A", "Approve (not now)") in rows
    assert ("q", "Back") in rows and ("?", "Keys") in rows
    assert "Submit" not in palette and ("u", "Submit (not now)") in rows  # submitted already
    assert len(said) == 1 and "cab_member or change_manager" in said[0]  # the disabled key says why

    actions, palette, rows, _ = await change_offers(
        db, config, staff["cab1"], refs["switch"], keys, monkeypatch
    )
    assert "A approve" in actions and "x reject" in actions and "a approve" not in actions, actions
    assert palette["Approve"] == "this screen; key A" and ("A", "Approve") in rows
