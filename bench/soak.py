"""Soak the real console: ``itsm`` open for N minutes in a tmux pane while writer processes change tickets.

A demo desk is built with ``itsm demo`` (SQLite in a temporary folder, or with ``--db postgresql://...`` a new
database soak_<random> on that server, dropped afterwards unless ``--keep``). The console runs as the OS user
(the demo's shift lead) in a detached tmux pane of 80x24 on a tmux server of its own, with an ``sla.toml``
override (``ITSM_CONFIG_DIR``) whose ``scan_interval_seconds`` is ``--scan-seconds``, so that its own
scheduler scans often. ``--writers`` separate processes each change one ticket a second through the
services, along real lifecycle paths: they log tickets, the shift lead assigns them or an agent takes them,
the assignee starts, writes notes, puts them pending and back, resolves them and now and then reopens one;
the lead also notes open demo tickets and reassigns. Now and then a writer logs a P1 or P2 reported 8-14
minutes earlier and leaves it alone, so that the SLA job has response warnings and breaches to flag. A busy
database error is retried and counted; a lost race (a stale version, a ticket already taken) is counted.

Every 30 s the console's VmRSS and Threads (/proc/PID/status), open file descriptors (/proc/PID/fd) and
database connections are read from outside: on SQLite the descriptors open on the desk file (one per
connection) and on its -wal; on PostgreSQL the rows of pg_stat_activity whose application_name is the one
the console was given (``PGAPPNAME``; the app sets none itself). At the start and at the end, ``--keys``
keystrokes (End and Home in turn: a read of the last and of the first page) are timed from ``send-keys``
until ``capture-pane`` (polled) shows other rows, all of them read. The floor, measured the same way in the
same run, at the start and again at the end: a bare Textual app (a Static of 18 lines that End and Home swap)
in the same tmux setup, its RSS and key round trip; the console's keys are judged as their ratio to the floor
of the same moment, since the machine is shared and its load changes.

Printed: each figure at the console's opening, after a warm-up (``--warmup`` minutes, at most half the run:
the first scans, the pool's connections and the caches filling) and at the end; the growth from the warm-up
to the end (the keystrokes: from the first series to the last), a PASS/FAIL line against growth <= 10 % (and
no writer error), the writers' operations, lost races, busy retries and errors, and what the SLA job flagged
and notified during the run. The floor figures are printed beside them.

python bench/soak.py [--minutes 30] [--writers 2] [--tickets 3000] [--scan-seconds 10] [--keys 60]
                     [--warmup 2] [--db postgresql://postgres@127.0.0.1:5432/postgres] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from figures import percentile

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

REF = re.compile(r"(?:INC|REQ)\d{7}")
SIZE = (80, 24)
SAMPLE_SECONDS = 30.0
GROWTH_LIMIT = 0.10
APP_NAME = "itsm-soak-console"
KEY_TIMEOUT = 15.0
AGENTS = ("akhan", "bschulz", "cdiaz", "dnguyen", "eolsen", "fmartin", "gweiss", "hpatel", "ijovanovic")
TITLES = (
    "Printer on floor 2 offline",
    "VPN drops every hour",
    "Cannot open shared mailbox",
    "Laptop fan loud",
    "ERP report times out",
    "Password reset needed",
    "New monitor for desk 14",
)
NOTES = (
    "Called the user, waiting on a screenshot.",
    "Checked the logs; nothing obvious.",
    "Escalation not needed.",
)


def itsm_command() -> str:
    found = Path(sys.executable).parent / "itsm"
    return str(found) if found.exists() else (shutil.which("itsm") or "itsm")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# --------------------------------------------------------------------------- the writer processes


@dataclass
class WriterTally:
    """What one writer did: operations by kind, lost races, busy retries, refusals and errors."""

    ops: dict[str, int] = field(default_factory=dict)
    lost_races: int = 0
    busy_retries: int = 0
    busy_given_up: int = 0
    refused: int = 0
    errors: int = 0
    samples: list[str] = field(default_factory=list)  # the first few refusal and error messages

    def note(self, text: str) -> None:
        if len(self.samples) < 5:
            self.samples.append(text[:200])


def is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text or "sqlite_busy" in text


def run_writer(url: str, index: int, seed: int, out: Path) -> None:
    """One writer: a ticket operation a second until SIGTERM; the tally goes to ``out`` as JSON."""
    from sqlalchemy import select, true
    from sqlalchemy.exc import OperationalError

    from itsm_tui.config import load_config
    from itsm_tui.db import Database
    from itsm_tui.models import Ticket, User
    from itsm_tui.services import tickets
    from itsm_tui.services.errors import ServiceError, StaleEdit
    from itsm_tui.services.tickets import AlreadyTaken
    from itsm_tui.services.users import current_login, resolve_actor

    races = (StaleEdit, AlreadyTaken)  # a stale version or a lost race (LostRace is a StaleEdit); a late take

    stopping = False

    def stop(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    config = load_config()
    db = Database.connect(url)
    rng = random.Random(seed)
    tally = WriterTally()
    mine = AGENTS[index % 2 :: 2] if len(AGENTS) > 1 else AGENTS
    with db.read_session() as s:
        lead = resolve_actor(s, current_login())
        actors = {login: resolve_actor(s, login) for login in mine}
        logins = {u.id: u.login for u in s.scalars(select(User))}
        demo_open = list(s.scalars(select(Ticket.ref).where(Ticket.is_open == true()).limit(200)))
    pool: list[str] = []

    def operation() -> str:
        """Do one step on one ticket; return its kind (the tally's key)."""
        if rng.random() < 0.02:
            # A P1 or P2 reported minutes ago (logged late, as an import would) that nobody picks up: its
            # response target comes due during the run, so the SLA job has warnings and breaches to flag.
            with db.session() as s:
                tickets.create_ticket(
                    s,
                    config,
                    lead,
                    title=rng.choice(TITLES),
                    impact="high",
                    urgency=rng.choice(("high", "medium")),
                    requester=f"Soak requester {index}",
                    opened_at=datetime.now(UTC) - timedelta(minutes=rng.uniform(8, 14)),
                )
            return "create (late, left alone)"
        if len(pool) < 12 or rng.random() < 0.08:
            impact, urgency = rng.choice(
                [
                    ("high", "high"),
                    ("high", "medium"),
                    ("medium", "medium"),
                    ("low", "medium"),
                    ("low", "low"),
                ]
            )
            with db.session() as s:
                ticket = tickets.create_ticket(
                    s,
                    config,
                    lead,
                    title=rng.choice(TITLES),
                    impact=impact,
                    urgency=urgency,
                    requester=f"Soak requester {index}",
                )
                pool.append(ticket.ref)
            return "create"
        if demo_open and rng.random() < 0.1:
            ref = rng.choice(demo_open)
            with db.session() as s:
                ticket = tickets.get_ticket(s, ref)
                if not ticket.is_open:
                    demo_open.remove(ref)
                    return "skip"
                tickets.add_entry(s, config, lead, ref, body=rng.choice(NOTES), public=False)
            return "note (demo ticket)"
        ref = rng.choice(pool)
        with db.session() as s:
            ticket = tickets.get_ticket(s, ref)
            status, version = ticket.status, ticket.version
            assignee = logins.get(ticket.assignee_id) if ticket.assignee_id else None
            worker = actors.get(assignee or "", lead)
            roll = rng.random()
            if status == "new":
                if roll < 0.5:
                    tickets.take(s, config, actors[rng.choice(mine)], ref)
                    return "take"
                tickets.assign(
                    s, config, lead, ref, assignee=rng.choice(mine), group="SD-L1", expected_version=version
                )
                return "assign"
            if status == "assigned":
                tickets.transition(s, config, worker, ref, "in_progress", expected_version=version)
                return "status: in_progress"
            if status == "in_progress":
                if roll < 0.4:
                    tickets.add_entry(
                        s, config, worker, ref, body=rng.choice(NOTES), public=False, expected_version=version
                    )
                    return "note"
                if roll < 0.6:
                    reason = rng.choice(tickets.PENDING_REASONS)
                    tickets.transition(
                        s, config, worker, ref, "pending", reason=reason, expected_version=version
                    )
                    return "status: pending"
                if roll < 0.85:
                    tickets.transition(
                        s,
                        config,
                        worker,
                        ref,
                        "resolved",
                        code="fixed",
                        note="Fixed during the soak.",
                        expected_version=version,
                    )
                    return "status: resolved"
                other = rng.choice([a for a in mine if a != assignee] or list(mine))
                tickets.assign(s, config, lead, ref, assignee=other, group="SD-L1", expected_version=version)
                return "reassign"
            if status == "pending":
                tickets.transition(s, config, worker, ref, "in_progress", expected_version=version)
                return "status: resume"
            if status == "resolved" and roll < 0.3:
                tickets.transition(
                    s,
                    config,
                    worker,
                    ref,
                    "in_progress",
                    reason="User says it is back.",
                    expected_version=version,
                )
                return "status: reopen"
        pool.remove(ref)  # resolved (left for the SLA job to close), closed or cancelled
        return "retire"

    next_tick = time.monotonic()
    while not stopping:
        next_tick += 1.0
        for attempt in range(6):
            try:
                kind = operation()
                tally.ops[kind] = tally.ops.get(kind, 0) + 1
                break
            except races:
                tally.lost_races += 1
                break
            except ServiceError as exc:
                tally.refused += 1
                tally.note(f"refused: {exc}")
                break
            except OperationalError as exc:
                if is_busy(exc) and attempt < 5:
                    tally.busy_retries += 1
                    time.sleep(0.1 * (attempt + 1))
                    continue
                if is_busy(exc):
                    tally.busy_given_up += 1
                tally.errors += 1
                tally.note(f"error: {str(exc).splitlines()[0]}")
                break
            except Exception as exc:  # a soak counts every failure and goes on
                tally.errors += 1
                tally.note(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                break
        time.sleep(max(0.0, next_tick - time.monotonic()))
    db.dispose()
    out.write_text(json.dumps(tally.__dict__))


# --------------------------------------------------------------------------- the bare Textual app (floor)


def run_bare() -> None:
    """A bare Textual app: 18 lines of references, End and Home swap the block shown."""
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    def block(first: int) -> str:
        return "\n".join(f"INC{n:07d} bare row" for n in range(first, first + 18))

    class Bare(App[None]):
        BINDINGS = [("end", "show(1000)", "End"), ("home", "show(1)", "Home")]

        def compose(self) -> ComposeResult:
            yield Static(block(1), id="rows")

        def action_show(self, first: int) -> None:
            self.query_one("#rows", Static).update(block(first))

    Bare().run()


# --------------------------------------------------------------------------- tmux


class Pane:
    """A detached tmux pane of 80x24 on a tmux server of its own, running one command."""

    def __init__(self, folder: Path, name: str, command: str, env: dict[str, str]) -> None:
        self.socket = str(folder / f"tmux-{name}")
        self.name = name
        words = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        self.tmux(
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            str(SIZE[0]),
            "-y",
            str(SIZE[1]),
            f"exec env {words} {command}",
        )
        self.pid = 0
        for _ in range(100):
            found = self.tmux("display-message", "-p", "-t", name, "#{pane_pid}").strip()
            if found.isdigit():
                self.pid = int(found)
                break
            time.sleep(0.05)

    def tmux(self, *words: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *words], capture_output=True, text=True).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def send(self, key: str) -> None:
        self.tmux("send-keys", "-t", self.name, key)

    def close(self) -> None:
        if self.pid and Path(f"/proc/{self.pid}").exists():
            self.send("C-q")
            deadline = time.monotonic() + 5
            while Path(f"/proc/{self.pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        self.tmux("kill-server")


def refs(text: str) -> list[str]:
    return REF.findall(text)


def wait_rows(pane: Pane, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(refs(pane.screen())) >= 5:
            return True
        time.sleep(0.1)
    return False


def key_round_trips(pane: Pane, count: int) -> tuple[list[float], int]:
    """``count`` keystrokes, End and Home in turn: seconds from send-keys until the pane shows other rows,
    as many as before (all read); and how many gave up after ``KEY_TIMEOUT``."""
    times, timeouts = [], 0
    for n in range(count):
        before = refs(pane.screen())
        key = "End" if n % 2 == 0 else "Home"
        began = time.perf_counter()
        pane.send(key)
        while True:
            now = refs(pane.screen())
            elapsed = time.perf_counter() - began
            if now != before and len(now) >= len(before):
                times.append(elapsed)
                break
            if elapsed > KEY_TIMEOUT:
                timeouts += 1
                break
        time.sleep(0.3)  # let the screen settle (count, scroll bar) before the next key
    return times, timeouts


# --------------------------------------------------------------------------- reading the console from outside


def proc_status(pid: int) -> dict[str, int]:
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "Threads"):
            figures[name] = int(value.split()[0])
    return figures


def open_fds(pid: int) -> list[str]:
    targets = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            targets.append(os.readlink(fd))
    return targets


@dataclass
class Sample:
    at: float  # seconds since the console started
    rss_mb: float
    threads: int
    fds: int
    connections: int
    wal_fds: int
    load: float


class Probe:
    """Reads one console's figures from outside: /proc, and the database's view of its connections."""

    def __init__(self, pid: int, url: str, desk_file: Path | None) -> None:
        self.pid, self.url, self.desk_file = pid, url, desk_file
        self.admin: Engine | None = None
        if desk_file is None:
            from sqlalchemy import create_engine

            self.admin = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)

    def connections(self, targets: list[str]) -> tuple[int, int]:
        if self.desk_file is not None:
            desk = str(self.desk_file)
            return targets.count(desk), targets.count(desk + "-wal")
        from sqlalchemy import text

        assert self.admin is not None
        with self.admin.connect() as conn:
            rows = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": APP_NAME},
            ).scalar_one()
        return int(rows), 0

    def sample(self, started: float) -> Sample:
        status = proc_status(self.pid)
        targets = open_fds(self.pid)
        connections, wal = self.connections(targets)
        return Sample(
            time.monotonic() - started,
            status["VmRSS"] / 1024,
            status["Threads"],
            len(targets),
            connections,
            wal,
            os.getloadavg()[0],
        )

    def close(self) -> None:
        if self.admin is not None:
            self.admin.dispose()


# --------------------------------------------------------------------------- the desk


def build_desk(args, folder: Path, env: dict[str, str]) -> tuple[str, str, Path | None, str | None]:
    """Build the demo desk; return (url, where, SQLite file or None, PostgreSQL database to drop or None)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from itsm_tui.config import resolve_database_url

    if args.db:
        admin_url = resolve_database_url(args.db)
        name = f"soak_{secrets.token_hex(4)}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        where, desk_file, drop = f"PostgreSQL database {name}", None, name
    else:
        desk_file = folder / "desk.db"
        url, where, drop = f"sqlite:///{desk_file}", f"SQLite {desk_file}", None
    began = time.perf_counter()
    done = subprocess.run(
        [itsm_command(), "demo", "--db", url, "--tickets", str(args.tickets)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    if done.returncode != 0:
        raise SystemExit(f"itsm demo failed:\n{done.stdout}\n{done.stderr}")
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    print(f"desk: {where}, built in {time.perf_counter() - began:.1f} s: {summary}", flush=True)
    return url, where, desk_file, drop


def drop_database(admin_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    from itsm_tui.config import resolve_database_url

    admin = create_engine(resolve_database_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def sla_work_since(url: str, since: datetime) -> dict[str, int]:
    """What the SLA job did since ``since``: the notifications it wrote (event keys ``sla-...``) and the
    tickets it flagged, by flag."""
    from sqlalchemy import func, select

    from itsm_tui.db import Database
    from itsm_tui.models import Notification, Ticket

    db = Database.connect(url)
    try:
        with db.read_session() as s:
            found = {
                "notifications": s.scalar(
                    select(func.count())
                    .select_from(Notification)
                    .where(Notification.event_key.like("sla-%"), Notification.created_at >= since)
                )
            }
            for name in (
                "response_warned_at",
                "response_breached_at",
                "resolution_warned_at",
                "resolution_breached_at",
            ):
                column = getattr(Ticket, name)
                found[name] = s.scalar(select(func.count()).select_from(Ticket).where(column >= since))
            return {k: int(v or 0) for k, v in found.items()}
    finally:
        db.dispose()


def override_config(folder: Path, scan_seconds: int) -> Path:
    """An ITSM_CONFIG_DIR whose sla.toml is the shipped one with ``scan_interval_seconds`` replaced."""
    from itsm_tui.config import shipped_config_dir

    config_dir = folder / "config"
    config_dir.mkdir()
    shipped = (Path(shipped_config_dir()) / "sla.toml").read_text()
    changed, found = re.subn(
        r"(?m)^scan_interval_seconds\s*=.*$", f"scan_interval_seconds = {scan_seconds}", shipped
    )
    if not found:
        raise SystemExit("the shipped sla.toml has no scan_interval_seconds line to override")
    (config_dir / "sla.toml").write_text(changed)
    return config_dir


# --------------------------------------------------------------------------- main


def growth(start: float, end: float) -> float:
    return (end - start) / start if start else (0.0 if end == start else float("inf"))


def main() -> int:
    if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # a bench module's name must not shadow the standard library
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the console stays open")
    parser.add_argument("--writers", type=int, default=2, help="writer processes (one operation a second)")
    parser.add_argument("--tickets", type=int, default=3000, help="demo tickets (default 3000)")
    parser.add_argument("--scan-seconds", type=int, default=10, help="the console's SLA scan interval")
    parser.add_argument("--keys", type=int, default=60, help="keystrokes timed at the start and at the end")
    parser.add_argument("--warmup", type=float, default=2.0, help="minutes before the RSS start figure")
    parser.add_argument("--db", metavar="URL", help="a PostgreSQL server URL: run in a new database on it")
    parser.add_argument("--keep", action="store_true", help="keep the desk (folder or database) afterwards")
    parser.add_argument("--writer", nargs=4, metavar=("URL", "INDEX", "SEED", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        url, index, seed, out = args.writer
        run_writer(url, int(index), int(seed), Path(out))
        return 0
    if args.bare:
        run_bare()
        return 0
    if shutil.which("tmux") is None:
        print("tmux is not installed; the soak runs the console in a tmux pane", file=sys.stderr)
        return 2
    if args.db and not args.db.startswith(("postgresql://", "postgres://", "postgresql+")):
        print("--db takes a PostgreSQL server URL (SQLite runs need no --db)", file=sys.stderr)
        return 2

    from itsm_tui.services.users import os_login

    folder = Path(tempfile.mkdtemp(prefix="itsm-soak-"))
    config_dir = override_config(folder, args.scan_seconds)
    env = {"ITSM_CONFIG_DIR": str(config_dir)}
    print(
        f"soak: {args.minutes:g} min, {args.writers} writers, SLA scan every {args.scan_seconds} s "
        f"(sla.toml override); {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"console login {os_login()}",
        flush=True,
    )
    url, where, desk_file, drop = build_desk(args, folder, env)
    py = shlex.quote(sys.executable)
    me = shlex.quote(str(Path(__file__).resolve()))

    # The floor: a bare Textual app in the same tmux setup, measured at the start and again at the end
    # (the machine is shared: the keystroke figures are compared as ratios to the floor of their time).
    def floor(when: str) -> tuple[list[float], dict[str, int], int] | None:
        bare = Pane(folder, f"bare-{when}", f"{py} {me} --bare", {"TERM": "xterm-256color"})
        try:
            if not wait_rows(bare, 30):
                print(f"the bare app showed no rows:\n{bare.screen()}")
                return None
            time.sleep(1.0)
            keys, _ = key_round_trips(bare, args.keys)
            return keys, proc_status(bare.pid), len(open_fds(bare.pid))
        finally:
            bare.close()

    measured = floor("start")
    if measured is None:
        return 1
    bare_keys, bare_status, bare_fds = measured
    print(
        f"floor, bare Textual app in tmux {SIZE[0]}x{SIZE[1]}: RSS {bare_status['VmRSS'] / 1024:.0f} MB, "
        f"{bare_status['Threads']} threads, {bare_fds} fds; key to screen changed p50 "
        f"{ms(percentile(bare_keys, 0.5))}, p90 {ms(percentile(bare_keys, 0.9))} ({len(bare_keys)} keys)",
        flush=True,
    )
    bare_end_keys = bare_keys

    writers: list[tuple[subprocess.Popen, Path]] = []
    console = None
    probe = None
    samples: list[Sample] = []
    try:
        since = datetime.now(UTC)
        for index in range(args.writers):
            out = folder / f"writer{index}.json"
            proc = subprocess.Popen(
                [sys.executable, __file__, "--writer", url, str(index), str(1000 + index), str(out)],
                env={**os.environ, **env},
                stderr=open(folder / f"writer{index}.err", "w"),  # noqa: SIM115 - lives as long as the writer
            )
            writers.append((proc, out))
        console_env = {**env, "PGAPPNAME": APP_NAME, "TERM": "xterm-256color"}
        started = time.monotonic()
        console = Pane(
            folder, "console", f"{shlex.quote(itsm_command())} --db {shlex.quote(url)}", console_env
        )
        if not wait_rows(console):
            print(f"the console showed no rows within a minute:\n{console.screen()}")
            return 1
        print(f"console: pid {console.pid}, first rows after {time.monotonic() - started:.1f} s", flush=True)
        probe = Probe(console.pid, url, desk_file)
        samples.append(probe.sample(started))
        start_keys, start_timeouts = key_round_trips(console, args.keys)
        print(
            f"start: key to rows shown p50 {ms(percentile(start_keys, 0.5))}, "
            f"p90 {ms(percentile(start_keys, 0.9))} ({len(start_keys)} keys, End/Home"
            + (f", {start_timeouts} gave up" if start_timeouts else "")
            + ")",
            flush=True,
        )
        end_at = started + args.minutes * 60
        next_sample = started + SAMPLE_SECONDS
        print("    t   RSS MB  threads  fds  connections  (-wal fds)  load", flush=True)

        def show(s: Sample) -> None:
            print(
                f"{s.at / 60:5.1f}m {s.rss_mb:7.1f} {s.threads:8d} {s.fds:4d} {s.connections:12d} "
                f"{s.wal_fds:11d} {s.load:5.1f}",
                flush=True,
            )

        show(samples[0])
        while time.monotonic() < end_at:
            time.sleep(max(0.0, min(next_sample, end_at) - time.monotonic()))
            if time.monotonic() >= next_sample:
                next_sample += SAMPLE_SECONDS
                dead = [p.pid for p, _ in writers if p.poll() is not None]
                if dead:
                    print(f"writer process(es) {dead} ended early; see {folder}/writer*.err", flush=True)
                samples.append(probe.sample(started))
                show(samples[-1])
        end_keys, end_timeouts = key_round_trips(console, args.keys)
        samples.append(probe.sample(started))
        show(samples[-1])
        hwm = proc_status(console.pid)["VmHWM"] / 1024
        measured = floor("end")  # while the writers still write: the same conditions as the console's keys
        if measured is not None:
            bare_end_keys = measured[0]
    finally:
        for proc, _ in writers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in writers:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if console is not None:
            console.close()
        if probe is not None:
            probe.close()

    tallies = [json.loads(out.read_text()) for _, out in writers if out.exists()]
    for index, (_, out) in enumerate(writers):
        if not out.exists():
            err = (folder / f"writer{index}.err").read_text().strip().splitlines()
            print(f"writer {index} did not report; its last words: {err[-3:]}")
    sla_work = sla_work_since(url, since)
    if not args.keep:
        if drop:
            drop_database(args.db, drop)
        shutil.rmtree(folder, ignore_errors=True)

    warm = args.minutes * 60 / 2 if args.warmup * 60 > args.minutes * 60 / 2 else args.warmup * 60
    warmed = next((s for s in samples if s.at >= warm), samples[-1])
    first, last = samples[0], samples[-1]
    print(f"\nsoak of {where}: {last.at / 60:.1f} min, load average at the end {os.getloadavg()[0]:.1f}")
    # Resource figures start after the warm-up (the first scan, the pool's connections, caches filling);
    # the keystroke figures are the first and the last series of keys.
    connections = "database connections" + (" (fds on the desk file)" if desk_file else f" ({APP_NAME})")
    start_p50, end_p50 = percentile(start_keys, 0.5) * 1000, percentile(end_keys, 0.5) * 1000
    start_p90, end_p90 = percentile(start_keys, 0.9) * 1000, percentile(end_keys, 0.9) * 1000
    rows = [
        ("RSS MB", first.rss_mb, warmed.rss_mb, last.rss_mb, "{:.1f}"),
        ("threads", first.threads, warmed.threads, last.threads, "{:.0f}"),
        ("open fds", first.fds, warmed.fds, last.fds, "{:.0f}"),
        (connections, first.connections, warmed.connections, last.connections, "{:.0f}"),
    ]
    # Keys: the console's time over the floor's of the same moment, at the start and at the end.
    floor_start_p50 = percentile(bare_keys, 0.5) * 1000
    floor_end_p50 = percentile(bare_end_keys, 0.5) * 1000
    floor_start_p90 = percentile(bare_keys, 0.9) * 1000
    floor_end_p90 = percentile(bare_end_keys, 0.9) * 1000
    ratio_rows = [
        ("key p50, console/floor", start_p50 / floor_start_p50, end_p50 / floor_end_p50),
        ("key p90, console/floor", start_p90 / floor_start_p90, end_p90 / floor_end_p90),
    ]
    rows += [(label, opened, opened, ended, "{:.2f}") for label, opened, ended in ratio_rows]
    print(
        f"  growth: the end against the sample at {warmed.at / 60:.1f} min (after the warm-up); keys: the "
        "last series against the first"
    )
    print(f"  {'':44} {'at open':>8} {f'{warmed.at / 60:.1f} min':>8} {'end':>8} {'growth':>8}")
    # A count (threads, fds, connections) of a handful may step up by one when a pool starts another
    # thread or connection the first time two jobs overlap: that is no leak as long as the second half of
    # the run adds nothing to the most the first half (after the warm-up) reached.
    mid = last.at / 2
    first_half = [x for x in samples if warmed.at <= x.at <= max(mid, warmed.at)] or [warmed]
    plateau = {
        "threads": max(x.threads for x in first_half),
        "open fds": max(x.fds for x in first_half),
        connections: max(x.connections for x in first_half),
    }
    failed = []
    for label, opened, a, b, shape in rows:
        g = growth(a, b)
        levelled = label in plateau and b <= plateau[label]
        verdict = "" if g <= GROWTH_LIMIT or levelled else "  over 10 %"
        if levelled and g > GROWTH_LIMIT:
            verdict = f"  (reached {plateau[label]:.0f} in the first half, no more since)"
        if verdict.startswith("  over"):
            failed.append(label.split(" (")[0])
        print(
            f"  {label:<44} {shape.format(opened):>8} {shape.format(a):>8} {shape.format(b):>8} "
            f"{g * 100:7.1f}%{verdict}"
        )
    print(
        f"  RSS peak (VmHWM) {hwm:.1f} MB; "
        f"-wal fds {first.wal_fds} -> {last.wal_fds}"
        + (
            f"; key waits given up: {start_timeouts} at the start, {end_timeouts} at the end"
            if start_timeouts or end_timeouts
            else ""
        )
    )
    print(
        f"  keys in ms, console: p50 {start_p50:.0f} -> {end_p50:.0f}, p90 {start_p90:.0f} -> {end_p90:.0f}; "
        f"floor (bare Textual app, RSS {bare_status['VmRSS'] / 1024:.0f} MB): p50 {floor_start_p50:.0f} -> "
        f"{floor_end_p50:.0f}, p90 {floor_start_p90:.0f} -> {floor_end_p90:.0f}"
    )
    ops: dict[str, int] = {}
    for tally in tallies:
        for kind, n in tally["ops"].items():
            ops[kind] = ops.get(kind, 0) + n
    total = sum(n for k, n in ops.items() if k not in ("skip", "retire"))
    races = sum(t["lost_races"] for t in tallies)
    busy = sum(t["busy_retries"] for t in tallies)
    busy_lost = sum(t["busy_given_up"] for t in tallies)
    refused = sum(t["refused"] for t in tallies)
    errors = sum(t["errors"] for t in tallies)
    print(
        f"  writers ({len(tallies)} of {args.writers} reported): {total:,} operations ("
        + ", ".join(f"{k} {n:,}" for k, n in sorted(ops.items()))
        + f"); lost races {races}; busy retries {busy} (given up {busy_lost}); refused {refused}; "
        f"errors {errors}"
    )
    for tally in tallies:
        for text in tally["samples"]:
            print(f"    {text}")
    print(
        f"  SLA job (the console's scheduler, every {args.scan_seconds} s): flagged during the run "
        f"{sla_work['response_warned_at']} response warnings, {sla_work['response_breached_at']} response "
        f"breaches, {sla_work['resolution_warned_at']} resolution warnings, "
        f"{sla_work['resolution_breached_at']} resolution breaches; {sla_work['notifications']} SLA "
        "notifications"
    )
    if args.keep:
        print(f"  kept: {where} (config override {config_dir})")
    ok = not failed and errors == 0 and len(tallies) == args.writers
    reasons = []
    if failed:
        reasons.append("growth over 10 %: " + ", ".join(failed))
    if errors:
        reasons.append(f"{errors} writer errors")
    if len(tallies) != args.writers:
        reasons.append("a writer did not report")
    print(
        ("PASS" if ok else "FAIL")
        + f": growth <= 10 % after a {warm / 60:g}-min warm-up for RSS, threads, fds, connections (counts: "
        "or none after the first half); "
        "key p50/p90 over the floor, end against open" + (f" ({'; '.join(reasons)})" if reasons else "")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
