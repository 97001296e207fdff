"""Windows and freezes in the console, by keyboard at 80x24: from the calendar's key, a new blackout typed
over a scheduled change lists it before saving, saving writes the row and tells the change's owner, and a
delete asks first; an agent is offered none of the keys that write."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from pilot_helpers import screen_text, settle, shows, type_into, wait_until
from sqlalchemy import select, text

from itsm_tui.app import ItsmApp
from itsm_tui.models import AuditEvent, Blackout, MaintenanceWindow, Notification, User
from itsm_tui.screens.calendar import CalendarScreen
from itsm_tui.screens.change_windows import BlackoutForm, ConfirmDelete, WindowForm, WindowsScreen
from itsm_tui.services import changes

FIXED = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
CHANGE_AT = datetime(2026, 3, 25, 22, 0, tzinfo=UTC)  # 23:00 in Berlin


@pytest.fixture
def desk(staff_sqlite, config):
    db, staff = staff_sqlite
    with db.session() as s:
        ref = changes.create_change(
            s,
            config,
            staff["net1"],
            change_type="normal",
            title="Swap the core switch",
            targets=["network"],
            start=CHANGE_AT,
            end=CHANGE_AT.replace(hour=23),
            implementation_plan="Swap it.",
            backout_plan="Swap back.",
            implementer="net1",
            now=FIXED,
        ).ref
    with db.session() as s:
        s.execute(text("UPDATE changes SET state = 'scheduled' WHERE ref = :ref"), {"ref": ref})
    return db, staff, ref


async def open_windows(pilot, app) -> WindowsScreen:
    await pilot.press("f3")
    await wait_until(
        pilot, lambda: isinstance(app.screen, CalendarScreen) and app.screen.up_to_date, "calendar"
    )
    await pilot.press("w")
    await wait_until(pilot, lambda: isinstance(app.screen, WindowsScreen) and app.screen.up_to_date, "lists")
    return app.screen


async def replace_text(pilot, value: str) -> None:
    await pilot.press("end", "ctrl+u")
    await type_into(pilot, value)


async def test_a_new_freeze_lists_what_it_blocks_saves_tells_and_is_deleted(desk, config):
    db, staff, ref = desk
    actor = replace(staff["chm"], timezone="Europe/Berlin")
    app = ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: FIXED)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_windows(pilot, app)
        assert shows(app, "Blackouts (change freezes), times in Europe/Berlin") and shows(
            app, "No blackouts."
        )
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, BlackoutForm), "the blackout form")
        form = app.screen
        assert isinstance(form, BlackoutForm)
        await type_into(pilot, "Spring freeze")
        await pilot.press("tab")
        await type_into(pilot, "network")
        await pilot.press("tab")
        await replace_text(pilot, "2026-03-25 00:00")
        await pilot.press("tab")
        await replace_text(pilot, "2026-03-26 00:00")
        await wait_until(
            pilot,
            lambda: (
                form.blocked is not None
                and form.preview_shown == form.preview_generation
                and [c.ref for c in form.blocked.blocked] == [ref]
            ),
            "the preview listing the change",
        )
        shown = screen_text(app)
        assert "It blocks 1 live change (times in Europe/Berlin):" in shown
        assert f"BLOCKED  {ref} scheduled  03-25 23:00-00:00 Swap the core switch" in shown
        with db.read_session() as s:
            assert s.scalar(select(Blackout.id)) is None  # nothing saved yet
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen and screen.up_to_date, "the list again")
        await wait_until(pilot, lambda: bool(screen.blackouts_table.rows), "the new row")
        assert shows(app, "Spring freeze") and shows(app, "2026-03-25 00:00")
        with db.read_session() as s:
            blackout = s.scalars(select(Blackout)).one()
            assert (blackout.name, blackout.service, blackout.created_by_id) == (
                "Spring freeze",
                "network",
                actor.id,
            )
            assert blackout.starts_at == datetime(2026, 3, 24, 23, 0, tzinfo=UTC)
            told = s.scalars(
                select(Notification.message)
                .join(User, User.id == Notification.user_id)
                .where(User.login == "net1", Notification.kind == "change_conflict")
            ).all()
        assert told == [
            f'{ref} is inside the change freeze "Spring freeze" (service network, 2026-03-24 23:00 to '
            f"2026-03-25 23:00 UTC); move it out of the freeze"
        ]
        # Edit it: the form holds what it is; shortened to end before the change, it blocks nothing.
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, BlackoutForm), "the edit form")
        edit = app.screen
        assert isinstance(edit, BlackoutForm) and edit.value("start") == "2026-03-25 00:00"
        for _ in range(3):
            await pilot.press("tab")
        await replace_text(pilot, "2026-03-25 12:00")
        await wait_until(
            pilot,
            lambda: (
                edit.blocked is not None
                and edit.preview_shown == edit.preview_generation
                and not edit.blocked.total
            ),
            "the preview without the change",
        )
        assert shows(app, "It blocks no live change.")
        await pilot.press("ctrl+s")
        await wait_until(
            pilot, lambda: app.screen is screen and screen.blackouts_table.rows[0].version == 2, "the edit"
        )
        # Delete it: the form names it, and Enter says yes.
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDelete), "the confirmation")
        assert shows(app, 'Delete the blackout "Spring freeze" (network, 2026-03-25 00:00 to')
        assert shows(app, "2026-03-25 12:00 Europe/Berlin)?")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen and screen.up_to_date, "the list again")
        await wait_until(pilot, lambda: not screen.blackouts_table.rows, "the row gone")
        with db.read_session() as s:
            assert s.scalar(select(Blackout.id)) is None
            assert s.scalar(
                select(AuditEvent.new_value).where(
                    AuditEvent.entity_type == "blackout", AuditEvent.action == "delete"
                )
            ).startswith("Spring freeze: network: ")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, CalendarScreen), "the calendar")


async def test_an_agent_sees_the_lists_but_no_key_that_writes(desk, config):
    db, staff, _ = desk
    with db.session() as s:
        changes.add_blackout(
            s,
            staff["chm"],
            name="Quarter close",
            start=datetime(2026, 3, 30, tzinfo=UTC),
            end=datetime(2026, 4, 1, tzinfo=UTC),
            config=config,
            now=FIXED,
        )
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False, clock=lambda: FIXED)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_windows(pilot, app)
        assert shows(app, "Quarter close")
        for action in ("new_blackout", "new_window", "edit", "delete"):
            assert screen.check_action(action, ()) is False
        await pilot.press("n", "e", "d")
        await settle(pilot)
        assert app.screen is screen
        footer = screen_text(app).splitlines()[-1]
        assert "Delete" not in footer and "Edit" not in footer


async def test_a_window_is_added_edited_and_deleted_by_keyboard(desk, config):
    db, staff, _ = desk
    app = ItsmApp(db, config, staff["chm"], run_scheduler=False, clock=lambda: FIXED)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_windows(pilot, app)
        await pilot.press("N")
        await wait_until(pilot, lambda: isinstance(app.screen, WindowForm), "the window form")
        await type_into(pilot, "Network nights")
        await pilot.press("tab")
        await type_into(pilot, "network")
        await pilot.press("tab")
        await replace_text(pilot, "FREQ=DAILY")
        await pilot.press("ctrl+s")  # opens 22:00 for 120 minutes in the viewer's zone, as offered
        await wait_until(
            pilot, lambda: app.screen is screen and bool(screen.windows_table.rows), "the new row"
        )
        assert shows(app, "Network nights") and shows(app, "FREQ=DAILY")
        await pilot.press("tab")  # to the windows' list
        assert screen.current() == screen.windows_table.rows[0]
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, WindowForm), "the window form")
        for _ in range(4):
            await pilot.press("tab")  # name, service, rule, opening time: to the minutes
        await replace_text(pilot, "90")
        await pilot.press("ctrl+s")
        await wait_until(
            pilot, lambda: app.screen is screen and screen.windows_table.rows[0].version == 2, "the edit"
        )
        with db.read_session() as s:
            window = s.scalars(select(MaintenanceWindow)).one()
            assert (window.rrule, window.start_local, window.duration_minutes, window.timezone) == (
                "FREQ=DAILY",
                "22:00",
                90,
                "UTC",
            )
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDelete), "the confirmation")
        assert shows(app, 'Delete the maintenance window "Network nights"')
        await pilot.press("y")
        await wait_until(
            pilot, lambda: app.screen is screen and not screen.windows_table.rows, "the row gone"
        )
        with db.read_session() as s:
            assert s.scalar(select(MaintenanceWindow.id)) is None


async def test_a_stale_blackout_edit_or_delete_takes_the_newer_version(desk, config):
    db, staff, _ = desk
    with db.session() as s:
        blackout_id = changes.add_blackout(
            s,
            staff["chm"],
            name="Spring freeze",
            service="network",
            start=datetime(2026, 3, 24, 23, 0, tzinfo=UTC),
            end=datetime(2026, 3, 25, 23, 0, tzinfo=UTC),
            config=config,
            now=FIXED,
        ).id

    def meanwhile(**kw) -> None:  # another console saves first
        with db.session() as s:
            changes.edit_blackout(s, staff["chm"], blackout_id, config=config, now=FIXED, **kw)

    actor = replace(staff["chm"], timezone="Europe/Berlin")
    app = ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: FIXED)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_windows(pilot, app)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, BlackoutForm), "the edit form")
        edit = app.screen
        assert isinstance(edit, BlackoutForm)
        meanwhile(name="Quarter freeze", reason="Finance close")
        for _ in range(3):  # to the end
            await pilot.press("tab")
        await replace_text(pilot, "2026-03-25 12:00")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: edit.newer_shown == 2, "the newer version taken in")
        assert app.screen is edit and edit.error_shown is not None
        assert f"blackout {blackout_id} was changed by Chm (chm) at 13:00:00 Europe/Berlin" in (
            edit.error_shown.message
        )
        assert "It has been reloaded underneath" in edit.error_shown.message
        assert (edit.value("name"), edit.value("reason")) == ("Quarter freeze", "Finance close")
        assert (edit.value("start"), edit.value("end")) == ("2026-03-25 00:00", "2026-03-25 12:00")
        await pilot.press("ctrl+s")  # again: on the newer version, what was typed over it
        await wait_until(pilot, lambda: app.screen is screen, "saved")
        with db.read_session() as s:
            blackout = s.get(Blackout, blackout_id)
            assert (blackout.version, blackout.name) == (3, "Quarter freeze")
            assert blackout.reason == "Finance close"
            assert blackout.ends_at == datetime(2026, 3, 25, 11, 0, tzinfo=UTC)
        await wait_until(
            pilot, lambda: screen.up_to_date and screen.blackouts_table.rows[0].version == 3, "the lists"
        )
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDelete), "the confirmation")
        confirm = app.screen
        assert isinstance(confirm, ConfirmDelete) and shows(app, "Quarter freeze")
        meanwhile(name="Renamed freeze")
        await pilot.press("enter")
        await wait_until(pilot, lambda: confirm.newer_shown == 1, "the newer blackout named")
        assert app.screen is confirm and shows(app, "Renamed freeze") and not shows(app, "Quarter freeze")
        await pilot.press("enter")  # the blackout as it is now
        await wait_until(pilot, lambda: app.screen is screen, "deleted")
        with db.read_session() as s:
            assert s.get(Blackout, blackout_id) is None


async def test_a_stale_window_edit_takes_the_newer_version(desk, config):
    db, staff, _ = desk
    with db.session() as s:
        window_id = changes.add_window(
            s,
            staff["chm"],
            name="Network nights",
            service="network",
            rrule="FREQ=DAILY",
            start_local="22:00",
            duration_minutes=120,
            timezone="UTC",
            config=config,
            now=FIXED,
        ).id
    app = ItsmApp(db, config, staff["chm"], run_scheduler=False, clock=lambda: FIXED)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_windows(pilot, app)
        await pilot.press("tab")  # to the windows' list
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, WindowForm), "the window form")
        form = app.screen
        assert isinstance(form, WindowForm)
        with db.session() as s:  # meanwhile, renamed elsewhere
            changes.edit_window(s, staff["chm"], window_id, config=config, name="Network late", now=FIXED)
        for _ in range(4):
            await pilot.press("tab")  # name, service, rule, opening time: to the minutes
        await replace_text(pilot, "90")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.newer_shown == 2, "the newer version taken in")
        assert app.screen is form and "at 12:00:00 UTC" in form.error_shown.message
        assert (form.value("name"), form.value("duration_minutes")) == ("Network late", "90")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is screen, "saved")
    with db.read_session() as s:
        window = s.get(MaintenanceWindow, window_id)
        assert (window.version, window.name, window.duration_minutes) == (3, "Network late", 90)
