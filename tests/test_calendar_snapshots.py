"""Snapshots of the change calendar at 80x24: the month and the week of the clashing network changes.

Deterministic: a fixed data set (tests/calendar_data.py), a fixed clock, no scheduler, and each snapshot is
taken only once the calendar and the unread count have loaded. Update with ``pytest --snapshot-update``
after checking the new pictures.
"""

from __future__ import annotations

import pytest
from calendar_data import FIXED, build_calendar
from pilot_helpers import settle, wait_until
from sqlalchemy import func, select

from itsm_tui.app import ItsmApp
from itsm_tui.models import Notification
from itsm_tui.screens.calendar import CalendarScreen


@pytest.fixture
def calendar_app(staff_sqlite, config):
    db, staff = staff_sqlite
    build_calendar(db, config, staff)
    actor = staff["cab1"]
    with db.read_session() as s:
        unread = s.scalar(
            select(func.count()).where(Notification.user_id == actor.id, Notification.read_at.is_(None))
        )
    return ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: FIXED), unread


def calendar_after(app: ItsmApp, unread: int, *keys: str):
    """A ``run_before`` that opens the calendar, presses ``keys`` and waits until it and the unread count
    have loaded."""

    async def run_before(pilot) -> None:
        await pilot.press("f3")
        for key in keys:
            await pilot.press(key)

        def loaded() -> bool:
            screen = app.screen
            return isinstance(screen, CalendarScreen) and screen.up_to_date and app.unread == unread

        await wait_until(pilot, loaded, "the calendar and the unread count")
        await settle(pilot)
        app.clear_notifications()  # the start-up toast of the unread ones (test_change_fit): not pictured
        await pilot.pause()

    return run_before


def test_month_view(snap_compare, calendar_app):
    app, unread = calendar_app
    # Saturday 21 March selected: two changes clash on core-sw-01 inside the network window.
    assert snap_compare(app, terminal_size=(80, 24), run_before=calendar_after(app, unread, "right"))


def test_week_view(snap_compare, calendar_app):
    app, unread = calendar_app
    assert snap_compare(app, terminal_size=(80, 24), run_before=calendar_after(app, unread, "right", "2"))
