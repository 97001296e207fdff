"""The ticket detail screen and its forms, driven with the keyboard through Pilot (SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pilot_helpers import screen_text, settle, shows, squash, type_text, wait_shown, wait_until
from sqlalchemy import select
from textual.geometry import Region
from textual.widgets import Input, Select, TextArea

from itsm_tui.app import ItsmApp
from itsm_tui.models import AuditEvent, KnownError, Presence, Ticket, TicketEntry, utcnow
from itsm_tui.screens.forms import (
    AssignForm,
    EditTicketForm,
    EscalateForm,
    FormScreen,
    ImpactUrgencyForm,
    KedbForm,
    LinkForm,
    NewTicketForm,
    RateForm,
    ResolveForm,
    TextForm,
    TransitionForm,
)
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import presence, tickets

SIZE = (80, 24)


def messages(app) -> str:
    return "\n".join(str(n.message) for n in app._notifications)


def new_ticket(db, config, actor, **fields) -> tuple[int, str]:
    fields.setdefault("title", "Printer jammed")
    fields.setdefault("requester", "Rita")
    with db.session() as s:
        ticket = tickets.create_ticket(s, config, actor, **fields)
        return ticket.id, ticket.ref


def row(db, ref) -> tickets.TicketView:
    with db.read_session() as s:
        return tickets.view(s, tickets.get_ticket(s, ref))


async def open_ticket(app, pilot, ticket_id: int) -> TicketScreen:
    app.open_ticket(ticket_id)
    await wait_until(
        pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None, "the ticket"
    )
    await settle(pilot)  # the layout catches up with the content
    return app.screen


async def reloaded(pilot, screen: TicketScreen, check) -> None:
    await wait_until(pilot, lambda: screen.detail is not None and check(screen.detail.view), "the reload")


async def choose(pilot, select: Select, value) -> None:
    """Pick an option of a focused Select with the keyboard: open it, move to the value, Enter."""
    assert select.has_focus
    options = [v for _, v in select._options]
    await pilot.press("enter")
    await settle(pilot)
    current = options.index(select.value) if not select.is_blank() else 0
    target = options.index(value)
    for _ in range(abs(target - current)):
        await pilot.press("down" if target > current else "up")
    await pilot.press("enter")
    await wait_until(pilot, lambda: select.value == value, f"select {value}")


# --------------------------------------------------------------------------- the working day


def mail_down(db, config, staff, in_progress: bool = False) -> tuple[int, str]:
    """A major incident; ``in_progress``: taken and worked on by agent1 already."""
    ticket_id, ref = new_ticket(db, config, staff["lead"], title="Mail down", impact="high", urgency="high")
    if in_progress:
        with db.session() as s:
            tickets.transition(s, config, staff["agent1"], ref, "in_progress")
    return ticket_id, ref


async def test_take_then_the_status_form_offers_the_allowed_targets_only(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, ref = mail_down(db, config, staff)
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        assert screen.detail.view.status == "new"

        await pilot.press("t")  # take
        await reloaded(pilot, screen, lambda v: v.status == "assigned" and v.assignee == "agent1")

        await pilot.press("s")  # status: the allowed targets only
        await wait_until(pilot, lambda: isinstance(app.screen, TransitionForm), "the TransitionForm")
        form = app.screen
        assert [v for _, v in form.field("to_status")._options] == ["in_progress", "cancelled"]
        assert form.field("to_status").value == "in_progress"
        await pilot.press("ctrl+s")
        await reloaded(pilot, screen, lambda v: v.status == "in_progress")
        assert app.screen is screen

    ticket = row(db, ref)
    assert ticket.assignee == "agent1" and ticket.responded_at is not None


async def test_a_public_reply_typed_over_two_lines(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, _ = mail_down(db, config, staff, in_progress=True)
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        await pilot.press("r")  # public reply
        await wait_until(pilot, lambda: isinstance(app.screen, TextForm), "the TextForm")
        await type_text(pilot, "On it.\nRestarting the gateway.")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen, "the ticket again")
        await wait_until(pilot, lambda: any(i.kind == "reply" for i in screen.detail.timeline), "the reply")

    with db.read_session() as s:
        replies = s.scalars(
            select(TicketEntry.body).where(TicketEntry.ticket_id == ticket_id, TicketEntry.kind == "reply")
        ).all()
    assert replies == ["On it.\nRestarting the gateway."]


async def test_resolving_with_a_code_and_a_note_with_the_keyboard_only(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, ref = mail_down(db, config, staff, in_progress=True)
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        await pilot.press("x")  # resolve with a code and a note
        await wait_until(pilot, lambda: isinstance(app.screen, ResolveForm), "the ResolveForm")
        form = app.screen
        await choose(pilot, form.field("code"), "fixed")
        await pilot.press("tab")
        assert form.field("note").has_focus
        await type_text(pilot, "Gateway restarted; mail flows again.")
        await pilot.press("ctrl+s")
        await reloaded(pilot, screen, lambda v: v.status == "resolved")
        assert "resolved" in messages(app)
        await wait_shown(pilot, "fixed: Gateway restarted; mail flows again.")

    ticket = row(db, ref)
    assert (ticket.status, ticket.resolution_code) == ("resolved", "fixed")
    assert ticket.resolution_note == "Gateway restarted; mail flows again."
    assert ticket.resolved_at is not None


async def test_a_refused_form_save_stays_open_with_the_error_beside_the_field(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, ref = new_ticket(db, config, staff["lead"])
    with db.session() as s:
        tickets.transition(s, config, staff["agent1"], ref, "in_progress")
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, TransitionForm), "the TransitionForm")
        form = app.screen
        assert form.field("to_status").value == "pending"
        await pilot.press("ctrl+s")  # pending without saying what it waits for
        await wait_until(pilot, lambda: form.error_shown is not None, "the refusal")
        assert form.error_shown[0] == "pending_reason"
        assert "pending needs a reason" in form.error_shown[1]
        assert app.screen is form
        await wait_shown(pilot, "pending needs a reason")
        await choose(pilot, form.field("pending_reason"), "vendor")
        await pilot.press("ctrl+s")
        await reloaded(pilot, screen, lambda v: v.status == "pending" and v.pending_reason == "vendor")
    assert row(db, ref).status == "pending"


async def test_actions_not_allowed_here_are_disabled_and_say_why(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, ref = new_ticket(db, config, staff["lead"])
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        bindings = screen.active_bindings
        assert bindings["a"].enabled is False  # assign to someone else: shift leads
        assert bindings["x"].enabled is False  # a new ticket is not resolved
        assert bindings["t"].enabled is True
        await wait_shown(pilot, "assign: needs the role shift_lead")
        await pilot.press("a")
        await settle(pilot)
        assert app.screen is screen  # no form opened
        assert "needs the role shift_lead" in messages(app)
        await pilot.press("x")
        await settle(pilot)
        assert app.screen is screen
        assert "not in progress yet" in messages(app)
    assert row(db, ref).status == "new"


async def test_an_analyst_cannot_take(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, ref = new_ticket(db, config, staff["lead"])
    app = ItsmApp(db, config, staff["analyst1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        assert screen.active_bindings["t"].enabled is False
        await pilot.press("t")
        await settle(pilot)
        assert "You cannot take" in messages(app)
        assert "agent, support_l2, support_l3 or shift_lead" in messages(app)
        # Searching the KEDB stays open to everyone; applying says it is read only.
        assert screen.active_bindings["k"].enabled is True
    assert row(db, ref).assignee is None


async def test_a_shift_lead_assigns_through_the_form(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, ref = new_ticket(db, config, staff["agent1"])
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, AssignForm), "the AssignForm")
        form = app.screen
        await type_text(pilot, "net1")
        await pilot.press("enter")  # net1 is not in SD-L1: refused beside the login
        await wait_until(pilot, lambda: form.error_shown is not None, "the refusal")
        assert form.error_shown[0] == "login" and "not a member of group SD-L1" in form.error_shown[1]
        assert form.field("login").value == "net1"
        await pilot.press("ctrl+u", *"agent2", "enter")
        await reloaded(pilot, screen, lambda v: v.assignee == "agent2")
    assert row(db, ref).assignee == "agent2"


# --------------------------------------------------------------------------- concurrent work


async def test_a_stale_save_is_refused_keeps_the_typed_text_and_shows_what_changed(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, ref = new_ticket(db, config, staff["lead"])
    with db.session() as s:
        tickets.transition(s, config, staff["agent1"], ref, "in_progress")
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        shown_version = screen.detail.view.version
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ResolveForm), "the ResolveForm")
        form = app.screen
        await choose(pilot, form.field("code"), "workaround")
        await pilot.press("tab")
        await type_text(pilot, "Cleared the spooler")

        # Meanwhile the shift lead raises the impact from another console.
        with db.session() as s:
            tickets.update_fields(s, config, staff["lead"], ref, impact="high", urgency="high")

        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.error_shown is not None, "refusal")
        assert app.screen is form  # still open ...
        assert form.field("note").text == "Cleared the spooler"  # ... with what was typed
        assert form.field("code").value == "workaround"
        assert form.error_shown[0] is None  # at the top
        assert "was changed by Lead (lead)" in form.error_shown[1]
        # The screen underneath reloaded and marks what changed.
        await reloaded(pilot, screen, lambda v: v.version > shown_version and v.priority == 1)
        fresh = [i.text for i in screen.detail.timeline if (i.at, i.kind, i.by, i.text) in screen._fresh]
        assert any("impact" in text for text in fresh) and any("priority" in text for text in fresh)
        notice = screen.query_one("#ticket-notice")
        assert notice.has_class("-shown") and "Not saved: " in str(notice.render())
        assert "was changed by Lead" in str(notice.render())
        assert row(db, ref).status == "in_progress"

        # Saving again (having seen the change) applies on top of it.
        await pilot.press("ctrl+s")
        await reloaded(pilot, screen, lambda v: v.status == "resolved")
        assert app.screen is screen
    ticket = row(db, ref)
    assert (ticket.status, ticket.resolution_note, ticket.impact) == (
        "resolved",
        "Cleared the spooler",
        "high",
    )


async def test_also_open_by_shows_another_console(staff_sqlite, config, monkeypatch):
    monkeypatch.setattr(TicketScreen, "HEARTBEAT_SECONDS", 0.2)
    db, staff = staff_sqlite
    ticket_id, _ = new_ticket(db, config, staff["lead"])
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        await settle(pilot)  # the heartbeats so far have landed
        assert "Also open by" not in screen_text(app)
        with db.read_session() as s:  # this console's own heartbeat is there
            mine = s.scalars(select(Presence.console_id).where(Presence.entity_id == ticket_id)).all()
        assert mine == [screen.console_id]

        with db.session() as s:  # another console opens the ticket
            presence.heartbeat(s, staff["agent2"].id, "other-console", "ticket", ticket_id, utcnow())
        await wait_shown(pilot, "Also open by: Agent2")
        assert screen.others == ["Agent2"]

        await pilot.press("escape")  # leaving forgets this console's row
        await wait_until(pilot, lambda: not isinstance(app.screen, TicketScreen), "the TicketScreen to close")

        def left() -> list[str]:
            with db.read_session() as s:
                return s.scalars(select(Presence.console_id).where(Presence.entity_id == ticket_id)).all()

        await wait_until(pilot, lambda: left() == ["other-console"], "this console's row to go")
        assert left() == ["other-console"]


async def test_a_change_by_someone_else_reloads_the_screen_and_is_marked(staff_sqlite, config, monkeypatch):
    monkeypatch.setattr(TicketScreen, "HEARTBEAT_SECONDS", 0.2)
    db, staff = staff_sqlite
    ticket_id, ref = new_ticket(db, config, staff["lead"])
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        with db.session() as s:
            tickets.assign(s, config, staff["lead"], ref, assignee="agent2")
        await reloaded(pilot, screen, lambda v: v.assignee == "agent2")
        await wait_shown(pilot, "Updated by lead while you were here")
        assert screen._fresh


# --------------------------------------------------------------------------- KEDB


async def test_kedb_search_and_apply_workaround_adds_a_note_and_a_link(staff_sqlite, config):
    db, staff = staff_sqlite
    with db.session() as s:
        s.add(
            KnownError(
                ref="KE0000001",
                title="Spooler hangs after driver update",
                symptom="Print jobs stay queued forever",
                workaround="Restart the spooler service and clear C:\\spool",
                service="workplace",
                ci="print-srv-01",
                published_at=datetime(2025, 1, 1, tzinfo=UTC),
            )
        )
    ticket_id, ref = new_ticket(
        db, config, staff["lead"], title="Jobs stuck in queue", service="workplace", ci="print-srv-01"
    )
    with db.session() as s:
        tickets.assign(s, config, staff["agent1"], ref)
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        # Triage: the known error of the ticket's CI is offered before anyone searches.
        await wait_shown(pilot, "Possible known error: KE0000001 - Spooler hangs after driver update")
        await wait_shown(pilot, "apply its workaround with k")
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(app.screen, KedbForm), "the KedbForm")
        form = app.screen
        assert form.field("words").has_focus
        await pilot.press("ctrl+u", *"SPOOLER queued")
        await wait_until(pilot, lambda: [h.ref for h in form.hits] == ["KE0000001"], "results")
        await wait_shown(pilot, "Restart the spooler service")
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: app.screen is screen, "the ticket again")
        await wait_until(pilot, lambda: screen.detail.links == ["KE0000001"], "link shown")
        await wait_until(pilot, lambda: not shows(app, "Possible known error"), "the offer gone once linked")
    with db.read_session() as s:
        ticket = tickets.get_ticket(s, ref)
        notes = s.scalars(select(TicketEntry.body).where(TicketEntry.ticket_id == ticket.id)).all()
        assert tickets.links_of(s, ticket) == ["KE0000001"]
    assert len(notes) == 1 and "Restart the spooler service and clear C:\\spool" in notes[0]


# --------------------------------------------------------------------------- new ticket


async def test_new_ticket_form_keeps_typed_fields_on_refusal_then_creates_with_the_previewed_priority(
    staff_sqlite, config
):
    db, staff = staff_sqlite
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("n")  # from the queue
        await wait_until(pilot, lambda: isinstance(app.screen, NewTicketForm), "the NewTicketForm")
        form = app.screen
        assert form.field("title").has_focus
        await pilot.press("tab", *"Rita Requester", "tab")  # requester; the title stays empty
        assert form.field("kind").has_focus
        await pilot.press("tab")
        await choose(pilot, form.field("impact"), "high")
        assert "P2" in str(form.query_one("#field-priority").render())
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.error_shown is not None, "the refusal")
        assert form.error_shown[0] == "title" and "a title is required" in form.error_shown[1]
        assert app.screen is form
        await wait_shown(pilot, "a title is required")
        assert form.field("requester").value == "Rita Requester"
        assert form.field("impact").value == "high"

        form.field("title").focus()
        await type_text(pilot, "Laptop will not boot")
        await pilot.press("ctrl+s")
        # the new ticket opens, to go on working it
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.detail, "opened")
        assert "created (P2)" in messages(app)
        result = app.screen.detail.view
    ticket = row(db, result.ref)
    assert (ticket.title, ticket.requester, ticket.impact, ticket.urgency) == (
        "Laptop will not boot",
        "Rita Requester",
        "high",
        "medium",
    )
    assert ticket.priority == result.priority == config.priority_for("high", "medium") == 2


async def test_new_ticket_validation_names_the_field(staff_sqlite, config):
    db, staff = staff_sqlite
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        app.push_screen(NewTicketForm())
        await wait_until(pilot, lambda: isinstance(app.screen, NewTicketForm), "the NewTicketForm")
        form = app.screen
        await pilot.press(*"Disk full", "tab")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.error_shown is not None, "the refusal")
        assert form.error_shown[0] == "requester"
        assert form.field("requester").has_focus
        await pilot.press(*"Bob")  # editing the field hides its error
        assert not form.query_one("#error-requester").has_class("-shown")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, FormScreen), "the FormScreen to close")
    with db.read_session() as s:
        assert s.scalars(select(Ticket)).all() == []


async def test_new_ticket_categories_follow_the_kind(staff_sqlite, config):
    db, staff = staff_sqlite
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(NewTicketForm())
        await wait_until(pilot, lambda: isinstance(app.screen, NewTicketForm), "the NewTicketForm")
        form = app.screen
        form.field("category").focus()
        await settle(pilot)
        await choose(pilot, form.field("category"), "outage")  # an incident category
        form.field("kind").focus()
        await settle(pilot)
        await choose(pilot, form.field("kind"), "request")
        await wait_until(pilot, lambda: form.field("category").is_blank(), "category cleared")
        offered = [value for _, value in form.field("category")._options if isinstance(value, str)]
        assert offered == list(config.categories["request"])


# --------------------------------------------------------------------------- user text is literal


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_markup_and_escape_sequences_show_literally(staff_sqlite, config, size):
    db, staff = staff_sqlite
    ticket_id, ref = new_ticket(
        db,
        config,
        staff["lead"],
        title="[red]boom[/red] \x1b[31mred\x1b[0m",
        requester="[b]Mallory[/b] [link=http://x]me[/link]",
    )
    with db.session() as s:
        tickets.add_entry(
            s,
            config,
            staff["lead"],
            ref,
            body="[link=http://evil]click[/link] \x1b]0;pwned\x07",
            public=False,
        )
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=size, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        await wait_shown(pilot, "[red]boom[/red] ^[[31mred^[[0m")
        text = screen_text(app)
        assert "[b]Mallory[/b]" in text
        assert "[link=http://evil]click[/link] ^[]0;pwned^G" in text
        # What the widgets draw holds no control character and no link or colour taken from the text.
        for widget_id in ("#ticket-fields", "#ticket-timeline"):
            widget = screen.query_one(widget_id)
            strips = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
            for strip in strips:
                for segment in strip:
                    assert "\x1b" not in segment.text and "\x07" not in segment.text
                    assert segment.style is None or segment.style.link is None
        await pilot.press("r")  # the form title carries the reference only; typed text stays literal
        await wait_until(pilot, lambda: isinstance(app.screen, TextForm), "the TextForm")
        await type_text(pilot, "[b]bold?[/b]")
        assert app.screen.query_one(TextArea).text == "[b]bold?[/b]"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the TicketScreen")
        await wait_shown(pilot, "[b]bold?[/b]")


async def test_opening_with_an_action_runs_it_once_loaded(staff_sqlite, config):
    """The queue opens a ticket with an action (e.g. assign) before the ticket has loaded."""
    db, staff = staff_sqlite
    ticket_id, _ = new_ticket(db, config, staff["agent1"])
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = TicketScreen(ticket_id)
        app.push_screen(screen)
        await screen.run_action("assign")
        # the form is pushed, then composed: wait for its field
        await wait_until(
            pilot, lambda: isinstance(app.screen, AssignForm) and app.screen.query("#field-login"), "field"
        )
        assert isinstance(app.screen.query_one("#field-login"), Input)


def worked_on(db, config, staff) -> tuple[int, str]:
    """A printer ticket agent1 works on."""
    ticket_id, ref = new_ticket(db, config, staff["lead"])
    with db.session() as s:
        tickets.transition(s, config, staff["agent1"], ref, "in_progress")
    return ticket_id, ref


async def test_impact_and_urgency_preview_the_priority_as_they_change(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, _ = worked_on(db, config, staff)
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        await pilot.press("i")  # impact and urgency, with the priority previewed as they change
        await wait_until(pilot, lambda: isinstance(app.screen, ImpactUrgencyForm), "the ImpactUrgencyForm")
        form = app.screen
        assert "unchanged" in str(form.query_one("#field-priority").render())
        await choose(pilot, form.field("impact"), "high")
        assert squash("P2 (now P3)") in squash(str(form.query_one("#field-priority").render()))
        await pilot.press("ctrl+s")
        await reloaded(pilot, screen, lambda v: v.priority == 2 and v.impact == "high")


async def test_a_link_to_an_unknown_reference_is_refused_beside_the_field(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, _ = worked_on(db, config, staff)
    _, other = new_ticket(db, config, staff["lead"], title="Duplicate")
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        await pilot.press("l")  # link: an unknown reference is refused beside the field
        await wait_until(pilot, lambda: isinstance(app.screen, LinkForm), "the LinkForm")
        form = app.screen
        await pilot.press(*"PRB0000042", "enter")
        await wait_until(pilot, lambda: form.error_shown is not None, "the refusal")
        assert form.error_shown[0] == "target" and "PRB0000042" in form.error_shown[1]
        await pilot.press("ctrl+u", *other.lower(), "enter")
        await wait_until(pilot, lambda: screen.detail.links == [other], "link")


async def test_resolved_then_rated_once(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, ref = worked_on(db, config, staff)
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ResolveForm), "the ResolveForm")
        await choose(pilot, app.screen.field("code"), "fixed")
        await pilot.press("tab", *"done", "ctrl+s")
        await reloaded(pilot, screen, lambda v: v.status == "resolved")

        await pilot.press("asterisk")  # the requester's rating, taken on the phone
        await wait_until(pilot, lambda: isinstance(app.screen, RateForm), "the RateForm")
        await choose(pilot, app.screen.field("score"), 4)
        await pilot.press("tab", *"quick", "enter")
        await reloaded(pilot, screen, lambda v: v.rating == 4)
        assert screen.active_bindings["asterisk"].enabled is False  # rated once
    assert row(db, ref).rating == 4


async def test_reopening_needs_a_reason(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, ref = worked_on(db, config, staff)
    with db.session() as s:
        tickets.resolve(s, config, staff["agent1"], ref, code="fixed", note="done")
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        await pilot.press("o")  # reopen needs a reason
        await wait_until(pilot, lambda: isinstance(app.screen, TransitionForm), "the TransitionForm")
        form = app.screen
        assert form.field("to_status").value == "in_progress"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.error_shown is not None, "the refusal")
        assert form.error_shown[0] == "reason" and "reopening needs a reason" in form.error_shown[1]
        form.field("reason").focus()
        await pilot.press(*"still jams", "enter")
        await reloaded(pilot, screen, lambda v: v.status == "in_progress" and v.reopen_count == 1)
    assert row(db, ref).reopen_count == 1


async def test_escalating_to_another_group_hands_the_ticket_over(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, ref = worked_on(db, config, staff)
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        await pilot.press("e")  # escalate to another group
        await wait_until(pilot, lambda: isinstance(app.screen, EscalateForm), "the EscalateForm")
        form = app.screen
        await choose(pilot, form.field("group"), "NET-L2")
        await pilot.press("tab", *"switch port", "enter")
        await reloaded(pilot, screen, lambda v: v.group == "NET-L2" and v.status == "new")
        # Now queued for another group: agent1 may no longer work on it.
        assert screen.active_bindings["r"].enabled is False
        assert screen.active_bindings["c"].enabled is False
    ticket = row(db, ref)
    assert (ticket.group, ticket.escalation_count) == ("NET-L2", 1)


async def test_a_shift_lead_cancels_with_a_reason(staff_sqlite, config):
    db, staff = staff_sqlite
    _, ref = worked_on(db, config, staff)
    other_id, other = new_ticket(db, config, staff["lead"], title="Duplicate")
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, other_id)
        await pilot.press("c")  # cancel with a reason
        await wait_until(pilot, lambda: isinstance(app.screen, TransitionForm), "the TransitionForm")
        await pilot.press("tab", *"duplicate of " + ref, "enter")
        await reloaded(pilot, screen, lambda v: v.status == "cancelled")
    assert row(db, other).status == "cancelled"


async def test_a_paused_overdue_clock_says_overdue(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, ref = new_ticket(db, config, staff["lead"], title="Waiting on the vendor")
    with db.session() as s:
        tickets.assign(s, config, staff["lead"], ref, assignee="agent1")
        tickets.transition(s, config, staff["lead"], ref, "in_progress")
        tickets.transition(s, config, staff["lead"], ref, "pending", reason="vendor")
        ticket = tickets.get_ticket(s, ref)
        ticket.resolution_due_at = ticket.paused_at - timedelta(days=3)  # breached before it was paused
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_ticket(app, pilot, ticket_id)
        clock = screen_text(app).split("Resolve", 1)[1].split("Description", 1)[0]
        assert "breached" in clock and "paused" in clock and "overdue" in clock and " left" not in clock


def printer_ticket(db, config, staff) -> tuple[int, str]:
    return new_ticket(
        db, config, staff["lead"], category="software", service="email", ci="mx-01", description="Paper stuck"
    )


async def test_an_edit_with_an_empty_title_is_refused_and_keeps_what_was_typed(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, _ = printer_ticket(db, config, staff)
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_ticket(app, pilot, ticket_id)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, EditTicketForm), "the EditTicketForm")
        form = app.screen
        assert form.field("title").value == "Printer jammed"
        assert (form.field("category").value, form.field("ci").value) == ("software", "mx-01")
        await pilot.press("ctrl+u", "tab", "end", *" (2nd floor)", "ctrl+s")  # an empty title is refused
        await wait_until(pilot, lambda: form.error_shown is not None, "the refusal")
        assert form.error_shown[0] == "title" and app.screen is form
        assert form.field("requester").value == "Rita (2nd floor)"  # what was typed stays


async def test_editing_title_and_classification_through_the_form(staff_sqlite, config):
    db, staff = staff_sqlite
    ticket_id, ref = printer_ticket(db, config, staff)
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_ticket(app, pilot, ticket_id)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, EditTicketForm), "the EditTicketForm")
        form = app.screen
        await pilot.press("ctrl+u")
        await type_text(pilot, "Printer jams on every page")
        await pilot.press("tab", "end", *" (2nd floor)")
        form.field("category").focus()
        await settle(pilot)
        await choose(pilot, form.field("category"), "hardware")
        await pilot.press("tab")
        await choose(pilot, form.field("service"), "workplace")
        await pilot.press("tab")
        assert form.field("ci").is_blank()  # mx-01 is not a workplace CI
        await choose(pilot, form.field("ci"), "print-srv-01")
        await pilot.press("ctrl+s")
        await reloaded(pilot, screen, lambda v: v.title == "Printer jams on every page")
        assert "title, requester, category, service, ci saved" in messages(app)
        await wait_shown(pilot, "Printer jams on every page")
    ticket = row(db, ref)
    assert (
        ticket.title,
        ticket.requester,
        ticket.category,
        ticket.service,
        ticket.ci,
        ticket.description,
    ) == (
        "Printer jams on every page",
        "Rita (2nd floor)",
        "hardware",
        "workplace",
        "print-srv-01",
        "Paper stuck",
    )
    with db.read_session() as s:
        audited = {
            (e.field, e.old_value, e.new_value)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.entity_id == ticket_id))
        }
    assert ("title", "Printer jammed", "Printer jams on every page") in audited
    assert ("ci", "mx-01", "print-srv-01") in audited
    assert not any(field == "description" for field, _, _ in audited if field)
