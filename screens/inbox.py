"""Inbox screen: the user's notifications, newest first, the highlighted one in full below them; mark one or
all read."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from itsm_tui.screens.common import DeskScreen, literal, local_time
from itsm_tui.services.notifications import NotificationRow
from itsm_tui.text import strip_control


class InboxScreen(DeskScreen):
    CSS_PATH = [Path(__file__).resolve().with_name("inbox.tcss")]
    SCREEN_TITLE = "Inbox"
    BINDINGS = [
        Binding("enter", "open", "Open", id="inbox.open"),
        Binding("m", "mark_read", "Mark read", id="inbox.mark_read"),
        Binding("M", "mark_all_read", "Mark all read", id="inbox.mark_all_read"),
        Binding("r", "reload", "Reload", id="inbox.reload"),
    ]

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        table: DataTable[object] = DataTable(id="inbox-table", cursor_type="row")
        table.add_columns("", "When", "Kind", "Message")
        yield table
        yield Static("", id="inbox-detail")  # the highlighted notification, whole (a row may be cut)
        yield from self.compose_footer()

    suspended = False  # another screen is shown over this one

    def on_mount(self) -> None:
        self.action_reload()

    def on_screen_suspend(self) -> None:
        self.suspended = True

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="inbox", exit_on_error=False)
    def load(self) -> None:
        from itsm_tui.services import notifications

        with self.app.db.read_session() as session:
            rows = notifications.list_for(session, self.app.actor.id)
        self.app.call_from_thread(self.show, rows)

    def on_screen_resume(self) -> None:
        if self.suspended:  # back from another screen; the first showing was loaded on mount
            self.suspended = False
            self.action_reload()

    def show(self, rows: list[NotificationRow]) -> None:
        self.rows = {str(row.id): row for row in rows}
        tz = self.app.actor.timezone
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        # The message gets what the other columns leave of the width (each cell is padded by one a side,
        # the scroll bar takes two): a longer one ends in an ellipsis, and the line below shows it whole.
        kind_width = max((len(row.kind) for row in rows), default=4)
        room = max(10, (self.size.width or self.app.size.width) - (1 + 11 + kind_width) - 4 * 2 - 2)
        for row in rows:
            message = literal(row.message)
            message.truncate(room, overflow="ellipsis")
            table.add_row(
                Text("" if row.read else "*", style="bold"),
                local_time(row.created_at, tz, "%m-%d %H:%M"),
                row.kind,
                message,
                key=str(row.id),
            )
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))
        self.show_detail()

    def on_resize(self) -> None:
        if getattr(self, "rows", None):
            self.show(list(self.rows.values()))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.show_detail()

    def show_detail(self) -> None:
        """The highlighted notification in full: its whole message, when, what and whether read."""
        row = self._selected()
        detail = self.query_one("#inbox-detail", Static)
        if row is None:
            detail.update(Text("No notifications."))
            return
        line = Text(strip_control(row.message, single_line=True), style="bold")
        when = local_time(row.created_at, self.app.actor.timezone, "%Y-%m-%d %H:%M %Z")
        line.append(f"\n{row.kind}, {when}")
        line.append(", read" if row.read else ", unread")
        detail.update(line)

    def _selected(self) -> NotificationRow | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.rows.get(key) if key is not None else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        """Open the record the notification is about (and mark it read)."""
        row = self._selected()
        if row is None:
            return
        if not row.read:
            self.mark(row.id)
        if row.entity_type == "ticket" and row.entity_id is not None:
            self.app.open_ticket(row.entity_id)
        elif row.entity_type == "change" and row.entity_id is not None:
            self.app.open_change(row.entity_id)
        elif row.entity_type in ("problem", "article") and row.entity_id is not None:
            self.app.open_record(row.entity_type, row.entity_id)
        else:
            self.app.notify("This notification has no record to open.", markup=False)

    def action_mark_read(self) -> None:
        row = self._selected()
        if row is not None:
            self.mark(row.id)

    def action_mark_all_read(self) -> None:
        self.mark(None)

    @work(thread=True, exclusive=True, group="inbox", exit_on_error=False)
    def mark(self, notification_id: int | None) -> None:
        from itsm_tui.services import notifications

        with self.app.db.session() as session:
            notifications.mark_read(session, self.app.actor.id, notification_id)
            rows = notifications.list_for(session, self.app.actor.id)
            unread = notifications.unread_count(session, self.app.actor.id)
        self.app.call_from_thread(self.show, rows)
        self.app.call_from_thread(setattr, self.app, "unread", unread)
