"""Time the queue screen on a million-ticket demo database: first paint, keystrokes, memory, start-up.

On an SQLite demo database (build one with ``python bench/demo_build.py --keep PATH``; its console login is
the OS user, who is resolved as the real command does), this prints:

1. queue first paint: from creating ``ItsmApp`` and starting ``run_test(size=(120, 40))`` until every row in
   the queue table's viewport has been read (the rows, not the count), and until the count shows
   (``screen.up_to_date``); ``--repeat`` fresh apps, median and min;
2. keystroke to updated rows, p50 and p95: page down (until the rows under the moved viewport are read), sort
   change (``]``) and filter keystroke (``/`` then words typed letter by letter), each until the rows of the
   new query are shown: the time of the first frame the app puts on its (headless) screen while they are
   there. Keys are sent as ``Pilot.press`` sends them, but without its two waits for the whole process to go
   idle, which alone take 40 ms or more (``--pilot-press`` puts them back); nothing polls the app between
   frames. After each measured key the bench waits for the count too (up to ``--settle`` s), so that
   keystrokes do not pile up. Page downs, then PageDown held
   (30 keys at 33/s), End and Home run in one console, counting the page reads the screen starts; they stop
   if a key's rows take over 15 s or over 500 page reads are unfinished (reported as a runaway). Sort changes
   and filter keystrokes run in a second console;
3. resident memory (VmRSS) of this process after the scrolling, and of the real ``itsm --db PATH`` running in
   a tmux pane of 200x50 after 200 PageDowns and End;
4. start-up to first frame of the real ``itsm --db PATH`` under a pseudo-terminal of 80x24: from spawning it
   until its output holds a ticket reference (``INCnnnnnnn`` / ``REQnnnnnnn``), median of ``--repeat``;
5. for comparison, Textual's stock DataTable holding 100,000 rows (ref, priority, status, title, read with
   one SELECT) in a separate process: app start to all rows added and painted, and the RSS growth;
6. the SLA column in its order: every open view in its default (SLA) order, walked page by page as the
   screen reads it (keyset, 50 rows a page), each row's SLA cell as the screen draws it at one instant,
   parsed back into the order it claims (running rows by the signed time to their due instant, then the
   paused ones): whether the column never goes back down the view, and how many paused rows close it.

With ``--startup-only`` (and ``--small PATH``, a 100,000-ticket demo, for the growth to ``--db``'s): start-up
and paint beside their floors measured in the same run, a bare Textual app (one line of text) and a line-API
table drawing its visible rows straight from SQLite, each as a fresh process: spawn under a pty of 80x24 to
the first ticket row, and in process (``run_test``, 80x24) each step of the console's start-up (imports,
configuration, schema check and catalog sync, the user, app to the queue's mount, the queue's mount to the
first frame showing its rows) beside the floors', with the ratios; medians of ``--repeat`` interleaved
rounds, and the load average.

The real command starts its SLA job, which on a database not opened since it was built catches up and
writes (flags, notifications); run the bench twice for figures on a settled database.

python bench/queue_ui.py --db PATH [--repeat 5] [--keys 60] [--pages 200] [--settle 10]
                         [--pilot-press] [--stock-rows 100000] [--no-tmux] [--no-pty] [--no-stock]
                         [--sla-only] [--startup-only [--small PATH]]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import re
import select
import shlex
import shutil
import signal
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REF = re.compile(r"(?:INC|REQ)\d{7}")
ANSI = re.compile(r"\x1b(?:\[[0-9;?<>=$ ]*[A-Za-z@~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][A-Za-z0-9]|[=>78])")
SIZE = (120, 40)  # the in-process console's terminal size
WORDS = ("printer", "vpn", "mail", "laptop", "password")
GOALS = {"paint": 0.5, "key_p95": 0.050, "rss": 200, "startup": 1.0}
TIMEOUT = 60.0  # seconds before a wait is given up (and counted as such)
QUIET_WAIT = 4.0  # seconds left alone: the console collects and trims after 2 s without a key
GIVE_UP = 15.0  # seconds before a keystroke's wait is given up, and that series of keys stopped


def rss_mb(pid: int | str = "self", field_name: str = "VmRSS") -> float:
    """A memory figure of a process from /proc/<pid>/status, in MB (MiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


# --------------------------------------------------------------------------- in process, through Pilot


@dataclass
class Keys:
    """Keystroke-to-rows samples of one kind (seconds), and to the count shown."""

    name: str
    rows: list[float] = field(default_factory=list)
    count: list[float] = field(default_factory=list)
    timeouts: int = 0

    def line(self) -> str:
        if not self.rows:
            return f"{self.name}: no samples"
        text = (
            f"{self.name}: p50 {ms(statistics.median(self.rows))}, p95 {ms(p95(self.rows))}, "
            f"max {ms(max(self.rows))} ({len(self.rows)} keys)"
        )
        if self.count:
            text += f"; count shown p50 {ms(statistics.median(self.count))}, p95 {ms(p95(self.count))}"
        if self.timeouts:
            text += f"; gave up waiting after {GIVE_UP:.0f} s"
        return text

    def summary(self) -> str:
        if not self.rows:
            return f"{self.name}: -"
        return f"{self.name}: p50 {ms(statistics.median(self.rows))}, p95 {ms(p95(self.rows))}"


def queue_screen(app):
    """The app's queue screen once its table is mounted, else None."""
    from textual.app import ScreenStackError
    from textual.css.query import NoMatches

    from itsm_tui.screens.queue import QueueScreen

    try:
        screen = app.screen
        if isinstance(screen, QueueScreen):
            screen.table  # noqa: B018 - raises until composed
            return screen
    except (NoMatches, ScreenStackError):
        pass
    return None


def rows_shown(app) -> bool:
    """Whether every row in the table's viewport has been read, for the latest query."""
    screen = queue_screen(app)
    if screen is None:
        return False
    table = screen.table
    window = table.window
    if window is None or window.query != screen.query_state or table.size.height <= 0:
        return False
    top = int(table.scroll_offset.y)
    return all(window.row(i) is not None for i in range(top, min(table.total, top + table.size.height)))


def count_shown(app) -> bool:
    screen = queue_screen(app)
    return screen is not None and screen.table.window is not None and screen.up_to_date


class FrameWatch:
    """Checks the waited-for conditions each time the app puts a frame on the (headless) screen.

    A condition counts as seen when a frame is written while it holds: what the user would see, measured
    without loading the event loop (polling through ``Pilot.pause`` walks every widget each time, and that
    load alone slowed the screen's own reads and drawing several-fold).
    """

    def __init__(self, app) -> None:
        self.waiting: list[tuple[Callable[[], bool], asyncio.Future]] = []
        display = app._display

        def displayed(screen, renderable) -> None:
            display(screen, renderable)
            if renderable is not None and not app._batch_count:
                self.check()

        app._display = displayed

    def check(self) -> None:
        now = time.perf_counter()
        for predicate, future in self.waiting:
            if not future.done() and predicate():
                future.set_result(now)

    @classmethod
    def of(cls, app) -> FrameWatch:
        watch = getattr(app, "_bench_frames", None)
        if watch is None:
            watch = app._bench_frames = cls(app)
        return watch


async def wait_for(pilot, predicate: Callable[[], bool], timeout: float = TIMEOUT) -> float | None:
    """Wait until a frame is shown while ``predicate()`` holds; the time of that frame (perf_counter), or
    None if it did not happen within ``timeout``. Also checked every 50 ms, in case no frame follows."""
    if predicate():
        return time.perf_counter()
    watch = FrameWatch.of(pilot.app)
    future = asyncio.get_running_loop().create_future()
    entry = (predicate, future)
    watch.waiting.append(entry)
    deadline = time.perf_counter() + timeout
    try:
        while not future.done():
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None
            await asyncio.wait([future], timeout=min(0.05, remaining))
            if not future.done() and predicate():
                future.set_result(time.perf_counter())
        return future.result()
    finally:
        watch.waiting.remove(entry)


CHARS = {"right_square_bracket": "]", "slash": "/", "minus": "-"}


async def send_key(pilot, key: str, use_pilot: bool) -> None:
    """Send a key the way ``Pilot.press`` does, but (unless ``use_pilot``) without its waits.

    ``Pilot.press`` waits twice for the whole process to go idle (at least 20 ms each, up to 1 s each while
    any thread, such as a database read, uses the CPU), which would swamp a 50 ms goal.
    """
    if use_pilot:
        await pilot.press(key)
    else:
        from textual import events

        pilot.app._driver.send_message(events.Key(key, CHARS.get(key, key if len(key) == 1 else None)))


async def timed_key(
    pilot, keys: Keys, key: str, done: Callable[[], bool], settle: float, use_pilot: bool
) -> bool:
    """Press ``key``; record the time until ``done()`` and the viewport's rows are shown, then the count.
    False if the rows did not show within ``GIVE_UP`` seconds."""
    app = pilot.app
    screen = queue_screen(app)
    generation = screen.generation
    FrameWatch.of(app)
    started = time.perf_counter()
    await send_key(pilot, key, use_pilot)
    shown = await wait_for(pilot, lambda: done() and rows_shown(app), GIVE_UP)
    if shown is None:
        keys.rows.append(time.perf_counter() - started)
        keys.timeouts += 1
        return False
    keys.rows.append(shown - started)
    if screen.generation != generation:
        counted = await wait_for(pilot, lambda: count_shown(app), settle)
        if counted is not None:
            keys.count.append(counted - started)
    return True


async def first_paint(url: str, config, login: str) -> tuple[float, float, float]:
    """One fresh console: seconds to run_test ready, to the viewport's rows read, to the count shown."""
    from itsm_tui.app import ItsmApp
    from itsm_tui.db import Database
    from itsm_tui.services.users import resolve_actor

    db = Database.connect(url)
    try:
        with db.read_session() as session:
            actor = resolve_actor(session, login)
        started = time.perf_counter()
        app = ItsmApp(db, config, actor, run_scheduler=False)
        async with app.run_test(size=SIZE) as pilot:
            ready = time.perf_counter() - started
            shown = await wait_for(pilot, lambda: rows_shown(app))
            if shown is None:
                raise SystemExit("the queue's first rows did not show within a minute")
            rows = shown - started
            counted = (await wait_for(pilot, lambda: count_shown(app)) or float("nan")) - started
            await pilot.press("ctrl+q")
        return ready, rows, counted
    finally:
        db.dispose()


BURST, BURST_RATE = 30, 33  # page downs of a held key, and keys per second
RUNAWAY = 500  # page reads started and not finished: far more than a viewport needs; scrolling stops there


def count_page_reads(screen) -> Counter:
    """Count the pages the screen reads, by (window, page) as they arrive and by how each is read."""
    from itsm_tui.services import queue

    reads: Counter = Counter()
    store_page = screen._store_page
    fetch_page = queue.fetch_page

    def storing(generation, window, page, rows):
        reads[(id(window), page)] += 1
        return store_page(generation, window, page, rows)

    def fetching(session, query, **plan):
        how = next((k for k in ("after", "before", "start", "offset", "from_end") if plan.get(k)), "first")
        reads[("plan", how)] += 1
        return fetch_page(session, query, **plan)

    screen._store_page = storing
    queue.fetch_page = fetching
    return reads


def read_figures(reads: Counter) -> dict:
    pages = {k: n for k, n in reads.items() if k[0] != "plan"}
    return {
        "reads": sum(pages.values()),
        "pages": len(pages),
        "most": max(pages.values(), default=0),
        "offset": reads[("plan", "offset")],
    }


def reads_text(figures: dict) -> str:
    return (
        f"{figures['reads']:,} page reads started for {figures['pages']:,} distinct pages "
        f"(up to {figures['most']:,} of one page; {figures['offset']:,} by OFFSET)"
    )


def page_reads_running(app) -> int:
    return sum(1 for w in app.workers if w.group == "queue-pages" and not w.is_finished)


@asynccontextmanager
async def console(url: str, config, login: str) -> AsyncIterator:
    """A fresh console (its own connection pool) through Pilot, once its first rows and count show."""
    from itsm_tui.app import ItsmApp
    from itsm_tui.db import Database
    from itsm_tui.services.users import resolve_actor

    db = Database.connect(url)
    try:
        with db.read_session() as session:
            actor = resolve_actor(session, login)
        app = ItsmApp(db, config, actor, run_scheduler=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: count_shown(app) and rows_shown(app))
            yield pilot
            app.exit()
    finally:
        db.dispose()


async def scrolling(url: str, config, login: str, args) -> dict:
    """Page downs one by one, PageDown held, End and Home; then this process's RSS."""
    result: dict = {"stopped": None}
    async with console(url, config, login) as pilot:
        app = pilot.app
        screen = queue_screen(app)
        table = screen.table
        result.update(total=table.total, view=screen.query_state.view, height=table.size.height)

        def moved(before: int) -> Callable[[], bool]:
            return lambda: table.cursor != before

        reads = count_page_reads(screen)
        pages = Keys("page down")
        for n in range(1, args.pages + 1):
            ok = await timed_key(pilot, pages, "pagedown", moved(table.cursor), 0, args.pilot_press)
            running = page_reads_running(app)
            if not ok or running > RUNAWAY:
                result["stopped"] = (
                    f"stopped after {n} of {args.pages} page downs (cursor at row {table.cursor:,}): "
                    f"{running:,} page reads unfinished, the last page down took {ms(pages.rows[-1])}, "
                    f"RSS {rss_mb():.0f} MB"
                )
                break
        result["pages"] = pages
        result["cursor_after_pages"] = table.cursor
        result["page_reads"] = read_figures(reads)
        jumps = Keys("End / Home")
        result["jumps"] = jumps
        if result["stopped"] is None:
            reads.clear()
            # PageDown held down: keys at a terminal's repeat rate, without waiting for rows in between.
            for _ in range(BURST):
                await send_key(pilot, "pagedown", False)
                await asyncio.sleep(1 / BURST_RATE)
            last_key = time.perf_counter()
            shown = await wait_for(pilot, lambda: rows_shown(app), GIVE_UP)
            result["burst_rows"] = max(0.0, shown - last_key) if shown else None
            drained = await wait_for(pilot, lambda: not page_reads_running(app), GIVE_UP)
            result["burst_drained"] = max(0.0, drained - last_key) if drained else None
            result["burst_reads"] = read_figures(reads)
            result["burst_running"] = page_reads_running(app)
            for key in ("end", "home", "end"):
                if not await timed_key(pilot, jumps, key, moved(table.cursor), 0, args.pilot_press):
                    break
        result["rss_after_scrolling"] = rss_mb()
    return result


def reload_of(screen) -> Callable[[int], Callable[[], bool]]:
    """``reloaded(generation)``: whether the screen has started a newer query than that one."""

    def reloaded(before: int) -> Callable[[], bool]:
        return lambda: screen.generation != before

    return reloaded


async def sort_changes(pilot, args) -> Keys:
    """``args.keys`` sort changes (``]``), each timed to its rows (and count); then All open again in its
    own sort, settled."""
    app = pilot.app
    screen = queue_screen(app)
    reloaded = reload_of(screen)
    sorts = Keys("sort change")
    for _ in range(args.keys):
        done = reloaded(screen.generation)
        if not await timed_key(pilot, sorts, "right_square_bracket", done, args.settle, args.pilot_press):
            break
    await pilot.press("4")  # All open again, in its own sort
    await wait_for(pilot, lambda: count_shown(app) and rows_shown(app))
    return sorts


async def queries(url: str, config, login: str, args) -> dict:
    """Sort changes, then filter keystrokes (words typed letter by letter), in a fresh console."""
    async with console(url, config, login) as pilot:
        app = pilot.app
        screen = queue_screen(app)
        reloaded = reload_of(screen)
        sorts = await sort_changes(pilot, args)
        await pilot.press("home")

        filters = Keys("filter keystroke")
        await pilot.press("slash")
        word = 0
        while len(filters.rows) < args.keys and not filters.timeouts:
            for letter in WORDS[word % len(WORDS)]:
                done = reloaded(screen.generation)
                if not await timed_key(pilot, filters, letter, done, args.settle, args.pilot_press):
                    break
            word += 1
            await pilot.press("end", "ctrl+u")  # clear, not timed
            await wait_for(pilot, lambda: count_shown(app) and rows_shown(app))
        await pilot.press("enter")
        return {"sorts": sorts, "filters": filters, "rss_end": rss_mb()}


# ------------------------------------------------------------- filters and sorts, on SQLite or PostgreSQL

# The kinds of filter word (in the demo's titles and names: "vpn" in about a tenth of the tickets, "quota" in
# one in a hundred, "to" a whole word of a tenth), each completed by its timed last keystroke.
FILTER_KINDS = {"common word": "vpn", "rare word": "quota", "no-match word": "zzqx", "2-letter word": "to"}


async def filter_kinds(url: str, config, login: str, args) -> dict[str, Keys]:
    """In one fresh console: sort changes (``]``), then for each kind of word of :data:`FILTER_KINDS` the
    keystroke that completes it (the letters before it typed and settled untimed, the field cleared after),
    ``args.keys`` times each; keystroke to rows shown, and to the count."""
    async with console(url, config, login) as pilot:
        app = pilot.app
        screen = queue_screen(app)
        reloaded = reload_of(screen)

        def settled() -> bool:
            return count_shown(app) and rows_shown(app)

        results = {"sort change": await sort_changes(pilot, args)}
        await pilot.press("slash")
        for kind, word in FILTER_KINDS.items():
            keys = results[kind] = Keys(f"filter keystroke, {kind} ({word!r})")
            for _ in range(args.keys):
                for letter in word[:-1]:
                    await send_key(pilot, letter, False)
                await wait_for(pilot, settled)
                done = reloaded(screen.generation)
                if not await timed_key(pilot, keys, word[-1], done, args.settle, args.pilot_press):
                    break
                await pilot.press("end", "ctrl+u")
                await wait_for(pilot, settled)
        await pilot.press("enter")
        return results


def database_summary(url: str, config, login: str) -> str:
    """The database's tickets (all and open), its kind and the machine's load, in one line."""
    from sqlalchemy import func, select

    from itsm_tui.db import Database
    from itsm_tui.models import Ticket

    db = Database.connect(url)
    try:
        with db.read_session() as session:
            tickets = session.scalar(select(func.count()).select_from(Ticket)) or 0
            open_tickets = session.scalar(select(func.count()).where(Ticket.is_open.is_(True))) or 0
    finally:
        db.dispose()
    return f"{db.backend}, {tickets:,} tickets ({open_tickets:,} open), load average {os.getloadavg()[0]:.1f}"


def filter_report(urls: list[str], args) -> list[str]:
    """Sort change and filter keystroke figures (p95) for each database of ``urls`` (the largest first), and
    the growth from the smallest to the largest."""
    from itsm_tui.config import load_config
    from itsm_tui.services.users import current_login

    config, login = load_config(), current_login()
    lines, figures = [], []
    for url in urls:
        lines.append(f"{make_safe(url)}: {database_summary(url, config, login)}")
        paints = [asyncio.run(first_paint(url, config, login)) for _ in range(args.repeat)]
        found = asyncio.run(filter_kinds(url, config, login, args))
        found_paint = statistics.median(p[1] for p in paints)
        lines.append(f"  queue first paint (rows, median of {args.repeat} fresh apps): {ms(found_paint)}")
        lines += [f"  {keys.line()}" for keys in found.values()]
        figures.append(found)
    if len(figures) > 1:
        smallest, largest = make_safe(urls[-1]), make_safe(urls[0])
        lines.append(f"growth, {smallest} -> {largest} (p95 of rows shown / of the count):")
        for kind, keys in figures[0].items():
            small = figures[-1][kind]
            if keys.rows and small.rows:
                text = f"  {kind}: {p95(keys.rows) / p95(small.rows):.2f}x"
                if keys.count and small.count:
                    text += f" / {p95(keys.count) / p95(small.count):.2f}x"
                lines.append(text)
    return lines


def make_safe(url: str) -> str:
    """A database URL without its password, for the report."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True) if "://" in url else url


# --------------------------------------------------------------------------- the SLA column in its order

SLA_FIGURE = re.compile(r"^(R?)\s*(-?)(?:(\d+)d(\d\d)h|(\d+)h(\d\d)m)$")


def sla_claims(text: str) -> tuple[int, int] | None:
    """The order an SLA cell claims: (1, 0) paused, else (0, signed minutes to the due instant); None for a
    cell that is not an SLA figure."""
    from itsm_tui.screens.queue import PAUSED_TEXT

    if text == PAUSED_TEXT:
        return (1, 0)
    found = SLA_FIGURE.match(text.strip())
    if found is None:
        return None
    _, sign, days, day_hours, hours, minutes = found.groups()
    total = int(days) * 1440 + int(day_hours) * 60 if days is not None else int(hours) * 60 + int(minutes)
    return (0, -total if sign else total)


@dataclass
class ColumnCheck:
    view: str
    rows: int = 0
    paused: int = 0
    response: int = 0
    backwards: int = 0  # rows whose cell claims less than the row above's
    unreadable: int = 0
    first_backwards: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        verdict = "in order" if not (self.backwards or self.unreadable) else "NOT in order"
        text = (
            f"{self.view} {self.rows:,} rows: {verdict} ({self.response:,} on the response target, "
            f"{self.paused:,} paused at the end; read in {self.seconds:.1f} s)"
        )
        if self.backwards:
            text += f"; {self.backwards:,} rows go back, first {self.first_backwards}"
        if self.unreadable:
            text += f"; {self.unreadable:,} cells not a figure"
        return text


def sla_column_check(url: str, login: str) -> list[ColumnCheck]:
    """Every open view in its default order, page by page from each neighbour's key, its SLA cells as the
    screen draws them at one instant, checked to read in order from the top to the bottom."""
    from datetime import UTC, datetime

    from itsm_tui.db import Database
    from itsm_tui.screens.queue import sla_cell
    from itsm_tui.services import queue
    from itsm_tui.services.users import resolve_actor

    db = Database.connect(url)
    checks = []
    try:
        with db.read_session() as session:
            actor = resolve_actor(session, login)
        now = datetime.now(UTC)
        for view in (v for v in queue.VIEWS.values() if v.default_sort == "sla"):
            check = ColumnCheck(view.key)
            started = time.perf_counter()
            query = queue.query_for(actor, view.key, queue.Filter(), None, None, now)
            window = queue.QueueWindow(query, max_pages=2)
            previous: tuple[int, int] | None = None
            page = 0
            with db.read_session() as session:
                while True:
                    rows = window.load(session, page)
                    for row in rows:
                        text, _ = sla_cell(row, now)
                        claim = sla_claims(text)
                        if claim is None:
                            check.unreadable += 1
                            continue
                        check.paused += claim[0]
                        check.response += row.sla_target == "response" and not claim[0]
                        if previous is not None and claim < previous:
                            check.backwards += 1
                            check.first_backwards = check.first_backwards or f"row {check.rows:,} ({text!r})"
                        previous = claim
                        check.rows += 1
                    if len(rows) < window.page_size:
                        break
                    page += 1
            check.seconds = time.perf_counter() - started
            checks.append(check)
    finally:
        db.dispose()
    return checks


# --------------------------------------------------------------------------- the real command


def itsm_command() -> str:
    found = Path(sys.executable).parent / "itsm"
    return str(found) if found.exists() else (shutil.which("itsm") or "itsm")


def tmux_rss(db_path: Path, presses: int = 200) -> dict:
    """Run ``itsm`` in a detached 200x50 tmux pane (own server), 200 PageDowns and End, read its RSS."""
    folder = tempfile.mkdtemp(prefix="qbench_")
    socket = os.path.join(folder, "tmux")  # a server of its own, removed afterwards
    session = "qbench"

    def tmux(*words: str) -> str:
        done = subprocess.run(["tmux", "-S", socket, *words], capture_output=True, text=True)
        return done.stdout

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", session)

    def settled(timeout: float = TIMEOUT) -> float | None:
        """Wait until the pane shows rows, no row placeholder, and stays the same for half a second; return
        when it last changed (perf_counter), or None if it did not settle within ``timeout``."""
        deadline = time.perf_counter() + timeout
        last, since = None, time.perf_counter()
        while time.perf_counter() < deadline:
            text = screen()
            if text != last:
                last, since = text, time.perf_counter()
            elif REF.search(text) and " ..." not in text and time.perf_counter() - since >= 0.5:
                return since
            time.sleep(0.05)
        return None

    command = f"exec {shlex.quote(itsm_command())} --db {shlex.quote(str(db_path))}"
    result: dict = {}
    started = time.perf_counter()
    tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "50", command)
    pid = 0
    try:
        pid = int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip() or 0)
        deadline = time.monotonic() + TIMEOUT
        while not REF.search(screen()) and time.monotonic() < deadline:
            time.sleep(0.02)
        result["first_rows"] = time.perf_counter() - started
        settled()
        result["rss_start"] = rss_mb(pid)
        for _ in range(presses):  # about a terminal's key repeat rate
            tmux("send-keys", "-t", session, "PageDown")
            time.sleep(1 / BURST_RATE)
        last_key = time.perf_counter()
        done = settled()
        result["pages_settle"] = None if done is None else max(0.0, done - last_key)
        result["rss_pages"] = rss_mb(pid)
        result["pages_screen"] = screen()
        tmux("send-keys", "-t", session, "End")
        last_key = time.perf_counter()
        done = settled()
        result["end_settle"] = None if done is None else max(0.0, done - last_key)
        result["rss"] = rss_mb(pid)
        time.sleep(QUIET_WAIT)  # the console's memory once it has been left alone (app._collect_when_quiet)
        result["rss_quiet"] = rss_mb(pid)
        result["hwm"] = rss_mb(pid, "VmHWM")
        result["threads"] = int(
            next(
                x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("Threads:")
            ).split()[1]
        )
        result["last_screen"] = screen()
    finally:
        tmux("kill-session", "-t", session)
        tmux("kill-server")
        deadline = time.monotonic() + 5
        while pid and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid and Path(f"/proc/{pid}").exists():  # the console we started ignored the hang-up
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)
    return result


def pty_first_frame(db_path: Path) -> tuple[float | None, float | None, str]:
    """Spawn ``itsm`` on a new 80x24 pseudo-terminal: seconds to its first output and to a ticket ref."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [itsm_command(), "--db", str(db_path)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    output = b""
    first_byte = found = None
    try:
        while time.perf_counter() - started < TIMEOUT:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            now = time.perf_counter() - started
            first_byte = first_byte if first_byte is not None else now
            output += chunk
            if REF.search(ANSI.sub("", output.decode(errors="replace"))):
                found = now
                break
        if proc.poll() is None:
            os.write(master, b"\x11")  # ctrl+q
            deadline = time.perf_counter() + 5
            while proc.poll() is None and time.perf_counter() < deadline:
                if select.select([master], [], [], 0.05)[0]:
                    try:
                        os.read(master, 1 << 16)
                    except OSError:
                        break
    finally:
        end_process_group(proc)
        os.close(master)
    tail = ANSI.sub("", output[-2000:].decode(errors="replace"))
    return first_byte, found, tail


# --------------------------------------------------------------------------- stock DataTable


def stock_table(db_path: Path, limit: int) -> dict:
    """In this (fresh) process: a DataTable app holding ``limit`` ticket rows; time and memory as JSON."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    figures: dict = {"rss_before": rss_mb()}

    class StockApp(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("Ref", "P", "Status", "Title")
            started = time.perf_counter()
            with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
                rows = conn.execute(
                    "SELECT ref, 'P' || priority, status, title FROM tickets ORDER BY id LIMIT ?", (limit,)
                ).fetchall()
            figures["select"] = time.perf_counter() - started
            started = time.perf_counter()
            table.add_rows(rows)
            figures["add_rows"] = time.perf_counter() - started

    async def run() -> None:
        started = time.perf_counter()
        app = StockApp()
        async with app.run_test(size=SIZE) as pilot:
            figures["ready"] = time.perf_counter() - started
            table = app.query_one(DataTable)
            await wait_for(pilot, lambda: table.row_count >= limit)
            await pilot.pause()
            figures["paint"] = time.perf_counter() - started
            figures["rows"] = table.row_count
            figures["rss_after"] = rss_mb()
            figures["shows_refs"] = bool(REF.search(app.export_screenshot()))
            await pilot.press("ctrl+q")

    asyncio.run(run())
    return figures


def run_stock(db_path: Path, limit: int) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--db", str(db_path), "--stock-child", str(limit)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"the stock DataTable run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- start-up and paint beside floors

# The floors, measured in the same run: a bare Textual app (one line of text), and a line-API table that reads
# the rows it draws straight from SQLite; each in a fresh process, like the console.
FLOOR_REF = "INC0000000"


def bare_app():
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Static(f"{FLOOR_REF} the bare Textual app")

    return Bare()


def line_table_app(db_path: Path):
    """A ScrollView drawing each visible line from SQLite pages of 50 tickets (newest first)."""
    from rich.segment import Segment
    from textual.app import App, ComposeResult
    from textual.geometry import Size
    from textual.scroll_view import ScrollView
    from textual.strip import Strip

    class LineTable(ScrollView):
        mounted_at = 0.0

        def on_mount(self) -> None:
            self.mounted_at = time.perf_counter()
            self.conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
            self.top_id = self.conn.execute("SELECT max(id) FROM tickets").fetchone()[0] or 0
            self.pages: dict[int, list[tuple]] = {}
            self.virtual_size = Size(80, self.top_id)

        def render_line(self, y: int) -> Strip:
            index = int(self.scroll_offset.y) + y
            page = self.pages.get(index // 50)
            if page is None:
                page = self.pages[index // 50] = self.conn.execute(
                    "SELECT ref, priority, status, title FROM tickets WHERE id <= ? "
                    "ORDER BY id DESC LIMIT 50",
                    (self.top_id - (index // 50) * 50,),
                ).fetchall()
            if index % 50 >= len(page):
                return Strip.blank(self.size.width)
            ref, priority, status, title = page[index % 50]
            return Strip([Segment(f"{ref} P{priority} {status:<11} {title}"[: self.size.width])])

    class LineApp(App[None]):
        def compose(self) -> ComposeResult:
            yield LineTable()

    return LineApp()


def startup_child(kind: str, db_path: Path) -> dict:
    """In this fresh process: the steps of one start-up (seconds) of the console (``itsm``), the bare app
    (``bare``) or the line table (``line``), each until the first frame that shows its rows (80x24)."""
    steps: dict = {}
    started = last = time.perf_counter()

    def step(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        steps[name] = now - last
        last = now

    async def run(app, shown: Callable[[], bool], mounted: Callable[[], float]) -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            seen = await wait_for(pilot, shown)
            if seen is None:
                raise SystemExit(f"{kind}: no rows within {TIMEOUT:.0f} s")
            steps["to mount"] = mounted() - last
            steps["paint after mount"] = seen - mounted()
            steps["total"] = seen - started
            await pilot.press("ctrl+q")

    if kind == "bare":
        import textual.app
        import textual.widgets

        step("imports")
        app = bare_app()
        created = time.perf_counter()
        asyncio.run(run(app, lambda: FLOOR_REF in app.export_screenshot(), lambda: created))
    elif kind == "line":
        import textual.app
        import textual.scroll_view  # noqa: F401

        step("imports")
        app = line_table_app(db_path)
        asyncio.run(
            run(
                app,
                lambda: app.query_one("LineTable").mounted_at > 0,
                lambda: app.query_one("LineTable").mounted_at,
            )
        )
    else:
        import itsm_tui.app
        import itsm_tui.screens.queue as queue_module

        step("imports")
        from itsm_tui.config import load_config, resolve_database_url
        from itsm_tui.db import open_database
        from itsm_tui.services.users import current_login, resolve_actor

        config = load_config()
        step("configuration")
        db = open_database(resolve_database_url(str(db_path)), config, create=False)
        step("schema check, catalog sync")
        from itsm_tui.services import queue as queue_service

        with db.read_session() as session:
            actor = resolve_actor(session, current_login())
            step("user")
            first = queue_service.first_rows(session, actor, datetime.now(UTC))  # as `itsm` reads it
        step("first page")
        composed: list[float] = []
        compose = queue_module.QueueScreen.compose

        def timed_compose(screen):
            composed.append(time.perf_counter())
            return compose(screen)

        queue_module.QueueScreen.compose = timed_compose  # type: ignore[method-assign]
        app = itsm_tui.app.ItsmApp(
            db, config, actor, first_rows=first
        )  # its scheduler set up, as `itsm` has it
        app.SCHEDULER_DELAY = 60.0  # but no job run while it is measured
        asyncio.run(run(app, lambda: rows_shown(app), lambda: composed[0] if composed else float("nan")))
        db.dispose()
    steps["modules"] = len(sys.modules)
    steps["postgresql dialect"] = "sqlalchemy.dialects.postgresql" in sys.modules
    return steps


def run_startup_child(kind: str, db_path: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--db", str(db_path), "--startup-child", kind],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"the start-up run of {kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def pty_spawn(argv: list[str], pattern: re.Pattern[str]) -> float | None:
    """Seconds from spawning ``argv`` on a new 80x24 pseudo-terminal until its output matches ``pattern``."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    output, found = b"", None
    try:
        while found is None and time.perf_counter() - started < TIMEOUT:
            if not select.select([master], [], [], 0.05)[0]:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if pattern.search(ANSI.sub("", output.decode(errors="replace"))):
                found = time.perf_counter() - started
    finally:
        end_process_group(proc)
        os.close(master)
    return found


def end_process_group(proc: subprocess.Popen) -> None:
    """Stop a child started in a session of its own, and whatever it started: SIGTERM to its process group
    (gone already: nothing to do), SIGKILL if it is still there 5 s later."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


STARTUP_STEPS = (
    "imports",
    "configuration",
    "schema check, catalog sync",
    "user",
    "first page",
    "to mount",
    "paint after mount",
)


def startup_figures(db_path: Path, repeat: int) -> dict:
    """Medians of ``repeat`` rounds, the console and its floors interleaved in each round."""
    me = [sys.executable, __file__, "--db", str(db_path), "--floor-app"]
    spawn: dict[str, list[float]] = {"itsm": [], "bare": [], "line": []}
    steps: dict[str, list[dict]] = {"itsm": [], "bare": [], "line": []}
    for _ in range(repeat):
        commands = {
            "itsm": [itsm_command(), "--db", str(db_path)],
            "bare": [*me, "bare"],
            "line": [*me, "line"],
        }
        for kind, argv in commands.items():
            found = pty_spawn(argv, REF)
            spawn[kind].append(float("nan") if found is None else found)
            steps[kind].append(run_startup_child(kind, db_path))
    figures: dict = {"spawn": {k: statistics.median(v) for k, v in spawn.items()}, "load": os.getloadavg()[0]}
    for kind, runs in steps.items():
        names = {name for run in runs for name, value in run.items() if isinstance(value, float)}
        figures[kind] = {name: statistics.median(run[name] for run in runs if name in run) for name in names}
        figures[kind]["modules"] = runs[-1]["modules"]
        figures[kind]["postgresql dialect"] = runs[-1]["postgresql dialect"]
    return figures


def startup_lines(figures: dict, label: str) -> list[str]:
    def ratio(value: float, floor: float) -> str:
        return f"{value / floor:.2f}x" if floor and floor == floor else "-"

    itsm, bare, line, spawn = figures["itsm"], figures["bare"], figures["line"], figures["spawn"]
    lines = [
        f"start-up and paint, {label} (80x24; medians; load average {figures['load']:.1f}):",
        f"  {'step':<38}{'itsm':>9}{'bare app':>10}{'line table':>12}{'itsm/bare':>11}{'itsm/line':>11}",
    ]

    def row(name: str, mine: float, floor_bare: float | None, floor_line: float | None) -> str:
        cells = [ms(mine).rjust(9)]
        cells.append((ms(floor_bare) if floor_bare is not None else "-").rjust(10))
        cells.append((ms(floor_line) if floor_line is not None else "-").rjust(12))
        cells.append((ratio(mine, floor_bare) if floor_bare else "-").rjust(11))
        cells.append((ratio(mine, floor_line) if floor_line else "-").rjust(11))
        return f"  {name:<38}" + "".join(cells)

    lines.append(row("spawn to first ticket row (pty)", spawn["itsm"], spawn["bare"], spawn["line"]))
    for name in STARTUP_STEPS:
        if name in itsm:
            lines.append(row(name, itsm[name], bare.get(name), line.get(name)))
    lines.append(row("in process, to the first row", itsm["total"], bare["total"], line["total"]))
    lines.append(
        row(
            "paint after mount vs bare app to frame",
            itsm["paint after mount"],
            bare["total"] - bare["imports"],
            None,
        )
        + "   (goal <= 100 ms; spawn goal <= 2x bare)"
    )
    lines.append(
        f"  modules loaded: itsm {itsm['modules']}, bare app {bare['modules']}, "
        f"line table {line['modules']}; "
        f"PostgreSQL dialect imported by itsm: {'yes' if itsm['postgresql dialect'] else 'no'}"
    )
    return lines


def growth_lines(small: dict, large: dict, small_label: str, large_label: str) -> list[str]:
    pairs = [("spawn to first ticket row (pty)", small["spawn"]["itsm"], large["spawn"]["itsm"])]
    pairs += [
        (name, small["itsm"][name], large["itsm"][name]) for name in STARTUP_STEPS if name in small["itsm"]
    ]
    lines = [f"  growth {small_label} -> {large_label} (itsm; goal <= 1.3x):"]
    for name, a, b in pairs:
        lines.append(f"    {name:<36}{ms(a):>9} -> {ms(b):>9}  {b / a if a else float('nan'):.2f}x")
    return lines


def startup_report(db_path: Path, small: Path | None, repeat: int) -> list[str]:
    def label(path: Path) -> str:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            count = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
        return f"{count:,} tickets"

    large = startup_figures(db_path, repeat)
    lines = startup_lines(large, label(db_path))
    if small is not None:
        figures = startup_figures(small, repeat)
        lines += startup_lines(figures, label(small))
        lines += growth_lines(figures, large, label(small), label(db_path))
    return lines


# --------------------------------------------------------------------------- main


def main() -> int:
    # Run as a script, this folder comes first on sys.path, where a benchmark's module name (calendar.py, say)
    # would shadow the standard library for everything imported from here on.
    if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
        del sys.path[0]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", metavar="PATH", help="SQLite demo database of 1,000,000 tickets (or a postgresql:// URL)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="fresh consoles for first paint and start-up")
    parser.add_argument("--keys", type=int, default=60, help="sort changes and filter keystrokes (each)")
    parser.add_argument("--pages", type=int, default=200, help="page downs")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait for the count per key")
    parser.add_argument(
        "--pilot-press", action="store_true", help="time keys through Pilot.press (adds its idle waits)"
    )
    parser.add_argument("--stock-rows", type=int, default=100_000, help="rows of the stock DataTable")
    parser.add_argument("--no-tmux", action="store_true", help="skip the real command's RSS in tmux")
    parser.add_argument("--no-pty", action="store_true", help="skip the real command's start-up")
    parser.add_argument("--no-stock", action="store_true", help="skip the stock DataTable comparison")
    parser.add_argument("--sla-only", action="store_true", help="only check the SLA column's order")
    parser.add_argument("--stock-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--small", metavar="PATH", help="a smaller demo (100,000 tickets): start-up figures and their growth"
    )
    parser.add_argument(
        "--startup-only", action="store_true", help="only start-up and paint beside the floors"
    )
    parser.add_argument("--startup-child", choices=("itsm", "bare", "line"), help=argparse.SUPPRESS)
    parser.add_argument("--floor-app", choices=("bare", "line"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--filters-only",
        action="store_true",
        help="only first paint, sort changes and filter keystrokes by kind of word (with --small: their "
        "growth); what --db postgresql://... measures",
    )
    args = parser.parse_args()
    if args.filters_only or "://" in (args.db or ""):
        from itsm_tui.config import resolve_database_url

        urls = [resolve_database_url(u) for u in (args.db, args.small) if u]
        print("\n".join(filter_report(urls, args)))
        return 0
    db_path = Path(args.db or "").expanduser().resolve()
    if not args.db or not db_path.is_file():
        where = f"no database at {db_path}" if args.db else "no --db PATH given"
        print(
            f"{where}; build a demo database of 1,000,000 tickets with (about 4 minutes):\n"
            f"  python bench/demo_build.py --keep {args.db or 'PATH'}\n"
            f"then run: python bench/queue_ui.py --db {args.db or 'PATH'}",
            file=sys.stderr,
        )
        return 2
    if args.stock_child:
        print(json.dumps(stock_table(db_path, args.stock_child)))
        return 0
    if args.startup_child:
        print(json.dumps(startup_child(args.startup_child, db_path)))
        return 0
    if args.floor_app:
        (bare_app() if args.floor_app == "bare" else line_table_app(db_path)).run()
        return 0
    if args.startup_only:
        small = Path(args.small).expanduser().resolve() if args.small else None
        print("\n".join(startup_report(db_path, small, args.repeat)))
        return 0

    from itsm_tui.config import load_config, resolve_database_url
    from itsm_tui.db import open_database
    from itsm_tui.services.users import UnknownUser, current_login, resolve_actor

    config = load_config()
    url = resolve_database_url(str(db_path))
    login = current_login()
    db = open_database(url, config, create=False)  # as `itsm` does: checks the schema, syncs the catalog
    try:
        with db.read_session() as session:
            try:
                resolve_actor(session, login)
            except UnknownUser as exc:
                print(f"{exc}\n(the demo's console login is the OS user who built it)", file=sys.stderr)
                return 2
        with closing(db.engine.raw_connection()) as conn:
            tickets, open_tickets = conn.execute(
                "SELECT count(*), (SELECT count(*) FROM tickets WHERE is_open = 1) FROM tickets"
            ).fetchone()
    finally:
        db.dispose()
    print(
        f"{db_path}: {tickets:,} tickets, {open_tickets:,} open; login {login}; "
        f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f}), SQLite {sqlite3.sqlite_version}, "
        f"Python {sys.version.split()[0]}"
    )
    if tickets < 1_000_000:
        print(f"  (fewer than 1,000,000 tickets; build with python bench/demo_build.py --keep {args.db})")
    if args.sla_only:
        checks = sla_column_check(url, login)
        print("SLA column in its order (keyset pages of 50, at one instant):")
        for check in checks:
            print(f"  {check.line()}")
        return 0 if all(not (c.backwards or c.unreadable) for c in checks) else 1
    rss_start = rss_mb()

    # 1. first paint
    paints = [asyncio.run(first_paint(url, config, login)) for _ in range(args.repeat)]
    ready, rows, counted = ([p[i] for p in paints] for i in range(3))
    print(
        f"queue first paint ({args.repeat} fresh apps, {SIZE[0]}x{SIZE[1]}): rows "
        + ", ".join(f"{t:.3f}" for t in rows)
        + f" s; median {statistics.median(rows):.3f} s, min {min(rows):.3f} s"
    )
    print(
        f"  count shown: median {statistics.median(counted):.3f} s, min {min(counted):.3f} s; "
        f"run_test ready (app mounted): median {statistics.median(ready):.3f} s"
    )

    # 2. keystrokes, and this process's memory after the scrolling
    scroll = asyncio.run(scrolling(url, config, login, args))
    typed = asyncio.run(queries(url, config, login, args))
    pages, jumps, sorts, filters = scroll["pages"], scroll["jumps"], typed["sorts"], typed["filters"]
    print(
        f"keystroke to rows shown (view {scroll['view']}, {scroll['total']:,} rows, "
        f"{scroll['height']} visible; "
        + ("through Pilot.press" if args.pilot_press else "keys sent as Pilot does")
        + ", timed to the first frame that shows the rows"
        + "):"
    )
    for keys in (pages, jumps, sorts, filters):
        print(f"  {keys.line()}")
    print(f"  the {len(pages.rows)} page downs: {reads_text(scroll['page_reads'])}")
    if scroll["stopped"]:
        print(f"  RUNAWAY: {scroll['stopped']}")
    else:
        burst_rows, drained = scroll["burst_rows"], scroll["burst_drained"]
        print(
            f"  PageDown held ({BURST} keys at {BURST_RATE}/s): rows shown "
            + (
                f"{ms(burst_rows)} after the last key"
                if burst_rows is not None
                else f"not within {GIVE_UP:.0f} s"
            )
            + ", page reads "
            + (
                f"done after {ms(drained)}"
                if drained is not None
                else f"still {scroll['burst_running']:,} running"
            )
            + "; "
            + reads_text(scroll["burst_reads"])
        )
    print(
        f"bench process RSS: {rss_start:.0f} MB before the first app, "
        f"{scroll['rss_after_scrolling']:.0f} MB after the scrolling (cursor reached row "
        f"{scroll['cursor_after_pages']:,} by page downs), {typed['rss_end']:.0f} MB after the sorts and "
        f"filters (a second console); peak {rss_mb('self', 'VmHWM'):.0f} MB"
    )

    # 3. the real command in tmux
    real = None
    if args.no_tmux:
        pass
    elif shutil.which("tmux") is None:
        print("itsm in tmux: skipped, tmux is not installed")
    else:
        real = tmux_rss(db_path)

        def settle_text(seconds: float | None) -> str:
            if seconds is None:
                return f"rows not all shown, or still changing, {TIMEOUT:.0f} s later"
            return f"pane last changed {seconds:.2f} s after the key"

        print(
            f"itsm in tmux 200x50: rows {real['first_rows']:.2f} s after start, "
            f"RSS {real['rss_start']:.0f} MB; "
            f"after 200 PageDowns at {BURST_RATE}/s: RSS {real['rss_pages']:.0f} MB "
            f"({settle_text(real['pages_settle'])}); after End: RSS {real['rss']:.0f} MB "
            f"({settle_text(real['end_settle'])}), {real['rss_quiet']:.0f} MB {QUIET_WAIT:.0f} s later; "
            f"peak {real['hwm']:.0f} MB, {real['threads']} threads"
        )
        for label, key in (("PageDowns", "pages"), ("End", "end")):
            if real[f"{key}_settle"] is None:
                text = real["pages_screen" if key == "pages" else "last_screen"]
                print(f"  its pane {TIMEOUT:.0f} s after the {label} (first lines):")
                print("\n".join("    " + line.rstrip() for line in text.splitlines()[:8]))

    # 4. start-up to first frame
    startup = []
    if not args.no_pty:
        outputs = []
        for _ in range(args.repeat):
            first_byte, found, tail = pty_first_frame(db_path)
            if found is None:
                print(f"itsm under a pty: no ticket reference within {TIMEOUT:.0f} s; output ended:\n{tail}")
                break
            startup.append(found)
            outputs.append(first_byte)
        if startup:
            print(
                "itsm under a pty 80x24, spawn to first ticket row: "
                + ", ".join(f"{t:.2f}" for t in startup)
                + f" s; median {statistics.median(startup):.2f} s (first output median "
                f"{statistics.median(outputs):.2f} s)"
            )

    # 5. stock DataTable
    stock = None
    if not args.no_stock:
        stock = run_stock(db_path, args.stock_rows)
        print(
            f"stock DataTable, {stock['rows']:,} rows (separate process): app start to all rows added and "
            f"painted {stock['paint']:.2f} s (SELECT {stock['select']:.2f} s, "
            f"add_rows {stock['add_rows']:.2f} s of it), RSS "
            f"{stock['rss_before']:.0f} -> {stock['rss_after']:.0f} MB"
            + ("" if stock["shows_refs"] else " (WARNING: its screen shows no ticket reference)")
        )

    # 6. the SLA column in its order (last: its walk of every view would warm the caches for the others)
    checks = sla_column_check(url, login)
    print("SLA column in its order (keyset pages of 50, at one instant):")
    for check in checks:
        print(f"  {check.line()}")

    print(f"\n(load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    paint = statistics.median(rows)
    print(
        f"queue first paint: {paint:.2f} s (goal <= {GOALS['paint']} s); "
        f"count shown {statistics.median(counted):.2f} s"
    )
    print(
        "; ".join(k.summary() for k in (pages, sorts, filters))
        + f" (goal p95 <= {GOALS['key_p95'] * 1000:.0f} ms)"
        + (
            f"; page downs {scroll['stopped'].split(':')[0]}: page reads ran away"
            if scroll["stopped"]
            else ""
        )
    )
    console = f"in process {scroll['rss_after_scrolling']:.0f} MB"
    if real:
        console = (
            f"{real['rss']:.0f} MB (itsm in tmux after 200 PageDowns and End), "
            f"{real['rss_quiet']:.0f} MB {QUIET_WAIT:.0f} s later; " + console
        )
    print(f"console RSS: {console} (goal <= {GOALS['rss']} MB)")
    if startup:
        print(f"start-up to first frame: {statistics.median(startup):.2f} s (goal <= {GOALS['startup']} s)")
    if stock:
        print(
            f"stock DataTable, {stock['rows']:,} rows: first paint {stock['paint']:.2f} s, "
            f"+{stock['rss_after'] - stock['rss_before']:.0f} MB"
        )
    in_order = all(not (c.backwards or c.unreadable) for c in checks)
    print(
        "SLA column in its order: "
        + ("yes" if in_order else "NO")
        + " ("
        + ", ".join(f"{c.view} {c.rows:,} rows" for c in checks)
        + ")"
    )
    return 0 if in_order else 1


if __name__ == "__main__":
    sys.exit(main())
