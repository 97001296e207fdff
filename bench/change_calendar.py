"""Time the change calendar over 10,000 changes: the conflict check and the month view; print the figures.

A new SQLite database (migrated, catalog synchronised) gets the demo's six maintenance windows (Europe/Berlin,
weekly and monthly RRULEs), two blackouts, 20 implementers and N changes (default 10,000) spread over a year:
about half inside a window of their service, 70% in live states (they hold their slot), 1-4 hours long.
Timed, each ``--runs`` times (median and best shown):

- conflict check, all: ``conflicts.between`` over the whole year (read every change and target, expand the
  windows, one sweep), and the sweep alone on data already read;
- conflict check, one change: ``conflicts.check`` as at submit or in the new-change form;
- month view, service: ``changes.calendar`` for one month grid (six weeks), the calendar's one read;
- month view, drawing: building the day index and drawing the month grid (pure functions of the screen);
- month view, console: in the real app at 80x24 (headless), from a key press to the new month drawn
  (page down to the next month: read, index, draw), measured with Textual's Pilot.
- slot finder: ``changes.slots_for`` (count 5, from the clock on) for 50 different live changes, each in a
  read session of its own (read the change, then the live changes of its services and implementer, the
  blackouts and the windows of the horizon, and sweep): p50 / p95 / max over the 50 (after one warm-up),
  beside its floor in the same run, the conflict check of the same change (``conflicts.check``, as at
  submit), and the load average before and after. Goal: p95 <= 100 ms.

python bench/change_calendar.py [--changes 10000] [--runs 5] [--keep DIR] [--postgres postgresql://...]
With ``--postgres`` the same runs in a new database itsm_bench_<random> on that server, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from itsm_tui.config import load_config, resolve_database_url
from itsm_tui.db import Database
from itsm_tui.models import (
    Blackout,
    Change,
    ChangeTarget,
    Group,
    GroupMembership,
    MaintenanceWindow,
    RoleMembership,
    User,
)
from itsm_tui.services import changes, conflicts
from itsm_tui.services.users import resolve_actor

YEAR_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
CLOCK = datetime(2026, 6, 15, 10, tzinfo=UTC)  # the console's "now": mid-year, a busy June
LIVE = ("submitted", "assessed", "approved", "scheduled")
DONE = ("closed", "implemented", "draft", "rejected")
WINDOWS = (
    ("Network weekly window", "network", "FREQ=WEEKLY;BYDAY=SA", "22:00", 360),
    ("VPN weekly window", "vpn", "FREQ=WEEKLY;BYDAY=SA", "22:00", 240),
    ("ERP Sunday window", "erp", "FREQ=WEEKLY;BYDAY=SU", "02:00", 240),
    ("Email mid-week window", "email", "FREQ=WEEKLY;BYDAY=WE", "21:00", 180),
    ("Identity monthly window", "identity", "FREQ=MONTHLY;BYDAY=1SA", "20:00", 480),
    ("Storage weekly window", "storage", "FREQ=WEEKLY;BYDAY=SU", "01:00", 300),
)


def build(db: Database, size: int, seed: int = 7) -> float:
    """Fill the database; return the seconds it took."""
    began = time.perf_counter()
    config = load_config()
    rng = random.Random(seed)
    with db.session() as s:
        group = s.scalar(select(Group).where(Group.code == "NET-L2"))
        manager = User(login="bench-chm", name="Bench Change Manager", timezone="UTC", created_at=YEAR_START)
        manager.roles = [RoleMembership(role="change_manager"), RoleMembership(role="cab_member")]
        s.add(manager)
        implementers = []
        for number in range(20):
            user = User(
                login=f"bench-impl{number}",
                name=f"Implementer {number}",
                timezone="UTC",
                created_at=YEAR_START,
            )
            user.roles = [RoleMembership(role="support_l2")]
            user.groups = [GroupMembership(group_id=group.id)]
            s.add(user)
            implementers.append(user)
        for name, service, rule, start, minutes in WINDOWS:
            s.add(
                MaintenanceWindow(
                    name=name,
                    service=service,
                    timezone="Europe/Berlin",
                    rrule=rule,
                    start_local=start,
                    duration_minutes=minutes,
                    valid_from=YEAR_START - timedelta(days=30),
                )
            )
        s.add(
            Blackout(
                name="Quarter close",
                service="erp",
                starts_at=datetime(2026, 6, 28, tzinfo=UTC),
                ends_at=datetime(2026, 7, 2, tzinfo=UTC),
            )
        )
        s.add(
            Blackout(
                name="Year-end freeze",
                service=None,
                starts_at=datetime(2026, 12, 18, tzinfo=UTC),
                ends_at=datetime(2027, 1, 4, tzinfo=UTC),
            )
        )
        s.flush()
        implementer_ids = [u.id for u in implementers]
        manager_id = manager.id
        windows = conflicts.window_specs(s)
    occurrences: dict[str, list[conflicts.Occurrence]] = {}
    for window in windows:
        occurrences.setdefault(window.service, []).extend(
            conflicts.occurrences(window, YEAR_START, YEAR_START + timedelta(days=365))
        )
    services = list(config.services)
    change_rows, target_rows = [], []
    for number in range(1, size + 1):
        service = rng.choice(services)
        hours = rng.choice((1, 2, 3, 4))
        if occurrences.get(service) and rng.random() < 0.5:
            occurrence = rng.choice(occurrences[service])
            room = max(0, int((occurrence.end - occurrence.start).total_seconds() // 1800) - hours * 2)
            start = occurrence.start + timedelta(minutes=30 * rng.randint(0, room))
        else:
            start = YEAR_START + timedelta(minutes=30 * rng.randrange(365 * 48))
        state = rng.choice(LIVE) if rng.random() < 0.7 else rng.choice(DONE)
        change_rows.append(
            {
                "id": number,
                "ref": f"CHG{number:07d}",
                "title": f"Bench change {number} on {service}",
                "description": "",
                "change_type": rng.choices(("standard", "normal", "emergency"), (0.4, 0.55, 0.05))[0],
                "state": state,
                "risk": rng.choice(("low", "medium", "high")),
                "planned_start": start,
                "planned_end": start + timedelta(hours=hours),
                "implementation_plan": "Do it.",
                "backout_plan": "Undo it.",
                "test_plan": "",
                "implementer_id": rng.choice(implementer_ids),
                "requested_by_id": manager_id,
                "created_at": YEAR_START - timedelta(days=10),
                "updated_at": YEAR_START - timedelta(days=10),
                "version": 1,
            }
        )
        cis = config.services[service].cis
        target_rows.append({"change_id": number, "service": service, "ci": rng.choice(cis) if cis else None})
    with db.session() as s:
        for offset in range(0, size, 2000):
            s.execute(insert(Change), change_rows[offset : offset + 2000])
            s.execute(insert(ChangeTarget), target_rows[offset : offset + 2000])
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return time.perf_counter() - began


def timed(fn: Callable[[], object], runs: int) -> tuple[list[float], object]:
    seconds, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - began)
    return seconds, result


def show(label: str, seconds: list[float], note: str = "") -> None:
    median, best = statistics.median(seconds) * 1000, min(seconds) * 1000
    print(f"  {label:<46} median {median:8.1f} ms   best {best:8.1f} ms" + (f"   {note}" if note else ""))


def measure(db: Database, size: int, runs: int) -> None:
    from zoneinfo import ZoneInfo

    from itsm_tui.screens.calendar import DayIndex, grid_start, render_month

    year = (YEAR_START, YEAR_START + timedelta(days=365))

    def check_all():
        with db.read_session() as s:
            return conflicts.between(s, *year)

    seconds, found = timed(check_all, runs)
    kinds: dict[str, int] = {}
    for conflict in found:
        kinds[conflict.kind] = kinds.get(conflict.kind, 0) + 1
    with db.read_session() as s:
        live = conflicts.planned_changes(s, *year)
        windows = conflicts.window_specs(s)
        freezes = conflicts.blackout_specs(s, *year)
    show(
        f"conflict check, all {len(live):,} live of {size:,} changes",
        seconds,
        f"{len(found):,} conflicts: " + ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())),
    )
    seconds, _ = timed(lambda: conflicts.find_conflicts(live, windows, freezes), runs)
    show("  of which the sweep alone (data read)", seconds)

    with db.read_session() as s:
        sample = random.Random(3).sample(list(s.scalars(select(Change).where(Change.state.in_(LIVE)))), 20)
        subjects = [changes.planned_of(s, c) for c in sample]

    def check_one():
        with db.read_session() as s:
            return [conflicts.check(s, subject) for subject in subjects]

    seconds, _ = timed(check_one, runs)
    show("conflict check, one change (as at submit)", [x / len(subjects) for x in seconds])

    tz = ZoneInfo("UTC")
    selected = CLOCK.date()
    first = grid_start(selected)
    month = (
        datetime.combine(first, datetime.min.time(), UTC),
        datetime.combine(first + timedelta(days=42), datetime.min.time(), UTC),
    )

    def read_month():
        with db.read_session() as s:
            return changes.calendar(s, *month)

    seconds, data = timed(read_month, runs)
    show(
        "month view, service read (6 weeks)",
        seconds,
        f"{len(data.changes):,} changes, "
        f"{len(data.occurrences)} window occurrences, {len(data.conflicts):,} conflicts",
    )
    seconds, _ = timed(lambda: render_month(DayIndex.build(data, tz), selected, selected, 80), runs)
    show("month view, day index + drawing at 80 columns", seconds)

    console = asyncio.run(console_month(db, runs))
    show("month view, console: key to month drawn", console["move"], "page down, then back (80x24, Pilot)")
    show("  first opening of the calendar (F3)", console["open"])

    slot_finder(db, runs)


def slot_finder(db: Database, runs: int) -> None:
    """The next five free slots of 50 live changes (a third on services without windows), beside the
    conflict check of the same changes."""
    import os

    from figures import percentile

    config = load_config()
    windowed = {service for _, service, *_ in WINDOWS}
    with db.read_session() as s:
        live = list(
            s.scalars(
                select(Change).where(Change.state.in_(LIVE), Change.planned_start > CLOCK).order_by(Change.id)
            )
        )
        rng = random.Random(11)
        with_windows = [c for c in live if any(t.service in windowed for t in c.targets)]
        without = [c for c in live if c not in with_windows]
        sample = rng.sample(with_windows, 34) + rng.sample(without, 16)
        refs = [c.ref for c in sample]
        subjects = [changes.planned_of(s, c) for c in sample]
        busiest = max(
            s.execute(
                select(func.count())
                .select_from(Change)
                .where(Change.state.in_(LIVE))
                .group_by(Change.implementer_id)
            ).scalars()
        )

    def finder(ref: str) -> Callable[[], object]:
        def run() -> object:
            with db.read_session() as s:
                return changes.slots_for(s, config, ref, count=5, now=CLOCK)

        return run

    def checker(subject: conflicts.Planned) -> Callable[[], object]:
        def run() -> object:
            with db.read_session() as s:
                return conflicts.check(s, subject, same_service=config.changes.same_service_severity)

        return run

    before = os.getloadavg()
    finder(refs[0])()  # warm the statement cache
    found, finding, checking = [], [], []
    for ref, subject in zip(refs, subjects, strict=True):
        seconds, result = timed(finder(ref), 1)
        finding += seconds
        found.append(len(result) if isinstance(result, list) else 0)
        checking += timed(checker(subject), 1)[0]
    after = os.getloadavg()

    def figures(values: list[float]) -> str:
        p50, p95 = percentile(values, 0.5) * 1000, percentile(values, 0.95) * 1000
        return f"p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   max {max(values) * 1000:6.1f} ms"

    print(
        f"  slot finder, 5 slots, 50 live changes ({len(refs) - 16} on services with windows, 16 without; "
        f"the busiest implementer has {busiest} live changes; {sum(found)} slots found: "
        f"{found.count(5)} changes got 5, {found.count(0)} none in the "
        f"{config.changes.slot_horizon_days} days, their windows booked up)"
    )
    print(f"    {figures(finding)}   (goal p95 <= 100 ms)")
    print(f"    floor: the conflict check of the same changes (as at submit): {figures(checking)}")
    print(
        f"    load average before {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, "
        f"after {after[0]:.2f} {after[1]:.2f} {after[2]:.2f} ({os.cpu_count()} CPUs)"
    )


async def console_month(db: Database, runs: int) -> dict[str, list[float]]:
    from itsm_tui.app import ItsmApp
    from itsm_tui.screens.calendar import CalendarScreen

    config = load_config()
    with db.read_session() as s:
        actor = resolve_actor(s, "bench-chm")
    app = ItsmApp(db, config, actor, run_scheduler=False, clock=lambda: CLOCK)
    result: dict[str, list[float]] = {"open": [], "move": []}
    async with app.run_test(size=(80, 24)) as pilot:

        async def until_drawn(began: float) -> float:
            for _ in range(5000):
                screen = app.screen
                if isinstance(screen, CalendarScreen) and screen.up_to_date:
                    await pilot.pause()  # let the frame paint
                    return time.perf_counter() - began
                await asyncio.sleep(0.001)
            raise RuntimeError("the calendar did not draw")

        began = time.perf_counter()
        await pilot.press("f3")
        result["open"].append(await until_drawn(began))
        for number in range(runs * 2):
            began = time.perf_counter()
            await pilot.press("pagedown" if number % 2 == 0 else "pageup")
            result["move"].append(await until_drawn(began))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="keep the SQLite database in this directory")
    parser.add_argument("--postgres", metavar="URL", help="run on a new database of this PostgreSQL server")
    args = parser.parse_args()
    config = load_config()
    admin = None
    if args.postgres:
        admin_url = resolve_database_url(args.postgres)
        name = f"itsm_bench_{secrets.token_hex(4)}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        where = f"PostgreSQL database {name}"
    else:
        folder = args.keep or Path(tempfile.mkdtemp(prefix="itsm-bench-calendar-"))
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder / 'calendar.db'}"
        where = f"SQLite {folder / 'calendar.db'}"
    db = Database.connect(url)
    try:
        db.upgrade()
        db.sync_catalog(config)
        seconds = build(db, args.changes)
        print(f"Change calendar: {args.changes:,} changes over a year, {where} (built in {seconds:.1f} s)")
        measure(db, args.changes, args.runs)
    finally:
        db.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
