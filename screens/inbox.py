"""Inbox screen: the user's notifications, newest first; mark one or all read."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from itsm_tui.services.notifications import NotificationRow
from screens.common import DeskScreen, literal, local_time


class InboxScreen(DeskScreen):
    SCREEN_TITLE = "Inbox"
    BINDINGS = [
        Binding("m", "mark_read", "Mark read", id="inbox.mark_read"),
        Binding("M", "mark_all_read", "Mark all read", id="inbox.mark_all_read"),
        Binding("r", "reload", "Reload", id="inbox.reload"),
    ]

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        table = DataTable(id="inbox-table", cursor_type="row")
        table.add_columns("", "When", "Kind", "Message")
        yield table
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="inbox")
    def load(self) -> None:
        from itsm_tui.services import notifications

        with self.app.db.read_session() as session:
            rows = notifications.list_for(session, self.app.actor.id)
        self.app.call_from_thread(self.show, rows)

    def show(self, rows: list[NotificationRow]) -> None:
        tz = self.app.actor.timezone
        table = self.query_one(DataTable)
        table.clear()
        for row in rows:
            table.add_row(
                Text("" if row.read else "*", style="bold"),
                local_time(row.created_at, tz),
                row.kind,
                literal(row.message),
                key=str(row.id),
            )

    def action_mark_read(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.mark(int(key))

    def action_mark_all_read(self) -> None:
        self.mark(None)

    @work(thread=True, exclusive=True, group="inbox")
    def mark(self, notification_id: int | None) -> None:
        from itsm_tui.services import notifications

        with self.app.db.session() as session:
            notifications.mark_read(session, self.app.actor.id, notification_id)
            rows = notifications.list_for(session, self.app.actor.id)
        self.app.call_from_thread(self.show, rows)
