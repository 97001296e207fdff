"""Measure how long a notification written by one console process takes to reach another console.

For SQLite (a temporary file) and PostgreSQL (a new database itsm_bench_<random>, dropped afterwards; skipped
with a message if the server cannot be reached), this process watches user A's notifications with
``NotificationWatcher`` (polling on SQLite, LISTEN/NOTIFY on PostgreSQL) while a separate process writes
``--count`` notifications for A through ``notifications.notify`` with random gaps, noting the wall-clock
instant right after each commit. Latency is the arrival instant in the watcher minus that commit instant.

python bench/notify_latency.py [--count 30] [--postgres postgresql://postgres@127.0.0.1:5432/test]
                               [--no-postgres] [--poll SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from figures import percentile
from sqlalchemy import select
from sqlalchemy.engine import make_url

from itsm_tui.config import load_config, resolve_database_url
from itsm_tui.db import Database, make_engine
from itsm_tui.models import Group, GroupMembership, RoleMembership, User, utcnow
from itsm_tui.push import NotificationWatcher
from itsm_tui.services import notifications

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
GOALS = {"sqlite": 2.0, "postgresql": 0.5}  # seconds from commit to arrival
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
PROBE = "latency probe "  # message prefix; the probe number follows


# --------------------------------------------------------------------------- the writing process


def write_probes(url: str, user_id: int, count: int, seed: int) -> None:
    """The other console: write ``count`` notifications for the user; print the commit instants as JSON."""
    db = Database.connect(url)
    rng = random.Random(seed)
    with db.read_session() as session:  # connect (and warm up) before the first timed write
        notifications.newest_id(session, user_id)
    committed: dict[int, float] = {}
    for n in range(count):
        time.sleep(rng.uniform(0.2, 0.6))
        with db.session() as session:
            notifications.notify(
                session,
                [user_id],
                kind="assigned",
                event_key=f"bench-latency:{seed}:{n}",
                entity=None,
                message=f"{PROBE}{n}",
            )
        committed[n] = time.time()  # the block above has committed
    db.dispose()
    json.dump({"committed": committed}, sys.stdout)


# --------------------------------------------------------------------------- the watching process


def add_users(db: Database) -> tuple[int, int]:
    """Two users of SD-L1: A (who is told) and B (in whose name the other console writes)."""
    with db.session() as session:
        group_id = session.scalar(select(Group.id).where(Group.code == "SD-L1"))
        ids = []
        for login in ("bench-a", "bench-b"):
            user = User(login=login, name=f"Bench {login[-1].upper()}", timezone="UTC", created_at=utcnow())
            user.roles = [RoleMembership(role="agent")]
            user.groups = [GroupMembership(group_id=group_id, is_lead=False)]
            session.add(user)
            session.flush()
            ids.append(user.id)
    return ids[0], ids[1]


def measure(url: str, count: int, poll: float) -> str:
    """Set up the database at ``url``, watch user A, run the writing process; return the summary line."""
    db = Database.connect(url)
    db.upgrade()
    db.sync_catalog(load_config())
    user_a, _user_b = add_users(db)
    arrivals: dict[int, float] = {}
    lock = threading.Lock()

    def on_new(rows: list[notifications.NotificationRow], unread: int) -> None:
        now = time.time()
        with lock:
            for row in rows:
                if row.message.startswith(PROBE):
                    arrivals[int(row.message[len(PROBE) :])] = now

    watcher = NotificationWatcher(db, user_a, on_new, poll_seconds=poll)
    watcher.start()
    label = LABELS.get(db.backend, db.backend)
    try:
        deadline = time.monotonic() + 10
        while db.backend == "postgresql" and not watcher.listening and time.monotonic() < deadline:
            time.sleep(0.05)
        if db.backend == "postgresql" and not watcher.listening:
            return f"{label}: the watcher did not start listening within 10 s"
        command = [sys.executable, __file__, "--writer", url, str(user_a), str(count), str(os.getpid())]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60 + count * 2)
        if result.returncode != 0:
            return f"{label}: the writing process failed:\n{result.stderr}"
        committed = {int(n): t for n, t in json.loads(result.stdout)["committed"].items()}
        deadline = time.monotonic() + 5  # let the last ones arrive
        while len(arrivals) < len(committed) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.stop()
        db.dispose()
    with lock:
        latencies = [arrivals[n] - t for n, t in committed.items() if n in arrivals]
    lost = len(committed) - len(latencies)
    if not latencies:
        return f"{label}: none of the {len(committed)} notifications reached the watcher"
    how = f"polling every {poll:g} s" if label == "SQLite" else "LISTEN/NOTIFY"
    return (
        f"{label}: notification reaches another console p50 {percentile(latencies, 0.5):.2f} s, "
        f"p95 {percentile(latencies, 0.95):.2f} s, max {max(latencies):.2f} s "
        f"(goal <= {GOALS.get(db.backend, 0):g} s; {len(latencies)}/{len(committed)} arrived"
        + (f", {lost} LOST" if lost else "")
        + f"; min {min(latencies):.3f} s, mean {statistics.fmean(latencies):.3f} s; {how})"
    )


def bench_sqlite(count: int, poll: float) -> str:
    with tempfile.TemporaryDirectory(prefix="itsm_bench_") as tmp:
        return measure(f"sqlite:///{Path(tmp) / 'latency.db'}", count, poll)


def bench_postgres(admin_url: str, count: int, poll: float) -> str:
    """Create itsm_bench_<random> on the server of ``admin_url``, measure there, drop it."""
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"itsm_bench_{secrets.token_hex(4)}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except Exception as exc:
        admin.dispose()
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return f"PostgreSQL: skipped, cannot create a database at {make_url(admin_url)!r}: {reason}"
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        return measure(url, count, poll)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30, help="notifications written (default 30)")
    parser.add_argument("--postgres", metavar="URL", default=DEFAULT_POSTGRES, help="server to create on")
    parser.add_argument("--no-postgres", action="store_true", help="measure SQLite only")
    parser.add_argument("--poll", type=float, default=0.5, help="the watcher's polling period (default 0.5)")
    parser.add_argument("--writer", nargs=4, metavar=("URL", "USER", "COUNT", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        url, user, count, seed = args.writer
        write_probes(url, int(user), int(count), int(seed))
        return 0
    print(bench_sqlite(args.count, args.poll), flush=True)
    if not args.no_postgres:
        print(bench_postgres(resolve_database_url(args.postgres), args.count, args.poll), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
