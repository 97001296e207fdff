"""Snapshots of the queue and the ticket detail at 80x24 and 160x48, on a fixed demo and a fixed clock.

Update with ``pytest tests/test_screen_snapshots.py --snapshot-update`` after an intended change, and look
at the new SVG files under ``tests/__snapshots__/`` before committing them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pilot_helpers import settle, wait_until
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
    """Wait until the queue's rows and count and the unread count have loaded."""
    app = pilot.app
    await wait_until(
        pilot,
        lambda: isinstance(app.screen, QueueScreen) and app.screen.up_to_date and app.unread,
        "the queue and the unread count",
    )
    await settle(pilot)
    app.clear_notifications()  # the start-up toast of the unread ones (test_change_fit): the screen alone
    await pilot.pause()


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
        app = pilot.app
        app.open_ticket(ticket_id)
        await wait_until(
            pilot,
            lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None,
            "the ticket",
        )
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_every_snapshot_belongs_to_a_test():
    """A snapshot whose test is gone is reported (and removed by ``--snapshot-update``) by syrupy only when
    the suite runs in one process; on pytest-xdist workers, as it runs by default, this test reports it."""
    here = Path(__file__).parent
    for folder in sorted(p for p in (here / "__snapshots__").iterdir() if p.is_dir()):
        module = here / f"{folder.name}.py"
        assert module.is_file(), f"{folder} holds the snapshots of a test module that is gone"
        functions = ast.walk(ast.parse(module.read_text(encoding="utf-8")))
        tests = {f.name for f in functions if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)}
        for snapshot in sorted(folder.iterdir()):
            test = snapshot.name.removesuffix(".svg").split("[")[0]
            assert test in tests, f"{snapshot} is left from a test that is gone"
