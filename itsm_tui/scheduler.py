"""The SLA job and the change-reminder job on APScheduler: inside every console (on the app's event loop) and
headless.

The job's database work runs in a thread; the loop only waits for it. Runs never overlap
(``max_instances=1``) and missed runs collapse into one (``coalesce``): a scan catches up on everything
that became due since the last one anyway.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from itsm_tui.config import DeskConfig
from itsm_tui.db import Database
from itsm_tui.jobs import change_reminders, sla_scan

log = logging.getLogger("itsm.scheduler")
JOB_ID = "sla-scan"
REMINDER_JOB_ID = "change-reminders"
R = TypeVar("R")


def make_scheduler(
    db: Database,
    config: DeskConfig,
    on_result: Callable[[sla_scan.ScanResult], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
    on_reminders: Callable[[change_reminders.ReminderResult], None] | None = None,
    first_run_after: float = 0.0,
    on_outcome: Callable[[str, Exception | None], None] | None = None,
) -> AsyncIOScheduler:
    """The SLA job and the change reminders on an ``AsyncIOScheduler``, both first run ``first_run_after``
    seconds from now (a console lets its first screen come up first); ``start()`` it inside the running
    loop. ``on_outcome`` hears after every run which job it was ("SLA scan", "change reminders") and what
    it raised (None: it went through), so that a console can show a failing job until it works again."""
    scheduler = AsyncIOScheduler(
        timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    )

    async def run_job(
        job: Callable[[Database, DeskConfig], R], what: str, done: Callable[[R], None] | None
    ) -> None:
        """One run of a job, in a thread: its result goes to ``done``, a failure to ``on_error``."""
        try:
            result = await asyncio.to_thread(job, db, config)
        except Exception as exc:  # a lost database must not stop the schedule
            log.warning("%s failed: %s", what, exc)
            if on_error is not None:
                on_error(exc)
            if on_outcome is not None:
                on_outcome(what, exc)
            return
        if on_outcome is not None:
            on_outcome(what, None)
        if done is not None:
            done(result)

    async def run_scan() -> None:
        await run_job(sla_scan.scan, "SLA scan", on_result)

    first_run = datetime.now(UTC) + timedelta(seconds=first_run_after)
    scheduler.add_job(
        run_scan, "interval", seconds=config.scan_interval_seconds, id=JOB_ID, next_run_time=first_run
    )

    async def run_reminders() -> None:
        # Awaiting approval, conflicts ahead, starting soon, overdue reviews: each person told once.
        await run_job(change_reminders.remind, "change reminders", on_reminders)

    scheduler.add_job(
        run_reminders,
        "interval",
        seconds=config.changes.interval_seconds,
        id=REMINDER_JOB_ID,
        next_run_time=first_run,
    )
    return scheduler


def run_headless(db: Database, config: DeskConfig, echo: Callable[[str], None]) -> None:
    """Run the SLA job until interrupted (SIGINT or SIGTERM), for hosts with no open console."""

    def report(result: sla_scan.ScanResult) -> None:
        if result.warnings or result.breaches or result.escalations or result.notifications or result.closed:
            echo(
                f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z scan: {result.warnings} warnings, {result.breaches} "
                f"breaches, {result.escalations} escalations, {result.notifications} notifications, "
                f"{result.closed} closed ({result.seconds * 1000:.0f} ms)"
            )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)

        def reminded(result: change_reminders.ReminderResult) -> None:
            if result.notifications:
                echo(
                    f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z change reminders: {result.approvals} approvals, "
                    f"{result.conflicts} conflicts, {result.starting} starting soon, "
                    f"{result.reviews} reviews due"
                )

        scheduler = make_scheduler(
            db, config, report, lambda exc: echo(f"job failed: {exc} (will retry)"), on_reminders=reminded
        )
        scheduler.start()
        echo(f"SLA scheduler running every {config.scan_interval_seconds} s; Ctrl+C stops it")
        await stop.wait()
        scheduler.shutdown(wait=False)

    asyncio.run(main())
