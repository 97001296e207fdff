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


DEFAULT_SOURCE = "the default database"


def database_source(args: argparse.Namespace) -> str:
    """Where the database a command works on was named, for the messages that refuse it."""
    import os

    if getattr(args, "db", None):
        return "--db"
    return "ITSM_DB_URL" if os.environ.get("ITSM_DB_URL") else DEFAULT_SOURCE


def database_url(args: argparse.Namespace) -> str:
    """The database URL of ``--db`` (or its defaults), refused at once, naming where it was given, unless
    it names a database the desk runs on: a MySQL URL or a photo is told as such, not as a traceback of
    the first query."""
    from itsm_tui.config import resolve_database_url
    from itsm_tui.db import check_url

    url = resolve_database_url(getattr(args, "db", None))
    check_url(url, database_source(args))
    return url


class Desk:
    """The configuration and database a command works on.

    Only the default location is created on first use: a database named by ``--db`` or ``ITSM_DB_URL``
    must exist (a misspelt path is refused, not made a new empty desk); ``db upgrade`` and ``demo``
    create one where they are told.
    """

    def __init__(self, args: argparse.Namespace, *, sync: bool = True) -> None:
        from itsm_tui.config import load_config
        from itsm_tui.db import open_database

        self.config = load_config()
        self.url = database_url(args)
        source = database_source(args)
        create = source == DEFAULT_SOURCE
        self.db = open_database(self.url, self.config if sync else None, create=create, source=source)

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
