"""Change calendar screen: changes planned in the next two weeks."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from itsm_tui.services.changes import ChangeRow
from screens.common import DeskScreen, literal, local_time


class CalendarScreen(DeskScreen):
    SCREEN_TITLE = "Changes, next 14 days"
    BINDINGS = [Binding("r", "reload", "Reload", id="calendar.reload")]

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        table = DataTable(id="calendar-table", cursor_type="row")
        table.add_columns("Start", "End", "Ref", "Type", "State", "Services", "Title")
        yield table
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="calendar")
    def load(self) -> None:
        from itsm_tui.services import changes

        with self.app.db.read_session() as session:
            rows = changes.upcoming(session, self.app.clock(), days=14)
        self.app.call_from_thread(self.show, rows)

    def show(self, rows: list[ChangeRow]) -> None:
        tz = self.app.actor.timezone
        table = self.query_one(DataTable)
        table.clear()
        for row in rows:
            table.add_row(
                local_time(row.planned_start, tz),
                local_time(row.planned_end, tz, "%H:%M"),
                row.ref,
                row.change_type,
                row.state,
                ",".join(row.services),
                literal(row.title),
            )
