"""Queue screen: open tickets, most urgent first (SLA time left on the resolution target)."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from itsm_tui.services.tickets import TicketRow
from screens.common import DeskScreen, literal

QUEUE_LIMIT = 200


def format_left(due: datetime | None, now: datetime) -> Text:
    """Wall time left until ``due``, red when overdue."""
    if due is None:
        return Text("-")
    seconds = (due - now).total_seconds()
    sign = "-" if seconds < 0 else ""
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    text = f"{sign}{days}d{hours:02d}h" if days else f"{sign}{hours}h{mins:02d}m"
    style = "bold red" if seconds < 0 else ("yellow" if seconds < 3600 else "green")
    return Text(text, style=style)


class QueueScreen(DeskScreen):
    SCREEN_TITLE = "Queue"
    BINDINGS = [Binding("r", "reload", "Reload", id="queue.reload")]

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        yield Static("", id="queue-summary")
        table = DataTable(id="queue-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("Ref", "P", "SLA left", "Status", "Group", "Assignee", "Title")
        yield table
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.query_one("#queue-summary", Static).update("Loading ...")
        self.load()

    @work(thread=True, exclusive=True, group="queue")
    def load(self) -> None:
        from itsm_tui.services import tickets

        with self.app.db.read_session() as session:
            rows = tickets.most_urgent(session, limit=QUEUE_LIMIT)
        self.app.call_from_thread(self.show, rows)

    def show(self, rows: list[TicketRow]) -> None:
        now = datetime.now(UTC)
        table = self.query_one(DataTable)
        table.clear()
        for row in rows:
            table.add_row(
                row.ref,
                f"P{row.priority}",
                format_left(row.resolution_due_at, now),
                row.status,
                row.group or "",
                literal(row.assignee or ""),
                literal(row.title),
                key=row.ref,
            )
        self.query_one("#queue-summary", Static).update(
            Text(f"All open, most urgent first: the {len(rows)} due soonest (overdue on top)")
        )
