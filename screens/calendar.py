"""Change calendar: month, week and agenda views of the changes, maintenance windows and blackouts.

Keys move the selected day (left/right a day, up/down a week, page up/down a month, t today) and switch views
(v, or 1 month, 2 week, 3 agenda). Below the grid the selected day's changes are listed with their times;
tab moves into that list, Enter opens a change, a approves and x rejects it (the service decides who may),
s moves it to a new window and n raises a new change; both forms show conflicts before anything is saved.

Changes are drawn as one glyph each, coloured by type (standard green, normal blue, emergency magenta) and
shaped by state (see STATE_GLYPHS); days and hours with a maintenance window are shaded green, blackouts red;
a red ``!`` marks a conflict or a blocked change, a yellow ``~`` a change outside its maintenance windows.
All database work happens in thread workers; user text is shown literally.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from itsm_tui.keymap import fill_keys
from itsm_tui.screens.common import DeskScreen, literal
from itsm_tui.services.changes import CalendarData, ChangeRow, ChangeView, create_refusal
from itsm_tui.services.conflicts import SEVERITY_ORDER, BlackoutSpec, Conflict, Occurrence
from itsm_tui.services.errors import ServiceError
from itsm_tui.text import strip_control

VIEWS = ("month", "week", "agenda")
VIEW_TITLES = {"month": "Month", "week": "Week", "agenda": "Agenda"}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
AGENDA_DAYS = 31
POLL_SECONDS = 3.0
CALENDAR_STYLES = Path(__file__).resolve().with_name("calendar.tcss")  # absolute: found from subclasses too

TYPE_COLOURS = {"standard": "green3", "normal": "deep_sky_blue1", "emergency": "magenta"}
TYPE_SHORT = {"standard": "std", "normal": "nrm", "emergency": "EMG"}
STATE_GLYPHS = {
    "draft": "◌",
    "submitted": "□",
    "assessed": "□",
    "approved": "■",
    "scheduled": "■",
    "implementing": "▶",
    "implemented": "✓",
    "review": "✓",
    "closed": "✓",
    "failed": "✗",
    "backed_out": "✗",
    "rejected": "⊘",
    "withdrawn": "⊖",
    "cancelled": "⊗",
}
STATE_STYLES = {
    "draft": "dim italic",
    "submitted": "italic",
    "assessed": "italic",
    "approved": "bold",
    "scheduled": "bold",
    "implementing": "bold reverse",
    "implemented": "dim",
    "review": "dim",
    "closed": "dim",
    "failed": "underline",
    "backed_out": "underline",
    "rejected": "dim strike",
    "withdrawn": "dim strike",
    "cancelled": "dim strike",
}
MARKS = {"blocked": ("!", "bold red"), "conflict": ("!", "bold red"), "warning": ("~", "yellow")}
WINDOW_BG = "on #12382b"
BLACKOUT_BG = "on #4a1424"
SELECTED = "bold on #2a5d9f"  # the selected day's heading


def shown_state(row: ChangeRow) -> str:
    """The state a change is drawn as: a reviewed or closed change keeps its outcome (a failed change stays
    ✗ once reviewed and closed); one closed without an outcome never ran (rejected)."""
    if row.state in ("review", "closed"):
        if row.outcome in STATE_GLYPHS:
            return row.outcome or row.state
        if row.state == "closed":
            return "rejected"
    return row.state


def change_style(row: ChangeRow) -> str:
    state = shown_state(row)
    over = " dim" if state != row.state and "dim" not in STATE_STYLES.get(state, "") else ""
    return f"{TYPE_COLOURS.get(row.change_type, '')} {STATE_STYLES.get(state, '')}{over}".strip()


def glyph(row: ChangeRow) -> Text:
    return Text(STATE_GLYPHS.get(shown_state(row), "?"), style=change_style(row))


def state_text(row: ChangeRow) -> str:
    """The state, with the outcome once it is over (``closed:failed``)."""
    if row.outcome and row.outcome != row.state and row.state in ("review", "closed"):
        return f"{row.state}:{row.outcome}"
    return row.state


def legend() -> Text:
    text = Text()
    for change_type in ("standard", "normal", "emergency"):
        text.append("■", style=TYPE_COLOURS[change_type])
        text.append(TYPE_SHORT[change_type] + " ")
    text.append(" ", style=WINDOW_BG)
    text.append("win ")
    text.append(" ", style=BLACKOUT_BG)
    text.append("freeze ")
    text.append("!", style="bold red")
    text.append("conflict ")
    text.append("~", style="yellow")
    text.append("outside")
    return text


# --------------------------------------------------------------------------- what each day holds


@dataclass
class DayIndex:
    """The loaded calendar data by local day (the viewer's time zone), built once per load."""

    tz: ZoneInfo
    data: CalendarData
    changes: dict[date, list[ChangeRow]] = field(default_factory=dict)
    windows: dict[date, list[Occurrence]] = field(default_factory=dict)
    blackouts: dict[date, list[BlackoutSpec]] = field(default_factory=dict)
    severity: dict[str, str] = field(default_factory=dict)
    conflicts: dict[str, list[Conflict]] = field(default_factory=dict)

    @classmethod
    def build(cls, data: CalendarData, tz: ZoneInfo) -> DayIndex:
        index = cls(tz, data)
        changes: dict[date, list[ChangeRow]] = defaultdict(list)
        for row in data.changes:  # a change that ran where it ran (its actual window), else as planned
            if row.shown_start is None or row.shown_end is None:
                continue
            for day in _days(row.shown_start, row.shown_end, tz):
                changes[day].append(row)
        windows: dict[date, list[Occurrence]] = defaultdict(list)
        for occurrence in data.occurrences:
            for day in _days(occurrence.start, occurrence.end, tz):
                windows[day].append(occurrence)
        blackouts: dict[date, list[BlackoutSpec]] = defaultdict(list)
        for blackout in data.blackouts:
            for day in _days(blackout.start, blackout.end, tz):
                blackouts[day].append(blackout)
        by_ref: dict[str, list[Conflict]] = defaultdict(list)
        for conflict in sorted(data.conflicts, key=lambda c: SEVERITY_ORDER[c.severity]):
            for ref in conflict.refs:
                by_ref[ref].append(conflict)
        index.changes, index.windows, index.blackouts = dict(changes), dict(windows), dict(blackouts)
        index.conflicts = dict(by_ref)
        index.severity = data.conflicted
        return index

    def mark(self, rows: list[ChangeRow]) -> tuple[str, str] | None:
        """The worst conflict mark of some changes: ("!", style), ("~", style) or None."""
        severities = {self.severity.get(r.ref) for r in rows}
        for severity in ("blocked", "conflict", "warning"):
            if severity in severities:
                return MARKS[severity]
        return None

    def local(self, day: date, hour: int = 0) -> datetime:
        """Local wall-clock ``hour`` of ``day`` as an instant (hour 24 is the next midnight)."""
        if hour >= 24:
            return datetime.combine(day + timedelta(days=1), time(0), self.tz)
        return datetime.combine(day, time(hour), self.tz)


def _days(start: datetime, end: datetime, tz: ZoneInfo) -> Iterator[date]:
    """Local days an interval [start, end) touches."""
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date() if end > start else first
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def grid_start(day: date) -> date:
    """The Monday on or before the first of ``day``'s month: the month grid's first cell."""
    first = day.replace(day=1)
    return first - timedelta(days=first.weekday())


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    import calendar as _calendar

    return date(year, month, min(day.day, _calendar.monthrange(year, month)[1]))


# --------------------------------------------------------------------------- drawing


def body_lines(height: int) -> int:
    """How many lines of changes each day cell of the month has on a screen ``height`` lines high: one at
    24 lines, more on taller terminals (three at 48)."""
    return max(1, min(4, 1 + (height - 24) // 12))


def grid_height(body: int) -> int:
    """The grid's lines: the weekday header and six weeks of a day line and ``body`` lines of changes."""
    return 1 + 6 * (1 + body)


def cell_body(rows: list[ChangeRow], inner: int, body: int) -> list[Text]:
    """A day cell's lines of changes, ``inner`` cells wide: with room (two lines or more, wide enough) one
    change a line, its glyph, number and as much of its title as fits, the last line saying how many more;
    else the glyphs in a row (``+`` when they do not all fit)."""
    if body >= 2 and inner >= 12:
        shown = rows if len(rows) <= body else rows[: body - 1]
        lines = []
        for row in shown:
            line = glyph(row)
            line.append(row.ref.removeprefix("CHG").lstrip("0") or "0", style=change_style(row))
            line.append(" ")
            line.append(strip_control(row.title, single_line=True), style="dim")
            line.truncate(inner, overflow="ellipsis", pad=True)
            lines.append(line)
        if len(rows) > len(shown):
            lines.append(Text(f"+{len(rows) - len(shown)} more", style="bold"))
    else:
        room = inner * body
        line = Text()
        shown = rows if len(rows) <= room else rows[: room - 1]
        for row in shown:
            line.append_text(glyph(row))
        if len(rows) > room:
            line.append("+", style="bold")
        lines = [line[i : i + inner] for i in range(0, max(1, line.cell_len), inner)]
    lines = lines[:body] + [Text() for _ in range(body - len(lines))]
    for line in lines:
        line.truncate(inner, pad=True)
    return lines


def render_month(
    index: DayIndex | None, selected: date, today: date, width: int, body: int = 1
) -> list[Text]:
    """The month grid: a weekday header and six weeks of day cells, each a line with the day and ``body``
    lines of its changes (see :func:`cell_body`)."""
    cell = max(6, width // 7)
    inner = cell - 1
    lines = [Text("".join(name.ljust(cell) for name in WEEKDAYS)[: cell * 7], style="bold")]
    start = grid_start(selected)
    for week in range(6):
        top, bottoms = Text(), [Text() for _ in range(body)]
        for weekday in range(7):
            day = start + timedelta(days=week * 7 + weekday)
            rows = index.changes.get(day, []) if index else []
            frozen = bool(index and index.blackouts.get(day))
            window = bool(index and index.windows.get(day))
            shade = BLACKOUT_BG if frozen else WINDOW_BG if window else ""
            number_style = "dim" if day.month != selected.month else ""
            if day == today:
                number_style = "bold underline yellow"
            head = Text(f"{day.day:>2}", style=number_style)
            head.append(" ")
            head.append("w" if window else " ", style="green" if window else "")
            head.append("F" if frozen else " ", style="bold red" if frozen else "")
            tail = Text()
            mark = index.mark(rows) if index and rows else None
            if mark:
                tail.append(mark[0], style=mark[1])
            if rows:
                tail.append(str(len(rows)))
            head.append(" " * max(0, inner - head.cell_len - tail.cell_len))
            head.append_text(tail)
            head.truncate(inner)
            cells = cell_body(rows, inner, body)
            if shade:
                head.stylize(shade)
                for piece in cells:
                    piece.stylize(shade)
            if day == selected:
                head.stylize(SELECTED)
            top.append_text(head)
            top.append("│", style="dim")
            for bottom, piece in zip(bottoms, cells, strict=True):
                bottom.append_text(piece)
                bottom.append("│", style="dim")
        lines += [top, *bottoms]
    return lines


def render_week(
    index: DayIndex | None, selected: date, today: date, width: int, slot_hours: int = 2
) -> list[Text]:
    """The week: a day header and one line per ``slot_hours`` with the changes in each slot."""
    axis = 3
    cell = max(5, (width - axis) // 7)
    inner = cell - 1
    monday = selected - timedelta(days=selected.weekday())
    header = Text(" " * axis)
    for offset in range(7):
        day = monday + timedelta(days=offset)
        label = Text(f"{WEEKDAYS[offset]} {day.day:>2}".ljust(inner)[:inner])
        if day == today:
            label.stylize("bold underline yellow")
        if day == selected:
            label.stylize("reverse")
        header.append_text(label)
        header.append(" ")
    lines = [header]
    for slot in range(24 // slot_hours):
        hour = slot * slot_hours
        line = Text(f"{hour:02d}".ljust(axis), style="dim")
        for offset in range(7):
            day = monday + timedelta(days=offset)
            cell_text = Text()
            if index is not None:
                begin, end = index.local(day, hour), index.local(day, hour + slot_hours)
                rows = [  # the day's changes all have a window (DayIndex leaves out the others)
                    r
                    for r in index.changes.get(day, [])
                    if r.shown_start is not None
                    and r.shown_end is not None
                    and r.shown_start < end
                    and r.shown_end > begin
                ]
                frozen = any(b.start < end and b.end > begin for b in index.blackouts.get(day, []))
                window = any(o.start < end and o.end > begin for o in index.windows.get(day, []))
                mark = index.mark(rows) if rows else None
                room = inner - (1 if mark else 0)
                for number, row in enumerate(rows):
                    short = row.ref.removeprefix("CHG").lstrip("0") or "0"
                    piece = glyph(row)
                    piece.append(short, style=change_style(row))
                    rest = len(rows) - number - 1
                    if cell_text.cell_len + piece.cell_len + (2 if rest else 0) > room:
                        cell_text.append(f"+{len(rows) - number}", style="bold")
                        break
                    cell_text.append_text(piece)
                if mark:
                    cell_text.truncate(room, pad=True)
                    cell_text.append(mark[0], style=mark[1])
                cell_text.truncate(inner, pad=True)
                shade = BLACKOUT_BG if frozen else WINDOW_BG if window else ""
                if shade:
                    cell_text.stylize(shade)
            else:
                cell_text.append(" " * inner)
            line.append_text(cell_text)
            line.append(" ")
        lines.append(line)
    return lines


def _clock(instant: datetime, day: date, tz: ZoneInfo) -> str:
    local = instant.astimezone(tz)
    return f"{local:%H:%M}" if local.date() == day else f"{local:%d.%m}"


def day_options(
    index: DayIndex | None, day: date, *, placeholder: bool = True, suffix: str = "", width: int = 80
) -> list[Option]:
    """The selected day's blackouts and windows (disabled lines) and changes with their times (option ids are
    the references, plus ``suffix``)."""
    if index is None:
        return [Option(Text("Loading ...", style="dim"), disabled=True)]
    options: list[Option] = []
    tz = index.tz
    for blackout in index.blackouts.get(day, []):
        text = Text(" ", style=BLACKOUT_BG)
        text.append(
            f" freeze {_clock(blackout.start, day, tz)}-{_clock(blackout.end, day, tz)} ", style="red"
        )
        text.append_text(literal(blackout.name))
        text.append(f" ({blackout.service or 'all services'})", style="dim")
        options.append(Option(_fit(text, width), disabled=True))
    seen = set()
    for occurrence in index.windows.get(day, []):
        key = (occurrence.service, occurrence.start)
        if key in seen:
            continue
        seen.add(key)
        text = Text(" ", style=WINDOW_BG)
        text.append(
            f" window {_clock(occurrence.start, day, tz)}-{_clock(occurrence.end, day, tz)} ", style="green"
        )
        text.append(occurrence.service)
        text.append(" ")
        text.append_text(literal(occurrence.name, style="dim"))
        options.append(Option(_fit(text, width), disabled=True))
    rows = sorted(index.changes.get(day, []), key=lambda r: (r.shown_start, r.ref))
    for row in rows:
        options.append(Option(_fit(change_line(index, row, day), width), id=row.ref + suffix))
    if not rows and placeholder:
        options.append(Option(Text("No changes on this day. n raises one.", style="dim"), disabled=True))
    return options


def _fit(text: Text, width: int) -> Text:
    """One line of at most ``width`` cells (lists wrap what is longer)."""
    text.no_wrap = True
    text.truncate(max(10, width), overflow="ellipsis")
    return text


def change_line(index: DayIndex, row: ChangeRow, day: date | None) -> Text:
    tz = index.tz
    text = Text()
    start, end = row.shown_start, row.shown_end  # the actual window once it ran
    if day is not None and start is not None and end is not None:
        text.append(f"{_clock(start, day, tz)}-{_clock(end, day, tz)} ")
    text.append_text(glyph(row))
    text.append(f" {row.ref} ", style="bold")
    mark = index.mark([row])
    text.append(mark[0] if mark else " ", style=mark[1] if mark else "")
    text.append(
        f" {TYPE_SHORT.get(row.change_type, row.change_type)} ", style=TYPE_COLOURS.get(row.change_type, "")
    )
    text.append(f"{state_text(row):<12} ")
    text.append(f"{','.join(row.services):<10} ", style="cyan")
    text.append_text(literal(row.title))
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def agenda_options(
    index: DayIndex | None, first: date, days: int = AGENDA_DAYS, width: int = 80
) -> list[Option]:
    """From ``first`` on: a heading per day that holds anything, then its blackouts, windows and changes."""
    if index is None:
        return [Option(Text("Loading ...", style="dim"), disabled=True)]
    options: list[Option] = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        if not (index.changes.get(day) or index.blackouts.get(day)):
            continue  # windows alone do not make a day worth a heading
        heading = Text(f"{WEEKDAYS[day.weekday()]} {day:%Y-%m-%d}", style="bold underline")
        options.append(Option(heading, disabled=True))
        # A change over several days shows on each: the option ids carry the day to stay unique.
        options += day_options(index, day, placeholder=False, suffix=f"@{day}", width=width)
    if not options:
        options.append(
            Option(
                Text(f"Nothing planned in the {days} days from {first:%Y-%m-%d}.", style="dim"), disabled=True
            )
        )
    return options


# --------------------------------------------------------------------------- widgets


class CalendarGrid(Widget, can_focus=True):
    """The month or week grid, drawn from the screen's day index.

    The lines are drawn once per change of data, day, view or width and kept as strips; repaints only hand
    them out line by line (no re-parsing of a thousand styled glyphs per frame).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index: DayIndex | None = None
        self.mode = "month"
        self.selected = date.today()
        self.today = date.today()
        self._strips: list[Strip] | None = None
        self._drawn_width = 0
        self.body = 1  # lines of changes per day cell of the month (more on a tall terminal)

    def show(self, index: DayIndex | None, mode: str, selected: date, today: date) -> None:
        self.index, self.mode, self.selected, self.today = index, mode, selected, today
        self._strips = None
        self.refresh()

    def lines(self) -> list[Text]:
        width = self.size.width or 80
        if self.mode == "week":  # hour by hour when the grid is tall enough for 24 slots
            slot_hours = 1 if grid_height(self.body) >= 25 else 2
            return render_week(self.index, self.selected, self.today, width, slot_hours)
        return render_month(self.index, self.selected, self.today, width, self.body)

    def fit_height(self, screen_height: int) -> None:
        """Taller day cells on a taller terminal (the grid's height follows)."""
        body = body_lines(screen_height)
        if body != self.body:
            self.body = body
            self.styles.height = grid_height(body)
            self._strips = None
            self.refresh()

    def on_resize(self) -> None:
        self._strips = None

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self._strips is None or self._drawn_width != width:
            console = self.app.console
            base = self.rich_style
            self._strips = [Strip(line.render(console)).apply_style(base) for line in self.lines()]
            self._drawn_width = width
        if y >= len(self._strips):
            return Strip.blank(width, self.rich_style)
        return self._strips[y].crop_extend(0, width, self.rich_style)

    def on_click(self, event: events.Click) -> None:
        """A click on a day selects it."""
        width = self.size.width or 80
        if self.mode == "week":
            column = (event.x - 3) // max(5, (width - 3) // 7)
            if 0 <= column < 7:
                monday = self.selected - timedelta(days=self.selected.weekday())
                self.post_message(CalendarGrid.DayClicked(monday + timedelta(days=column)))
            return
        cell = max(6, width // 7)
        row, column = (event.y - 1) // (1 + self.body), event.x // cell
        if event.y >= 1 and 0 <= row < 6 and 0 <= column < 7:
            self.post_message(
                CalendarGrid.DayClicked(grid_start(self.selected) + timedelta(days=row * 7 + column))
            )

    class DayClicked(Message):
        def __init__(self, day: date) -> None:
            super().__init__()
            self.day = day


# --------------------------------------------------------------------------- the screen


class CalendarScreen(DeskScreen):
    SCREEN_TITLE = "Change calendar"
    BINDINGS = [
        Binding("left", "move(-1)", "Day back", show=False, id="calendar.day_back"),
        Binding("right", "move(1)", "Day on", show=False, id="calendar.day_on"),
        Binding("up", "move(-7)", "Week back", show=False, id="calendar.week_back"),
        Binding("down", "move(7)", "Week on", show=False, id="calendar.week_on"),
        Binding("pageup,less_than_sign", "month(-1)", "Month back", show=False, id="calendar.month_back"),
        Binding("pagedown,greater_than_sign", "month(1)", "Month on", show=False, id="calendar.month_on"),
        Binding("t", "today", "Today", id="calendar.today"),
        Binding("v", "next_view", "View", id="calendar.next_view"),
        Binding("1", "view('month')", "Month view", show=False, id="calendar.view.month"),
        Binding("2", "view('week')", "Week view", show=False, id="calendar.view.week"),
        Binding("3", "view('agenda')", "Agenda view", show=False, id="calendar.view.agenda"),
        Binding("enter,o", "open", "Open", id="calendar.open"),
        Binding("a", "approve", "Approve", id="calendar.approve"),
        Binding("x", "reject", "Reject", show=False, id="calendar.reject"),
        Binding("s", "reschedule", "Move", show=False, id="calendar.reschedule"),
        Binding("n", "new_change", "New", id="calendar.new"),
        Binding("C", "cab", "CAB agenda", id="calendar.cab"),
        Binding("r", "reload", "Reload", show=False, id="calendar.reload"),
        Binding("w", "windows", "Windows and freezes", show=False, id="calendar.windows"),
    ]
    CSS_PATH = CALENDAR_STYLES

    def __init__(self) -> None:
        super().__init__()
        self.view_mode = "month"
        self.selected = date.today()  # on mount: today by the app's clock (fixed in tests)
        self.index: DayIndex | None = None
        self.loaded_range: tuple[date, date] | None = None
        self.generation = 0
        self.shown_generation = -1
        self.fingerprint: tuple | None = None

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        yield Static("", id="cal-bar")
        yield CalendarGrid(id="cal-grid")
        yield Static("", id="cal-dayhead")
        yield OptionList(id="cal-list", markup=False)
        yield Static("", id="cal-info")
        yield from self.compose_footer()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.app.actor.timezone)

    @property
    def today(self) -> date:
        return self.app.clock().astimezone(self.tz).date()

    @property
    def grid(self) -> CalendarGrid:
        return self.query_one(CalendarGrid)

    @property
    def day_list(self) -> OptionList:
        return self.query_one("#cal-list", OptionList)

    @property
    def up_to_date(self) -> bool:
        """Whether what is shown comes from the latest load (tests wait for it)."""
        return self.shown_generation == self.generation and self.index is not None

    def on_mount(self) -> None:
        self.selected = self.today
        self.grid.fit_height(self.app.size.height)
        self.grid.focus()
        self.refresh_view()
        self.set_interval(POLL_SECONDS, self.check_for_changes)

    def on_resize(self, event: events.Resize) -> None:
        self.grid.fit_height(self.app.size.height)

    def on_screen_resume(self) -> None:
        if self.index is not None:
            self.reload()

    # ------------------------------------------------------------------ loading

    def needed_range(self) -> tuple[date, date]:
        """Local days the current view needs: the month grid of the selected day, and the agenda's days."""
        start = grid_start(self.selected)
        end = max(start + timedelta(days=42), self.selected + timedelta(days=AGENDA_DAYS))
        return start, end

    def refresh_view(self) -> None:
        """Draw from what is loaded; load first if the view needs days not loaded yet."""
        start, end = self.needed_range()
        if self.loaded_range is None or start < self.loaded_range[0] or end > self.loaded_range[1]:
            self.index = None  # the new days are drawn empty ("loading") rather than from old data
            self.reload()
        self.draw()

    def reload(self) -> None:
        self.generation += 1
        start, end = self.needed_range()
        self.loaded_range = (start, end)
        tz = self.tz
        self.load(
            self.generation,
            datetime.combine(start, time(0), tz),
            datetime.combine(end, time(0), tz),
        )

    @work(thread=True, exclusive=True, group="calendar-load", exit_on_error=False)
    def load(self, generation: int, start: datetime, end: datetime) -> None:
        from itsm_tui.services import changes

        with self.app.db.read_session() as session:
            fingerprint = changes.fingerprint(session)
            data = changes.calendar(
                session, start, end, same_service=self.app.config.changes.same_service_severity
            )
        index = DayIndex.build(data, self.tz)
        self.app.call_from_thread(self._loaded, generation, index, fingerprint)

    def _loaded(self, generation: int, index: DayIndex, fingerprint: tuple) -> None:
        if generation != self.generation:
            return
        self.index = index
        self.fingerprint = fingerprint
        self.shown_generation = generation
        self.draw()

    def check_for_changes(self) -> None:
        if self.app.screen is not self or self.fingerprint is None or not self.up_to_date:
            return
        self.poll(self.fingerprint)

    @work(thread=True, exclusive=True, group="calendar-poll", exit_on_error=False)
    def poll(self, previous: tuple) -> None:
        from itsm_tui.services import changes

        with self.app.db.read_session() as session:
            current = changes.fingerprint(session)
        if current != previous:
            self.app.call_from_thread(self.reload)

    # ------------------------------------------------------------------ drawing

    def draw(self) -> None:
        self.set_class(self.view_mode == "agenda", "-agenda")
        self.grid.show(self.index, self.view_mode, self.selected, self.today)
        self._draw_bar()
        keep = self.current_ref()
        width = (self.day_list.size.width or self.size.width or 80) - 3  # room for a scroll bar
        if self.view_mode == "agenda":
            options = agenda_options(self.index, self.selected, width=width)
        else:
            options = day_options(self.index, self.selected, width=width)
            self._draw_dayhead()
        day_list = self.day_list
        day_list.clear_options()
        day_list.add_options(options)
        target = next(
            (i for i, o in enumerate(options) if o.id and keep and o.id.split("@")[0] == keep), None
        )
        if target is None:
            target = next((i for i, o in enumerate(options) if not o.disabled), None)
        if target is not None:
            day_list.highlighted = target
        self._draw_info()

    def _draw_bar(self) -> None:
        bar = Text()
        selected = self.selected
        if self.view_mode == "week":
            monday = selected - timedelta(days=selected.weekday())
            sunday = monday + timedelta(days=6)
            title = f"Week {selected.isocalendar().week}, {monday:%d %b} - {sunday:%d %b %Y}"
        elif self.view_mode == "agenda":
            title = f"Agenda from {selected:%a %d %b %Y}"
        else:
            title = f"{selected:%B %Y}"
        bar.append(title, style="bold")
        bar.append(f"  [{VIEW_TITLES[self.view_mode]}]  ")
        if self.index is None:
            bar.append("loading ... ", style="dim")
        elif self.index.data.truncated:
            bar.append("(too many changes: some not shown) ", style="bold red")
        bar.append_text(legend())
        bar.no_wrap = True
        bar.overflow = "ellipsis"
        self.query_one("#cal-bar", Static).update(bar)

    def _draw_dayhead(self) -> None:
        day = self.selected
        head = Text(f"{day:%A %d %B %Y}")
        if self.index is not None:
            rows = self.index.changes.get(day, [])
            head.append(f"  {len(rows)} change{'s' if len(rows) != 1 else ''}", style="")
            if day == self.today:
                head.append("  today", style="yellow")
        head.append(f"  ({self.app.actor.timezone})", style="dim")
        self.query_one("#cal-dayhead", Static).update(head)

    def _draw_info(self) -> None:
        info = Text()
        row = self.current_row()
        if row is not None and self.index is not None:
            found = self.index.conflicts.get(row.ref, [])
            if found:
                first = found[0]
                mark, style = MARKS.get(first.severity, ("+", "cyan"))
                more = fill_keys(self, f"+{len(found) - 1} more: {{calendar.open}}", ", ")
                more = f" ({more})" if len(found) > 1 else ""
                width = self.query_one("#cal-info", Static).size.width or (self.size.width or 80) - 2
                info.append(f"{mark} ", style=style)  # the interval is kept, what leads to it shortened
                info.append(strip_control(first.fitted(max(20, width - 2 - len(more))), single_line=True))
                if more:
                    info.append(more, style="bold")
            else:
                hints = "{calendar.open} opens, {calendar.approve} approves, {calendar.reject} rejects, "
                hints += "{calendar.reschedule} moves it"
                info.append(f"{row.ref}: no conflicts. {fill_keys(self, hints, ', ')}.")
        elif self.index is not None:
            info.append(
                fill_keys(
                    self,
                    "tab: the day's changes · {calendar.day_back}{calendar.day_on} day · "
                    "{calendar.week_back}{calendar.week_on} week · {calendar.month_back}/{calendar.month_on} "
                    "month · {calendar.next_view} view · {calendar.new} new",
                )
            )
        info.no_wrap = True
        info.overflow = "ellipsis"
        self.query_one("#cal-info", Static).update(info)

    @on(OptionList.OptionHighlighted, "#cal-list")
    def _highlighted(self) -> None:
        self._draw_info()

    @on(OptionList.OptionSelected, "#cal-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_open()

    @on(CalendarGrid.DayClicked)
    def _clicked(self, event: CalendarGrid.DayClicked) -> None:
        self.selected = event.day
        self.refresh_view()

    def current_ref(self) -> str | None:
        day_list = self.day_list
        if day_list.highlighted is None or day_list.option_count == 0:
            return None
        option = day_list.get_option_at_index(day_list.highlighted)
        return option.id.split("@")[0] if option.id else None

    def current_row(self) -> ChangeRow | None:
        ref = self.current_ref()
        if ref is None or self.index is None:
            return None
        return next((r for r in self.index.data.changes if r.ref == ref), None)

    # ------------------------------------------------------------------ moving

    def action_move(self, days: int) -> None:
        self.selected += timedelta(days=days)
        self.refresh_view()

    def action_month(self, months: int) -> None:
        self.selected = add_months(self.selected, months)
        self.refresh_view()

    def action_today(self) -> None:
        self.selected = self.today
        self.refresh_view()

    def action_view(self, view: str) -> None:
        self.view_mode = view
        self.refresh_view()
        if view == "agenda":
            self.day_list.focus()
        elif self.focused is self.day_list and not self.day_list.option_count:
            self.grid.focus()

    def action_next_view(self) -> None:
        self.action_view(VIEWS[(VIEWS.index(self.view_mode) + 1) % len(VIEWS)])

    def action_reload(self) -> None:
        self.reload()

    # ------------------------------------------------------------------ acting on a change

    def _row_or_say(self) -> ChangeRow | None:
        row = self.current_row()
        if row is None:
            self.app.notify(
                "No change selected: pick a day with changes (tab moves into its list).", markup=False
            )
        return row

    def action_open(self) -> None:
        row = self._row_or_say()
        if row is not None:
            from itsm_tui.screens.change import ChangeScreen

            self.app.push_screen(ChangeScreen(row.ref), callback=lambda _: self.reload())

    def action_approve(self) -> None:
        row = self._row_or_say()
        if row is not None:
            self.decide(row.ref, row.version)

    @work(thread=True, group="calendar-action", exit_on_error=False)
    def decide(self, ref: str, version: int) -> None:
        """Read the change and where its approval stands, then ask for a comment and the confirmation
        (change_assess.ApproveForm); a viewer who may not approve it is told why, and nothing opens."""
        from itsm_tui.services import changes

        app = self.app
        try:
            with app.db.read_session() as session:
                change = changes.get_change(session, ref)
                view = changes.view(session, app.config, change, app.actor, app.clock())
                progress = changes.approval_progress(session, app.config, change)
        except ServiceError as exc:
            app.call_from_thread(
                app.notify, str(exc), title=f"{ref} not approved", severity="error", markup=False, timeout=8
            )
            return
        refusal = view.actions.get("approve")
        if refusal is not None or view.version != version:
            told = refusal or f"{ref} changed since the calendar was read; it is read again"
            app.call_from_thread(
                app.notify, told, title=f"{ref} not approved", severity="error", markup=False, timeout=8
            )
            app.call_from_thread(self.reload)
            return
        app.call_from_thread(self._ask_approval, view, progress)

    def _ask_approval(self, view: ChangeView, progress: str) -> None:
        from itsm_tui.screens.change_assess import ApproveForm

        self.app.push_screen(ApproveForm(self.app, view, progress), callback=lambda _: self.reload())

    def action_reject(self) -> None:
        row = self._row_or_say()
        if row is None:
            return
        from itsm_tui.screens.change import ReasonForm, reject_saver

        self.app.push_screen(
            ReasonForm(f"Reject {row.ref}", reject_saver(self.app, row.ref, row.version), required=True),
            callback=lambda result: self._after(result, f"{row.ref} rejected."),
        )

    def action_reschedule(self) -> None:
        row = self._row_or_say()
        if row is None:
            return
        from itsm_tui.screens.change import ScheduleForm

        self.app.push_screen(
            ScheduleForm(
                row.ref, row.change_type, row.state, row.planned_start, row.planned_end, row.version
            ),
            callback=lambda result: self._after(result, f"{row.ref} moved."),
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The new-change form is offered (footer, help, palette, key) only to whom the guard that
        ``create_change`` enforces lets raise a change."""
        if action == "new_change":
            return create_refusal(self.app.actor) is None
        return True

    def action_windows(self) -> None:
        """The maintenance windows and blackouts (change managers edit them there)."""
        from itsm_tui.screens.change_windows import WindowsScreen

        day = datetime.combine(self.selected, time(0), self.tz)
        self.app.push_screen(WindowsScreen(day), callback=lambda _: self.reload())

    def action_cab(self) -> None:
        from itsm_tui.screens.cab import CabScreen

        self.app.push_screen(CabScreen(), callback=lambda _: self.reload())

    def action_new_change(self) -> None:
        from itsm_tui.screens.change import NewChangeForm

        start = datetime.combine(self.selected, time(22, 0), self.tz)
        self.app.push_screen(NewChangeForm(start), callback=lambda ref: self._after(ref, f"{ref} raised."))

    def _after(self, result: object, message: str) -> None:
        if result:
            self.app.notify(message, markup=False)
        self.reload()
