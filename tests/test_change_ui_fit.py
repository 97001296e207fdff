"""scratch"""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from pilot_helpers import screen_text, wait_until

from itsm_tui.app import ItsmApp
from itsm_tui.screens.calendar import CalendarScreen
from itsm_tui.screens.change_windows import WindowsScreen
from itsm_tui.services import changes

FIXED = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


async def test_scratch(staff_sqlite, config):
    db, staff = staff_sqlite
    with db.session() as s:
        changes.add_window(s, staff["chm"], name="CRM Friday nights", service="crm", rrule="FREQ=WEEKLY;BYDAY=FR",
                           start_local="23:00", duration_minutes=120, timezone="America/New_York", config=config, now=FIXED)
        changes.add_blackout(s, staff["chm"], name="Quarter close", start=datetime(2026, 3, 30, tzinfo=UTC),
                             end=datetime(2026, 4, 1, tzinfo=UTC), config=config, now=FIXED)
    actor = replace(staff["chm"], timezone="Europe/Berlin")
    for size in ((80, 24), (100, 30), (120, 30)):
        app = ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: FIXED)
        async with app.run_test(size=size) as pilot:
            await pilot.press("f3")
            await wait_until(pilot, lambda: isinstance(app.screen, CalendarScreen) and app.screen.up_to_date)
            await pilot.press("w")
            await wait_until(pilot, lambda: isinstance(app.screen, WindowsScreen) and app.screen.up_to_date)
            print(screen_text(app))
            await pilot.press("tab")
            await wait_until(pilot, lambda: True)
            print(screen_text(app))
