"""Many consoles on one PostgreSQL server: connections, notification latency, SLA-job time, keystrokes.

Simulates N consoles without drawing, each with its own engine (``Database.connect``, the console's pool)
doing what a console does at its real cadence:

- the queue's live check every ``screens.queue.REFRESH_SECONDS`` (1 s): ``queue.newest_change`` and
  ``presence.viewers`` for the first page's tickets, in one read session;
- a presence heartbeat every ``screens.ticket.TicketScreen.HEARTBEAT_SECONDS`` (10 s) (a console shows the
  queue or a ticket, not both: doing both is the heavier case);
- ``push.NotificationWatcher`` (LISTEN on the pool's connections, its own re-check every 5 s);
- the scheduler's jobs, ``jobs.sla_scan.scan`` every ``scan_interval_seconds`` of sla.toml (30 s) and the
  change reminders every ``reminders.interval_seconds`` (300 s), in their own thread, each console's first
  run at a random instant of the interval (consoles start at different times). With ``--jobs-in-consoles
  no`` (sla.toml's ``jobs_in_consoles = false``) no console runs them and one scheduler host does (in the
  first host process, on an engine of its own), as ``itsm scheduler`` on one host would.

The consoles run as threads (one thread each for the queue, the watcher and the scheduler, as in a console)
spread over ``--processes`` host processes. Beside them, one separate process is a real console's typist: it
types filter words into All open, a keystroke every 120 ms, and times what the queue's worker does per
keystroke (``screens.queue.load_query``: newest change, the first page, then the count), while running
its own live check and watcher. Meanwhile the bench writes notifications (every 0.5 s, to a tenth of the
consoles' users, one commit) and samples ``pg_stat_activity`` and ``pg_stat_database``.

Printed per N: server connections of the bench database (max and mean; the consoles' own, told apart by
their ``application_name``, and per console), notification latency from
commit to each console's watcher (p50/p95/max), SLA scan wall time per run (p50/p95, and how many ran),
the server's active time per second for the bench database, the queue check p95, and the typist's
keystroke p95 to rows and to count. N = 0 is the typist alone (the floor).

Runs on a database ``bench_many`` created on the server of ``--db`` (dropped at the end), refusing an N
whose connections would not fit the server's ``max_connections`` beside what is connected already. With
``--private-server`` it starts a throwaway PostgreSQL of its own in a temporary folder (``initdb``, run as
the ``postgres`` account when started as root) with room for 100 consoles, and removes it at the end.
``--pool-size 5`` gives the consoles SQLAlchemy's default pool instead of ``db.PG_POOL``, for comparison.
The SLA scan time is wall time in the console's thread (GIL waits among the simulated consoles included).

python bench/many_consoles.py [--db postgresql://postgres@127.0.0.1:5432/postgres | --private-server]
        [--consoles 0,10,50,100] [--seconds 40] [--tickets 20000] [--processes 2] [--pool-size 1]
        [--jobs-in-consoles yes|no]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from figures import percentile
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from itsm_tui import db as dbmodule
from itsm_tui.config import load_config, resolve_database_url
from itsm_tui.db import Database, make_engine

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_DB = "bench_many"
QUEUE_CHECK_SECONDS = 1.0  # screens/queue.py REFRESH_SECONDS
HEARTBEAT_SECONDS = 10.0  # screens/ticket.py TicketScreen.HEARTBEAT_SECONDS
PROBE_EVERY = 0.5
KEY_GAP = 0.12
WORDS = ("printer", "network", "zzqx")
PROBE = "bench probe "
WARMUP = 5.0
SPARE = 15  # connections left free on the server for its other users
CONSOLES_APP = "bench-consoles"  # application_name of the simulated consoles' connections


def named(url: str, application: str) -> str:
    """The URL with an application_name, so that pg_stat_activity tells whose each connection is."""
    parsed = make_url(url).update_query_dict({"application_name": application})
    return parsed.render_as_string(hide_password=False)


def set_pool(size: int) -> None:
    """``--pool-size``: 1 is the console's pool (db.PG_POOL); 5 is SQLAlchemy's default (5 + 10 overflow)."""
    if size != dbmodule.PG_POOL["pool_size"]:
        dbmodule.PG_POOL.update(pool_size=size, max_overflow=10)


# --------------------------------------------------------------------------- one simulated console


class Console:
    def __init__(
        self, url: str, user_id: int, group_id: int, config, index: int, rng: random.Random, jobs: bool
    ) -> None:
        from itsm_tui.push import NotificationWatcher
        from itsm_tui.services.presence import new_console_id

        self.db = Database.connect(url)  # its own engine and pool, as a console process has
        self.config, self.user_id, self.group_id, self.index = config, user_id, group_id, index
        self.console_id = f"{new_console_id()[:48]}:{index}"
        self.rng = rng
        self.started = False  # the queue's first screen read and the watcher started
        self.stop = threading.Event()
        self.arrivals: list[tuple[int, float]] = []  # (probe number, wall-clock instant heard)
        self.checks: list[float] = []  # queue live check durations, seconds
        self.scans: list[float] = []  # ScanResult.seconds of each SLA scan
        self.errors: list[str] = []
        self.shown: list[int] = []
        self.watcher = NotificationWatcher(self.db, user_id, self.on_new)
        self.threads = [threading.Thread(target=self.queue_loop, daemon=True)]
        if jobs:  # the console runs the scheduler's jobs itself (sla.toml jobs_in_consoles)
            self.threads.append(threading.Thread(target=self.scheduler_loop, daemon=True))

    def on_new(self, rows, _unread: int) -> None:
        now = time.time()
        for row in rows:
            if row.message.startswith(PROBE):
                self.arrivals.append((int(row.message[len(PROBE) :]), now))

    def query(self):
        from itsm_tui.services.queue import Filter, QueueQuery

        return QueueQuery(
            view="all_open",
            filter=Filter(),
            sort="sla",
            actor_id=self.user_id,
            actor_group_ids=(self.group_id,),
            now=datetime.now(UTC),
        )

    def start(self) -> None:
        from itsm_tui.services import queue

        self.started = True
        with self.db.read_session() as session:  # the first screen
            self.shown = [row.id for row in queue.fetch_page(session, self.query(), limit=22)]
        self.watcher.start()
        for thread in self.threads:
            thread.start()

    def queue_loop(self) -> None:
        from itsm_tui.services import presence, queue

        next_beat = time.monotonic() + self.rng.uniform(0, HEARTBEAT_SECONDS)
        self.stop.wait(self.rng.uniform(0, QUEUE_CHECK_SECONDS))
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                with self.db.read_session() as session:  # screens/queue.py poll_changes
                    queue.newest_change(session)
                    presence.viewers(session, "ticket", self.shown, self.console_id, datetime.now(UTC))
                self.checks.append(time.perf_counter() - started)
                if time.monotonic() >= next_beat:  # screens/ticket.py beat
                    next_beat += HEARTBEAT_SECONDS
                    with self.db.session() as session:
                        presence.heartbeat(
                            session, self.user_id, self.console_id, "ticket", self.shown[0], datetime.now(UTC)
                        )
            except Exception as exc:
                self.errors.append(f"queue: {exc}".splitlines()[0])
            self.stop.wait(max(0.0, QUEUE_CHECK_SECONDS - (time.perf_counter() - started)))

    def scheduler_loop(self) -> None:
        from itsm_tui.jobs import change_reminders, sla_scan

        scan_every = self.config.scan_interval_seconds
        remind_every = self.config.changes.interval_seconds
        next_scan = time.monotonic() + self.rng.uniform(0, scan_every)
        next_remind = time.monotonic() + self.rng.uniform(0, remind_every)
        while not self.stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_scan:
                    next_scan += scan_every
                    self.scans.append(sla_scan.scan(self.db, self.config).seconds)
                if now >= next_remind:
                    next_remind += remind_every
                    change_reminders.remind(self.db, self.config)
            except Exception as exc:
                self.errors.append(f"scheduler: {exc}".splitlines()[0])
            self.stop.wait(max(0.0, min(next_scan, next_remind) - time.monotonic()))

    def finish(self) -> None:
        self.stop.set()
        if self.started:
            self.watcher.stop()
        for thread in self.threads:
            thread.join(timeout=30)
        self.db.dispose()


def host(url: str, users: list[tuple[int, int]], seed: int, pool_size: int, jobs: str) -> None:
    """A host process: run one console per (user id, group id); report when all listen; on "go" keep the
    measures from then on; on "stop" (or end of input) print them as JSON. ``jobs``: "consoles" (each
    console runs the jobs), "scheduler" (none does, and this process also runs them once, as one ``itsm
    scheduler`` host would, on an engine of its own) or "none"."""
    set_pool(pool_size)
    config = load_config()
    rng = random.Random(seed)
    consoles = [
        Console(url, uid, gid, config, seed * 1000 + i, random.Random(rng.random()), jobs == "consoles")
        for i, (uid, gid) in enumerate(users)
    ]
    scheduler = None
    if jobs == "scheduler":
        uid, gid = users[0]
        scheduler = Console(url, uid, gid, config, seed * 1000 + 999, random.Random(rng.random()), True)
        scheduler.threads = scheduler.threads[1:]  # only its jobs: no queue, no watcher
    for console in consoles:
        console.start()
    if scheduler is not None:
        for thread in scheduler.threads:
            thread.start()
    deadline = time.monotonic() + 60
    while not all(c.watcher.listening for c in consoles) and time.monotonic() < deadline:
        time.sleep(0.05)
    print("ready" if all(c.watcher.listening for c in consoles) else "not listening", flush=True)
    sys.stdin.readline()  # "go": the measured window starts
    for console in consoles:
        console.checks.clear()
    sys.stdin.readline()  # "stop"
    for console in consoles:
        console.stop.set()
    for console in consoles:
        console.finish()
    scans = [t for c in consoles for t in c.scans]
    if scheduler is not None:
        scheduler.stop.set()
        scheduler.finish()
        scans += scheduler.scans  # counted with the consoles' (its user's notifications are console 0's)
    json.dump(
        {
            "arrivals": {str(c.user_id): c.arrivals for c in consoles},
            "checks": [t for c in consoles for t in c.checks],
            "scans": scans,
            "errors": [e for c in [*consoles, *([scheduler] if scheduler else [])] for e in c.errors][:20],
        },
        sys.stdout,
    )


# --------------------------------------------------------------------------- the real console's typist


def typist(url: str, user_id: int, group_id: int, pool_size: int) -> None:
    """Type WORDS into All open's filter, one keystroke every KEY_GAP seconds, until "stop" on stdin; print
    the keystroke-to-rows and keystroke-to-count times as JSON. Runs its own live check and watcher."""
    from itsm_tui.services import queue
    from itsm_tui.services.users import Actor

    set_pool(pool_size)
    config = load_config()
    # The queue's live check and the watcher; the scheduler's jobs run in the consoles (or their host).
    console = Console(url, user_id, group_id, config, 999_999, random.Random(7), jobs=False)
    console.start()
    with console.db.read_session() as session:
        actor_row = session.execute(
            text("SELECT login, name FROM users WHERE id = :id"), {"id": user_id}
        ).one()
    actor = Actor(
        id=user_id,
        login=actor_row[0],
        name=actor_row[1],
        roles=frozenset({"agent"}),
        group_ids=frozenset({group_id}),
    )
    to_rows: list[float] = []
    to_count: list[float] = []
    stop = threading.Event()

    def stopper() -> None:
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=stopper, daemon=True).start()
    while not stop.is_set():
        for word in WORDS:
            for end in range(1, len(word) + 1):
                if stop.is_set():
                    break
                started = time.perf_counter()
                flt = queue.parse_filter(word[:end], actor, config)
                query = queue.query_for(actor, "all_open", flt, None, None, datetime.now(UTC))
                with console.db.read_session() as session:  # screens/queue.py load_query
                    queue.newest_change(session)
                    queue.fetch_page(session, query, limit=queue.PAGE_SIZE)
                    to_rows.append(time.perf_counter() - started)
                    queue.count(session, query)
                    to_count.append(time.perf_counter() - started)
                stop.wait(max(0.0, KEY_GAP - (time.perf_counter() - started)))
    console.finish()
    json.dump({"rows": to_rows, "count": to_count, "checks": console.checks}, sys.stdout)


# --------------------------------------------------------------------------- setting up


@contextlib.contextmanager
def private_server():
    """A throwaway PostgreSQL in a temporary folder, with room for the consoles; its admin URL."""
    binaries = next(Path("/usr/lib/postgresql").glob("*/bin"), None)
    initdb = shutil.which("initdb") or (str(binaries / "initdb") if binaries else "initdb")
    pg_ctl = shutil.which("pg_ctl") or (str(binaries / "pg_ctl") if binaries else "pg_ctl")
    folder = Path(tempfile.mkdtemp(prefix="bench_many_pg_"))
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if run_as:
        shutil.chown(folder, "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = folder / "data"
    subprocess.run(
        [*run_as, initdb, "-D", str(data), "-U", "postgres", "--auth=trust"], check=True, capture_output=True
    )
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={folder} -c max_connections=400"
    )
    subprocess.run(
        [*run_as, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def build(url: str, tickets: int, consoles: int) -> list[tuple[int, int]]:
    """The demo desk with ``tickets`` tickets and one agent of SD-L1 per console; their (user, group) ids."""
    from itsm_tui.models import Group, GroupMembership, RoleMembership, User, utcnow

    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "itsm_tui.cli", "demo", "--db", url, "--tickets", str(tickets)],
        check=True,
        capture_output=True,
        text=True,
    )
    db = Database.connect(url)
    with db.session() as session:
        group_id = session.scalar(select(Group.id).where(Group.code == "SD-L1"))
        users = []
        for n in range(consoles + 1):  # the last one is the typist's
            user = User(login=f"bench-c{n:03d}", name=f"Bench {n:03d}", timezone="UTC", created_at=utcnow())
            user.roles = [RoleMembership(role="agent")]
            user.groups = [GroupMembership(group_id=group_id, is_lead=False)]
            session.add(user)
            session.flush()
            users.append((user.id, group_id))
    with db.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    db.dispose()
    print(
        f"built {BENCH_DB}: {tickets} tickets, {consoles + 1} console users "
        f"({time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    return users


def connections_room(admin) -> tuple[int, int]:
    with admin.connect() as conn:
        limit = int(conn.execute(text("SHOW max_connections")).scalar_one())
        reserved = int(conn.execute(text("SHOW superuser_reserved_connections")).scalar_one())
        used = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
        ).scalar_one()
    return limit - reserved, int(used)


# --------------------------------------------------------------------------- one N


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def run_n(admin, url: str, users: list[tuple[int, int]], n: int, args) -> dict:
    consoles = users[:n]
    typist_user = users[-1]
    parts = max(1, min(args.processes, n))
    hosts = []
    for p in range(parts):
        chunk = consoles[p::parts]
        if chunk:
            jobs = "consoles" if args.jobs_in_consoles else ("scheduler" if p == 0 else "none")
            hosts.append(
                spawn(
                    "--host",
                    named(url, CONSOLES_APP),
                    json.dumps(chunk),
                    str(p + 1),
                    str(args.pool_size),
                    jobs,
                )
            )
    for h in hosts:
        line = h.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"a host process did not start its consoles: {line!r}")
    time.sleep(WARMUP)
    samples: list[tuple[int, int, int]] = []  # connections of the bench database: all, the consoles', idle
    stop = threading.Event()

    def sample() -> None:
        with admin.connect() as conn:
            while not stop.is_set():
                rows = conn.execute(
                    text(
                        "SELECT count(*), count(*) FILTER (WHERE application_name = :consoles), "
                        "count(*) FILTER (WHERE state = 'idle') FROM pg_stat_activity WHERE datname = :db"
                    ),
                    {"db": BENCH_DB, "consoles": CONSOLES_APP},
                ).one()
                conn.commit()
                samples.append((int(rows[0]), int(rows[1]), int(rows[2])))
                stop.wait(0.5)

    def active_ms() -> float:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            return float(
                conn.execute(
                    text("SELECT active_time FROM pg_stat_database WHERE datname = :db"), {"db": BENCH_DB}
                ).scalar_one()
                or 0.0
            )

    typing = spawn(
        "--typist", named(url, "bench-typist"), str(typist_user[0]), str(typist_user[1]), str(args.pool_size)
    )
    time.sleep(1.0)
    for h in hosts:
        h.stdin.write("go\n")
        h.stdin.flush()
    active_before, window_started = active_ms(), time.monotonic()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    committed: dict[int, tuple[float, list[int]]] = {}
    writer = Database.connect(named(url, "bench-writer"))
    rng = random.Random(n)
    ids = [uid for uid, _ in consoles]
    probe = 0
    from itsm_tui.services import notifications

    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        if ids:
            told = rng.sample(ids, max(1, len(ids) // 10))
            with writer.session() as session:
                notifications.notify_many(
                    session,
                    [
                        {
                            "user_id": uid,
                            "kind": "assigned",
                            "event_key": f"bench-many:{n}:{probe}",
                            "entity_type": None,
                            "entity_id": None,
                            "message": f"{PROBE}{probe}",
                            "created_at": datetime.now(UTC),
                        }
                        for uid in told
                    ],
                )
            committed[probe] = (time.time(), told)
            probe += 1
        time.sleep(PROBE_EVERY)
    time.sleep(2.0)  # the last probes arrive
    stop.set()
    sampler.join()
    active = active_ms() - active_before
    window = time.monotonic() - window_started
    writer.dispose()
    results = []
    for h in hosts:
        out, _ = h.communicate("stop\n", timeout=120)
        results.append(json.loads(out))
    out, _ = typing.communicate("stop\n", timeout=60)
    typed = json.loads(out)
    latencies, lost = [], 0
    for result in results:
        for uid, heard in result["arrivals"].items():
            when = {number: at for number, at in heard}
            for number, (at, told) in committed.items():
                if int(uid) in told:
                    if number in when:
                        latencies.append(when[number] - at)
                    else:
                        lost += 1
    return {
        "n": n,
        "connections_max": max((s[0] for s in samples), default=0),
        "connections_mean": sum(s[0] for s in samples) / max(1, len(samples)),
        "consoles_mean": sum(s[1] for s in samples) / max(1, len(samples)),
        "consoles_max": max((s[1] for s in samples), default=0),
        "latency": latencies,
        "lost": lost,
        "scans": [t for r in results for t in r["scans"]],
        "checks": [t for r in results for t in r["checks"]] + typed["checks"],
        "active_ms_per_s": active / window,
        "rows": typed["rows"],
        "count": typed["count"],
        "errors": [e for r in results for e in r["errors"]],
    }


def ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:.0f}"


def report(r: dict) -> str:
    n = r["n"]
    per = r["consoles_mean"] / n if n else float("nan")
    lat, lost = r["latency"], r["lost"]
    return (
        f"| {n} | {r['connections_max']} / {r['connections_mean']:.0f} "
        f"| {r['consoles_max']} / {r['consoles_mean']:.1f} = {per:.2f} "
        f"| {ms(percentile(lat, 0.5))} / {ms(percentile(lat, 0.95))} / {ms(percentile(lat, 1.0))}"
        f"{f' ({lost} lost)' if lost else ''} "
        f"| {len(r['scans'])}: {ms(percentile(r['scans'], 0.5))} / {ms(percentile(r['scans'], 0.95))} "
        f"| {r['active_ms_per_s']:.0f} | {ms(percentile(r['checks'], 0.95))} "
        f"| {ms(percentile(r['rows'], 0.95))} / {ms(percentile(r['count'], 0.95))} |"
    )


HEADER = (
    "| consoles | connections max / mean | the consoles' max / mean = per console "
    "| notification p50 / p95 / max ms "
    "| SLA scans: p50 / p95 ms | server active ms/s | queue check p95 ms | keystroke p95 rows / count ms |\n"
    "|---|---|---|---|---|---|---|---|"
)


def bench(admin_url: str, args) -> None:
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    url = make_url(admin_url).set(database=BENCH_DB).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {BENCH_DB}"))
    try:
        counts = [int(c) for c in args.consoles.split(",")]
        users = build(url, args.tickets, max(counts))
        room, used = connections_room(admin)
        print(
            f"server: {room} connections for clients, {used} in use before the bench; "
            f"pool size {args.pool_size}; "
            f"jobs {'in every console' if args.jobs_in_consoles else 'in one scheduler host'}; "
            f"{args.processes} host processes of console threads; {args.seconds:g} s per N",
            flush=True,
        )
        print(HEADER, flush=True)
        for n in counts:
            # Room for twice the steady count (bursts open connections for a moment), and some to spare
            # for whoever else uses the server.
            need = 2 * n * (1 if args.pool_size == 1 else 5) + 4
            _, used = connections_room(admin)
            if used + need > room - SPARE:
                print(
                    f"| {n} | skipped: about {need} connections needed, {room - used} free on this server "
                    f"(--private-server) |",
                    flush=True,
                )
                continue
            result = run_n(admin, url, users, n, args)
            print(report(result), flush=True)
            if result["errors"]:
                print("  errors: " + "; ".join(sorted(set(result["errors"]))[:5]), flush=True)
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", default=DEFAULT_DB, help="an admin URL of the server (bench_many is made there)"
    )
    parser.add_argument("--private-server", action="store_true", help="start a throwaway server of its own")
    parser.add_argument("--consoles", default="0,10,50,100", help="the values of N, comma-separated")
    parser.add_argument("--seconds", type=float, default=40, help="measured seconds per N (default 40)")
    parser.add_argument("--tickets", type=int, default=20000, help="demo tickets (default 20000)")
    parser.add_argument("--processes", type=int, default=2, help="host processes for the consoles")
    parser.add_argument("--pool-size", type=int, default=1, help="1: the console's pool; 5: SQLAlchemy's")
    parser.add_argument("--keep", action="store_true", help="keep bench_many")
    parser.add_argument(
        "--jobs-in-consoles",
        choices=("yes", "no"),
        default=None,
        help="whether each console runs the SLA job and reminders (default: sla.toml's jobs_in_consoles); "
        "no: one scheduler host runs them",
    )
    parser.add_argument("--host", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--typist", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.host:
        url, users, seed, pool, jobs = args.host
        host(url, [tuple(u) for u in json.loads(users)], int(seed), int(pool), jobs)
        return 0
    if args.jobs_in_consoles is None:
        args.jobs_in_consoles = load_config().jobs_in_consoles
    else:
        args.jobs_in_consoles = args.jobs_in_consoles == "yes"
    if args.typist:
        url, uid, gid, pool = args.typist
        typist(url, int(uid), int(gid), int(pool))
        return 0
    if args.private_server:
        with private_server() as admin_url:
            bench(resolve_database_url(admin_url), args)
    else:
        bench(resolve_database_url(args.db), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
