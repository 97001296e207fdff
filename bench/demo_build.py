"""Time `itsm demo --tickets N` (default 1,000,000) into a new SQLite file or a PostgreSQL database and print
the figures.

python bench/demo_build.py [--tickets N] [--keep PATH] [--db postgresql://USER@HOST:PORT/NAME]

Without ``--db`` the demo is built into a new SQLite file (``--keep``: this one, kept afterwards). With a
PostgreSQL URL the demo is built into that database: one that does not exist yet is created for the run and
dropped after it (``--keep``: kept), one that exists is used as it is (a demo in it is replaced). Besides the
wall time it prints the phases the demo reports (setting up, loading the tickets, building the indexes, the
KPI roll-up and statistics), the rows written per second and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES = (
    ("generating ", "setup"),
    ("indexing ", "load"),
    ("computing the KPI", "indexes"),
)
"""The demo's progress lines that end a phase, and the phase each ends; the last phase ends with the run."""


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _server(url: str) -> tuple[str, str]:
    """A PostgreSQL URL's server part (for the maintenance database) and its database name."""
    match = re.fullmatch(r"(postgresql(?:\+\w+)?://[^/]*)/([^/?]+)", url)
    if match is None:
        raise SystemExit(f"--db: expected postgresql://USER@HOST:PORT/NAME, got {url}")
    return match.group(1), match.group(2)


def _admin(server: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(f"{server.replace('+psycopg', '')}/postgres", autocommit=True) as conn:
        cursor = conn.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []


def _run(command: list[str]) -> tuple[int, str, str, dict[str, float]]:
    """Run the demo, timing its phases from the progress lines it writes to standard error."""
    started = time.perf_counter()
    phases: dict[str, float] = {}
    mark = started
    errors: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        assert process.stderr is not None and process.stdout is not None
        for line in process.stderr:
            errors.append(line)
            for prefix, phase in PHASES:
                if line.startswith(prefix) and phase not in phases:
                    now = time.perf_counter()
                    phases[phase], mark = now - mark, now
        out = process.stdout.read()
        code = process.wait()
    now = time.perf_counter()
    phases["kpi and statistics"] = now - mark
    phases["total"] = now - started
    return code, out, "".join(errors), phases


def _rows(summary: str) -> int:
    """The tickets and audit events the demo's summary names (the bulk of the rows written)."""
    found = re.search(r"demo data: (\d+) tickets.* (\d+) audit events", summary)
    return int(found.group(1)) + int(found.group(2)) if found else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument(
        "--keep", metavar="PATH", nargs="?", const="", help="keep the database (SQLite: here)"
    )
    parser.add_argument("--db", metavar="URL", help="a PostgreSQL database to build in (created if missing)")
    args = parser.parse_args()
    if args.keep == "" and not args.db:
        parser.error("--keep: SQLite needs the PATH to keep the database at")
    created = False
    size = 0
    with tempfile.TemporaryDirectory() as tmp:
        if args.db:
            server, name = _server(args.db)
            if not _admin(server, "SELECT 1 FROM pg_database WHERE datname = %s", name):
                _admin(server, f'CREATE DATABASE "{name}"')
                created = True
            target, size_of = args.db, None
        else:
            path = Path(args.keep) if args.keep else Path(tmp) / "bench.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            target, size_of = str(path), path
        command = [
            sys.executable,
            "-m",
            "itsm_tui.cli",
            "demo",
            "--db",
            target,
            "--tickets",
            str(args.tickets),
        ]
        command += ["--seed", "1", "--anchor", "2026-11-20", "--force"]
        before = _load()
        try:
            code, out, errors, phases = _run(command)
            if code == 0 and args.db:
                size = int(str(_admin(server, "SELECT pg_database_size(%s)", name)[0][0]))
        finally:
            if created and args.keep is None:
                _admin(server, f'DROP DATABASE "{name}"')
        if code != 0:
            print(errors, file=sys.stderr)
            return code
        if size_of is not None:
            size = sum(
                os.path.getsize(f"{size_of}{s}") for s in ("", "-wal") if os.path.exists(f"{size_of}{s}")
            )
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        elapsed = phases["total"]
        rows = _rows(out)
        print(out.strip())
        print(
            f"itsm demo --tickets {args.tickets:,} ({'PostgreSQL' if args.db else 'SQLite'}): "
            f"{elapsed:.1f} s wall, {rows / elapsed:,.0f} ticket and audit rows per second, "
            f"peak RSS {peak:.0f} MB (largest process), database {size / 1e6:.0f} MB, "
            f"{os.cpu_count()} CPUs"
        )
        print("phases: " + ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in phases.items()))
        print(f"load average before: {before}; after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
