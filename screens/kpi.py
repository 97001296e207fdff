"""KPI board screen: the live operational figures."""

from __future__ import annotations

from rich.table import Table
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from itsm_tui.services.kpi import OperationalSnapshot
from screens.common import DeskScreen


class KpiScreen(DeskScreen):
    SCREEN_TITLE = "KPI: operational"
    BINDINGS = [Binding("r", "reload", "Reload", id="kpi.reload")]

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        yield Static("Loading ...", id="kpi-body")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.action_reload()
        self.set_interval(30, self.action_reload)

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="kpi")
    def load(self) -> None:
        from itsm_tui.services import kpi

        with self.app.db.read_session() as session:
            snapshot = kpi.operational_snapshot(session, self.app.clock())
        self.app.call_from_thread(self.show, snapshot)

    def show(self, snapshot: OperationalSnapshot) -> None:
        table = Table(box=None, show_header=False, padding=(0, 2))
        table.add_column(justify="left")
        table.add_column(justify="right")
        table.add_row("Open tickets", f"{snapshot.open:,}")
        table.add_row("Unassigned", f"{snapshot.unassigned:,}")
        table.add_row("[red]Breached now[/red]", f"{snapshot.breached:,}")
        for priority in sorted(snapshot.by_priority):
            table.add_row(f"  open P{priority}", f"{snapshot.by_priority[priority]:,}")
        self.query_one("#kpi-body", Static).update(table)
