"""The SLA job on APScheduler: in the console at start-up (catching up) and headless."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from itsm_tui.app import ItsmApp
from itsm_tui.models import Ticket
from itsm_tui.scheduler import JOB_ID, make_scheduler
from itsm_tui.services import tickets


def breached_ticket(db, config, actor) -> str:
    """A P1 opened yesterday and never touched: both targets passed while no scheduler ran."""
    with db.session() as s:
        return tickets.create_ticket(
            s,
            config,
            actor,
            title="Core switch down",
            requester="NOC",
            impact="high",
            urgency="high",
            service="workplace",
            opened_at=datetime.now(UTC) - timedelta(days=1),
        ).ref


def breaches(db) -> int:
    with db.read_session() as s:
        return s.scalar(select(func.count()).where(Ticket.resolution_breached_at.is_not(None))) or 0


async def test_job_settings(db, config):
    scheduler = make_scheduler(db, config)
    scheduler.start(paused=True)
    try:
        job = scheduler.get_job(JOB_ID)
        assert job.max_instances == 1 and job.coalesce is True
        assert job.trigger.interval == timedelta(seconds=config.scan_interval_seconds)
    finally:
        scheduler.shutdown(wait=False)


async def test_console_catches_up_when_it_starts_and_tells_the_shift_lead(sqlite_url, config, staff_sqlite):
    db, staff = staff_sqlite
    ref = breached_ticket(db, config, staff["agent1"])
    app = ItsmApp(db, config, staff["lead"])
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        # the lead heard of the P1 as a major incident when it was logged; the catch-up adds the breaches
        for _ in range(200):
            await pilot.pause(0.05)
            if app.unread >= 2:
                break
        assert breaches(db) == 1
        assert app.unread >= 2
    assert ref


def test_headless_scheduler_flags_and_stops_on_signal(db, db_url, config, staff):
    import threading

    breached_ticket(db, config, staff["agent1"])
    as_agent = (  # any active desk user may run the jobs headless (os_login set as a test sets it)
        "import sys; import itsm_tui.services.users as u; u.os_login = lambda: 'agent1'; "
        "from itsm_tui.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", as_agent, "scheduler", "--db", db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    lines: list[str] = []
    reported = threading.Event()

    def read() -> None:  # the scan commits its flags before it prints them: stop only once it said so
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "breaches" in line:
                reported.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert reported.wait(timeout=30), "".join(lines)
        assert breaches(db) == 1
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        reader.join(timeout=5)  # the reader alone reads stdout, to its end
        assert proc.stderr is not None
        err = proc.stderr.read()
    out = "".join(lines)
    assert proc.returncode == 0, err
    assert "SLA scheduler running" in out
    assert "1 breaches" in out or "2 breaches" in out
