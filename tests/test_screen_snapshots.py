"""Snapshots of the queue and the ticket detail at 80x24 and 160x48, on a fixed demo and a fixed clock.

Update with ``pytest tests/test_screen_snapshots.py --snapshot-update`` after an intended change, and look
at the new SVG files under ``tests/__snapshots__/`` before committing them.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from itsm_tui.app import ItsmApp
from itsm_tui.models import Ticket
from itsm_tui.screens.queue import QueueScreen
from itsm_tui.screens.ticket import TicketScreen

SIZES = [(80, 24), (160, 48)]


@pytest.fixture
def app(demo_copy, demo_anchor, config):
    db, actor = demo_copy(1500, 3)
    return ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: demo_anchor)


async def _queue_ready(pilot) -> None:
    for _ in range(400):
        await pilot.pause(0.03)
        screen = pilot.app.screen
        if isinstance(screen, QueueScreen) and screen.up_to_date and pilot.app.unread:
            break
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_queue(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size, run_before=_queue_ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_ticket_detail(snap_compare, app, size):
    with app.db.read_session() as session:  # an open incident with a timeline: the first assigned one
        ticket_id = session.scalar(
            select(Ticket.id)
            .where(Ticket.status == "in_progress", Ticket.kind == "incident")
            .order_by(Ticket.id)
        )

    async def run_before(pilot) -> None:
        await _queue_ready(pilot)
        pilot.app.open_ticket(ticket_id)
        for _ in range(400):
            await pilot.pause(0.03)
            screen = pilot.app.screen
            if isinstance(screen, TicketScreen) and screen.detail is not None:
                break
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
