"""Time the KPI board's data on a demo database: the report for 30 and 90 days and the live figures.

    python bench/kpi_board.py --db PATH      (a 1,000,000-ticket demo: python bench/demo_build.py --keep PATH)

Each run is what the board does when it opens or the period changes: refresh the roll-up's marked days,
read the period (past days from the roll-up, today live), the previous period for the headline tiles,
and the operational snapshot.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite file or database URL of a demo database")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from itsm_tui.config import load_config, resolve_database_url
    from itsm_tui.db import open_database
    from itsm_tui.models import Ticket
    from itsm_tui.services import kpi

    config = load_config()
    db = open_database(resolve_database_url(args.db), config)
    with db.read_session() as session:
        tickets = session.scalar(select(func.count()).select_from(Ticket))
        newest = session.scalar(select(func.max(Ticket.opened_at)))
    now = (newest or datetime.now(UTC)) + timedelta(minutes=1)
    print(f"{tickets:,} tickets; reporting as of {now:%Y-%m-%d %H:%M} UTC (the end of the demo history)")
    results = {}
    for days in (30, 90):
        period = kpi.custom_period((now - timedelta(days=days - 1)).date(), now.date(), now)
        timings = []
        for _ in range(args.runs):
            started = time.perf_counter()
            with db.session() as session:
                report = kpi.report(session, config, period)
                kpi.operational_snapshot(session, now)
            timings.append(time.perf_counter() - started)
        results[days] = timings
        print(
            f"{days} days: {report.opened:,} opened, {report.resolved:,} resolved; board data "
            f"median {statistics.median(timings):.3f} s (min {min(timings):.3f} s, first {timings[0]:.3f} s)"
        )
    # A change to a past ticket marks its day; the next board load recomputes that day only.
    with db.session() as session:
        kpi.mark_dirty(session, now - timedelta(days=3))
    started = time.perf_counter()
    with db.session() as session:
        kpi.report(session, config, kpi.custom_period((now - timedelta(days=29)).date(), now.date(), now))
    print(f"30 days after one day was marked changed: {time.perf_counter() - started:.3f} s")
    thirty, ninety = statistics.median(results[30]), statistics.median(results[90])
    print(f"KPI board, 30 days: {thirty:.2f} s; 90 days: {ninety:.2f} s (goal <= 2 s)")
    db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
