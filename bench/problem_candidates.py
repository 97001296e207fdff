"""Time candidate-problem detection on a demo database, beside the floor of a bare keyset page.

    python bench/problem_candidates.py --db PATH_OR_URL [--runs 30]
        (a 1,000,000-ticket demo: python bench/demo_build.py --tickets 1000000 --keep PATH)

Each run is what `itsm problem candidates` and the problems screen do: ``candidates(session, config, now)``
in a read session of its own, ``now`` the end of the demo history. The floor is, in the same run and on the
same database, ``SELECT ... FROM tickets ORDER BY id LIMIT 50`` (the cheapest page the desk reads). Printed:
the window's incidents, the candidates found, p50/p95 over the runs (after one warm-up run) and the load
average. Goal: p95 <= 50 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta

from figures import percentile
from sqlalchemy import func, select


def _timed(runs: int, once) -> list[float]:
    once()  # warm the caches and the statement cache
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        once()
        timings.append(time.perf_counter() - started)
    return timings


def _figures(label: str, timings: list[float]) -> str:
    p50, p95 = percentile(timings, 0.5) * 1000, percentile(timings, 0.95) * 1000
    return f"{label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(timings) * 1000:.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite file or database URL of a demo database")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    from itsm_tui.config import load_config, resolve_database_url
    from itsm_tui.db import open_database
    from itsm_tui.models import Ticket
    from itsm_tui.services.problems.candidates import candidates

    config = load_config()
    db = open_database(resolve_database_url(args.db), config, create=False)
    settings = config.problems
    with db.read_session() as session:
        tickets = session.scalar(select(func.count()).select_from(Ticket))
        newest = session.scalar(select(func.max(Ticket.opened_at)))
        now = (newest or datetime.now(UTC)) + timedelta(minutes=1)
        window = session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(
                Ticket.opened_at >= now - timedelta(days=settings.window_days),
                Ticket.kind == "incident",
            )
        )
        found = candidates(session, config, now=now)
    print(
        f"{db.backend}, {tickets:,} tickets; as of {now:%Y-%m-%d %H:%M} UTC (the end of the demo history): "
        f"{window:,} incidents in the last {settings.window_days} days; {len(found)} candidates "
        f"(at least {settings.min_incidents} incidents, by {', '.join(settings.by)}, limit {settings.limit})"
    )
    for c in found[:5]:
        print(
            f"  {c.key}: {c.count:,} incidents, {c.first_opened:%m-%d %H:%M} .. {c.last_opened:%m-%d %H:%M}"
        )

    def detect() -> None:
        with db.read_session() as session:
            candidates(session, config, now=now)

    page = select(Ticket.id, Ticket.ref, Ticket.title, Ticket.status).order_by(Ticket.id).limit(50)

    def floor() -> None:
        with db.read_session() as session:
            session.execute(page).all()

    before = os.getloadavg()
    detection = _timed(args.runs, detect)
    keyset = _timed(args.runs, floor)
    after = os.getloadavg()
    print(_figures(f"candidate detection ({args.runs} runs)", detection) + " (goal p95 <= 50 ms)")
    print(_figures(f"floor: keyset page ORDER BY id LIMIT 50 ({args.runs} runs)", keyset))
    print(
        f"load average before {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, "
        f"after {after[0]:.2f} {after[1]:.2f} {after[2]:.2f} ({os.cpu_count()} CPUs)"
    )
    db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
