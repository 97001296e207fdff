"""Faults injected under an open console: it says what happened in the desk's words, keeps what the agent
typed, and recovers by itself once the database works again.

A write lock is held by another process (SQLite: ``BEGIN IMMEDIATE`` in a child python); a database that
cannot be reached is an engine whose new connections are refused while a switch is on (the driver's own
error, raised where the driver would connect), on SQLite and PostgreSQL; a scheduler job raises.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pilot_helpers import Toasts, screen_text, settle, type_text, wait_until
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from itsm_tui.app import ItsmApp
from itsm_tui.db import Database
from itsm_tui.models import Ticket
from itsm_tui.screens.common import StatusLine, failure_message
from itsm_tui.screens.forms import NewTicketForm
from itsm_tui.screens.ticket import TicketScreen

SIZE = (120, 40)
TECHNICAL = ("sqlalchemy", "SELECT", "INSERT", "Background on this error", "sqlalche.me", "OperationalError")


def status(app: ItsmApp) -> str:
    return str(app.screen.query_one(StatusLine).render())


@pytest.fixture
def no_watcher(monkeypatch: pytest.MonkeyPatch) -> None:
    """The notification watcher never runs: whatever clears the unreachable flag is the console's other
    database work, not the watcher's own checks."""
    monkeypatch.setattr("itsm_tui.push.NotificationWatcher.start", lambda self: None)
    monkeypatch.setattr("itsm_tui.push.NotificationWatcher.stop", lambda self: None)


def short_busy_timeout(db: Database, milliseconds: int) -> None:
    """New connections wait ``milliseconds`` for a lock (not the console's 30 s); the pool starts over."""

    @event.listens_for(db.engine, "connect")
    def _shorter(dbapi_connection, _record) -> None:  # after the engine's own PRAGMAs
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={milliseconds}")
        cursor.close()

    db.engine.dispose()


LOCK_HOLDER = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    sys.stdin.readline()
    conn.execute("COMMIT")
    conn.close()
    print("released", flush=True)
    """
)


@pytest.fixture
def lock_holder(staff_sqlite) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the SQLite file's write lock until a line is written to its stdin."""
    db, _ = staff_sqlite
    path = make_url(db.url).database
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    yield holder
    if holder.poll() is None:
        holder.kill()
    holder.wait(10)


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"
    assert holder.wait(10) == 0


# --------------------------------------------------------------------------- a write lock during a save


async def test_a_save_under_another_process_lock_says_busy_keeps_the_text_and_saves_once_released(
    staff_sqlite, config, lock_holder, monkeypatch, caplog
):
    db, staff = staff_sqlite
    short_busy_timeout(db, 300)
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        toasts = Toasts(app, monkeypatch)
        await settle(pilot)
        app.new_ticket()  # as the queue's "n" does: the created ticket opens
        await wait_until(pilot, lambda: isinstance(app.screen, NewTicketForm), "the NewTicketForm")
        form = app.screen
        assert isinstance(form, NewTicketForm)
        await type_text(pilot, "Printer on fire")
        await pilot.press("tab")
        await type_text(pilot, "Rita Requester")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.error_shown is not None, "the failed save to show")
        await settle(pilot)

        assert form.is_current  # still open, with what was typed
        assert form.text_of("title") == "Printer on fire"
        assert form.text_of("requester") == "Rita Requester"
        for word in TECHNICAL:
            assert not [toast for toast in toasts.shown if word.lower() in toast.lower()], toasts.shown
        shown = screen_text(app)
        assert any(
            toast.startswith("The database is busy: another program holds it") for toast in toasts.shown
        )
        assert app.connected  # a lock is no lost database
        assert "UNREACHABLE" not in shown
        # the technical detail is in the log, not on the screen
        assert any("database is locked" in record.getMessage() for record in caplog.records)

        release(lock_holder)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the created ticket to open")
    with db.read_session() as session:
        titles = session.scalars(select(Ticket.title)).all()
    assert titles == ["Printer on fire"]


async def test_a_save_under_another_process_lock_shows_no_sql_anywhere_on_the_screen(
    staff_sqlite, config, lock_holder
):
    db, staff = staff_sqlite
    short_busy_timeout(db, 300)
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        app.push_screen(NewTicketForm())
        await wait_until(pilot, lambda: isinstance(app.screen, NewTicketForm), "the NewTicketForm")
        form = app.screen
        assert isinstance(form, NewTicketForm)
        await type_text(pilot, "Printer on fire")
        await pilot.press("tab")
        await type_text(pilot, "Rita Requester")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.error_shown is not None, "the failed save to show")
        await settle(pilot)
        shown = screen_text(app)
        release(lock_holder)
    for word in TECHNICAL:
        assert word.lower() not in shown.lower(), f"{word!r} shown: {shown}"


async def test_a_save_the_database_was_too_busy_for_is_retried_by_itself_once_released(
    staff_sqlite, config, lock_holder, monkeypatch
):
    """No key pressed after the first ctrl+s: the form tries again every BUSY_RETRY_SECONDS, the agent is
    told once, and the ticket is saved exactly once after the lock is let go."""
    db, staff = staff_sqlite
    short_busy_timeout(db, 200)
    monkeypatch.setattr(NewTicketForm, "BUSY_RETRY_SECONDS", 0.2)
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        toasts = Toasts(app, monkeypatch)
        await settle(pilot)
        app.new_ticket()
        await wait_until(pilot, lambda: isinstance(app.screen, NewTicketForm), "the NewTicketForm")
        form = app.screen
        assert isinstance(form, NewTicketForm)
        await type_text(pilot, "Printer on fire")
        await pilot.press("tab")
        await type_text(pilot, "Rita Requester")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.busy_tries >= 3, "three tries under the lock")
        assert form.error_shown is not None and "retrying by itself" in form.error_shown and form.is_current
        assert form.text_of("title") == "Printer on fire"
        busy_toasts = [t for t in toasts.shown if t.startswith("The database is busy")]
        assert len(busy_toasts) == 1, toasts.shown  # told once, not at every try
        release(lock_holder)
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the retried save to land")
    with db.read_session() as session:
        assert session.scalars(select(Ticket.title)).all() == ["Printer on fire"]


async def test_escape_stops_the_retrying_and_nothing_is_saved(staff_sqlite, config, lock_holder, monkeypatch):
    db, staff = staff_sqlite
    short_busy_timeout(db, 200)
    monkeypatch.setattr(NewTicketForm, "BUSY_RETRY_SECONDS", 0.2)
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        app.new_ticket()
        await wait_until(pilot, lambda: isinstance(app.screen, NewTicketForm), "the NewTicketForm")
        form = app.screen
        assert isinstance(form, NewTicketForm)
        await type_text(pilot, "Printer on fire")
        await pilot.press("tab")
        await type_text(pilot, "Rita Requester")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.busy_tries >= 1 and not form.saving, "a busy try")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not form.is_attached, "the form to close")
        release(lock_holder)
        await pilot.pause(0.6)  # three retry periods: none may come
    with db.read_session() as session:
        assert session.scalars(select(Ticket.title)).all() == []


# --------------------------------------------------------------------------- unreachable, then back


class RefusedConnections:
    """While ``refusing``, every new connection of the engine fails with the driver's own error, the way a
    stopped server or a missing file fails; the pool is emptied so that the next read must connect."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.refusing = False
        self.refused = 0
        event.listen(db.engine, "do_connect", self._connect)

    def _connect(self, dialect, _record, _cargs, _cparams):
        if not self.refusing:
            return None  # the dialect connects as usual
        self.refused += 1
        if dialect.name == "postgresql":
            import psycopg

            raise psycopg.OperationalError('connection to server at "127.0.0.1", port 5432 failed: refused')
        import sqlite3

        raise sqlite3.OperationalError("unable to open database file")

    def refuse(self) -> None:
        self.refusing = True
        self.db.engine.dispose()

    def allow(self) -> None:
        self.refusing = False


async def test_the_unreachable_flag_clears_after_a_later_successful_screen_read(
    db, config, staff, no_watcher, monkeypatch
):
    failing = RefusedConnections(db)
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        toasts = Toasts(app, monkeypatch)
        await settle(pilot)
        assert app.connected
        failing.refuse()
        await pilot.press("4")  # a screen read: all open tickets
        await wait_until(pilot, lambda: not app.connected, "the failed read to mark the database unreachable")
        await settle(pilot)
        assert failing.refused >= 1
        assert "DATABASE UNREACHABLE - retrying" in status(app)
        assert "The database cannot be reached; retrying." in toasts.shown
        shown = screen_text(app)
        for word in TECHNICAL:
            assert word.lower() not in shown.lower(), f"{word!r} shown: {shown}"

        failing.allow()
        await pilot.press("1")  # the next read works
        await wait_until(pilot, lambda: app.connected, "a successful read to clear the flag")
        await settle(pilot)
        assert "UNREACHABLE" not in status(app)
        assert app.is_running


async def test_the_unreachable_flag_clears_after_a_successful_app_read(db, config, staff, no_watcher):
    failing = RefusedConnections(db)
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        failing.refuse()
        app.refresh_unread()
        await wait_until(
            pilot, lambda: not app.connected, "the failed count to mark the database unreachable"
        )
        await settle(pilot)
        app.refresh_unread()  # still refused: still unreachable
        await settle(pilot)
        assert not app.connected
        failing.allow()
        app.refresh_unread()
        await wait_until(pilot, lambda: app.connected, "the count that went through to clear the flag")


async def test_a_worker_that_read_no_table_does_not_say_the_database_is_back(db, config, staff, no_watcher):
    """A form's preview (no session at all) succeeding while the database is lost proves nothing: the flag
    stays until database work ends well."""
    from textual import work

    from itsm_tui.screens.queue import QueueScreen

    failing = RefusedConnections(db)
    app = ItsmApp(db, config, staff["lead"], run_scheduler=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        failing.refuse()
        app.refresh_unread()
        await wait_until(pilot, lambda: not app.connected, "the failed count to mark the database lost")
        screen = app.screen
        assert isinstance(screen, QueueScreen)

        @work(thread=True)
        def no_database(_screen: QueueScreen) -> int:  # what a preview does: reads no table
            return 42

        worker = no_database(screen)
        await wait_until(pilot, lambda: worker.is_finished, "the worker to end")
        await settle(pilot)
        assert not app.connected  # its success was forwarded, and ignored
        failing.allow()
        app.refresh_unread()
        await wait_until(pilot, lambda: app.connected, "a read that went through to clear the flag")


# --------------------------------------------------------------------------- scheduler jobs


class FlakyScan:
    """Stands in for the SLA scan: raises the queued errors, one a run, then runs the real scan."""

    def __init__(self, errors: list[Exception]) -> None:
        from itsm_tui.jobs import sla_scan

        self.real = sla_scan.scan
        self.errors = errors
        self.runs = 0

    def __call__(self, db: Database, config):
        self.runs += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.real(db, config)


def run_scan_now(app: ItsmApp) -> None:
    assert app.scheduler is not None
    job = app.scheduler.get_job("sla-scan")
    assert job is not None
    job.modify(next_run_time=datetime.now(UTC))


async def test_a_console_runs_no_jobs_where_sla_toml_leaves_them_to_scheduler_hosts(
    staff_sqlite, config, no_watcher, monkeypatch
):
    """jobs_in_consoles = false: the console sets up no scheduler, so the SLA scan never runs in it."""
    from dataclasses import replace

    from itsm_tui.screens.queue import QueueScreen

    db, staff = staff_sqlite
    scan = FlakyScan([])
    monkeypatch.setattr("itsm_tui.jobs.sla_scan.scan", scan)
    app = ItsmApp(db, replace(config, jobs_in_consoles=False), staff["lead"])
    app.SCHEDULER_DELAY = app.SCHEDULER_SETUP = 0.05
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, QueueScreen), "the queue")
        await pilot.pause(0.5)
        assert app.scheduler is None and scan.runs == 0
    # The same console with the shipped setting runs it.
    app = ItsmApp(db, config, staff["lead"])
    app.SCHEDULER_DELAY = app.SCHEDULER_SETUP = 0.05
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: scan.runs > 0, "the SLA scan in the console")


async def test_a_failing_scheduler_job_shows_in_the_status_line_until_it_succeeds(
    staff_sqlite, config, no_watcher, monkeypatch, caplog
):
    from sqlalchemy.exc import OperationalError

    db, staff = staff_sqlite
    lost = OperationalError("SELECT tickets.id FROM tickets", {}, Exception("server closed the connection"))
    scan = FlakyScan([RuntimeError("a fault in the scan"), lost])
    monkeypatch.setattr("itsm_tui.jobs.sla_scan.scan", scan)
    app = ItsmApp(db, config, staff["lead"])
    app.SCHEDULER_DELAY = 0.05
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: scan.runs >= 1, "the first scan")
        await wait_until(
            pilot, lambda: "SLA scan failing, see the log" in status(app), "the fault in the line"
        )
        assert app.connected  # a fault of the program is no lost database
        assert any(record.exc_info and "SLA scan failed" in record.getMessage() for record in caplog.records)

        run_scan_now(app)  # the database is lost: the line's own warning, and the fault is gone
        await wait_until(pilot, lambda: scan.runs >= 2, "the second scan")
        await wait_until(pilot, lambda: not app.connected, "the lost database to show")
        line = status(app)
        assert "DATABASE UNREACHABLE - retrying" in line
        assert "SLA scan" not in line
        assert "SELECT" not in screen_text(app)

        run_scan_now(app)  # the real scan goes through: all clear
        await wait_until(pilot, lambda: scan.runs >= 3, "the third scan")
        await wait_until(pilot, lambda: app.connected, "the good run to clear the flag")
        line = status(app)
        assert "UNREACHABLE" not in line and "SLA scan" not in line


async def test_a_job_waiting_on_a_lock_names_the_job_not_a_lost_database(
    staff_sqlite, config, no_watcher, monkeypatch
):
    from sqlalchemy.exc import OperationalError

    db, staff = staff_sqlite
    busy = OperationalError("UPDATE tickets SET x=1", {}, Exception("database is locked"))
    scan = FlakyScan([busy])
    monkeypatch.setattr("itsm_tui.jobs.sla_scan.scan", scan)
    app = ItsmApp(db, config, staff["lead"])
    app.SCHEDULER_DELAY = 0.05
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "SLA scan database busy" in status(app), "the busy job in the line")
        assert app.connected
        run_scan_now(app)
        await wait_until(pilot, lambda: scan.runs >= 2, "the second scan")
        await wait_until(pilot, lambda: "SLA scan" not in status(app), "the good run to clear the line")


# --------------------------------------------------------------------------- the one translation


def test_failure_messages_are_the_desks_words():
    from sqlalchemy.exc import IntegrityError, OperationalError

    class PgLockError(Exception):
        sqlstate = "55P03"

    locked = OperationalError("INSERT INTO tickets VALUES (?)", {}, Exception("database is locked"))
    pg_lock = OperationalError("UPDATE tickets SET x=1", {}, PgLockError("canceling statement"))
    gone = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    bug = IntegrityError("INSERT INTO tickets VALUES (?)", {}, Exception("UNIQUE constraint failed"))
    assert failure_message(locked) == (
        "The database is busy: another program holds it; try again in a moment. Your text is kept."
    )
    assert failure_message(pg_lock) == failure_message(locked)
    assert failure_message(gone) == "The database cannot be reached; retrying."
    assert failure_message(bug) is None  # a fault of the program: logged, not blamed on the database
    assert failure_message(RuntimeError("database is locked")) is None
