"""Keystrokes in the Problems screen (F7) on a large demo desk, beside the floor of the same table with
nothing behind it, in the same run.

    python bench/problem_ui.py --db /tmp/demo1m.db [--login LOGIN] [--keys 60]

The console runs headless (Textual's test driver) at 80x24. Timed from the key to the screen settled (the
key handled and every message it caused, the database read of a new view or filter landed):

- moves (Down, PageDown, Up): the rows are in memory, so this is the table alone;
- the views 1-4 (each a read of the problem list, index-backed) and the filter (each key typed is a read);
- the candidates view (5: the incident clusters of the window counted along their partial indexes).

The floor is a bare Textual app holding the same RecordTable with the same number of rows, no database:
its moves are what a line-API table costs here. Prints p50 / p95 / max and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import percentile
from queue_ui import wait_for
from textual import events
from textual.app import App, ComposeResult

from itsm_tui.app import ItsmApp
from itsm_tui.config import load_config
from itsm_tui.db import Database
from itsm_tui.screens.problems import ProblemsScreen
from itsm_tui.screens.recordtable import RecordTable, TableColumn
from itsm_tui.services import users

SIZE = (80, 24)


def line(what: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{what} ({len(ms)}): p50 {percentile(ms, 0.5):.1f} ms, p95 {percentile(ms, 0.95):.1f} ms, "
        f"max {max(ms):.1f} ms"
    )


async def settled(pilot, screen: ProblemsScreen | None = None, timeout: float = 30.0) -> None:
    """Between measured keys: the key's messages handled and, on the problems screen, its newest read."""
    await pilot.pause()
    if screen is None:
        return
    deadline = time.perf_counter() + timeout
    while not screen.up_to_date:
        if time.perf_counter() > deadline:
            raise TimeoutError("the problem list did not land")
        await asyncio.sleep(0.005)
    await pilot.pause()


CHARS = {"colon": ":", "space": " ", "slash": "/"}


def _done(screen: ProblemsScreen | None, table: RecordTable) -> Callable[[], bool]:
    """Whether the key took effect: the new read's rows shown, or the cursor moved."""
    cursor, generation = table.cursor, screen.generation if screen is not None else 0

    def done() -> bool:
        if screen is not None and screen.generation != generation:
            return screen.up_to_date
        return table.cursor != cursor

    return done


async def timed(pilot, keys: list[str], screen: ProblemsScreen | None = None) -> list[float]:
    """Each key sent as the terminal driver delivers it (not Pilot.press, whose two waits for the whole
    process to go idle take 40 ms or more), timed to the first frame put on the screen once it took effect:
    the cursor moved, or the new read's rows shown (queue_ui's FrameWatch)."""
    times = []
    for key in keys:
        table = screen.table if screen is not None else pilot.app.query_one(RecordTable)
        done = _done(screen, table)
        start = time.perf_counter()
        pilot.app._driver.send_message(events.Key(key, CHARS.get(key, key if len(key) == 1 else None)))
        shown = await wait_for(pilot, done, 30.0)
        times.append((shown or time.perf_counter()) - start)
        await settled(pilot, screen)
    return times


async def console(db: Database, login: str, moves: int) -> tuple[dict[str, list[float]], int]:
    config = load_config()
    with db.read_session() as session:
        actor = users.resolve_actor(session, login)
    app = ItsmApp(db, config, actor, run_scheduler=False)
    found: dict[str, list[float]] = {}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        start = time.perf_counter()
        await pilot.press("f7")
        while not isinstance(app.screen, ProblemsScreen):
            await asyncio.sleep(0.005)
        screen = app.screen
        await settled(pilot, screen)
        found["F7: the mode opens on its first view"] = [time.perf_counter() - start]
        await pilot.press("4")  # all problems: the most rows
        await settled(pilot, screen)
        rows = len(screen.table.rows)
        found["moves (Down, PageDown, Up)"] = await timed(
            pilot, ["down"] * moves + ["pagedown"] * 5 + ["up"] * moves, screen
        )
        found["views 1-4 (a read of the list each)"] = await timed(pilot, ["1", "2", "3", "4"] * 5, screen)
        await pilot.press("slash")
        await settled(pilot, screen)
        typed = ["p", "colon", "2", "space", "s", "v", "c", "colon", "e", "m", "a", "i", "l"]
        found["the filter, a key a read (p:2 svc:email)"] = await timed(pilot, typed, screen)
        await pilot.press("enter")
        await settled(pilot, screen)
        both = await timed(pilot, ["5", "4"] * 5, screen)
        found["candidates view (5: the clusters detected)"] = both[0::2]
        found["back to all problems (4)"] = both[1::2]
    return found, rows


class Floor(App[None]):
    def __init__(self, rows: int) -> None:
        super().__init__()
        self.count = rows

    def compose(self) -> ComposeResult:
        yield RecordTable()

    def on_mount(self) -> None:
        columns = [
            TableColumn("ref", "Ref", 10),
            TableColumn("p", "P", 2),
            TableColumn("status", "Status", 15),
            TableColumn("title", "Title", 0),
            TableColumn("owner", "Owner", 10),
        ]
        rows = [
            (f"PRB{n:07d}", f"P{n % 5 + 1}", "investigating", f"Problem {n}", "owner")
            for n in range(self.count)
        ]
        table = self.query_one(RecordTable)
        table.show_rows(columns, rows, lambda row, key: (row[[c.key for c in columns].index(key)], ""))
        table.focus()


async def floor(rows: int, moves: int) -> list[float]:
    app = Floor(rows)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        return await timed(pilot, ["down"] * moves + ["pagedown"] * 5 + ["up"] * moves)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="a demo database: a path or a URL")
    parser.add_argument("--login", default=users.os_login(), help="the desk user to open the console as")
    parser.add_argument("--keys", type=int, default=60, help="moves down and up each")
    args = parser.parse_args()
    url = args.db if "://" in args.db else f"sqlite:///{Path(args.db).resolve()}"
    db = Database.connect(url)
    with db.read_session() as session:
        from sqlalchemy import func, select

        from itsm_tui.models import Problem, Ticket

        tickets = session.scalar(select(func.count()).select_from(Ticket))
        problems = session.scalar(select(func.count()).select_from(Problem))
    before = os.getloadavg()
    found, rows = asyncio.run(console(db, args.login, args.keys))
    floor_moves = asyncio.run(floor(rows, args.keys))
    after = os.getloadavg()
    print(
        f"{db.backend}, {tickets:,} tickets, {problems:,} problems ({rows} in the all-problems view), 80x24"
    )
    for what, values in found.items():
        print("  " + line(what, values))
    print("  " + line("floor: the same table, no database, same moves", floor_moves))
    moves = found["moves (Down, PageDown, Up)"]
    ratio = percentile(moves, 0.95) / max(percentile(floor_moves, 0.95), 1e-9)
    print(f"  moves p95 / floor p95: {ratio:.2f}x   (goal: a keystroke p95 <= 50 ms)")
    print(f"load average before {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, after {after[0]:.2f} "
          f"{after[1]:.2f} {after[2]:.2f} ({os.cpu_count()} CPUs)")  # fmt: skip
    db.dispose()


if __name__ == "__main__":
    main()
