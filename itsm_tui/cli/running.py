"""Running a command: parse, find the handler, turn the mistakes people make into one line on stderr.

Only the module of the command given is imported, so ``itsm`` with no command opens the console without
loading every other command (nor the services they use).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO, cast

from itsm_tui.cli.desk import EXIT_ERROR, CliError, Desk, Handler
from itsm_tui.cli.output import plain
from itsm_tui.cli.parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; output cut short by its reader (``itsm ticket list | head``) ends it quietly.

    Every command prints only after its transaction has committed, so a reader that went away costs it
    nothing: the work is done, and the exit is the command's own (0, or 1 for ``ticket update A B`` with
    refusals among them), as for any ``head``-safe command. The output still buffered is flushed here,
    where its closed pipe can still be caught; stdout is then pointed at ``os.devnull`` so that the
    interpreter's own flush at exit does not fail all over again.

    stderr nobody can read (closed, ``2>&-``, or a pipe whose reader has gone) changes nothing either: the
    command ends with the exit code it would have had, its messages dropped (:class:`QuietStderr`).
    """
    _fill_closed_standard_descriptors()
    stderr = sys.stderr
    sys.stderr = cast(TextIO, QuietStderr(stderr))
    code = 0  # a command that finished says how (`ticket update A B`: 1 when some were refused)
    try:
        try:
            try:
                code = _run(argv)
                return code
            finally:
                if sys.stdout is not None:
                    sys.stdout.flush()
        except BrokenPipeError:  # stdout's: a write to stderr never raises
            _discard_stdout()
            return code
    finally:
        sys.stderr = stderr


class QuietStderr(io.TextIOBase):
    """stderr for the duration of a command: what cannot be written is dropped.

    A closed stderr (``2>&-``, when Python finds no stream at all) or a pipe whose reader has gone must not
    turn a refusal's exit 2 into a traceback (or, through the closed-stdout handling, into 0), nor a
    finished command into a failure. Without this, a closed stderr would even send the error line to stdout
    (``print(file=None)`` prints there), into the output a script reads. After the first failed write, the
    stream is pointed at ``os.devnull``, so that the interpreter's flush at exit does not fail again.
    """

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__()
        self._stream = stream

    def _lost(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):  # no descriptor behind it: no flush at exit
                _point_at_devnull(stream.fileno())

    def write(self, text: str) -> int:
        if self._stream is not None:
            try:
                self._stream.write(text)
                self._stream.flush()  # each message as it comes, as stderr's line buffering would
            except (OSError, ValueError):  # ValueError: the stream was closed
                self._lost()
        return len(text)

    def flush(self) -> None:
        if self._stream is not None:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._lost()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        try:
            return self._stream is not None and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        if self._stream is None:
            raise io.UnsupportedOperation("stderr cannot be written")
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", None) or "utf-8"


def _fill_closed_standard_descriptors() -> None:
    """Open ``os.devnull`` on any of descriptors 0, 1 and 2 that the command was started without
    (``2>&-``): the next file the command opens would take that number otherwise, and what is written to
    the standard stream would go into it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            with contextlib.suppress(OSError):
                _point_at_devnull(fd)


def _point_at_devnull(fd: int) -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    if devnull != fd:  # it is when fd was the lowest closed descriptor
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


def _discard_stdout() -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):  # no descriptor behind stdout: no flush
        _point_at_devnull(sys.stdout.fileno())


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = _handler(_command_key(args))
    try:
        return handler(args) if handler else open_console(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = _known_error_message(exc)
        if message is None:
            raise
        _record_refusal(args, exc, message)
        print(f"itsm: error: {plain(message)}", file=sys.stderr)  # it may quote what someone typed
        return EXIT_ERROR


# Options that make a command more privileged than without them, named in the record of a refusal.
PRIVILEGED_OPTIONS = {"force": "--force", "delete_live_records": "--delete-live-records", "now": "--now"}


def _record_refusal(args: argparse.Namespace, exc: Exception, message: str) -> None:
    """Record a refused privileged attempt (a permission refused, or a login that is no desk user trying
    a command on a desk that has users), in its own transaction: the refused one was rolled back."""
    from itsm_tui.services.access import PermissionDenied
    from itsm_tui.services.users import UnknownUser

    if isinstance(exc, PermissionDenied):
        permission: str | None = exc.permission
    elif isinstance(exc, UnknownUser) and not exc.first_user:
        permission = None
    else:
        return
    from itsm_tui.config import resolve_database_url
    from itsm_tui.db import Database
    from itsm_tui.services import access_log, users

    key = _command_key(args) or "console"
    flags = [flag for attr, flag in PRIVILEGED_OPTIONS.items() if getattr(args, attr, None)]
    try:
        login = exc.login if isinstance(exc, UnknownUser) else users.current_login()
        db = Database.connect(resolve_database_url(getattr(args, "db", None)))
    except Exception:  # recording is bookkeeping: the refusal is told all the same
        return
    try:
        access_log.record_refusal(
            db, login=login, action=" ".join([key, *flags]), permission=permission, detail=message
        )
    finally:
        db.dispose()


def _known_error_message(exc: Exception) -> str | None:
    from itsm_tui.config import ConfigError
    from itsm_tui.db import DatabaseError
    from itsm_tui.services.errors import ServiceError, ValidationError
    from itsm_tui.services.users import UnknownUser

    if isinstance(exc, ConfigError):
        return f"bad configuration file {exc.path}: key {exc.key}: {exc.rule}"
    keymap = sys.modules.get("itsm_tui.keymap")  # not loaded: not its error (and it loads Textual)
    if keymap is not None and isinstance(exc, keymap.KeyFileError):
        return f"bad key file {exc.path}: {exc.key}: {exc.rule}"
    if isinstance(exc, ValidationError):
        return f"{exc.field}: {exc}"
    if isinstance(exc, ServiceError | UnknownUser | DatabaseError | CliError):
        return str(exc)
    from sqlalchemy.exc import OperationalError

    if isinstance(exc, OperationalError):
        return f"the database cannot be reached or used: {exc.orig}"
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == "42501":  # permission denied
        refusal = str(exc.orig).strip().splitlines()[0]
        return (
            f"the database refused: {refusal}; your database role may not do this (the schema's owner does "
            "it, and grants the desk's privileges with `itsm db grant-roles`)"
        )
    return None


def _command_key(args: argparse.Namespace) -> str | None:
    if args.command is None:
        return None
    sub = getattr(args, f"{args.command}_command", None)
    return f"{args.command} {sub}" if sub else args.command


# The module of itsm_tui.cli that handles each command (``COMMAND ACTION`` for an action with its own).
COMMAND_MODULES = {
    "demo": "database",
    "db": "database",
    "db grant-roles": "dbroles",
    "user": "users",
    "ticket": "tickets",
    "sla": "sla",
    "sla explain": "sla_explain",
    "scheduler": "sla",
    "serve": "serve",
    "report": "reports",
    "change": "changes",
    "kb": "kb",
    "problem": "problems",
    "audit": "audit",
    "view": "views",
}


def _handler(key: str | None) -> Handler | None:
    """The handler of ``COMMAND [ACTION]``, from the module of that command alone (none: the console)."""
    if key is None:
        return None
    module = COMMAND_MODULES.get(key) or COMMAND_MODULES.get(key.partition(" ")[0])
    if module is None:
        return None
    handlers: Mapping[str, Handler] = importlib.import_module(f"itsm_tui.cli.{module}").HANDLERS
    return handlers.get(key)


def log_to_file(path: Path | None = None) -> Path:
    """Send the console's log (warnings, and the details of anything that went wrong) to a private file.

    A console draws on the terminal, so nothing may go to stderr; the file is the user's own (0600 in a
    0700 folder), by default ``console.log`` in the user's log directory.
    """
    import logging
    import os

    if path is None:
        from platformdirs import user_log_path

        path = user_log_path("itsm") / "console.log"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("itsm")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return path


def open_console(args: argparse.Namespace) -> int:
    from itsm_tui.keymap import load as load_keys

    # A bad key file stops the console before the database is opened; the console's bindings (every screen
    # imported) are collected only when there is a file to check.
    keys = load_keys(lambda: importlib.import_module("itsm_tui.app").binding_table())
    from itsm_tui import columns

    chosen = columns.load()  # a bad column file stops it too
    desk = Desk(args)
    log_to_file()
    from datetime import UTC, datetime

    from itsm_tui.services import queue

    with desk.db.read_session() as session:
        actor = desk.actor(session)
        # The queue's first page, read now so that the console's first frame shows it.
        first = queue.first_rows(session, actor, datetime.now(UTC))
    from itsm_tui.services import access_log

    access_log.seen(desk.db, actor.login)
    from itsm_tui.app import ItsmApp
    from itsm_tui.terminal import EXIT_TERMINAL_GONE, went_away

    app = ItsmApp(desk.db, desk.config, actor, keys=keys, columns=chosen, first_rows=first)
    app.run()
    desk.close()
    return EXIT_TERMINAL_GONE if went_away() else app.return_code or 0
