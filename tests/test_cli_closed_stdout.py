"""Every command, run with a stdout nobody reads, ends as it would otherwise: exit 0 with its write saved,
or exit 2 with one plain line on stderr; never a traceback, never half a write.

The commands are read from the parser itself (every leaf of argparse's subparsers), so a command added
later fails :func:`test_every_command_has_a_case` until :data:`CASES` gives it one: the argv that does
real work on the small desk built here, the login that may run it, and how to see that its write was saved
(None for a command that only reads).

Each command runs as its own process with a really closed stdout: a pipe whose read end was closed before
it started, as when ``head`` has already gone. Starting a new interpreter for each would cost a second of
imports apiece, so a fork server (:func:`serve_forks`) imports the program once and forks a child per
command, which gives the child that pipe as descriptor 1 and a file as descriptor 2, runs
``itsm_tui.cli.main`` and ends as the interpreter would (a traceback for an exception, then stdout and
stderr flushed, a failed flush told and exit 120). Both databases.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from access_helpers import CAST
from forked import exit_code_of
from sqlalchemy import create_engine, text

from itsm_tui.cli import main
from itsm_tui.cli.parser import build_parser
from itsm_tui.db import Database

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the fork server needs os.fork")

LONG = "The tray sticks. " * 1500  # 25 KB: more than a pipe's buffer, so the write fails inside print
CHILD_SECONDS = 60  # a command still running after this long is killed and reported as hanging
FAR_FUTURE = "2099-01-01T00:00:00Z"


# --------------------------------------------------------------------------- what each command must do


@dataclass(frozen=True)
class Rows:
    """A write seen in a database: ``sql``'s single value is ``expected``. ``db`` names the database (a
    placeholder of :attr:`Desk.values`), by default the desk's."""

    sql: str
    expected: object = 1
    db: str = "{db}"

    def holds(self, values: Mapping[str, str]) -> bool:
        url = self.db.format_map(values)
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
            return False  # not yet written: opening it would make it
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(self.sql)).scalar() == self.expected
        finally:
            engine.dispose()


@dataclass(frozen=True)
class FileHolds:
    """A write seen in a file: it exists and holds ``part``."""

    path: str
    part: str

    def holds(self, values: Mapping[str, str]) -> bool:
        path = Path(self.path.format_map(values))
        return path.is_file() and self.part in path.read_text(encoding="utf-8", errors="replace")


Landed = Rows | FileHolds


@dataclass(frozen=True)
class Case:
    """``itsm ARGV --db DESK`` run as ``login`` with a closed stdout (``{name}`` in ARGV is filled in from
    :attr:`Desk.values`; an ARGV with its own ``--db`` works elsewhere)."""

    login: str
    argv: tuple[str, ...]
    landed: Landed | None  # how to see the write was saved; None: the command only reads
    code: int = 0  # 2: refused, with one line on stderr
    # Runs until SIGTERM (as Ctrl+C would stop it): stopped once its write has landed.
    until_stopped: bool = False
    # Tells its progress on stderr as it goes (lines, none a traceback): not one line only.
    progress_on_stderr: bool = False


def _state(title: str, state: str) -> Rows:
    return Rows(f"SELECT state FROM changes WHERE title = '{title}'", state)


def _titled(table: str, title: str) -> Rows:
    return Rows(f"SELECT count(*) FROM {table} WHERE title = '{title}'")


def _article(title: str, status: str) -> Rows:
    return Rows(f"SELECT status FROM knowledge_articles WHERE title = '{title}'", status)


def _problem(title: str, status: str) -> Rows:
    return Rows(f"SELECT status FROM problems WHERE title = '{title}'", status)


_PROBLEM_LINKS = "SELECT count(*) FROM links WHERE target_type = 'problem'"
_ANALYSIS = ("--root-cause", "Closed cause", "--workaround", "Wait", "--fix", "Fix", "--why", "It broke")


# The order is the order they run in, on one desk: the scheduler flags the long-overdue ticket before
# `sla scan --now` far ahead flags the rest. Each writing case's check must not hold before it runs.
CASES: dict[str, Case] = {
    "ticket create": Case(
        "agent1",
        (
            "ticket",
            "create",
            "--title",
            "Closed create",
            "--requester",
            "Ann",
            "--description",
            LONG,
            "--json",
        ),
        _titled("tickets", "Closed create"),
    ),
    "ticket update": Case(
        "agent1",
        ("ticket", "update", "{t_update}", "--title", "Closed update", "--note", "Looked at it", "--json"),
        _titled("tickets", "Closed update"),
    ),
    "ticket take-next": Case(
        "agent2",
        ("ticket", "take-next", "--json"),
        Rows("SELECT count(*) FROM tickets t JOIN users u ON u.id = t.assignee_id WHERE u.login = 'agent2'"),
    ),
    "ticket list": Case("agent1", ("ticket", "list", "--all"), None),
    "ticket search": Case("agent1", ("ticket", "search", "Closed", "--json"), None),
    "ticket show": Case("agent1", ("ticket", "show", "{t_show}"), None),
    "user add": Case(
        "admin1",
        ("user", "add", "closedy", "--role", "agent", "--group", "SD-L1"),
        Rows("SELECT count(*) FROM users WHERE login = 'closedy'"),
    ),
    "user list": Case("agent1", ("user", "list"), None),
    "user role": Case(
        "admin1",
        ("user", "role", "agent2", "--add", "support_l2"),
        Rows(
            "SELECT count(*) FROM role_memberships m JOIN users u ON u.id = m.user_id "
            "WHERE u.login = 'agent2' AND m.role = 'support_l2'"
        ),
    ),
    "db upgrade": Case(
        "agent1",
        ("db", "upgrade", "--db", "{fresh_db}"),
        Rows("SELECT count(*) FROM alembic_version", db="{fresh_db}"),
    ),
    "db status": Case("agent1", ("db", "status"), None),
    "db check": Case("admin1", ("db", "check"), None),
    "db backup": Case(
        "admin1",
        ("db", "backup", "{tmp}/closed-backup.db"),
        Rows(
            "SELECT count(*) FROM tickets WHERE title = 'Only in the backup'",
            db="sqlite:///{tmp}/closed-backup.db",
        ),
    ),
    "db restore": Case(
        "admin1",
        ("db", "restore", "{backup}", "--force", "--db", "{spare_db}"),
        Rows("SELECT count(*) FROM tickets WHERE title = 'Only in the backup'", db="{spare_db}"),
    ),
    "db grant-roles": Case("admin1", ("db", "grant-roles", "--all-users", "--dry-run"), None, code=2),
    "demo": Case(
        "agent1",
        ("demo", "--tickets", "30", "--db", "{demo_db}"),
        Rows("SELECT count(*) FROM tickets", 30, db="{demo_db}"),
        progress_on_stderr=True,
    ),
    "scheduler": Case(
        "agent1",
        ("scheduler",),
        Rows(
            "SELECT count(*) FROM tickets WHERE title = 'Long overdue' AND resolution_breached_at IS NOT NULL"
        ),
        until_stopped=True,
    ),
    "sla scan": Case(
        "admin1",
        ("sla", "scan", "--now", FAR_FUTURE),
        Rows("SELECT count(*) FROM tickets WHERE title = 'Shown' AND resolution_breached_at IS NOT NULL"),
    ),
    "sla explain": Case("agent1", ("sla", "explain", "{t_show}"), None),
    "report kpi": Case("lead", ("report", "kpi"), None),
    "report handover": Case("lead", ("report", "handover"), None),
    "report access": Case("lead", ("report", "access"), None),
    "serve": Case("agent1", ("serve", "--port", "{port}"), None),  # stops: nobody can read its token
    "change create": Case(
        "chm",
        (
            "change",
            "create",
            "--type",
            "normal",
            "--title",
            "Closed change",
            "--service",
            "email",
            "--start",
            "2030-01-10T10:00:00Z",
            "--minutes",
            "60",
            "--description",
            LONG,
            "--json",
        ),
        _titled("changes", "Closed change"),
    ),
    "change submit": Case("net1", ("change", "submit", "{c_submit}"), _state("Life submit", "submitted")),
    "change edit": Case(
        "net1",
        ("change", "edit", "{c_edit}", "--test-plan", "Closed test"),
        Rows("SELECT count(*) FROM changes WHERE test_plan = 'Closed test'"),
    ),
    "change withdraw": Case(
        "net1",
        ("change", "withdraw", "{c_withdraw}", "--reason", "Closed"),
        _state("Life withdraw", "withdrawn"),
    ),
    "change cancel": Case(
        "chm", ("change", "cancel", "{c_cancel}", "--reason", "Closed"), _state("Life cancel", "cancelled")
    ),
    "change assess": Case(
        "chm", ("change", "assess", "{c_assess}", "--risk", "high"), _state("Life assess", "assessed")
    ),
    "change approve": Case(
        "cab1", ("change", "approve", "{c_approve}", "--reason", "Fine"), _state("Life approve", "approved")
    ),
    "change reject": Case(
        "cab1", ("change", "reject", "{c_reject}", "--reason", "Not now"), _state("Life reject", "rejected")
    ),
    "change schedule": Case(
        "chm", ("change", "schedule", "{c_schedule}"), _state("Life schedule", "scheduled")
    ),
    "change start": Case(
        "chm",
        ("change", "start", "{c_start}", "--override", "Vendor only now"),
        _state("Life start", "implementing"),
    ),
    "change complete": Case(
        "net1",
        ("change", "complete", "{c_complete}", "--outcome", "implemented", "--json"),
        _state("Life complete", "implemented"),
    ),
    "change review": Case("chm", ("change", "review", "{c_review}"), _state("Life review", "review")),
    "change close": Case(
        "chm", ("change", "close", "{c_close}", "--review-notes", "Went well"), _state("Life close", "closed")
    ),
    "change list": Case("agent1", ("change", "list", "--json"), None),
    "change show": Case("agent1", ("change", "show", "{c_review}"), None),
    "change risk": Case("agent1", ("change", "risk", "{c_submit}", "--json"), None),
    "change conflicts": Case("agent1", ("change", "conflicts"), None),
    "change agenda": Case("agent1", ("change", "agenda", "--format", "md"), None),
    "change slots": Case("agent1", ("change", "slots", "{c_schedule}", "--count", "20"), None),
    "change export": Case(
        "agent1",
        ("change", "export", "--ics", "{tmp}/closed.ics"),
        FileHolds("{tmp}/closed.ics", "BEGIN:VCALENDAR"),
    ),
    "change windows": Case("agent1", ("change", "windows"), None),
    "change add-window": Case(
        "chm",
        (
            "change",
            "add-window",
            "--name",
            "Closed window",
            "--service",
            "network",
            "--rrule",
            "FREQ=WEEKLY;BYDAY=SA",
            "--start",
            "22:00",
            "--minutes",
            "60",
            "--timezone",
            "UTC",
        ),
        Rows("SELECT count(*) FROM maintenance_windows WHERE name = 'Closed window'"),
    ),
    "change add-blackout": Case(
        "chm",
        (
            "change",
            "add-blackout",
            "--name",
            "Closed freeze",
            "--start",
            "2031-12-20T00:00:00Z",
            "--end",
            "2031-12-27T00:00:00Z",
        ),
        Rows("SELECT count(*) FROM blackouts WHERE name = 'Closed freeze'"),
    ),
    "change edit-window": Case(
        "chm",
        ("change", "edit-window", "{w_edit}", "--name", "Closed edited window"),
        Rows("SELECT count(*) FROM maintenance_windows WHERE name = 'Closed edited window'"),
    ),
    "change delete-window": Case(
        "chm",
        ("change", "delete-window", "{w_edit}"),
        Rows("SELECT count(*) FROM audit_events WHERE entity_type = 'window' AND action = 'delete'"),
    ),
    "change edit-blackout": Case(
        "chm",
        ("change", "edit-blackout", "{b_edit}", "--name", "Closed edited freeze"),
        Rows("SELECT count(*) FROM blackouts WHERE name = 'Closed edited freeze'"),
    ),
    "change delete-blackout": Case(
        "chm",
        ("change", "delete-blackout", "{b_edit}"),
        Rows("SELECT count(*) FROM audit_events WHERE entity_type = 'blackout' AND action = 'delete'"),
    ),
    "audit verify": Case("admin1", ("audit", "verify"), None),
    "view save": Case(
        "agent1",
        ("view", "save", "Closed view", "--key", "8", "--filter", "p:1,2", "--share", "SD-L1"),
        Rows("SELECT count(*) FROM saved_views WHERE name = 'Closed view'"),
    ),
    "view list": Case("agent1", ("view", "list", "--json"), None),
    "view delete": Case(
        "agent1",
        ("view", "delete", "Closed view"),
        Rows("SELECT count(*) FROM audit_events WHERE entity_type = 'saved_view' AND action = 'delete'"),
    ),
    "kb create": Case(
        "net1",
        ("kb", "create", "--title", "Closed article", "--body", LONG, "--json"),
        _titled("knowledge_articles", "Closed article"),
    ),
    "kb update": Case(
        "net1",
        ("kb", "update", "{kb_update}", "--title", "Closed kb update", "--json"),
        _titled("knowledge_articles", "Closed kb update"),
    ),
    "kb submit": Case("net1", ("kb", "submit", "{kb_submit}"), _article("Kb submit", "in_review")),
    "kb publish": Case(
        "eng1", ("kb", "publish", "{kb_publish}", "--json"), _article("Kb publish", "published")
    ),
    "kb send-back": Case(
        "eng1", ("kb", "send-back", "{kb_back}", "--note", "Say more"), _article("Kb back", "draft")
    ),
    "kb retire": Case(
        "eng1", ("kb", "retire", "{kb_retire}", "--reason", "Gone"), _article("Kb retire", "retired")
    ),
    "kb list": Case("agent1", ("kb", "list", "--view", "all"), None),
    "kb show": Case("agent1", ("kb", "show", "{kb_retire}"), None),
    "problem create": Case(
        "net1",
        ("problem", "create", "--title", "Closed problem", "--description", LONG[:15000], "--json"),
        _titled("problems", "Closed problem"),
    ),
    "problem list": Case("net1", ("problem", "list", "--view", "all"), None),
    "problem show": Case("net1", ("problem", "show", "{p_main}"), None),
    "problem candidates": Case("net1", ("problem", "candidates", "--json"), None),
    "problem update": Case(
        "net1",
        ("problem", "update", "{p_main}", *_ANALYSIS),
        Rows("SELECT count(*) FROM problems WHERE root_cause = 'Closed cause'"),
    ),
    "problem investigate": Case(
        "net1", ("problem", "investigate", "{p_main}"), _problem("Closed main", "investigating")
    ),
    "problem publish": Case(
        "net1",
        ("problem", "publish", "{p_main}", "--json"),
        Rows("SELECT count(*) FROM known_errors WHERE status = 'published'"),
    ),
    "problem retire-ke": Case(
        "prm",
        ("problem", "retire-ke", "KE0000001"),
        Rows("SELECT count(*) FROM known_errors WHERE status = 'retired'"),
    ),
    "problem link": Case(
        "net1", ("problem", "link", "{p_main}", "{t_update}", "{t_show}", "--json"), Rows(_PROBLEM_LINKS, 2)
    ),
    "problem unlink": Case("net1", ("problem", "unlink", "{p_main}", "{t_show}"), Rows(_PROBLEM_LINKS, 1)),
    "problem fix": Case("net1", ("problem", "fix", "{p_main}"), _problem("Closed main", "fix_in_progress")),
    "problem resolve": Case(
        "prm",
        ("problem", "resolve", "{p_main}", "--incidents", "yes"),
        Rows("SELECT count(*) FROM tickets WHERE resolution_note LIKE 'Resolved by the permanent fix of %'"),
    ),
    "problem close": Case(
        "prm",
        ("problem", "close", "{p_main}", "--verification", "Quiet since"),
        _problem("Closed main", "closed"),
    ),
    "problem reopen": Case(
        "prm",
        ("problem", "reopen", "{p_reopen}", "--reason", "Back again"),
        _problem("Closed reopen", "investigating"),
    ),
    "problem cancel": Case(
        "prm",
        ("problem", "cancel", "{p_cancel}", "--reason", "Not one"),
        _problem("Closed cancel", "cancelled"),
    ),
    "problem duplicate": Case(
        "prm",
        ("problem", "duplicate", "{p_dup}", "--of", "{p_main}", "--reason", "The same"),
        _problem("Closed dup", "duplicate"),
    ),
}

# What differs on PostgreSQL: the SQLite file commands refuse it (saying what to use), grant-roles is
# PostgreSQL's own, and the demo, already built on SQLite, is asked only to leave the live desk alone.
ON_POSTGRESQL: dict[str, Case] = {
    "db backup": Case("admin1", ("db", "backup", "{tmp}/closed-backup.db"), None, code=2),
    "db restore": Case("admin1", ("db", "restore", "{tmp}/any-backup.db", "--force"), None, code=2),
    "db grant-roles": Case("admin1", ("db", "grant-roles", "--all-users", "--dry-run"), None),
    "demo": Case("agent1", ("demo", "--if-empty"), None),
}

# Commands that cannot be run here with a closed stdout, each with why. Keep it empty if at all possible.
EXEMPT: dict[str, str] = {}


def leaf_commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> set[str]:
    """Every command the parser runs, as its words (``ticket create``, ``demo``), at any depth."""
    keys: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                keys |= leaf_commands(sub, (*words, name)) or {" ".join((*words, name))}
    return keys


def test_every_command_has_a_case() -> None:
    keys = leaf_commands(build_parser())
    missing = keys - set(CASES) - set(EXEMPT)
    assert not missing, f"give each a closed-stdout case in CASES (or a reason in EXEMPT): {sorted(missing)}"
    assert {"ticket create", "change add-blackout", "audit verify", "demo", "serve"} <= keys  # the walk works
    assert not (set(CASES) | set(EXEMPT) | set(ON_POSTGRESQL)) - keys, "a case for a command that is gone"
    for key, case in [*CASES.items(), *ON_POSTGRESQL.items()]:
        assert case.argv[: len(key.split())] == tuple(key.split()), (key, case.argv)


def test_the_walk_finds_a_command_added_later() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    nested = commands.add_parser("knowledge").add_subparsers(dest="knowledge_command")
    nested.add_parser("publish")
    assert leaf_commands(parser) - set(CASES) == {"knowledge publish"}


# --------------------------------------------------------------------------- the fork server


class Ran(NamedTuple):
    code: int  # negative: killed by that signal
    err: str
    cpu: float  # seconds of CPU the command's process used


def serve_forks() -> None:
    """Read ``{"login", "argv"}`` lines on stdin; for each, fork a child that runs the command with a closed
    stdout, write ``{"pid"}`` at once, then ``{"code", "err", "cpu"}`` when it has ended. ``{"stop"}``
    while a child runs sends it SIGTERM. Runs in its own process (see :class:`ForkServer`)."""
    import importlib
    import pkgutil

    import itsm_tui.services
    from itsm_tui.cli.running import COMMAND_MODULES

    for module in sorted(set(COMMAND_MODULES.values())):  # what a command imports when it runs
        importlib.import_module(f"itsm_tui.cli.{module}")
    for info in pkgutil.iter_modules(itsm_tui.services.__path__):
        importlib.import_module(f"itsm_tui.services.{info.name}")
    for name in ("itsm_tui.jobs.sla_scan", "itsm_tui.scheduler", "itsm_tui.web", "itsm_tui.demo", "psycopg"):
        importlib.import_module(name)
    import gc

    from sqlalchemy.orm import configure_mappers

    configure_mappers()  # once, not in every command
    gc.freeze()  # the children leave the imported heap alone: no copies of its pages
    requests = _Lines(0)
    while (line := requests.next(None)) is not None:
        request = json.loads(line)
        if "stop" in request:  # for a child that had already ended
            continue
        pid, err_file = _fork(request["login"], request["argv"])
        _reply({"pid": pid})
        pidfd = os.pidfd_open(pid)
        deadline = time.monotonic() + CHILD_SECONDS
        while not select.select([pidfd], [], [], 0)[0]:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)  # our own child, not yet reaped: its pid is still ours
                break
            message = requests.next(left, also=pidfd)
            if message is not None and json.loads(message).get("stop"):
                os.kill(pid, signal.SIGTERM)
        os.close(pidfd)
        _, status, usage = os.wait4(pid, 0)
        err = Path(err_file).read_text(encoding="utf-8", errors="replace")
        os.unlink(err_file)
        _reply(
            {"code": os.waitstatus_to_exitcode(status), "err": err, "cpu": usage.ru_utime + usage.ru_stime}
        )


class _Lines:
    """Lines read straight from a descriptor (no buffer a child would inherit, none select cannot see)."""

    def __init__(self, fd: int) -> None:
        self.fd, self.pending = fd, b""

    def next(self, timeout: float | None, also: int | None = None) -> str | None:
        """The next line; None at the end of input, or when ``also`` becomes readable or ``timeout`` passes
        first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.pending:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = select.select([self.fd, *([also] if also is not None else [])], [], [], wait)[0]
            if self.fd not in ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode()


def _reply(message: dict[str, Any]) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def _fork(login: str, argv: list[str]) -> tuple[int, str]:
    """Start the command in a child; in the child this never returns: the command's exit code (or its
    traceback) ends the interpreter, which flushes stdout on the way out as a real ``itsm`` would."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes anything
    err_file = f"{os.environ['CLOSED_STDOUT_ERR_DIR']}/err-{len(argv)}-{time.monotonic_ns()}"
    err_fd = os.open(err_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    pid = os.fork()
    if pid:
        os.close(write_end)
        os.close(err_fd)
        return pid, err_file
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(write_end, 1)
    os.dup2(err_fd, 2)
    for fd in (devnull, write_end, err_fd):
        os.close(fd)
    import itsm_tui.services.users as users

    users.os_login = lambda: login
    sys.argv = ["itsm", *argv]
    os._exit(_exit_code(argv))


def _exit_code(argv: list[str]) -> int:
    """Run the command and end as the interpreter would after it (:func:`forked.exit_code_of`), without the
    seconds of tearing down a heap of imports."""
    return exit_code_of(lambda: main(argv))


class ForkServer:
    """The pytest side of :func:`serve_forks`."""

    def __init__(self, err_dir: Path) -> None:
        environment = {k: v for k, v in os.environ.items() if k not in ("ITSM_DB_URL", "ITSM_CONFIG_DIR")}
        environment["CLOSED_STDOUT_ERR_DIR"] = str(err_dir)
        here = str(Path(__file__).parent)
        boot = (
            f"import sys; sys.path.insert(0, {here!r}); import test_cli_closed_stdout as t; t.serve_forks()"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", boot], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment
        )
        self.cpu = 0.0

    def _send(self, message: dict[str, Any]) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write((json.dumps(message) + "\n").encode())
        stdin.flush()

    def _receive(self) -> dict[str, Any]:
        stdout = self.process.stdout
        assert stdout is not None
        line = stdout.readline()
        assert line, f"the fork server ended (exit {self.process.poll()})"
        reply: dict[str, Any] = json.loads(line)
        return reply

    def run(self, login: str, argv: Sequence[str], stop_when: Callable[[], bool] | None = None) -> Ran:
        """``itsm ARGV`` as ``login`` with a closed stdout; ``stop_when``: a command that runs until
        stopped, sent SIGTERM once that holds (or after 30 s)."""
        self._send({"login": login, "argv": list(argv)})
        self._receive()  # started
        if stop_when is not None:
            deadline = time.monotonic() + 30
            while not stop_when() and time.monotonic() < deadline:
                time.sleep(0.2)
            self._send({"stop": True})
        reply = self._receive()
        self.cpu += reply["cpu"]
        return Ran(reply["code"], reply["err"], reply["cpu"])

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.process.stdout.close()


# --------------------------------------------------------------------------- the desk


@dataclass
class Desk:
    backend: str
    values: dict[str, str] = field(default_factory=dict)  # what fills the ``{name}`` of the cases


def _cli(login: str, *argv: str) -> str:
    """``itsm ARGV`` in this process as ``login`` (building the desk): its stdout; it must succeed."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("itsm_tui.services.users.os_login", lambda: login)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    assert code == 0, (argv, err.getvalue())
    return out.getvalue()


# The lifecycle steps, in order, that bring a draft change to each state a step of the cases needs.
STEPS: list[tuple[str, tuple[str, ...]]] = [
    ("net1", ("submit",)),
    ("chm", ("assess", "--risk", "high")),
    ("cab1", ("approve", "--reason", "Fine")),
    ("chm", ("schedule",)),
    ("chm", ("start", "--override", "Vendor only now")),
    ("net1", ("complete", "--outcome", "implemented")),
    ("chm", ("review",)),
]
# Each case's change, named by the case's step, and how many STEPS it has been through.
LIFECYCLE = {
    "submit": 0,
    "assess": 1,
    "approve": 2,
    "reject": 2,
    "schedule": 3,
    "start": 4,
    "complete": 5,
    "review": 6,
    "close": 7,
    "edit": 0,
    "withdraw": 1,
    "cancel": 3,
}


# The steps that bring a draft article to the status each kb case needs, and how many each has been through.
KB_STEPS = [("net1", "submit"), ("eng1", "publish")]
KB_LIFECYCLE = {"update": 0, "submit": 0, "publish": 1, "back": 1, "retire": 2}


def _free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


@pytest.fixture(scope="module")
def desk(module_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """The cast, tickets to show, update and flag, a change in each state a lifecycle step needs; on SQLite
    also a spare desk and a backup to restore into it."""
    url, tmp = module_db.url, tmp_path_factory.mktemp("closed-stdout")
    built = Desk(module_db.backend, {"db": url, "tmp": str(tmp)})
    with module_db.session() as session:
        from itsm_tui.services import users as user_service

        for login, (roles, groups) in CAST.items():
            user_service.add_user(session, actor_login="admin1", login=login, roles=roles, groups=groups)

    def ticket(title: str, *extra: str) -> str:
        out = _cli("agent1", "ticket", "create", "--db", url, "--title", title, "--requester", "Pat", *extra)
        return out.split()[0]

    built.values["t_show"] = ticket("Shown")
    built.values["t_update"] = ticket("To be updated")
    ticket("Long overdue", "--opened-at", "2020-01-06T09:00:00Z")
    day = datetime.now(UTC).replace(hour=21, minute=0, second=0, microsecond=0) + timedelta(days=8)
    day += timedelta(days=(5 - day.weekday()) % 7)  # a Saturday evening at least a week ahead
    for index, (name, steps) in enumerate(LIFECYCLE.items()):
        created = _cli(
            "net1", "change", "create", "--db", url, "--type", "normal", "--title", f"Life {name}",
            "--target", "network:core-sw-01", "--start", (day + timedelta(days=7 * index)).isoformat(),
            "--minutes", "120", "--implementation-plan", "Swap it.", "--backout-plan", "Swap back.",
            "--implementer", "net1", "--json",
        )  # fmt: skip
        ref = json.loads(created)["ref"]
        for login, (verb, *options) in STEPS[:steps]:
            _cli(login, "change", verb, ref, "--db", url, *options)
        built.values[f"c_{name}"] = ref

    window = ("--name", "To edit", "--service", "vpn", "--rrule", "FREQ=DAILY", "--start", "02:00")
    added = _cli("chm", "change", "add-window", "--db", url, *window, "--minutes", "30", "--timezone", "UTC")
    built.values["w_edit"] = added.split()[1]  # "window 1 added: ..."
    freeze = ("--name", "To edit", "--start", "2032-01-01T00:00:00Z", "--end", "2032-01-02T00:00:00Z")
    built.values["b_edit"] = _cli("chm", "change", "add-blackout", "--db", url, *freeze).split()[1]

    def problem(title: str, *steps: tuple[str, str, tuple[str, ...]]) -> str:
        ref = _cli("net1", "problem", "create", "--db", url, "--title", title).split()[0]
        for login, verb, options in steps:
            _cli(login, "problem", verb, ref, "--db", url, *options)
        return ref

    built.values["p_main"] = problem("Closed main")
    built.values["p_cancel"] = problem("Closed cancel")
    built.values["p_dup"] = problem("Closed dup")
    built.values["p_reopen"] = problem(
        "Closed reopen",
        ("net1", "update", ("--root-cause", "Cause", "--fix", "Patch")),
        ("net1", "investigate", ()),
        ("net1", "fix", ()),
        ("prm", "resolve", ()),
    )
    for name, steps in KB_LIFECYCLE.items():
        created = _cli(
            "net1", "kb", "create", "--db", url, "--title", f"Kb {name}", "--body", "Text.", "--json"
        )
        ref = json.loads(created)["ref"]
        for login, verb in KB_STEPS[:steps]:
            _cli(login, "kb", verb, ref, "--db", url)
        built.values[f"kb_{name}"] = ref
    if module_db.backend == "sqlite":
        spare = tmp / "spare.db"
        _cli("admin1", "db", "backup", str(spare), "--db", url)
        ticket("Only in the backup")
        _cli("admin1", "db", "backup", str(tmp / "backup.db"), "--db", url)
        built.values |= {"spare_db": f"sqlite:///{spare}", "backup": str(tmp / "backup.db")}
    built.values |= {
        "fresh_db": f"sqlite:///{tmp / 'fresh' / 'desk.db'}",
        "demo_db": f"sqlite:///{tmp / 'demo.db'}",
        "port": _free_port(),
    }
    module_db.engine.dispose()  # no connection of this process stays open on the desk the commands use
    yield built


@pytest.fixture(scope="module")
def forks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    server = ForkServer(tmp_path_factory.mktemp("closed-stdout-err"))
    yield server
    server.close()


def cases_for(backend: str) -> dict[str, Case]:
    return {
        key: ON_POSTGRESQL.get(key, case) if backend == "postgresql" else case for key, case in CASES.items()
    }


def judge(case: Case, ran: Ran, landed: bool | None) -> list[str]:
    """What is wrong with how the command ended: its exit code, its stderr, its write."""
    problems = []
    if ran.code != case.code:
        problems.append(f"exit {ran.code}, expected {case.code}")
    if "Traceback" in ran.err:
        problems.append("a traceback")
    lines = ran.err.splitlines()
    if not case.progress_on_stderr:
        if case.code == 0 and lines:
            problems.append("stderr is not empty")
        if case.code != 0 and (len(lines) != 1 or not lines[0].startswith("itsm: error: ")):
            problems.append("stderr is not one line 'itsm: error: ...'")
    if landed is False:
        problems.append(f"the write was not saved ({case.landed})")
    return problems


def test_every_command_ends_quietly_with_a_closed_stdout(desk: Desk, forks: ForkServer) -> None:
    problems: list[str] = []
    started = time.monotonic()
    for key, case in cases_for(desk.backend).items():
        argv = [part.format_map(desk.values) for part in case.argv]
        if "--db" not in argv:
            argv += ["--db", desk.values["db"]]
        check = case.landed
        if check is not None and check.holds(desk.values):
            problems.append(f"{key}: its check holds before it ran, so it proves nothing ({check})")
            continue
        stop_when = None
        if case.until_stopped and check is not None:
            stop_when = functools.partial(check.holds, desk.values)
        ran = forks.run(case.login, argv, stop_when)
        landed = None if check is None else check.holds(desk.values)
        problems += [
            f"{key}: {problem}\n    stderr: {ran.err.strip()[-2000:]!r}"
            for problem in judge(case, ran, landed)
        ]
    seconds = time.monotonic() - started
    print(f"{len(CASES)} commands on {desk.backend}: {forks.cpu:.1f} s CPU in the commands, {seconds:.1f} s")
    assert not problems, "\n".join(problems)


def test_a_case_that_goes_wrong_is_told() -> None:
    """The judge itself: each way a command can end wrongly is named."""
    writes = Case("agent1", ("ticket", "create"), Rows("SELECT 1"))
    assert judge(writes, Ran(0, "", 0.1), True) == []
    assert judge(writes, Ran(1, "Traceback (most recent call last):\n  x\n", 0.1), False) == [
        "exit 1, expected 0",
        "a traceback",
        "stderr is not empty",
        "the write was not saved (Rows(sql='SELECT 1', expected=1, db='{db}'))",
    ]
    refused = replace(writes, landed=None, code=2)
    assert judge(refused, Ran(2, "itsm: error: no\n", 0.1), None) == []
    assert judge(refused, Ran(2, "itsm: error: no\nmore\n", 0.1), None) == [
        "stderr is not one line 'itsm: error: ...'"
    ]
    assert judge(refused, Ran(0, "", 0.1), None) == [
        "exit 0, expected 2",
        "stderr is not one line 'itsm: error: ...'",
    ]
    progress = replace(writes, progress_on_stderr=True)
    assert judge(progress, Ran(0, "generating ...\ndone\n", 0.1), True) == []
