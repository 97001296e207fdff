"""A small table of records drawn line by line: a header line, one line per row, a cursor.

For lists that are read whole (a few hundred rows at most: problems, candidates, articles), where the queue's
paged table would be too much. The screen gives the columns and the rows, and says how a row's cell reads
(``cell(row, key) -> (text, style)``); the table fits the columns to its width (:func:`fit_columns`: the
lowest ``rank`` kept longest, the flexible column keeping ``FLEX_MIN`` cells), draws only the lines on
screen and redraws two lines when the cursor moves. Text in cells is stripped of control characters and
never read as markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from itsm_tui.text import strip_control

RowT = TypeVar("RowT")
Cell = tuple[str, str]  # text, style name ("" for none)
FLEX_MIN = 20  # cells the flexible column keeps: columns past what fits beside it are left out
HEADER_STYLE = Style(bold=True, underline=True)


@dataclass(frozen=True)
class TableColumn:
    key: str
    title: str
    width: int  # 0: the flexible column, which takes the rest of the line (one per table)
    rank: int = 0  # which columns go first when the line is too narrow: the highest rank first
    align: str = "left"  # or "right"


def fit_columns(columns: Sequence[TableColumn], width: int, flex_min: int = FLEX_MIN) -> list[TableColumn]:
    """The columns that fit in ``width`` cells, in their own order: by rank (lowest first, then in order)
    each fixed column is kept while the flexible one keeps ``flex_min`` cells beside those kept (one space
    between columns, one cell at the start of the line); the first column by rank always shows."""
    flexible = [column for column in columns if not column.width]
    fixed = sorted((c for c in columns if c.width), key=lambda c: (c.rank, columns.index(c)))
    room = width - 1 - (flex_min + 1 if flexible else 0)
    kept: set[str] = set()
    for column in fixed:
        if kept and column.width + 1 > room:
            break
        kept.add(column.key)
        room -= column.width + 1
    return [column for column in columns if not column.width or column.key in kept]


def fit(text: str, width: int, align: str = "left") -> str:
    """``text`` cut (with an ellipsis) or padded to exactly ``width`` cells."""
    if width <= 0:
        return ""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…"
    if align == "right":
        return " " * (width - cell_len(text)) + text
    return set_cell_size(text, width)


class RecordTable(ScrollView, Generic[RowT], can_focus=True):
    """Rows of records under a header line, with a cursor (what Enter opens is the screen's binding)."""

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="records.up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="records.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="records.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="records.page_down"),
        Binding("home", "jump(0)", "First", show=False, id="records.first"),
        Binding("end", "jump(-1)", "Last", show=False, id="records.last"),
    ]
    DEFAULT_CSS = "RecordTable { height: 1fr; overflow-x: hidden; scrollbar-size-vertical: 1; }"
    cursor = reactive(0, always_update=True)

    def __init__(self, *, empty: str = "Nothing to show.", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rows: list[RowT] = []
        self.columns: list[TableColumn] = []
        self.shown_columns: list[TableColumn] = []
        self.empty = empty
        self._cell: Callable[[RowT, str], Cell] = lambda row, key: ("", "")
        self._styles: dict[tuple[str, Style], Style] = {}
        self._fitted_width = -1
        self.flex_min = FLEX_MIN

    # ------------------------------------------------------------------ data

    def show_rows(
        self,
        columns: Sequence[TableColumn],
        rows: Sequence[RowT],
        cell: Callable[[RowT, str], Cell],
        *,
        keep: Callable[[RowT], object] | None = None,
        empty: str | None = None,
        flex_min: int = FLEX_MIN,
    ) -> None:
        """Show ``rows`` in ``columns``; the cursor goes to the first row, or with ``keep`` (a row's key)
        stays on the row of the same key if it is still there (the columns unchanged). ``flex_min``: the
        cells the flexible column keeps (see :func:`fit_columns`)."""
        same = list(columns) == self.columns  # the same kind of rows: the cursor may stay on its row
        kept_key = keep(self.current) if keep is not None and same and self.current is not None else None
        self.columns = list(columns)
        self.rows = list(rows)
        self._cell = cell
        self.flex_min = flex_min
        if empty is not None:
            self.empty = empty
        self._fitted_width = -1
        cursor = 0
        if keep is not None and kept_key is not None:
            cursor = next((i for i, row in enumerate(self.rows) if keep(row) == kept_key), 0)
        self.virtual_size = Size(self.size.width, len(self.rows) + 1)
        self.set_reactive(RecordTable.cursor, min(cursor, max(0, len(self.rows) - 1)))
        self.scroll_to(
            y=max(0, self.cursor - max(1, self.size.height - 1) + 1), animate=False, immediate=True
        )
        self.refresh()

    @property
    def current(self) -> RowT | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def _fitted(self, width: int) -> list[TableColumn]:
        if width != self._fitted_width:
            self._fitted_width = width
            self.shown_columns = fit_columns(self.columns, width, self.flex_min)
        return self.shown_columns

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows) + 1)
        self.refresh()

    # ------------------------------------------------------------------ moving

    @property
    def _body_height(self) -> int:
        return max(1, self.size.height - 1)  # the header line stays on top

    def watch_cursor(self, old: int, cursor: int) -> None:
        top = int(self.scroll_offset.y)
        if cursor < top:
            self.scroll_to(y=cursor, animate=False, immediate=True)
        elif cursor >= top + self._body_height:
            self.scroll_to(y=cursor - self._body_height + 1, animate=False, immediate=True)
        self.refresh()

    def action_cursor(self, delta: int) -> None:
        if self.rows:
            self.cursor = min(max(0, self.cursor + delta), len(self.rows) - 1)

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self._body_height - 1))

    def action_jump(self, where: int) -> None:
        if self.rows:
            self.cursor = 0 if where == 0 else len(self.rows) - 1

    # ------------------------------------------------------------------ drawing

    def _style(self, name: str, base: Style) -> Style:
        key = (name, base)
        style = self._styles.get(key)
        if style is None:
            style = self._styles[key] = (Style.parse(name) if name else Style()) + base
        return style

    def _line(self, cells: list[tuple[str, str, TableColumn]], base: Style, width: int) -> Strip:
        segments = [Segment(" ", base)]
        used = 1
        for index, (text, style, column) in enumerate(cells):
            cell_width = column.width or max(
                1, width - used - sum(c.width + 1 for _, _, c in cells[index + 1 :])
            )
            segments.append(Segment(fit(text, cell_width, column.align), self._style(style, base)))
            used += cell_width
            if used >= width:
                break
            segments.append(Segment(" ", base))
            used += 1
        return Strip(segments, used).crop(0, width).extend_cell_length(width, base)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        columns = self._fitted(width)
        if y == 0:
            return self._line([(c.title, "", c) for c in columns], HEADER_STYLE, width)
        index = int(self.scroll_offset.y) + y - 1
        if not self.rows:
            if y == 1:
                return Strip([Segment(fit(" " + self.empty, width), Style(dim=True))], width)
            return Strip.blank(width, self.rich_style)
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        row = self.rows[index]
        selected = index == self.cursor
        base = (
            Style(reverse=True)
            if selected and self.has_focus
            else Style(bgcolor="grey23")
            if selected
            else Style()
        )
        cells = []
        for column in columns:
            text, style = self._cell(row, column.key)
            cells.append((strip_control(text or "", single_line=True), style, column))
        return self._line(cells, base, width)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
