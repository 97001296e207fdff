"""Queue screen: saved views, filter as you type, sort by any column, over a table that draws only what shows.

The table asks the database only for the pages on screen (and the next ones), so a million tickets open
and scroll at once: one worker reads a new query's first rows (or those around the ticket under the cursor)
and then its count; another reads the pages the viewport needs, one at a time, each from its neighbour's
key. A new keystroke stops whatever the previous one still had running. Every second a cheap check notices
other people's work and re-reads the visible rows, keeping the cursor on the same ticket.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input, Static

from itsm_tui.config import DeskConfig
from itsm_tui.db import ReadCancel
from itsm_tui.keymap import NO_KEYS, declared_bindings, key_in_force
from itsm_tui.screens.commandline import CommandLine, Target
from itsm_tui.screens.common import fit_hints
from itsm_tui.screens.typeahead import focus_now, not_while_typing, typing, until_shown
from itsm_tui.screens.views import SavedViewsScreen
from itsm_tui.services.errors import ServiceError
from itsm_tui.services.presence import Viewer
from itsm_tui.services.queue import (
    SORTS,
    VIEWS,
    Filter,
    FilterError,
    FirstRows,
    QueueQuery,
    QueueRow,
    QueueWindow,
    default_view,
    parse_filter,
    query_for,
    sort_offered,
)
from itsm_tui.services.tickets.bulk import MARK_LIMIT, BulkAction, BulkResult, BulkStopped, MarkedTicket
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from textual import getters

    from itsm_tui.app import ItsmApp
    from itsm_tui.services.views import ViewInfo

REFRESH_SECONDS = 1.0
SLA_STYLES = {"ok": "green", "warning": "yellow", "breached": "bold red", "met": "green", "stopped": "dim"}
PAUSED_STYLES = {"ok": "cyan", "warning": "yellow", "breached": "bold red", "stopped": "dim"}
RESPONSE_MARK = "R"  # the SLA column's figure is the response target's (unmarked: the resolution target's)
PAUSED_TEXT = "‖ paused"
PRIORITY_STYLES = {1: "bold red", 2: "red", 3: "yellow", 4: "", 5: "dim"}
MARK, MARK_STYLE = "*", "bold yellow"  # the first cell of a marked row (Space, *)
PRESENCE_STYLES = {False: "black on cyan", True: "bold black on yellow"}  # by: someone is writing in it
# The queue's actions on tickets -> the action of the ticket guards (services/tickets/guards.py) deciding
# whether the user's role may ever take it (QueueScreen.role_refusal).
QUEUE_GUARDED = {
    "take": "take",
    "take_next": "take",
    "assign": "assign",
    "escalate": "escalate",
    "status": "transition",
    "reply": "reply",
    "note": "note",
    "link": "link",
}
QUEUE_STYLES = Path(__file__).resolve().with_name("queue.tcss")  # absolute: found from subclasses too
# The priority keys that open a text field (typeahead.py): where text is typed, they type themselves.
TYPED_IN = frozenset({"filter", "new_ticket", "goto", "save_view"})


@dataclass(frozen=True)
class Column:
    key: str  # a key of SORTS
    title: str
    width: int  # 0: takes the rest


# Every column a view may show (a key of SORTS each); the title is always last and takes the rest.
COLUMNS = {
    c.key: c
    for c in (
        Column("ref", "Ref", 10),
        Column("priority", "P", 2),
        Column("sla", "SLA due", 9),
        Column("status", "Status", 11),
        Column("group", "Group", 7),
        Column("assignee", "Assignee", 10),
        Column("requester", "Requester", 22),
        Column("service", "Service", 9),
        Column("opened", "Opened", 11),
        Column("resolved", "Resolved", 11),
    )
}
TITLE_COLUMN = Column("title", "Title", 0)
TITLE_MIN = 24  # cells the title keeps: columns past what fits beside it are left out
# The shipped columns of each view, most wanted first: at 80 columns ref, priority, SLA due, status, group
# and assignee (the views where the assignee is always the same, mine or nobody, show the requester instead).
DEFAULT_COLUMNS = {
    "default": ("ref", "priority", "sla", "status", "group", "assignee", "requester", "service", "opened"),
    "my_work": ("ref", "priority", "sla", "status", "group", "requester", "service", "opened"),
    "unassigned": ("ref", "priority", "sla", "status", "group", "requester", "service", "opened"),
    "resolved": ("ref", "priority", "resolved", "status", "group", "assignee", "requester", "service"),
    "all_tickets": ("ref", "priority", "opened", "status", "group", "assignee", "requester", "resolved"),
}


def columns_for(width: int, view: str, chosen: tuple[str, ...] | None = None) -> list[Column]:
    """The columns of ``view`` that fit in ``width`` cells: those ``chosen`` (the user's column file,
    :mod:`itsm_tui.columns`) or the shipped ones, in order, as long as the title keeps ``TITLE_MIN`` cells
    beside them (the first column always shows), then the title."""
    keys = chosen or DEFAULT_COLUMNS.get(view) or DEFAULT_COLUMNS["default"]
    cols: list[Column] = []
    used = 0
    for key in keys:
        column = COLUMNS[key]
        if cols and used + column.width + 1 + TITLE_MIN > width:
            break
        cols.append(column)
        used += column.width + 1
    cols.append(TITLE_COLUMN)
    return cols


def format_duration(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"{sign}{days}d{hours:02d}h" if days else f"{sign}{hours}h{mins:02d}m"


def sla_cell(row: QueueRow, now: datetime) -> tuple[str, str]:
    """The SLA column of a row: the wall-clock time from ``now`` to the due instant the queue is ordered by
    (negative when overdue), ``R`` before it when that is the response target's, and its state's style; a
    paused row says so (its clocks stand still), styled by the state its target had when it paused."""
    state = row.due_state(now)
    if state == "stopped":
        return "-", ""
    if row.paused_at is not None:
        return PAUSED_TEXT, PAUSED_STYLES[state]
    left = row.due_in(now)
    if left is None:
        return "-", ""
    mark = RESPONSE_MARK if row.sla_target == "response" else " "
    return f"{mark}{format_duration(left):>8}", SLA_STYLES[state]


FOREVER = datetime.max.replace(tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def sla_cell_until(row: QueueRow, now: datetime) -> datetime:
    """The instant until which :func:`sla_cell` of ``row`` stays what it is at ``now`` (or sooner): the next
    minute of its time left, its warning and its due instant; a stopped or paused row's never changes."""
    due = row.sla_due_at
    if row.sla_target is None or due is None or row.paused_at is not None:
        return FOREVER
    left = due - now
    if left > timedelta(0):  # the minutes shown fall at each whole minute before the due instant
        until = due - (left // MINUTE) * MINUTE
    elif left == timedelta(0):  # overdue (a minus sign) the next moment
        return now + timedelta(microseconds=1)
    else:  # and grow at each whole minute after it
        until = due + ((-left) // MINUTE + 1) * MINUTE
    warn = row.response_warn_at if row.sla_target == "response" else row.resolution_warn_at
    if warn is not None and now < warn < until:
        until = warn
    return until


class SlaCells:
    """Each row's SLA cell, kept until the instant its text or style would change (:func:`sla_cell_until`):
    drawing a row again (a frame, the poll's re-read of the same rows) costs a look-up, not the SLA's
    arithmetic and formatting. By the values the cell is made of, so a re-read row finds its cell."""

    LIMIT = 4096  # cells kept; all dropped at once beyond it (a few screens' worth are in use)

    def __init__(self) -> None:
        self._cells: dict[tuple[object, ...], tuple[datetime, datetime, tuple[str, str]]] = {}

    def cell(self, row: QueueRow, now: datetime) -> tuple[str, str]:
        key = (row.sla_target, row.sla_due_at, row.paused_at, row.response_warn_at, row.resolution_warn_at)
        kept = self._cells.get(key)
        if kept is not None and kept[0] <= now < kept[1]:
            return kept[2]
        made = sla_cell(row, now)
        if len(self._cells) >= self.LIMIT:
            self._cells.clear()
        self._cells[key] = (now, sla_cell_until(row, now), made)
        return made


class QueueTable(ScrollView, can_focus=True):
    """A table of queue rows drawn line by line from a :class:`QueueWindow`; it holds only read pages."""

    if TYPE_CHECKING:  # the console app, typed (at run time Textual's own property)
        app = getters.app(ItsmApp)

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="queue.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="queue.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="queue.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="queue.page_down"),
        Binding("home", "jump(0)", "First", show=False, id="queue.first"),
        Binding("end", "jump(-1)", "Last", show=False, id="queue.last"),
    ]
    cursor = reactive(0, always_update=True)

    class NeedRows(Message):
        """Rows between two indexes are to be shown but not read yet."""

        def __init__(self, first: int, last: int) -> None:
            super().__init__()
            self.first, self.last = first, last

    def __init__(self, config: DeskConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.window: QueueWindow | None = None
        self.total = 0
        self.columns: list[Column] = columns_for(80, "all_open")
        self.now = datetime.now(UTC)  # set from the app's clock whenever rows arrive
        # Drawn lines by (row, selected, focused, width, look); a cursor move redraws two lines, not all.
        self._lines: LRUCache[tuple, tuple[QueueRow, Strip]] = LRUCache(512)
        self._look = 0  # bumped when columns or the time the SLA is measured at change
        # Who else has the shown tickets open (ticket id -> viewers), read with each poll of the screen.
        self.presence: dict[int, tuple[Viewer, ...]] = {}
        self._styles: dict[tuple[str, Style], Style] = {}
        self._sla = SlaCells()
        self.marks: dict[int, str] = {}  # the marked tickets: id -> ref, in the order they were marked
        self.zone = ZoneInfo("UTC")  # the agent's time zone, set on mount

    # ------------------------------------------------------------------ data

    def show_window(self, window: QueueWindow, cursor: int = 0, screen_row: int | None = None) -> None:
        """Show a query's rows with the cursor on row ``cursor``: at the top for a new query, or on the
        same screen line as before (``screen_row``) when the same ticket is kept under the cursor."""
        self.window = window
        self.total = window.known_rows
        self.virtual_size = Size(self.size.width, self.total)
        self.now = self.app.clock()
        self._look += 1
        cursor = min(max(0, cursor), max(0, self.total - 1))
        height = max(1, self.size.height)
        line = cursor if screen_row is None else min(max(0, screen_row), height - 1)
        self.set_reactive(QueueTable.cursor, cursor)
        self.scroll_to(y=max(0, cursor - line), animate=False, immediate=True)
        self.refresh()
        self._request_visible()

    def rows_arrived(self, first: int = 0, count: int | None = None) -> None:
        """Rows ``first`` to ``first + count`` were read (all rows, or the count came): redraw them if they
        show, and extend the table to the rows now known. While the count is still coming, the table grows
        only as far as the screen needs (each growth redraws the scroll bar too)."""
        window = self.window
        if window is None:
            return
        top, height = int(self.scroll_offset.y), max(1, self.size.height)
        known = window.known_rows
        if known != self.total and (window.total is not None or self.total < top + height):
            self.total = known
            self.virtual_size = Size(self.size.width, self.total)
            if self.cursor > max(0, self.total - 1):
                self.cursor = max(0, self.total - 1)
        if count is None or (first < top + height and first + count > top):
            self.refresh()
        self._request_visible()

    def visible_ids(self) -> list[int]:
        """The ids of the ticket rows on screen (read ones only)."""
        window = self.window
        if window is None:
            return []
        top = int(self.scroll_offset.y)
        rows = (window.row(index) for index in range(top, min(self.total, top + max(1, self.size.height))))
        return [row.id for row in rows if row is not None]

    def show_presence(self, presence: dict[int, tuple[Viewer, ...]]) -> None:
        """Who else has which ticket open: the rows whose viewers changed are drawn anew."""
        if presence != self.presence:
            self.presence = presence
            self.redraw()

    def _with_presence(self, strip: Strip, viewers: tuple[Viewer, ...], base: Style, width: int) -> Strip:
        """The row with who else has the ticket open over its end: a first name (and how many more) at 80
        columns, full names on a wide terminal; ✎ before those typing a reply or note in it."""
        tag = presence_tag(viewers, wide=width >= 110)
        size = min(cell_len(tag), max(0, width // 3))
        if size < 4:
            return strip
        writing = any(viewer.writing for viewer in viewers)
        style = self._style(PRESENCE_STYLES[writing], base)
        return Strip([*strip.crop(0, width - size), Segment(_fit(tag, size), style)], width)

    def redraw(self) -> None:
        """Draw every line anew (columns or the SLA's 'now' changed)."""
        self._look += 1
        self.refresh()

    @property
    def current(self) -> QueueRow | None:
        return self.window.row(self.cursor) if self.window and self.total else None

    def wanted_rows(self) -> tuple[int, int]:
        """The rows to have read: the viewport, a screen above it and two below (a held PageDown)."""
        top = int(self.scroll_offset.y)
        height = max(1, self.size.height)
        return max(0, top - height), top + 3 * height

    def _request_visible(self) -> None:
        if self.window is None:
            return
        first, last = self.wanted_rows()
        if self.window.missing_pages(first, last):
            self.post_message(self.NeedRows(first, last))

    def on_mount(self) -> None:
        self.zone = ZoneInfo(self.app.actor.timezone)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, self.total)
        self._request_visible()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._request_visible()

    # ------------------------------------------------------------------ moving

    def watch_cursor(self, old: int, cursor: int) -> None:
        height = max(1, self.size.height)
        top = int(self.scroll_offset.y)
        if cursor < top:
            self.scroll_to(y=cursor, animate=False, immediate=True)
        elif cursor >= top + height:
            self.scroll_to(y=cursor - height + 1, animate=False, immediate=True)
        else:  # within the viewport: only the two lines change
            self.refresh_line(old)
            self.refresh_line(cursor)

    def action_cursor(self, delta: int) -> None:
        if self.total:
            self.cursor = min(max(0, self.cursor + delta), self.total - 1)

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 1))

    def action_jump(self, where: int) -> None:
        if self.total:
            self.cursor = 0 if where == 0 else self.total - 1

    # ------------------------------------------------------------------ drawing

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_offset.y) + y
        width = self.size.width
        if index >= self.total or self.window is None:
            return Strip.blank(width, self.rich_style)
        row = self.window.row(index)
        selected = index == self.cursor
        focused = selected and self.has_focus
        base = Style(reverse=True) if focused else (Style(bgcolor="grey23") if selected else Style())
        if row is None:
            return Strip([Segment(" ...".ljust(width), base)], width)
        marked = row.id in self.marks
        key = (row.id, selected, focused, width, self._look, marked)
        cached = self._lines.get(key)
        if cached is not None and cached[0] is row:
            return cached[1]
        strip = self._draw(row, base, width, marked)
        viewers = self.presence.get(row.id)
        if viewers:
            strip = self._with_presence(strip, viewers, base, width)
        self._lines[key] = (row, strip)
        return strip

    def _draw(self, row: QueueRow, base: Style, width: int, marked: bool = False) -> Strip:
        # The first cell is the mark's: MARK on a marked row, blank on the others.
        segments = [Segment(MARK if marked else " ", self._style(MARK_STYLE, base))]
        used = 1
        for column in self.columns:
            cell_width = column.width or max(1, width - used)
            text, style = self._cell(row, column.key)
            segments.append(Segment(_fit(text, cell_width), self._style(style, base)))
            used += cell_width
            if used >= width:
                break
            segments.append(Segment(" ", base))
            used += 1
        return Strip(segments, used).crop(0, width).extend_cell_length(width, base)

    def _style(self, name: str, base: Style) -> Style:
        """A cell's style over the line's (cursor) style, parsed once."""
        key = (name, base)
        style = self._styles.get(key)
        if style is None:
            style = self._styles[key] = (Style.parse(name) if name else Style()) + base
        return style

    def _cell(self, row: QueueRow, key: str) -> tuple[str, str]:
        """A cell's text (user text stripped of control characters) and style name."""
        if key == "ref":
            return row.ref, ""
        if key == "priority":
            return f"P{row.priority}", PRIORITY_STYLES.get(row.priority, "")
        if key == "sla":
            return self._sla.cell(row, self.now)
        if key == "status":
            return row.status, ""
        if key in ("resolved", "opened"):
            instant = row.resolved_at if key == "resolved" else row.opened_at
            return (f"{instant.astimezone(self.zone):%m-%d %H:%M}" if instant else "-"), ""
        value = {
            "title": row.title,
            "requester": row.requester,
            "group": row.group,
            "assignee": row.assignee,
            "service": row.service,
        }.get(key)
        return strip_control(value or "", single_line=True), ""


def _key_run(keys: list[str]) -> str:
    """Keys as the bar names them: a run of digits as ``1-7``, the others after a slash (``1-7/v``)."""
    digits = [key for key in keys if len(key) == 1 and key.isdigit()]
    rest = [key for key in keys if key not in digits]
    run = len(digits) > 2 and digits == [str(n) for n in range(int(digits[0]), int(digits[0]) + len(digits))]
    return "/".join([f"{digits[0]}-{digits[-1]}" if run else ",".join(digits)] * bool(digits) + rest)


def presence_tag(viewers: tuple[Viewer, ...], wide: bool) -> str:
    """A queue row's word on who else has its ticket open: `` Ana+1 `` (the first name of the first, how
    many more), or with ``wide`` every name; ``✎`` marks those typing a reply or note. Names shown
    literally (control characters stripped)."""
    ordered = sorted(viewers, key=lambda viewer: not viewer.writing)  # writers first
    names = [("✎" if v.writing else "") + strip_control(v.name, single_line=True) for v in ordered]
    if wide:
        return f" {', '.join(names)} "
    first = names[0].split()[0] if names[0].split() else names[0]
    more = f"+{len(names) - 1}" if len(names) > 1 else ""
    return f" {first[:10]}{more} "


def _fit(text: str, width: int) -> str:
    """``text`` cut (with an ellipsis) or padded to exactly ``width`` cells."""
    if text.isascii():
        return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…"


def settled_filter_text(good: str, typed: str) -> str:
    """What of the last good filter text ``good`` still stands now that ``typed`` is refused.

    A token is typed through good filters: ``p:0`` went through ``p``, one free word. When ``typed`` goes on
    from ``good`` within its last word, and that word was a free word (it had no ``:``), the word was the
    refused token in the making, and it is dropped; a token being extended (``assignee:a1`` to
    ``assignee:a1,x``) and anything typed elsewhere leave ``good`` as it was.
    """
    words = good.split()
    if not words or good[-1].isspace() or ":" in words[-1]:
        return good
    if not typed.startswith(good) or len(typed) == len(good) or typed[len(good)].isspace():
        return good
    return good[: len(good) - len(words[-1])]


class QueueHeader(Static):
    """The column titles, with the sort marked."""


class QueueScreen(SavedViewsScreen):  # views of one's own: S saves, V manages, their keys apply them
    SCREEN_TITLE = "Queue"
    AUTO_FOCUS = "QueueTable"  # keys typed while the console starts go to the table, not the filter
    BINDINGS = [
        Binding("enter,o", "open", "Open", id="queue.open"),
        Binding("t", "take", "Take", id="queue.take"),
        Binding("N", "take_next", "Take next", show=False, id="queue.take_next"),
        Binding("a", "assign", "Assign", id="queue.assign"),
        Binding("e", "escalate", "Escalate", id="queue.escalate"),
        Binding("s", "status", "Status", id="queue.status"),
        # Priority, like every key that opens a text field: the keys typed after it go there (typeahead.py).
        Binding("n", "new_ticket", "New", id="queue.new", priority=True),
        Binding("slash", "filter", "Filter", id="queue.filter", priority=True),
        Binding("v", "next_view", "View", id="queue.next_view"),
        Binding("1", "view('my_work')", "My work", show=False, id="queue.view.my_work"),
        Binding("2", "view('unassigned')", "Unassigned in my groups", show=False, id="queue.view.unassigned"),
        Binding("3", "view('breaching')", "Breaching soon", show=False, id="queue.view.breaching"),
        Binding("4", "view('all_open')", "All open", show=False, id="queue.view.all_open"),
        Binding("5", "view('major')", "Major (P1/P2)", show=False, id="queue.view.major"),
        Binding("6", "view('resolved')", "Recently resolved", show=False, id="queue.view.resolved"),
        Binding("7", "view('all_tickets')", "All tickets", show=False, id="queue.view.all_tickets"),
        Binding("g", "goto", "Go to ref", show=False, id="queue.goto", priority=True),
        Binding("right_square_bracket", "sort(1)", "Sort", id="queue.sort_next"),
        Binding("left_square_bracket", "sort(-1)", "Sort back", show=False, id="queue.sort_previous"),
        Binding("minus", "reverse", "Reverse", show=False, id="queue.reverse"),
        Binding("space", "mark", "Mark / unmark", show=False, id="queue.mark"),
        Binding("asterisk", "mark_all", "Mark all in view", show=False, id="queue.mark_all", key_display="*"),
        # Priority too: "/" typed straight after it must not overtake it (and lose the focus to it).
        Binding("escape", "clear_marks", "Clear marks", show=False, id="queue.clear_marks", priority=True),
        Binding("r", "reply", "Reply", show=False, id="queue.reply"),
        Binding("c", "note", "Note", show=False, id="queue.note"),
        Binding("l", "link", "Link", show=False, id="queue.link"),
        Binding("W", "workload", "Workload", show=False, id="queue.workload"),
        Binding(  # priority: the keys typed after it go into the line, however fast they come
            "colon", "command", "Command line", show=False, id="queue.command", key_display=":", priority=True
        ),
    ]
    CSS_PATH = QUEUE_STYLES

    def __init__(self) -> None:
        super().__init__()
        self.view_key = "all_open"
        self.sort: str | None = None
        self.descending: bool | None = None
        self.filter = Filter()  # the filter applied (its logins perhaps still being looked up)
        self.filter_text = ""  # the text it was read from
        # The last filter known good (every login found): what the queue falls back on when one is refused.
        self.good_filter, self.good_text = Filter(), ""
        self.query_state: QueueQuery | None = None
        self.generation = 0
        self.cancels: list[ReadCancel] = []  # the reads of the shown query, stopped when it is replaced
        self.reader: ReadCancel | None = None  # the page reader of the shown rows, while it runs
        self.counted_generation = -1  # the generation whose rows and count are shown
        self.fingerprint: tuple | None = None
        self.last_full_refresh = 0.0
        self.suspended = False  # another screen is shown over this one
        self._role_actions: dict[str, str | None] | None = None  # tickets.role_actions, once asked
        self._header_text = self._bar_text = ""
        self.last_bulk_summary = ""  # the line the last action over marked tickets ended with

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        yield Static("", id="queue-bar")
        yield Input(
            placeholder="/ filter: words, p:1 status:pending group:net assignee:me svc:email",
            id="queue-filter",
        )
        yield Static("", id="queue-error")
        yield QueueHeader("")
        yield QueueTable(self.app.config, id="queue-table")
        yield CommandLine()
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.view_key = default_view(self.app.actor)
        self.query_one(QueueTable).focus()
        first, self.app.first_rows = self.app.first_rows, None  # read before the console started: once
        if first is not None and first.matches(self.current_query()):
            self._show_first(first)
        else:
            self.reload()
        self.set_interval(REFRESH_SECONDS, self.check_for_changes)

    def _show_first(self, first: FirstRows) -> None:
        """Show the rows read before the console started, in the first frame; count them as usual."""
        self.generation += 1
        query = self.query_state = first.window.query
        self._show_header(query)
        self._apply(self.generation, first.window, 0, None, first.fingerprint)
        # Counted once the rows are drawn: the read would only slow down the frame that shows them.
        self.call_after_refresh(self.count_query, self.generation, first.window, self._new_cancel())

    @work(thread=True, group="queue-query", exit_on_error=False)
    def count_query(self, generation: int, window: QueueWindow, cancel: ReadCancel) -> None:
        from itsm_tui.services import queue

        with self.app.db.read_session(cancel) as session:
            total = queue.count(session, window.query)
        self.app.call_from_thread(self._apply_total, generation, window, total)

    # ------------------------------------------------------------------ the query

    @property
    def table(self) -> QueueTable:
        return self.query_one(QueueTable)

    def current_query(self) -> QueueQuery:
        return query_for(
            self.app.actor, self.view_key, self.filter, self.sort, self.descending, self.app.clock()
        )

    def reload(self, keep_cursor: bool = False) -> None:
        """Read the current query anew, replacing what is shown: its first rows (or, with ``keep_cursor``,
        those around the ticket under the cursor, which stays on its screen line), then its count."""
        self.generation += 1
        self._stop_reads()
        query = self.current_query()
        self.query_state = query
        self._show_header(query)
        table = self.table
        keep = table.current if keep_cursor else None
        screen_row = table.cursor - int(table.scroll_offset.y) if keep else None
        height = max(1, table.size.height)
        cancel = self._new_cancel()
        self.load_query(self.generation, query, keep.id if keep else None, screen_row, height, cancel)

    def _new_cancel(self) -> ReadCancel:
        cancel = ReadCancel()
        self.cancels = [c for c in self.cancels if not c.cancelled] + [cancel]
        return cancel

    def _stop_reads(self) -> None:
        """Stop every read of the query being replaced (its result would be thrown away)."""
        for cancel in self.cancels:
            cancel.cancel()
        self.cancels.clear()
        self.reader = None

    def _show_header(self, query: QueueQuery) -> None:
        table = self.table
        width = self.size.width or 80
        columns = columns_for(width, query.view, self.app.columns.for_view(query.view))
        if columns != table.columns:
            table.columns = columns
            table.redraw()
        titles = Text(" ")  # over the rows' mark cell
        for index, column in enumerate(columns):
            title = column.title
            cell = column.width or max(1, width - titles.cell_len)
            titles.append(title[:cell].ljust(cell) if column.width else title)
            if index < len(columns) - 1:
                titles.append(" ")
        if titles.plain != self._header_text:  # one line whatever it says: no layout pass
            self._header_text = titles.plain
            self.query_one(QueueHeader).update(titles, layout=False)

    def _show_bar(self, total: int | None) -> None:
        query = self.query_state
        if query is None:
            return
        saved = self.shown_view()  # a view of one's own shows under its name
        view = strip_control(saved.name, single_line=True) if saved else VIEWS[query.view].title
        count = "..." if total is None else f"{total:,}"
        sort = SORTS[query.sort][0] + (" desc" if query.descending else "")
        bar = Text()
        bar.append(f"{view}", style="bold")
        marked = len(self.table.marks)
        if marked:  # the marks' count, wherever the marked tickets are, and the keys for marks
            bar.append(f" ({count})  sort: {sort}  ")
            bar.append(f"{marked:,} marked", style=MARK_STYLE)
            bar.append("  " + self._bar_hints(marking=True))
        else:
            bar.append(f" ({count})  sort: {sort}  " + self._bar_hints(marking=False))
        bar = fit_hints(bar, (self.size.width or 80) - 2)  # 80x24: the hints that fit, never one cut
        if bar.plain != self._bar_text:
            self._bar_text = bar.plain
            self.query_one("#queue-bar", Static).update(bar, layout=False)

    def _bar_hints(self, marking: bool) -> str:
        """The bar's key hints with the keys in force ("[1-7/v] views  [/] filter  []/-] sort"; while rows
        are marked, the marking keys); a hint whose keys are all unbound is left out."""
        groups: list[tuple[tuple[str, ...], str]]
        if marking:
            groups = [
                (("queue.mark",), "mark"),
                (("queue.mark_all",), "all"),
                (("queue.clear_marks",), "clear"),
            ]
        else:
            views = tuple(
                b.id for b in declared_bindings(type(self)) if b.id and b.id.startswith("queue.view.")
            )
            groups = [
                ((*views, "queue.next_view"), "views"),
                (("queue.filter",), "filter"),
                (("queue.sort_next", "queue.reverse"), "sort"),
            ]
        hints = []
        for ids, what in groups:
            keys = [key for key in (key_in_force(self, binding_id) for binding_id in ids) if key]
            if keys:
                hints.append(f"[{_key_run(keys)}] {what}")
        return "  ".join(hints)

    @work(thread=True, group="queue-query", exit_on_error=False)
    def load_query(
        self,
        generation: int,
        query: QueueQuery,
        keep_id: int | None,
        screen_row: int | None,
        height: int,
        cancel: ReadCancel,
    ) -> None:
        """Read what the new query shows on screen, show it at once, then count."""
        from itsm_tui.services import queue

        window = QueueWindow(query)
        with self.app.db.read_session(cancel) as session:
            if query.filter.assignees:  # a mistyped login would read as an empty queue: refused instead
                try:
                    queue.check_assignees(session, query.filter)
                except FilterError as exc:
                    self.app.call_from_thread(self._assignee_refused, generation, exc)
                    return
            # Taken before the rows are read: a change made after it is noticed by the next poll.
            fingerprint = queue.newest_change(session)
            # Checked after each statement too: SQLite forgets an interrupt that falls between two statements.
            cancel.check()
            located = queue.locate(session, query, keep_id) if keep_id is not None else None
            cancel.check()
            if located is not None:  # the same ticket stays under the cursor, wherever it moved
                cursor, key = located
                rows = queue.fetch_around(session, query, cursor, key, window.page_size)
                window.store(cursor // window.page_size, rows)
            else:
                cursor, screen_row = 0, None
                window.store(0, queue.fetch_page(session, query, limit=window.page_size))
            # The rest of the screenful, from the page just read, so that it all appears in one frame.
            top = max(0, cursor - (screen_row or 0))
            while step := window.next_read(top, top + height - 1):
                cancel.check()
                page, plan = step
                window.store(page, queue.fetch_page(session, query, **plan))
            self.app.call_from_thread(
                self._apply,
                generation,
                window,
                cursor,
                screen_row,
                fingerprint,
                keep_id if located is not None else None,
            )
            if window.total is None:  # the count follows the rows
                cancel.check()
                total = queue.count(session, query)
                self.app.call_from_thread(self._apply_total, generation, window, total)

    def _apply(
        self,
        generation: int,
        window: QueueWindow,
        cursor: int,
        screen_row: int | None,
        fingerprint: tuple,
        kept_id: int | None = None,
    ) -> None:
        if generation != self.generation:
            return
        table = self.table
        current = table.current
        if kept_id and current is not None and current.id != kept_id:
            # The agent moved on while the rows were read: keep the ticket they are on now, not the old one.
            index = window.index_of(current.id)
            if index is None:
                self.reload(keep_cursor=True)
                return
            cursor, screen_row = index, table.cursor - int(table.scroll_offset.y)
        if self.reader is not None:  # it reads pages of the window being replaced
            self.reader.cancel()
            self.reader = None
        self.fingerprint = fingerprint
        self._filter_good()  # its rows are read: any login it names was found
        table.show_window(window, cursor, screen_row)
        self._show_bar(window.total)
        if window.total is not None:
            self.counted_generation = generation

    def _apply_total(self, generation: int, window: QueueWindow, total: int) -> None:
        if generation != self.generation or window is not self.table.window:
            return
        window.total = total
        self.table.rows_arrived()
        self._show_bar(total)
        self.counted_generation = generation

    @property
    def up_to_date(self) -> bool:
        """Whether the rows and count of the latest query are shown."""
        return self.counted_generation == self.generation

    @on(QueueTable.NeedRows)
    def need_rows(self) -> None:
        window = self.table.window
        if window is None or self.reader is not None:
            return  # a running reader looks at what is wanted before each page
        self.reader = self._new_cancel()
        self.read_pages(self.generation, window, self.reader)

    @work(thread=True, group="queue-pages", exit_on_error=False)
    def read_pages(self, generation: int, window: QueueWindow, cancel: ReadCancel) -> None:
        """Read, one after the other, the pages the table wants, until it wants none."""
        from itsm_tui.services import queue

        try:
            with self.app.db.read_session(cancel) as session:
                while step := self.app.call_from_thread(self._next_read, generation, window, cancel):
                    page, plan = step
                    rows = queue.fetch_page(session, window.query, **plan)
                    self.app.call_from_thread(self._store_page, generation, window, page, rows)
        finally:
            self.app.call_from_thread(self._reader_done, cancel)

    def _next_read(self, generation: int, window: QueueWindow, cancel: ReadCancel) -> tuple[int, dict] | None:
        step = None
        if not cancel.cancelled and generation == self.generation and window is self.table.window:
            step = window.next_read(*self.table.wanted_rows())
        if step is None:
            self._reader_done(cancel)
        return step

    def _reader_done(self, cancel: ReadCancel) -> None:
        if self.reader is cancel:
            self.reader = None
        if cancel in self.cancels:
            self.cancels.remove(cancel)

    def _store_page(self, generation: int, window: QueueWindow, page: int, rows: list[QueueRow]) -> None:
        if generation != self.generation or window is not self.table.window:
            return
        window.store(page, rows, near=int(self.table.scroll_offset.y) // window.page_size)
        self.table.rows_arrived(page * window.page_size, window.page_size)

    # ------------------------------------------------------------------ live

    def check_for_changes(self) -> None:
        if self.app.screen is not self or (not self.app.connected and self.fingerprint is None):
            return
        self.poll_changes(self.fingerprint, self.table.visible_ids())

    @work(thread=True, exclusive=True, group="queue-poll", exit_on_error=False)
    def poll_changes(self, previous: tuple | None, shown: list[int] | None = None) -> None:
        """Whether anything changed since ``previous``, and who else has the ``shown`` tickets open (one
        statement for all of them)."""
        from itsm_tui.services import presence, queue

        app = self.app
        with app.db.read_session() as session:
            fingerprint = queue.newest_change(session)
            viewers = presence.viewers(session, "ticket", shown, app.console_id, app.clock()) if shown else {}
        app.call_from_thread(self._changed, previous, fingerprint, viewers)

    def _changed(
        self, previous: tuple | None, fingerprint: tuple, viewers: dict[int, tuple[Viewer, ...]] | None = None
    ) -> None:
        if viewers is not None:
            self.table.show_presence(viewers)
        if previous != self.fingerprint:
            return  # a reload took a newer fingerprint meanwhile
        self.fingerprint = fingerprint
        now = self.app.clock().timestamp()
        if previous is not None and fingerprint != previous:
            self.reload(keep_cursor=True)
            self.last_full_refresh = now
        elif now - self.last_full_refresh > 30:  # SLA time left moves on by itself
            self.last_full_refresh = now
            self.table.now = self.app.clock()
            self.table.redraw()

    # ------------------------------------------------------------------ keys

    def show_filtered(self, view: str, text: str) -> None:
        """Show a view with a filter typed in (used by other screens, e.g. a KPI figure)."""
        self.view_key = view
        self.sort = self.descending = None
        self.query_one("#queue-filter", Input).value = text  # the change event applies it
        if self.query_state is not None and text == "" and self.filter == Filter():
            self.reload()

    def action_view(self, view: str) -> None:
        self.view_key = view
        self.sort = self.descending = None
        self.reload()

    def action_next_view(self) -> None:
        keys = list(VIEWS)
        self.action_view(keys[(keys.index(self.view_key) + 1) % len(keys)])

    def action_sort(self, step: int) -> None:
        keys = [c.key for c in self.table.columns if sort_offered(self.view_key, c.key)]
        if not keys:  # none of the columns shown is a sort this view offers
            return
        current = self.query_state.sort if self.query_state else "sla"
        position = keys.index(current) if current in keys else -1
        self.sort = keys[(position + step) % len(keys)]
        self.descending = False
        self.reload(keep_cursor=True)

    def action_reverse(self) -> None:
        query = self.query_state
        self.sort = query.sort if query else None
        self.descending = not (query.descending if query else False)
        self.reload(keep_cursor=True)

    def action_filter(self) -> None:
        not_while_typing(self)
        focus_now(self, self.query_one("#queue-filter", Input))

    @on(Input.Changed, "#queue-filter")
    def filter_changed(self, event: Input.Changed) -> None:
        """Apply the filter as it is typed; one the queue cannot apply is refused beside it (see
        :meth:`_refuse_filter`). Logins are looked up by the query's worker before it reads a row."""
        try:
            flt = parse_filter(event.value, self.app.actor, self.app.config)
        except FilterError as exc:
            self._refuse_filter(event.value, exc)
            return
        self.filter, self.filter_text = flt, event.value
        if not any(a.lower() != "none" for a in flt.assignees):  # nothing left to look up
            self._filter_good()
        self.reload()

    def _filter_good(self) -> None:
        """The applied filter is good: remember it, and clear the error once it is what the input says."""
        self.good_filter, self.good_text = self.filter, self.filter_text
        if self.query_one("#queue-filter", Input).value == self.filter_text:
            self.query_one("#queue-error", Static).remove_class("shown")

    def _assignee_refused(self, generation: int, error: FilterError) -> None:
        if generation == self.generation:  # else a newer filter is being read (and looked up) already
            self._refuse_filter(self.query_one("#queue-filter", Input).value, error)

    def _refuse_filter(self, typed: str, error: FilterError) -> None:
        """Say beside the filter why ``typed`` cannot be applied, and keep showing the last good filter:
        nothing of the refused text is applied (see :func:`settled_filter_text`)."""
        line = self.query_one("#queue-error", Static)
        line.update(Text(strip_control(str(error), single_line=True)))
        line.add_class("shown")
        settled = settled_filter_text(self.good_text, typed)
        if settled != self.good_text:
            self.good_filter, self.good_text = parse_filter(settled, self.app.actor, self.app.config), settled
        changed = self.filter != self.good_filter
        self.filter, self.filter_text = self.good_filter, self.good_text
        if changed:
            self.reload()

    @on(Input.Submitted, "#queue-filter")
    def filter_done(self) -> None:
        self.table.focus()

    def action_clear_marks(self) -> None:
        """Esc: out of the filter back to the table first; on the table, the marks are cleared."""
        if self.query_one("#queue-filter", Input).has_focus:
            focus_now(self, self.table)
            return
        not_while_typing(self)  # in the : line, the line's own Esc closes it
        if self.table.marks:
            self.table.marks.clear()
            self._marks_changed()

    def on_resize(self) -> None:
        if self.query_state is not None:
            self._show_header(self.query_state)
            self.table.refresh()

    # ------------------------------------------------------------------ what the role may do

    def role_refusal(self, action: str) -> str | None:
        """Why the user's roles never allow the queue's ``action`` on any ticket (None: they may on some):
        the ticket guards' answer (``tickets.role_actions``), the permission to create for a new ticket."""
        if action == "new_ticket":
            from itsm_tui.services.access import PermissionDenied, require

            try:
                require(self.app.actor.roles, "ticket.create")
            except PermissionDenied as refusal:
                return str(refusal)
            return None
        guarded = QUEUE_GUARDED.get(action)
        if guarded is None:
            return None
        if self._role_actions is None:
            from itsm_tui.services import tickets

            self._role_actions = tickets.role_actions(self.app.actor)
        return self._role_actions.get(guarded)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """An action the user's role may never take is not offered: not in the footer, the palette or the
        key help (its key says why)."""
        if self.role_refusal(action) is not None:
            return False
        if self.is_active and typing(self):  # typed into the filter or the : line: not in the footer
            if action in TYPED_IN:  # (the palette, over the queue, still offers it)
                return False
            if action == "clear_marks" and not self.query_one("#queue-filter", Input).has_focus:
                return False  # the : line's own Esc closes it
        return super().check_action(action, parameters)

    def on_key(self, event: events.Key) -> None:
        """The key of an action the role may never take says why instead of doing nothing."""
        if isinstance(self.focused, Input):
            return  # typed into the filter (or the command line)
        keys = getattr(self.app, "keys", NO_KEYS)
        for binding in declared_bindings(type(self)):
            if event.key in keys.keys_of(binding) and (reason := self.role_refusal(binding.action)):
                event.stop()
                event.prevent_default()
                self.app.notify(reason, title="Not available", severity="warning", markup=False)
                return

    # ------------------------------------------------------------------ actions on the selected ticket

    def _selected(self) -> QueueRow | None:
        row = self.table.current
        if row is None:
            self.app.notify("No ticket selected.", markup=False)
        return row

    def action_open(self) -> None:
        if self.query_one("#queue-filter", Input).has_focus:
            return
        row = self._selected()
        if row is not None:
            self.app.open_ticket(row.id)

    def action_take(self) -> None:
        if self.table.marks:
            self.prepare_bulk("take", list(self.table.marks))
            return
        row = self._selected()
        if row is not None:
            self.take(row.ref)

    @work(thread=True, group="queue-action", exit_on_error=False)
    def take(self, ref: str) -> None:
        """Take the ticket if nobody has it yet. A take that came too late (the row showed it free, someone
        took it a moment before) says who has it, and the rows are read again so that the row shows it."""
        from itsm_tui.services import tickets

        try:
            with self.app.db.session() as session:
                tickets.take(session, self.app.config, self.app.actor, ref)
        except ServiceError as exc:  # refused: say why; nothing was written
            message = strip_control(str(exc))
            self.app.call_from_thread(
                self.app.notify, message, title="Not taken", severity="error", markup=False
            )
        else:
            self.app.call_from_thread(self.app.notify, f"{ref} is yours.", markup=False)
        self.app.call_from_thread(self.reload, True)

    def action_take_next(self) -> None:
        self.take_next()

    @work(thread=True, group="queue-action", exit_on_error=False)
    def take_next(self) -> None:
        """Take the most urgent unassigned ticket of the user's groups (whichever row the cursor is on) and
        open it. Someone pressing at the same moment gets another ticket; none left says where it looked."""
        from itsm_tui.services import tickets

        try:
            with self.app.db.session() as session:
                taken = tickets.take_next(session, self.app.config, self.app.actor)
                ticket_id, ref = taken.id, taken.ref
        except ServiceError as exc:  # refused: say why; nothing was written
            message = strip_control(str(exc))
            self.app.call_from_thread(
                self.app.notify, message, title="Nothing taken", severity="error", markup=False
            )
            return
        self.app.call_from_thread(self.app.notify, f"{ref} is yours.", markup=False)
        self.app.call_from_thread(self.app.open_ticket, ticket_id)

    def action_assign(self) -> None:
        self._open_with("assign")

    def action_escalate(self) -> None:
        self._open_with("escalate")

    def action_status(self) -> None:
        self._open_with("status")

    def action_reply(self) -> None:
        self._open_with("reply")

    def action_note(self) -> None:
        self._open_with("note")

    def action_link(self) -> None:
        self._open_with("link")

    def _open_with(self, action: str) -> None:
        """The action's form: over the marked tickets when there are marks, else on the ticket under the
        cursor, which opens with that form."""
        if self.table.marks:
            self.prepare_bulk(action, list(self.table.marks))
            return
        row = self._selected()
        if row is not None:
            self.app.open_ticket(row.id, action=action)

    # ------------------------------------------------------------------ marks and actions over them

    def marked_refs(self) -> list[str]:
        """The marked tickets' references in the queue's order: those of the rows read first, in the order
        they stand, then the others in the order they were marked."""
        table, window = self.table, self.table.window
        marks = table.marks
        known = {mark_id: window.index_of(mark_id) for mark_id in marks} if window is not None else {}
        order = sorted(
            enumerate(marks.items()),
            key=lambda item: (known.get(item[1][0]) is None, known.get(item[1][0]) or 0, item[0]),
        )
        return [ref for _, (_, ref) in order]

    def unmark(self, refs: Iterable[str]) -> None:
        """Take the marks off these tickets (those an action over the marks did)."""
        gone = set(refs)
        marks = self.table.marks
        for mark_id in [mark_id for mark_id, ref in marks.items() if ref in gone]:
            del marks[mark_id]
        self._marks_changed()

    def action_mark(self) -> None:
        """Mark the row under the cursor (or unmark it), and go down to the next one."""
        table = self.table
        row = self._selected()
        if row is None:
            return
        if table.marks.pop(row.id, None) is None:
            table.marks[row.id] = row.ref
        table.action_cursor(1)
        self._marks_changed()

    def action_mark_all(self) -> None:
        """Mark every ticket of the view and filter shown, up to MARK_LIMIT of them."""
        query, window = self.query_state, self.table.window
        if query is None:
            return
        total = window.total if window is not None else None
        if total is not None and total > MARK_LIMIT:
            self._too_many_to_mark(total)
            return
        self.read_marks(query)

    def _too_many_to_mark(self, total: int | None) -> None:
        held = f"{total:,}" if total is not None else f"more than {MARK_LIMIT}"
        self.app.notify(
            f"This view holds {held} tickets; * marks at most {MARK_LIMIT}. Narrow the filter first.",
            title="Not marked",
            severity="warning",
            markup=False,
        )

    @work(thread=True, group="queue-marks", exclusive=True, exit_on_error=False)
    def read_marks(self, query: QueueQuery) -> None:
        """The ids of the query's tickets, in its order: its first page, one more than may be marked."""
        from itsm_tui.services import queue

        with self.app.db.read_session() as session:
            rows = queue.fetch_page(session, query, limit=MARK_LIMIT + 1)
        self.app.call_from_thread(self._mark_rows, [(row.id, row.ref) for row in rows])

    def _mark_rows(self, rows: list[tuple[int, str]]) -> None:
        if len(rows) > MARK_LIMIT:
            self._too_many_to_mark(None)
            return
        if len(self.table.marks.keys() | dict(rows).keys()) > MARK_LIMIT:
            self.app.notify(
                f"With the marks there are already, that would be more than {MARK_LIMIT}; Esc clears them.",
                title="Not marked",
                severity="warning",
                markup=False,
            )
            return
        self.table.marks.update(rows)
        self._marks_changed()
        self.app.notify(f"{len(rows):,} marked: every ticket of this view.", markup=False)

    def _marks_changed(self) -> None:
        """Draw the marks anew, and their count in the bar."""
        window = self.table.window
        self.table.redraw()
        self._show_bar(window.total if window is not None else None)

    @work(thread=True, group="queue-bulk-start", exclusive=True, exit_on_error=False)
    def prepare_bulk(self, action: str, ids: list[int]) -> None:
        """Read the marked tickets as they stand now (their versions, what their guards look at), then
        begin the action over them (its form, the confirmation)."""
        from itsm_tui.services.tickets import bulk

        with self.app.db.read_session() as session:
            marked = bulk.marked_tickets(session, ids)
        self.app.call_from_thread(self._begin_bulk, action, marked)

    def _begin_bulk(self, action: str, marked: list[MarkedTicket]) -> None:
        from itsm_tui.screens import bulk

        order = {ref: index for index, ref in enumerate(self.marked_refs())}
        marked = sorted(marked, key=lambda ticket: order.get(ticket.ref, len(order)))
        bulk.start(self.app, action, marked, self._run_bulk)

    def _run_bulk(self, refs: list[str], action: BulkAction, doing: str) -> None:
        self.app.notify(f"{doing} {len(refs):,} ...", markup=False, timeout=max(2.0, len(refs) / 25))
        self.run_bulk(refs, action)

    @work(thread=True, group="queue-bulk", exit_on_error=False)
    def run_bulk(self, refs: list[str], action: BulkAction) -> None:
        """Apply the action to each ticket, each in its own transaction; say what was done and refused."""
        from itsm_tui.services import tickets

        try:
            result = tickets.apply_each(self.app.db.session, refs, action)
        except BulkStopped as stopped:  # the database failed: what was done stays done, and is said
            self.app.call_from_thread(self._bulk_done, stopped.result, stopped)
            raise (stopped.__cause__ or stopped) from None  # to the console's handler (logged, status line)
        self.app.call_from_thread(self._bulk_done, result, None)

    def _bulk_done(self, result: BulkResult, stopped: BulkStopped | None) -> None:
        """The tickets done are unmarked (those refused stay marked), and one line says how it went."""
        self.unmark(result.done)
        line = result.summary
        if stopped is not None:
            line += f"; stopped at {stopped.ref}, {len(stopped.not_tried):,} not tried"
        failed = bool(result.refused) or stopped is not None
        self.last_bulk_summary = line
        self.app.notify(line, severity="warning" if failed else "information", markup=False, timeout=10)
        self.reload(keep_cursor=True)

    async def action_new_ticket(self) -> None:
        not_while_typing(self)
        self.app.new_ticket()
        await until_shown(self.app)

    async def action_goto(self) -> None:
        """Ask for a ticket's reference (``INC0000042``, ``inc42``, ``42``) and open it."""
        from itsm_tui.screens.goto import ask_and_open

        not_while_typing(self)
        ask_and_open(self.app)
        await until_shown(self.app)

    def action_workload(self) -> None:
        self.app.switch_mode("workload")

    # ------------------------------------------------------------------ the : command line

    def action_command(self) -> None:
        self.query_one(CommandLine).open()

    def command_target(self) -> Target:
        """The marked tickets if there are any (unmarked as they are done), else the row under the cursor."""
        marked = self.marked_refs()
        if marked:
            return Target(tuple(marked), marked_done=self._bulk_done)
        row = self.table.current
        return Target((row.ref,) if row is not None else ())

    def command_refs(self) -> list[str]:
        """The references on screen, the cursor's first (offered by the command line's completion)."""
        table, window = self.table, self.table.window
        if window is None:
            return []
        top = int(table.scroll_offset.y)
        rows = [table.current, *(window.row(i) for i in range(top, top + max(1, table.size.height)))]
        return [row.ref for row in rows if row is not None]

    def command_done(self, stale: object = None) -> None:
        self.reload(keep_cursor=True)

    def command_view(self, key: str, saved: ViewInfo | None) -> None:
        if saved is None:
            self.action_view(key)
        else:  # its view, filter and sort, as its key applies it
            self.apply_saved_view(saved)

    def on_screen_suspend(self) -> None:
        self.suspended = True

    def on_screen_resume(self) -> None:
        """Back from another screen (a ticket, the calendar): show what changed meanwhile."""
        if self.suspended:
            self.suspended = False
            self.reload(keep_cursor=True)
