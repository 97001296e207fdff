"""Workload screen: the open tickets by assignee (or by group), counted by priority and SLA state.

One row per person holding open tickets (the unassigned ones first, as a row of their own), or per group;
``Enter`` opens the queue on that row's tickets, filtered as the queue's own filter would
(``assignee:LOGIN``, ``assignee:none``, ``group:CODE``). The figures are read again every few seconds while
the screen shows, one GROUP BY at a time (the next read is set only once the last one is shown).
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.timer import Timer
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from itsm_tui.screens.common import DeskScreen, literal
from itsm_tui.services.workload import SLA_STATES, Workload, WorkloadRow

REFRESH_SECONDS = 10.0
PRIORITY_STYLES = {1: "bold red", 2: "red", 3: "yellow", 4: "", 5: "dim"}
STATE_TITLES = {"ok": "ok", "warning": "warn", "breached": "brch", "paused": "paus"}
STATE_STYLES = {"ok": "green", "warning": "yellow", "breached": "bold red", "paused": "cyan"}
TITLES = {"assignee": "By assignee", "group": "By group"}
NAME_WIDTH = 36  # at most: the login and the name; the counts stay near them on a wide terminal


def desk_priorities(priority_matrix: dict[str, dict[str, int]]) -> list[int]:
    """The priorities the desk's impact x urgency matrix gives (P1..P5 by default), in order."""
    return sorted({p for row in priority_matrix.values() for p in row.values()})


class WorkloadScreen(DeskScreen):
    SCREEN_TITLE = "Workload"
    AUTO_FOCUS = "#workload-table"
    CSS_PATH = Path(__file__).resolve().with_name("workload.tcss")
    BINDINGS = [
        Binding("enter,o", "drill", "Their queue", id="workload.open"),
        Binding("g", "switch_grouping", "By group/assignee", id="workload.toggle"),
        Binding("r", "reload", "Reload", id="workload.reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.by = "assignee"
        self.shown: Workload | None = None  # the figures on screen (tests wait for them)
        self.rows: list[WorkloadRow] = []
        self.suspended = False
        self._generation = 0
        self._timer: Timer | None = None  # the next read of the figures

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        yield Static("", id="workload-bar")
        yield DataTable(id="workload-table", cursor_type="row", zebra_stripes=False)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.priorities = desk_priorities(self.app.config.priority_matrix)
        self.load(self._generation, self.by)

    # ------------------------------------------------------------------ reading

    def action_reload(self) -> None:
        self._generation += 1
        self.load(self._generation, self.by)

    def action_switch_grouping(self) -> None:
        self.by = "group" if self.by == "assignee" else "assignee"
        self.shown = None
        self.action_reload()

    @work(thread=True, exclusive=True, group="workload", exit_on_error=False)
    def load(self, generation: int, by: str) -> None:
        from itsm_tui.services import workload

        with self.app.db.read_session() as session:
            figures = workload.workload(session, self.app.clock(), by)
        self.app.call_from_thread(self.show, generation, figures)

    def _poll(self) -> None:
        """The timer's read: only while this screen is the one shown (a form or a ticket over it waits)."""
        self._timer = None
        if self.app.screen is self and not self.suspended:
            self.load(self._generation, self.by)
        else:
            self._next_read(REFRESH_SECONDS)

    def _next_read(self, delay: float) -> None:
        """One timer at a time, whatever started reads meanwhile (a reload, a switch of grouping)."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(delay, self._poll)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A read that failed (the console's handler says why) is tried again at the next tick."""
        if event.state == WorkerState.ERROR and event.worker.group == "workload":
            self._next_read(REFRESH_SECONDS)
        super().on_worker_state_changed(event)

    def on_screen_suspend(self) -> None:
        self.suspended = True

    def on_screen_resume(self) -> None:
        if self.suspended:  # back from the queue or a ticket: what changed meanwhile
            self.suspended = False
            self.action_reload()

    # ------------------------------------------------------------------ showing

    def show(self, generation: int, figures: Workload) -> None:
        if generation == self._generation:
            self._next_read(REFRESH_SECONDS)  # once this one is shown
        if figures.by != self.by:
            return
        table = self.query_one(DataTable)
        keep = self._current_key()
        self.shown, self.rows = figures, figures.rows
        width = self.size.width or 80
        # Each column is padded by a cell on either side; a cell is left for the scroll bar.
        counts = (5 + 2) + (3 + 2) * len(self.priorities) + (4 + 2) * len(SLA_STATES)
        name_width = min(NAME_WIDTH, max(12, width - counts - 2 - 2))
        table.clear(columns=True)
        table.add_column("Assignee" if figures.by == "assignee" else "Group", width=name_width)
        table.add_column(Text("Open", justify="right"), width=5)
        for priority in self.priorities:
            table.add_column(Text(f"P{priority}", justify="right"), width=3)
        for state in SLA_STATES:
            table.add_column(Text(STATE_TITLES[state], justify="right", style=STATE_STYLES[state]), width=4)
        for index, row in enumerate(figures.rows):
            cells: list[Text] = [self._name_cell(row), Text(f"{row.total:,}", justify="right")]
            for priority in self.priorities:
                cells.append(_count(row.by_priority.get(priority, 0), PRIORITY_STYLES.get(priority, "")))
            for state in SLA_STATES:
                cells.append(_count(row.by_state.get(state, 0), STATE_STYLES[state]))
            table.add_row(*cells, key=str(index))
        if keep is not None:
            for index, row in enumerate(figures.rows):
                if (row.key, row.name) == keep:
                    table.move_cursor(row=index, animate=False)
                    break
        bar = Text()
        bar.append(TITLES[figures.by], style="bold")
        people = "people" if figures.by == "assignee" else "groups"
        held = sum(1 for row in figures.rows if row.key is not None)
        bar.append(f" ({figures.total:,} open, {held} {people})  [g] by ")
        bar.append("group" if figures.by == "assignee" else "assignee")
        bar.append("  [Enter] their queue")
        self.query_one("#workload-bar", Static).update(bar)

    def _name_cell(self, row: WorkloadRow) -> Text:
        if row.key is None:
            return Text(row.name, style="italic")
        if row.name == row.key:
            return literal(row.key)
        shown = literal(row.key)
        shown.append(" ")
        shown.append(literal(row.name, style="dim"))
        return shown

    def _current_key(self) -> tuple[str | None, str] | None:
        table = self.query_one(DataTable)
        if not self.rows or not table.row_count:
            return None
        row = self.rows[min(table.cursor_row, len(self.rows) - 1)]
        return row.key, row.name

    # ------------------------------------------------------------------ drilling in

    @property
    def current(self) -> WorkloadRow | None:
        table = self.query_one(DataTable)
        if not self.rows or not table.row_count:
            return None
        return self.rows[min(table.cursor_row, len(self.rows) - 1)]

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_drill()

    def action_drill(self) -> None:
        """Open the queue on the tickets of the row under the cursor (all open ones, filtered)."""
        row = self.current
        if row is None:
            self.app.notify("Nobody holds open tickets.", markup=False)
            return
        text = row.filter_text
        if text is None:
            self.app.notify("No queue filter picks out the tickets without a group.", markup=False)
            return
        self.app.open_queue("all_open", text)


def _count(value: int, style: str) -> Text:
    return Text(f"{value:,}" if value else "-", style=style if value else "dim", justify="right")
