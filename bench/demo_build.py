"""Time `itsm demo --tickets N` (default 1,000,000) into a new SQLite file and print the figures.

python bench/demo_build.py [--tickets N] [--keep PATH]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--keep", metavar="PATH", help="build the database here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "itsm_tui.cli",
            "demo",
            "--db",
            str(path),
            "--tickets",
            str(args.tickets),
            "--seed",
            "1",
            "--anchor",
            "2026-11-20",
        ]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            return result.returncode
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        size = sum(os.path.getsize(f"{path}{s}") for s in ("", "-wal") if os.path.exists(f"{path}{s}"))
        print(result.stdout.strip())
        print(
            f"itsm demo --tickets {args.tickets:,}: {elapsed:.1f} s wall, "
            f"peak RSS {peak:.0f} MB (largest process), database {size / 1e6:.0f} MB, "
            f"{os.cpu_count()} CPUs"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
