"""Snapshots of the KPI board's three tabs at 120x40 on a fixed demo data set and a fixed clock.

Update with ``pytest tests/test_kpi_snapshots.py --snapshot-update`` after an intended change of the board,
and look at the new SVG files under ``tests/__snapshots__/`` before committing them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pilot_helpers import settle, wait_until

from itsm_tui.app import ItsmApp
from itsm_tui.screens.kpi import KpiScreen
from itsm_tui.services import notifications

FIXED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SIZE = (120, 40)


@pytest.fixture
def app(demo_copy, config):
    db, actor = demo_copy(1500, 3)
    return ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: FIXED)


def board_on(tab_key: str):
    """A ``run_before`` that opens the board, waits for its first load and the unread count, shows a tab."""

    async def run_before(pilot) -> None:
        app = pilot.app
        with app.db.read_session() as s:
            unread = notifications.unread_count(s, app.actor.id)
        await pilot.press("f4")

        def loaded() -> bool:
            screen = app.screen
            return isinstance(screen, KpiScreen) and screen.loads >= 1 and app.unread == unread

        await wait_until(pilot, loaded, "the KPI board and the unread count")
        await pilot.press(tab_key)
        await settle(pilot)
        app.clear_notifications()  # the start-up toast of the unread ones (test_change_fit): the board alone
        await pilot.pause()

    return run_before


def test_operational_tab(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE, run_before=board_on("o"))


def test_management_tab(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE, run_before=board_on("n"))


def test_strategic_tab(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE, run_before=board_on("s"))
