"""The change calendar driven with Pilot at 80x24: navigate the month, week and agenda, open a change,
approve as a CAB member, be refused as an agent, reject with a reason, and see a new change's conflicts
(and a move's) before saving."""

from __future__ import annotations

from datetime import date

import pytest
from calendar_data import FIXED, build_calendar
from pilot_helpers import screen_text, settle, wait_until
from sqlalchemy import func, select

from itsm_tui.app import ItsmApp
from itsm_tui.models import Change
from itsm_tui.screens.calendar import CalendarScreen
from itsm_tui.screens.change import ChangeScreen, NewChangeForm, ReasonForm, ScheduleForm
from itsm_tui.screens.change_assess import ApproveForm, AssessForm
from itsm_tui.services import changes


@pytest.fixture
def desk(staff_sqlite, config):
    db, staff = staff_sqlite
    refs = build_calendar(db, config, staff)
    return db, staff, refs


def make_app(db, config, actor) -> ItsmApp:
    return ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: FIXED)


async def open_calendar(pilot, app) -> CalendarScreen:
    await pilot.press("f3")
    await wait_until(pilot, lambda: isinstance(app.screen, CalendarScreen) and app.screen.up_to_date, "load")
    return app.screen


async def settled(pilot, screen: CalendarScreen) -> None:
    await wait_until(pilot, lambda: screen.up_to_date, "calendar reload")
    await settle(pilot)


def shown(app) -> str:
    """What the terminal shows as text, white space runs (and line breaks) collapsed to one space."""
    return " ".join(screen_text(app).split())


def change_shown(app) -> bool:
    return isinstance(app.screen, ChangeScreen) and app.screen.view is not None


def listed_refs(screen: CalendarScreen) -> list[str]:
    day_list = screen.day_list
    ids = [day_list.get_option_at_index(i).id for i in range(day_list.option_count)]
    return [i.split("@")[0] for i in ids if i]


def state_of(db, ref) -> str:
    with db.read_session() as s:
        return changes.get_change(s, ref).state


def recorder(app) -> list[str]:
    messages: list[str] = []
    original = app.notify

    def notify(message, *args, **kwargs):
        messages.append(str(message))
        return original(message, *args, **kwargs)

    app.notify = notify
    return messages


async def test_navigate_month_week_and_agenda(desk, config):
    db, staff, refs = desk
    app = make_app(db, config, staff["lead"])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_calendar(pilot, app)
        assert screen.selected == date(2026, 3, 20)
        assert "March 2026" in shown(app)
        await pilot.press("right")
        await settled(pilot, screen)
        assert screen.selected == date(2026, 3, 21)
        assert listed_refs(screen) == [refs["switch"], refs["firmware"]]
        text = shown(app)
        assert "Saturday 21 March 2026 2 changes" in text
        await pilot.press("down")
        assert screen.selected == date(2026, 3, 28)
        await pilot.press("pagedown")
        await settled(pilot, screen)
        assert screen.selected == date(2026, 4, 28) and "April 2026" in shown(app)
        await pilot.press("pageup", "up", "left")
        await settled(pilot, screen)
        assert screen.selected == date(2026, 3, 20)
        await pilot.press("right", "right", "right", "right")  # Tuesday 24th: the standard patch
        await settled(pilot, screen)
        assert listed_refs(screen) == [refs["patch"]]
        await pilot.press("t")
        assert screen.selected == date(2026, 3, 20)

        await pilot.press("2")
        await settled(pilot, screen)
        text = shown(app)
        assert "Week 12, 16 Mar - 22 Mar 2026 [Week]" in text
        assert "Sat 21" in text
        await pilot.press("3")
        await settled(pilot, screen)
        agenda = listed_refs(screen)
        assert agenda[:2] == [refs["switch"], refs["firmware"]]
        assert {refs["patch"], refs["mail"], refs["erp"]} <= set(agenda)
        assert refs["printers"] not in agenda  # before the 20th
        await pilot.press("v")  # back to the month
        await settled(pilot, screen)
        assert screen.view_mode == "month"


async def test_windows_are_shown_in_the_viewers_time_zone(desk, config):
    db, staff, _ = desk
    app = make_app(db, config, staff["lead"])  # the cast lives in UTC
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_calendar(pilot, app)
        await pilot.press("right")
        await settled(pilot, screen)
        assert "window 21:00-22.03 network" in shown(app)  # Saturday 22:00 CET
        await pilot.press("down")  # the 28th: summer time starts that night
        await settled(pilot, screen)
        assert "window 21:00-29.03 network" in shown(app)
        await pilot.press("down")
        await settled(pilot, screen)
        assert "window 20:00-05.04 network" in shown(app)  # 22:00 CEST


async def test_open_a_change_and_see_its_conflicts(desk, config):
    db, staff, refs = desk
    app = make_app(db, config, staff["lead"])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_calendar(pilot, app)
        await pilot.press("right")
        await settled(pilot, screen)
        # At 80 columns the conflict is said shorter, its interval whole.
        assert "! CHG1 & CHG2 core-sw-01 (network): 2026-03-21 22:30 to 2026-03-22 00:30 UTC" in shown(app)
        await pilot.press("tab", "down", "enter")
        await wait_until(pilot, lambda: change_shown(app), "the change")
        detail = app.screen
        assert detail.ref == refs["firmware"]
        text = shown(app)
        assert "Upgrade core switch firmware" in text and "submitted" in text
        assert f"CONFLICT {refs['switch']} and {refs['firmware']} both change CI core-sw-01" in text
        assert "Approval" in text
        await pilot.press("a")  # a shift lead may not approve: the detail says why, nothing changes
        await settle(pilot)
        assert state_of(db, refs["firmware"]) == "submitted"
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "the calendar again")


async def test_a_cab_member_approves_from_the_calendar(desk, config):
    db, staff, refs = desk
    app = make_app(db, config, staff["cab1"])
    async with app.run_test(size=(80, 24)) as pilot:
        said = recorder(app)
        screen = await open_calendar(pilot, app)
        await pilot.press("right")
        await settled(pilot, screen)
        assert screen.current_ref() == refs["switch"]
        await pilot.press("a")  # asks for a comment and the save key first
        await wait_until(pilot, lambda: isinstance(app.screen, ApproveForm), "the approve form")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: state_of(db, refs["switch"]) == "approved", "approval")
        await wait_until(pilot, lambda: f"You approved {refs['switch']}: it is approved." in said, "notice")
        await settled(pilot, screen)
        assert "approved" in str(screen.day_list.get_option_at_index(screen.day_list.highlighted).prompt)


async def test_an_agent_is_refused_and_told_which_role_approves(desk, config):
    db, staff, refs = desk
    app = make_app(db, config, staff["agent1"])
    async with app.run_test(size=(80, 24)) as pilot:
        said = recorder(app)
        screen = await open_calendar(pilot, app)
        await pilot.press("right")
        await settled(pilot, screen)
        await pilot.press("a")
        await wait_until(pilot, lambda: any("cab_member or change_manager" in m for m in said), "refusal")
        assert state_of(db, refs["switch"]) == "assessed"


async def test_reject_needs_a_reason(desk, config):
    db, staff, refs = desk
    app = make_app(db, config, staff["cab1"])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_calendar(pilot, app)
        await pilot.press("right")
        await settled(pilot, screen)
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, ReasonForm), "the ReasonForm")
        form = app.screen
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.error_shown is not None, "the refusal")
        assert "say why" in form.error_shown
        await pilot.press(*"Clashes with the firmware upgrade", "enter")
        await wait_until(pilot, lambda: state_of(db, refs["switch"]) == "rejected", "rejection")
        with db.read_session() as s:
            assert (
                "Clashes with the firmware upgrade" in changes.get_change(s, refs["switch"]).rejection_reason
            )


async def test_a_new_change_shows_its_conflicts_before_it_is_saved(desk, config):
    db, staff, refs = desk
    app = make_app(db, config, staff["net1"])
    with db.read_session() as s:
        before = s.scalar(select(func.count()).select_from(Change))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_calendar(pilot, app)
        await pilot.press("right")  # Saturday 21st: the form proposes 22:00
        await settled(pilot, screen)
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, NewChangeForm), "the NewChangeForm")
        form = app.screen
        await pilot.press("tab", *"Swap core switch PSU", "tab", *"core-sw-01")
        await wait_until(pilot, lambda: form.previewed, "preview")
        kinds = {(c.kind, c.refs) for c in form.previewed}
        assert ("overlap", (refs["switch"], "(new)")) in kinds
        assert ("overlap", ("(new)", refs["firmware"])) in kinds  # ordered by start
        assert ("implementer", (refs["switch"], "(new)")) in kinds  # net1 is booked on the switch already
        text = shown(app)
        assert "CONFLICT CHG1 & (new) core-sw-01: 2026-03-21 22:00 to 2026-03-22 00:00 UTC" in text
        with db.read_session() as s:
            assert s.scalar(select(func.count()).select_from(Change)) == before  # nothing saved yet

        # Saving without plans is refused in the form; with them it is raised and submitted.
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.error_shown is not None, "the refusal")
        assert "implementation plan" in form.error_shown
        form.query_one("#plan").value = "Swap the power supply."
        form.query_one("#backout").value = "Put the old one back."
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen, "form closed")
        await settled(pilot, screen)
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Change)) == before + 1
        new = s.scalar(select(Change).order_by(Change.id.desc()))
        assert (new.title, new.state) == ("Swap core switch PSU", "submitted")


async def test_moving_a_change_shows_the_conflicts_of_the_new_window(desk, config):
    db, staff, refs = desk
    app = make_app(db, config, staff["chm"])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_calendar(pilot, app)
        await pilot.press("right", "right", "right", "right", "right", "right")  # the 26th: the mailbox move
        await settled(pilot, screen)
        assert screen.current_ref() == refs["mail"]
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, ScheduleForm), "the ScheduleForm")
        form = app.screen
        await wait_until(pilot, lambda: form.previewed is not None, "first preview")
        assert [c.kind for c in form.previewed] == ["outside_window"]
        start = form.query_one("#start")
        start.value = "2026-03-25 21:00"  # Wednesday 22:00 CET: inside the email window
        form.query_one("#end").value = "2026-03-25 22:00"
        await wait_until(pilot, lambda: form.previewed == [], "clean preview")
        assert "No conflicts." in shown(app)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen, "the calendar again")
    with db.read_session() as s:
        assert changes.get_change(s, refs["mail"]).planned_start.day == 25


async def test_user_text_is_shown_literally(desk, config):
    db, staff, _ = desk
    with db.session() as s:
        change = changes.create_change(
            s,
            config,
            staff["net1"],
            change_type="normal",
            title="[b]x[/]",
            targets=["vpn"],
            start=FIXED.replace(hour=20),
            end=FIXED.replace(hour=21),
            now=FIXED,
        )
        change.title = "[b]x[/] \x1b[2J"  # as stored before titles refused control characters
    app = make_app(db, config, staff["net1"])
    async with app.run_test(size=(80, 24)) as pilot:
        await open_calendar(pilot, app)
        text = shown(app)
        assert "vpn [b]x[/] ^[[2J" in text  # markup and escapes shown, not obeyed


async def test_a_change_manager_assesses_and_overrides_a_blackout_from_the_change(desk, config):
    db, staff, refs = desk
    with db.session() as s:
        emergency = changes.create_change(
            s,
            config,
            staff["app1"],
            change_type="emergency",
            title="Restart ERP database",
            targets=["erp"],
            start=FIXED.replace(day=31, hour=14),
            end=FIXED.replace(day=31, hour=15),
            implementation_plan="Restart.",
            backout_plan="None.",
            implementer="app1",
            now=FIXED,
        ).ref
    app = make_app(db, config, staff["chm"])
    async with app.run_test(size=(80, 24)) as pilot:
        said = recorder(app)
        screen = await open_calendar(pilot, app)
        await pilot.press("right")
        await settled(pilot, screen)
        await pilot.press("tab", "down", "enter")  # the firmware upgrade: submitted, to assess
        await wait_until(pilot, lambda: change_shown(app), "the change")
        assert app.screen.refusal("assess") is None and app.screen.refusal("approve") is not None
        await pilot.press("e")  # the risk questionnaire: answer the two questions the desk cannot, save
        await wait_until(pilot, lambda: isinstance(app.screen, AssessForm), "the assess form")
        await pilot.press("enter", "down", "enter", "tab", "tab", "tab", "enter", "down", "enter", "ctrl+s")
        await wait_until(pilot, lambda: state_of(db, refs["firmware"]) == "assessed", "assessment")
        await wait_until(
            pilot, lambda: f"{refs['firmware']}: 0 of 1 approvals; waiting for cab1." in said, "the notice"
        )
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, "the calendar again")

        # An emergency change inside the ERP freeze: submitting asks the change manager for an override.
        await pilot.press("pagedown", "t")
        await pilot.press(*(["right"] * 11))  # Tuesday 31st
        await settled(pilot, screen)
        assert emergency in listed_refs(screen)
        screen.day_list.focus()
        for _ in range(5):
            if screen.current_ref() == emergency:
                break
            await pilot.press("down")
        assert screen.current_ref() == emergency
        await pilot.press("enter")
        await wait_until(pilot, lambda: change_shown(app), "the change")
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, ReasonForm), "override form")
        assert 'change freeze "Quarter close"' in app.screen.note  # why it asks
        await pilot.press(*"ERP database hangs", "enter")
        await wait_until(pilot, lambda: state_of(db, emergency) == "submitted", "submit with override")
    with db.read_session() as s:
        assert changes.get_change(s, emergency).override_reason == "ERP database hangs"
