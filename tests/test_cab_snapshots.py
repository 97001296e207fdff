"""Snapshots of the CAB agenda at 80x24 and 160x48: the meeting of Tuesday 24 March 2026 with the three
changes carried over from the 10th (the calendar's data, tests/calendar_data.py), the first one selected.

Deterministic: fixed data, a fixed clock, no scheduler; each snapshot is taken once the agenda and the unread
count have loaded. Update with ``pytest --snapshot-update`` after checking the new pictures.
"""

from __future__ import annotations

import pytest
from calendar_data import FIXED
from pilot_helpers import settle, wait_until
from sqlalchemy import func, select
from test_cab_screen import TUE_24, agenda_shown, build_cab

from itsm_tui.app import ItsmApp
from itsm_tui.models import Notification
from itsm_tui.screens.calendar import CalendarScreen


@pytest.fixture
def cab_app(staff_sqlite, config):
    db, staff = staff_sqlite
    build_cab(db, config, staff)
    actor = staff["cab1"]
    with db.read_session() as s:
        unread = s.scalar(
            select(func.count()).where(Notification.user_id == actor.id, Notification.read_at.is_(None))
        )
    return ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: FIXED), unread


def agenda_after(app: ItsmApp, unread: int):
    async def run_before(pilot) -> None:
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, CalendarScreen) and app.screen.up_to_date)
        await pilot.press("C")
        await wait_until(pilot, lambda: agenda_shown(app, TUE_24) and app.unread == unread, "the agenda")
        app.clear_notifications()  # the start-up toast of unread notifications, which would cover the hints
        await settle(pilot)

    return run_before


def test_agenda_80x24(snap_compare, cab_app):
    app, unread = cab_app
    assert snap_compare(app, terminal_size=(80, 24), run_before=agenda_after(app, unread))


def test_agenda_160x48(snap_compare, cab_app):
    app, unread = cab_app
    assert snap_compare(app, terminal_size=(160, 48), run_before=agenda_after(app, unread))
