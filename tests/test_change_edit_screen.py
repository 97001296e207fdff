"""Editing, withdrawing and cancelling a change from its screen, by keyboard only, at 80x24 (SQLite): the edit
form filled in as the change is, its conflicts shown live, the save checked in the database; a stale save kept
and saved again; withdraw with an optional reason, cancel with a required one; an agent's keys refused with
the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pilot_helpers import Toasts, screen_text, settle, shows, type_into, wait_until
from sqlalchemy import select

from itsm_tui.app import ItsmApp
from itsm_tui.models import AuditEvent
from itsm_tui.screens.change import ChangeScreen, ReasonForm
from itsm_tui.screens.change_edit import EditChangeForm
from itsm_tui.screens.queue import QueueScreen
from itsm_tui.services import changes

FIXED = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)  # a Friday
SATURDAY = datetime(2026, 3, 21, 22, 0, tzinfo=UTC)
SUNDAY = SATURDAY + timedelta(days=1)


@pytest.fixture
def desk(staff_sqlite, config):
    """eng1's submitted change on the core switch on Saturday night, and net1's draft on Sunday night."""
    db, staff = staff_sqlite
    refs = {}
    for name, who, start, submit in (("switch", "eng1", SATURDAY, True), ("draft", "net1", SUNDAY, False)):
        with db.session() as s:
            refs[name] = changes.create_change(
                s,
                config,
                staff[who],
                change_type="normal",
                title=f"The {name} change",
                targets=["network:core-sw-01"],
                start=start,
                end=start + timedelta(hours=2),
                implementation_plan="Follow the runbook.",
                backout_plan="Roll back.",
                implementer=who,
                now=FIXED - timedelta(days=3),
            ).ref
            if submit:
                changes.submit(s, config, staff[who], refs[name], now=FIXED - timedelta(days=3))
    return db, staff, refs


def shown(app) -> str:
    return " ".join(screen_text(app).split())


def change_of(db, ref):
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        s.expunge(change)
        return change


async def open_change(pilot, app, ref) -> ChangeScreen:
    await wait_until(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue")
    app.push_screen(ChangeScreen(ref))
    await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen) and app.screen.view, "the change")
    await settle(pilot)
    return app.screen


async def retype(pilot, text: str) -> None:
    """Replace what the focused field holds (ctrl+u clears left of the cursor, which a field opens at the end
    of)."""
    await pilot.press("end", "ctrl+u")
    await type_into(pilot, text)


def app_for(db, config, actor) -> ItsmApp:
    return ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: FIXED)


async def test_edit_the_title_and_window_and_see_the_conflict_before_saving(desk, config):
    db, staff, refs = desk
    app = app_for(db, config, staff["net1"])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_change(pilot, app, refs["draft"])
        assert "E edit" in str(screen.query_one("#change-actions").render())
        await pilot.press("E")
        await wait_until(pilot, lambda: isinstance(app.screen, EditChangeForm), "the edit form")
        form = app.screen
        await wait_until(pilot, lambda: form.previewed is not None, "the first check")
        assert not [c for c in form.previewed if c.kind == "overlap"]  # Sunday: nothing else there
        assert form.text_of("title") == "The draft change" and form.text_of("start") == "2026-03-22 22:00"
        assert "Times in UTC." in shown(app)

        await retype(pilot, "Swap the [b]line[/b] card")
        await pilot.press("tab", "tab")  # the targets, then the start
        await retype(pilot, "2026-03-21 23:00")
        await pilot.press("tab")
        await retype(pilot, "2026-03-22 00:30")
        await wait_until(
            pilot,
            lambda: form.previewed and any(c.kind == "overlap" for c in form.previewed),
            "the clash with the switch change",
        )
        conflicts = [line for line in screen_text(app).splitlines() if "CONFLICT" in line]
        assert len(conflicts) == 1 and "core-sw-01" in conflicts[0], conflicts  # in the form, as it is typed
        assert change_of(db, refs["draft"]).title == "The draft change"  # nothing saved yet

        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen, "the change again")
        await wait_until(pilot, lambda: screen.view.version == 2, "the change reloaded")
        assert "Swap the [b]line[/b] card" in shown(app)  # literally
    change = change_of(db, refs["draft"])
    assert (change.title, change.state, change.version) == ("Swap the [b]line[/b] card", "draft", 2)
    assert (change.planned_start, change.planned_end) == (
        SATURDAY + timedelta(hours=1),
        SATURDAY + timedelta(hours=2, minutes=30),
    )
    with db.read_session() as s:
        edited = s.scalars(
            select(AuditEvent.field).where(AuditEvent.entity_id == change.id, AuditEvent.action == "edit")
        ).all()
    assert sorted(edited) == ["planned_end", "planned_start", "title"]


async def test_a_stale_edit_keeps_the_text_and_saves_on_the_newer_version(desk, config):
    db, staff, refs = desk
    app = app_for(db, config, staff["net1"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_change(pilot, app, refs["draft"])
        await pilot.press("E")
        await wait_until(pilot, lambda: isinstance(app.screen, EditChangeForm), "the edit form")
        form = app.screen
        with db.session() as s:  # meanwhile, a change manager edits it
            changes.edit_change(
                s,
                config,
                staff["chm"],
                refs["draft"],
                description="Agreed with vendor.",
                test_plan="Ask the vendor.",
                now=FIXED,
            )
        for _ in range(8):  # to the test plan
            await pilot.press("tab")
        assert form.focused is form.field("test")
        await type_into(pilot, "Ping the switch.")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.error_shown is not None, "the refusal")
        assert app.screen is form and form.error_shown.message.startswith(
            f"Not saved: {refs['draft']} was changed by Chm (chm) at 12:00:00 UTC after you opened it"
        )
        assert "It has been reloaded underneath; save again" in form.error_shown.message
        await wait_until(pilot, lambda: form.newer_shown == 2, "the newer version taken in")
        assert form.text_of("test") == "Ping the switch."  # typed: kept
        assert form.text_of("description") == "Agreed with vendor."  # not typed in: the newer value
        assert form.text_of("title") == "The draft change"
        await pilot.press("ctrl+s")  # again: on the version now shown
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), "saved")
    change = change_of(db, refs["draft"])
    assert (change.description, change.test_plan, change.version) == (
        "Agreed with vendor.",
        "Ping the switch.",
        3,
    )


async def test_editing_an_assessed_change_keeps_its_risk_and_sends_it_back(desk, config):
    db, staff, refs = desk
    with db.session() as s:
        changes.assess(s, config, staff["chm"], refs["switch"], now=FIXED)
    app = app_for(db, config, staff["chm"])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_change(pilot, app, refs["switch"])
        await pilot.press("E")
        await wait_until(pilot, lambda: isinstance(app.screen, EditChangeForm), "the edit form")
        form = app.screen
        await wait_until(pilot, lambda: shows(app, "Saving sends it back"), "the note")
        assert (
            "Saving sends it back to be assessed again: the CAB's decisions so far are cleared" in form.note
        )
        assert form.field("risk").disabled  # the assessment's
        await retype(pilot, "The switch change, first half")
        await pilot.press("ctrl+s")
        await wait_until(
            pilot, lambda: app.screen is screen and screen.view.state == "submitted", "sent back"
        )
        assert "Assessment asked again: chm edited the change after its assessment" in shown(app)
    change = change_of(db, refs["switch"])
    assert (change.title, change.state, change.risk) == (
        "The switch change, first half",
        "submitted",
        "medium",
    )


async def test_withdraw_with_an_optional_reason(desk, config):
    db, staff, refs = desk
    app = app_for(db, config, staff["eng1"])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_change(pilot, app, refs["switch"])
        await pilot.press("W")
        await wait_until(pilot, lambda: isinstance(app.screen, ReasonForm), "the withdraw form")
        assert f"Withdraw {refs['switch']} for good" in shown(app)
        await type_into(pilot, "Merged into the firmware upgrade")
        await pilot.press("ctrl+s")
        await wait_until(
            pilot, lambda: app.screen is screen and screen.view.state == "withdrawn", "withdrawn"
        )
        assert "Merged into the firmware upgrade" in shown(app)
    change = change_of(db, refs["switch"])
    assert (change.state, change.cancel_reason) == ("withdrawn", "Merged into the firmware upgrade")


async def test_cancel_asks_for_the_reason(desk, config):
    db, staff, refs = desk
    app = app_for(db, config, staff["chm"])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_change(pilot, app, refs["switch"])
        await pilot.press("C")
        await wait_until(pilot, lambda: isinstance(app.screen, ReasonForm), "the cancel form")
        form = app.screen
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.error_shown is not None, "the refusal")
        assert "say why" in form.error_shown and change_of(db, refs["switch"]).state == "submitted"
        await type_into(pilot, "Vendor pulled the part")
        await pilot.press("ctrl+s")
        await wait_until(
            pilot, lambda: app.screen is screen and screen.view.state == "cancelled", "cancelled"
        )
    change = change_of(db, refs["switch"])
    assert (change.state, change.cancel_reason) == ("cancelled", "Vendor pulled the part")


async def test_an_agent_is_refused_with_the_reason(desk, config, monkeypatch):
    db, staff, refs = desk
    app = app_for(db, config, staff["agent1"])
    async with app.run_test(size=(80, 24)) as pilot:
        toasts = Toasts(app, monkeypatch)
        screen = await open_change(pilot, app, refs["switch"])
        for action in ("edit", "withdraw", "cancel"):
            assert screen.check_action("act", (action,)) is None  # shown disabled, not offered
        actions = str(screen.query_one("#change-actions").render())
        assert "edit" not in actions and "withdraw" not in actions and "cancel" not in actions
        for key in ("E", "W", "C"):
            await pilot.press(key)
            await settle(pilot)
        assert isinstance(app.screen, ChangeScreen)
        assert [m.split(":")[0] for m in toasts.shown] == [
            f"Only who raised {refs['switch']} or a change_manager may edit it.",
            f"Only who raised {refs['switch']} may withdraw it (a change_manager may cancel it).",
            f"You may not cancel {refs['switch']}",
        ]
    assert change_of(db, refs["switch"]).state == "submitted"


async def test_the_edit_form_offers_the_next_free_slot(desk, config):
    from itsm_tui.screens.change_slots import SlotPicker

    db, staff, refs = desk
    app = app_for(db, config, staff["net1"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_change(pilot, app, refs["draft"])
        await pilot.press("E")
        await wait_until(pilot, lambda: isinstance(app.screen, EditChangeForm), "the edit form")
        form = app.screen
        assert "ctrl+f free slot" in shown(app)
        await pilot.press("ctrl+f")
        await wait_until(pilot, lambda: isinstance(app.screen, SlotPicker), "the free slots")
        await settle(pilot)
        await pilot.press("enter")  # the first one offered
        await wait_until(pilot, lambda: app.screen is form, "the form again")
        assert form.text_of("start") != "2026-03-22 22:00"  # the slot chosen, to save or change further
