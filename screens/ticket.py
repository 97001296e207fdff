"""Ticket screen: the fields, both SLA clocks and the timeline of one ticket (read-only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from itsm_tui.services.tickets import TicketView, TimelineItem
from itsm_tui.text import strip_control
from screens.common import StatusLine, local_time

SLA_STYLE = {"ok": "green", "met": "green", "warning": "yellow", "breached": "bold red", "stopped": "dim"}


@dataclass
class TicketDetail:
    view: TicketView
    links: list[str]
    timeline: list[TimelineItem]


class TicketScreen(Screen):
    """One ticket. Escape goes back to where it was opened from."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="ticket.back"),
        Binding("r", "reload", "Reload", id="ticket.reload"),
    ]

    def __init__(self, ticket_id: int) -> None:
        super().__init__()
        self.ticket_id = ticket_id

    def compose(self) -> ComposeResult:
        yield StatusLine("Ticket")
        with VerticalScroll():
            yield Static("Loading ...", id="ticket-fields")
            yield Static("", id="ticket-timeline")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="ticket")
    def load(self) -> None:
        from itsm_tui.services import tickets

        with self.app.db.read_session() as session:
            ticket = tickets.find_ticket_by_id(session, self.ticket_id)
            detail = TicketDetail(
                tickets.view(session, ticket),
                tickets.links_of(session, ticket),
                tickets.timeline(session, ticket),
            )
        self.app.call_from_thread(self.show, detail)

    def show(self, detail: TicketDetail) -> None:
        view, tz = detail.view, self.app.actor.timezone
        now = datetime.now(UTC)
        fields = Table.grid(padding=(0, 2))
        fields.add_column(style="bold", no_wrap=True)
        fields.add_column()
        title = Text(f"{view.ref}  P{view.priority}  {view.status}", style="bold")
        if view.pending_reason:
            title.append(f" ({view.pending_reason})")
        fields.add_row("", title)
        fields.add_row("Title", Text(strip_control(view.title)))
        fields.add_row("Requester", Text(strip_control(view.requester)))
        fields.add_row("Kind / impact / urgency", f"{view.kind} / {view.impact} / {view.urgency}")
        fields.add_row(
            "Category / service / CI", f"{view.category or '-'} / {view.service or '-'} / {view.ci or '-'}"
        )
        fields.add_row("Group / assignee", f"{view.group or '-'} / {view.assignee or '-'}")
        fields.add_row("Opened", local_time(view.opened_at, tz))
        for label, state, due in (
            ("Response SLA", view.response_state, view.response_due_at),
            ("Resolution SLA", view.resolution_state, view.resolution_due_at),
        ):
            line = Text(state, style=SLA_STYLE.get(state, ""))
            line.append(f"  due {local_time(due, tz)}")
            if due and state in ("ok", "warning"):
                minutes = int((due - now).total_seconds() // 60)
                line.append(f"  ({minutes // 60}h{minutes % 60:02d}m wall clock left)")
            fields.add_row(label, line)
        if view.resolution_code:
            fields.add_row(
                "Resolution", Text(f"{view.resolution_code}: {strip_control(view.resolution_note)}")
            )
        if detail.links:
            fields.add_row("Links", ", ".join(detail.links))
        if view.description:
            fields.add_row("Description", Text(strip_control(view.description)))
        self.query_one("#ticket-fields", Static).update(fields)
        timeline = Table(title="Timeline (newest first)", title_justify="left", box=None, expand=True)
        timeline.add_column("When", no_wrap=True)
        timeline.add_column("What", no_wrap=True)
        timeline.add_column("Who", no_wrap=True)
        timeline.add_column("")
        for item in detail.timeline:
            timeline.add_row(
                local_time(item.at, tz),
                item.kind,
                Text(strip_control(item.by)),
                Text(strip_control(item.text)),
            )
        self.query_one("#ticket-timeline", Static).update(timeline)
