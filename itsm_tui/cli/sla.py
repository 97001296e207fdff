"""``itsm sla scan`` and ``itsm scheduler``: the scheduled jobs, run once or headless."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

from itsm_tui.cli.desk import Desk, Handler, with_desk


@with_desk
def cmd_sla_scan(desk: Desk, args: argparse.Namespace) -> int:
    """One scan, by an active desk user; at another instant than now, by a process manager or an admin."""
    from itsm_tui.jobs import sla_scan
    from itsm_tui.services import desk_guards

    with desk.db.read_session() as session:
        desk_guards.guard_scan(session, args.now)
    result = sla_scan.scan(desk.db, desk.config, args.now)
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        print(
            f"{result.warnings} warnings, {result.breaches} breaches, {result.escalations} escalations, "
            f"{result.notifications} notifications, {result.closed} closed ({result.seconds * 1000:.0f} ms)"
        )
    return 0


@with_desk
def cmd_scheduler(desk: Desk, args: argparse.Namespace) -> int:
    """The jobs headless, for as long as it runs: started by an active desk user only."""
    from itsm_tui.scheduler import run_headless
    from itsm_tui.services import desk_guards

    with desk.db.read_session() as session:
        desk_guards.guard_jobs(session)

    run_headless(desk.db, desk.config, _echo_while_read)
    return 0


def _echo_while_read(text: str) -> None:
    """Print one line of the headless scheduler's; once nobody reads them (stdout closed, ``| head``
    gone), drop them, and the rest.

    The jobs run until Ctrl+C or SIGTERM whoever reads their lines: a reader that went away must not stop
    them, nor (raised inside the event loop) cancel a job half-way and end in tracebacks.
    """
    try:
        print(text, flush=True)
    except (BrokenPipeError, ValueError):  # ValueError: stdout was closed
        with contextlib.suppress(OSError, ValueError, AttributeError):  # no descriptor behind stdout
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, sys.stdout.fileno())  # what is still buffered, and what comes, goes there
            finally:
                os.close(devnull)


HANDLERS: dict[str, Handler] = {
    "sla scan": cmd_sla_scan,
    "scheduler": cmd_scheduler,
}
