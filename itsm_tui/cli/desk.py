"""What every command shares: the configuration and database it works on, and the mistakes it reports.

Nothing heavy is imported here at module level: the parser and ``main`` import this module on every start,
also when ``itsm`` only opens the console.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from itsm_tui.services.users import Actor

EXIT_ERROR = 2

Handler = Callable[[argparse.Namespace], int]
"""A command: its parsed arguments in, its exit code out."""


class CliError(Exception):
    """A command-line mistake, reported as it is."""


class Desk:
    """The configuration and database a command works on."""

    def __init__(self, args: argparse.Namespace, *, create: bool = True, sync: bool = True) -> None:
        from itsm_tui.config import load_config, resolve_database_url
        from itsm_tui.db import open_database

        self.config = load_config()
        self.url = resolve_database_url(getattr(args, "db", None))
        self.db = open_database(self.url, self.config if sync else None, create=create)

    def actor(self, session: Session) -> Actor:
        from itsm_tui.services.users import resolve_actor

        return resolve_actor(session)

    def seen(self) -> None:
        """Note that the person running this command is at work (their ``last_seen_at``)."""
        from itsm_tui.services import access_log
        from itsm_tui.services.users import UnknownUser, current_login

        try:
            login = current_login()
        except UnknownUser:  # a uid without an account: the command itself says what that means
            return
        access_log.seen(self.db, login)

    def close(self) -> None:
        self.db.dispose()


def with_desk(fn: Callable[[Desk, argparse.Namespace], int]) -> Handler:
    """A command that gets a :class:`Desk`, closed when it returns or fails; running it counts as the
    person's activity (the access review's last activity)."""

    def run(args: argparse.Namespace) -> int:
        desk = Desk(args)
        try:
            desk.seen()
            return fn(desk, args)
        finally:
            desk.close()

    return run
