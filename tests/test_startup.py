"""The console's start-up: what it imports on SQLite before its first queue rows, and that it still refuses
a database whose schema it does not know before showing anything."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from pilot_helpers import settle, wait_until
from sqlalchemy.schema import CreateIndex
from textual.widgets._footer import FooterKey
from ticket_helpers import new_ticket

from itsm_tui.app import ItsmApp
from itsm_tui.cli import main
from itsm_tui.db import Database
from itsm_tui.models import Ticket
from itsm_tui.screens.common import DeskFooter
from itsm_tui.screens.queue import FOREVER, QueueScreen, SlaCells, sla_cell, sla_cell_until
from itsm_tui.services.queue import QueueRow

# Modules an SQLite console has no use for before its first rows (or at all).
NOT_ON_SQLITE = ("sqlalchemy.dialects.postgresql", "psycopg")  # psycopg, psycopg_pool, ...
# The other top-level screens and help, loaded when first shown; the scheduler and its jobs, set up after
# the rows.
NOT_BEFORE_SHOWN = (
    "itsm_tui.screens.kpi",
    "itsm_tui.screens.calendar",
    "itsm_tui.screens.workload",
    "itsm_tui.screens.help",
    "itsm_tui.scheduler",
    "itsm_tui.jobs",
    "apscheduler",
)

# One fresh interpreter: the console's start-up as `itsm` does it (configuration, the database opened, its
# schema checked and catalog synchronised, the user), the app run until the queue's first page is read.
FIRST_FRAME = """
import asyncio, json, sys
from pilot_helpers import wait_until
from itsm_tui.app import ItsmApp
from itsm_tui.config import load_config
from itsm_tui.db import open_database
from itsm_tui.screens.queue import QueueScreen
from itsm_tui.services.users import resolve_actor

async def first_frame():
    config = load_config()
    db = open_database(sys.argv[1], config, create=False)
    with db.read_session() as session:
        actor = resolve_actor(session, "agent1")
    app = ItsmApp(db, config, actor)
    app.SCHEDULER_DELAY = app.SCHEDULER_SETUP = 60.0  # set up after the first rows, however slow they are
    async with app.run_test(size=(80, 24)) as pilot:
        def read():
            screen = app.screen
            return isinstance(screen, QueueScreen) and screen.table.window is not None
        await wait_until(pilot, read, "the queue's first page")
        loaded = sorted(sys.modules)
        await pilot.press("ctrl+q")
    db.dispose()
    print(json.dumps(loaded))

asyncio.run(first_frame())
"""


def test_an_sqlite_console_loads_no_postgresql_no_other_screen_and_no_scheduler_before_its_rows(staff_sqlite):
    db, _ = staff_sqlite
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run(
        [sys.executable, "-c", FIRST_FRAME, db.url], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "itsm_tui.screens.queue" in loaded  # it did get to the queue
    unwanted = {name for name in loaded if name.startswith(NOT_ON_SQLITE + NOT_BEFORE_SHOWN)}
    assert unwanted == set()


def test_the_partial_indexes_keep_their_conditions_on_both_databases(pg_url):
    """The PostgreSQL condition of a partial index, given to it at the first PostgreSQL connection, is the
    one the migrations wrote (``WHERE is_open``); SQLite's is there from the start."""
    index = next(ix for ix in Ticket.__table__.indexes if ix.name == "ix_tickets_open_due")
    sqlite = Database.connect("sqlite://")
    try:
        ddl = str(CreateIndex(index).compile(dialect=sqlite.engine.dialect))
    finally:
        sqlite.dispose()
    assert ddl.endswith("WHERE is_open = 1")
    pg = Database.connect(pg_url)
    try:
        with pg.engine.connect() as conn:
            ddl = str(CreateIndex(index).compile(dialect=conn.dialect))
    finally:
        pg.dispose()
    assert ddl.endswith("WHERE is_open")


@pytest.mark.parametrize("revision", ["0001", "9999"])
def test_a_console_on_a_schema_it_does_not_know_refuses_in_one_line(staff_sqlite, capsys, revision):
    """Nothing of the console starts on an older or newer schema: one line, exit 2."""
    db, _ = staff_sqlite
    path = db.url.removeprefix("sqlite:///")
    db.dispose()
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    assert main(["--db", path]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"schema revision {revision}" in err
    assert ("upgrade it with" if revision == "0001" else "newer than this program") in err


# ------------------------------------------------------------------ the first page, read before the app


async def test_the_first_page_read_before_the_app_is_shown_in_the_first_frame_and_only_for_its_query(
    staff_sqlite, config, monkeypatch
):
    """``itsm`` reads the queue's first page before the app starts: the queue shows it without reading
    the page again, counts it, and keeps it only for the query it opens with (another person's, or a
    view it does not open on, is read anew)."""
    from itsm_tui.services import queue

    db, staff = staff_sqlite
    refs = [new_ticket(db, config, staff["lead"], title=f"Printer {n}") for n in range(3)]
    now = datetime.now(UTC)
    assert queue.default_view(staff["agent1"]) == "my_work"  # an agent in a group opens on their own work
    assert queue.default_view(staff["lead"]) == queue.default_view(staff["admin1"]) == "all_open"
    with db.read_session() as session:
        first = queue.first_rows(session, staff["lead"], now)
        theirs = queue.first_rows(session, staff["admin1"], now)  # the same view, another person's query
    assert sorted(row.ref for row in first.window.pages[0]) == sorted(refs)
    reads: list[str] = []
    fetch_page = queue.fetch_page

    def counting(session, query, **plan):
        reads.append(query.view)
        return fetch_page(session, query, **plan)

    monkeypatch.setattr(queue, "fetch_page", counting)
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False, first_rows=first)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.up_to_date)
        screen = app.screen
        assert isinstance(screen, QueueScreen)
        assert screen.table.window is first.window and screen.table.window.total == 3
        assert reads == [] and app.first_rows is None
    # Another person's page is not shown to this one: the queue reads its own.
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False, first_rows=theirs)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.up_to_date)
        assert app.screen.table.window is not theirs.window
        assert reads == ["all_open"]


# ------------------------------------------------------------------ paint


async def test_the_footer_makes_its_keys_once_at_start_up_and_again_for_a_new_width(staff_sqlite, config):
    """Its keys are born in the footer's style (none restyles itself as it mounts), made once however often
    the screen's focus and size settle at start-up, and made again when the terminal's width changes."""
    db, staff = staff_sqlite
    restyled: list[str] = []
    made: list[int] = []

    class Counting(ItsmApp):
        def update_styles(self, node=None, animate: bool = True) -> None:
            if isinstance(node, FooterKey):
                restyled.append(node.key)
            super().update_styles(node, animate)

    compose = DeskFooter.compose

    def counting_compose(footer: DeskFooter):
        if footer._bindings_ready:
            made.append(footer.size.width)
        return compose(footer)

    app = Counting(db, config, staff["agent1"], run_scheduler=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DeskFooter, "compose", counting_compose)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.table.window)
            await settle(pilot)
            assert made == [80]
            assert restyled == []
            await pilot.resize_terminal(120, 24)
            await wait_until(pilot, lambda: made[-1] == 120, "the footer made for 120 columns")
            assert app.screen.query_one(DeskFooter).query(FooterKey)


def _row(due: datetime | None, warn: datetime | None = None, paused: datetime | None = None) -> QueueRow:
    opened = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    return QueueRow(
        id=1,
        ref="INC0000001",
        priority=3,
        status="assigned",
        title="printer",
        requester="r",
        group=None,
        assignee=None,
        service=None,
        opened_at=opened,
        updated_at=opened,
        resolved_at=None,
        resolution_warn_at=warn,
        resolution_due_at=due,
        paused_at=paused,
        sla_due_at=due,
        sla_on_response=False,
        response_warn_at=None,
    )


NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_an_sla_cell_holds_until_its_next_minute_its_warning_or_forever():
    at = partial(datetime, 2026, 11, 20, tzinfo=UTC)
    # 2h30m30s left: "2h30m" until 150 whole minutes are left, at 12:00:30.
    assert sla_cell_until(_row(at(14, 30, 30)), NOON) == at(12, 0, 30)
    # ... unless it turns to a warning first.
    assert sla_cell_until(_row(at(14, 30, 30), warn=at(12, 0, 10)), NOON) == at(12, 0, 10)
    # 100 s overdue ("-0h01m"): "-0h02m" once 120 s are, at 12:00:20.
    assert sla_cell_until(_row(at(11, 58, 20)), NOON) == at(12, 0, 20)
    # Due this very instant: overdue the next.
    assert sla_cell_until(_row(NOON), NOON) == NOON + timedelta(microseconds=1)
    assert sla_cell_until(_row(at(14, 0), paused=at(11, 0)), NOON) == FOREVER
    assert sla_cell_until(_row(None), NOON) == FOREVER


def test_the_sla_cells_are_made_again_only_when_they_change(monkeypatch):
    made: list[datetime] = []

    def counting(row: QueueRow, now: datetime) -> tuple[str, str]:
        made.append(now)
        return sla_cell(row, now)

    monkeypatch.setattr("itsm_tui.screens.queue.sla_cell", counting)
    cells = SlaCells()
    due = datetime(2026, 11, 20, 14, 30, 30, tzinfo=UTC)
    assert cells.cell(_row(due), NOON) == ("    2h30m", "green")
    # The same values re-read (another row object): the cell kept, until 12:00:30.
    assert cells.cell(_row(due), NOON + timedelta(seconds=29)) == ("    2h30m", "green")
    assert made == [NOON]
    assert cells.cell(_row(due), NOON + timedelta(seconds=31)) == ("    2h29m", "green")
    # A clock set back (a test's, or the system's) is no reason to show a later cell.
    assert cells.cell(_row(due), NOON - timedelta(minutes=1)) == ("    2h31m", "green")
    assert len(made) == 3


def test_the_ticket_services_import_each_name_from_the_module_the_type_checker_is_shown():
    """The package's names are imported on first use (``_MODULE_OF``); the type checker sees them in its
    ``if TYPE_CHECKING:`` imports. The two lists, and ``__all__``, name the same things from the same
    modules, and each name comes out as the object its module defines."""
    import ast
    import importlib

    from itsm_tui.services import tickets

    tree = ast.parse(Path(tickets.__file__).read_text(encoding="utf-8"))
    (block,) = [node for node in tree.body if isinstance(node, ast.If)]
    shown = {
        alias.name: imported.module.rsplit(".", 1)[1]
        for imported in block.body
        if isinstance(imported, ast.ImportFrom) and imported.module
        for alias in imported.names
    }
    assert shown == tickets._MODULE_OF
    assert sorted(tickets.__all__) == sorted(shown)
    for name, module in shown.items():
        defined = getattr(importlib.import_module(f"itsm_tui.services.tickets.{module}"), name)
        assert getattr(tickets, name) is defined, name
