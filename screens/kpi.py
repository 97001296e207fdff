"""KPI board: operational (live), management (trends, with charts) and strategic (headline tiles) tabs.

Keys choose the period and the group; Enter on an operational figure opens the queue filtered to the
tickets behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from rich.console import Group as Renderables
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option
from textual_plotext import PlotextPlot

from itsm_tui.keymap import key_in_force
from itsm_tui.screens.common import DeskScreen, local_time
from itsm_tui.screens.kpi_changes import change_table
from itsm_tui.services.kpi import PERIODS, KpiReport, OperationalSnapshot, Period
from itsm_tui.services.problems.candidates import Candidate
from itsm_tui.text import strip_control

RAG_STYLES = {"green": "green", "amber": "yellow", "red": "red", "grey": "grey50"}
LIVE_SECONDS = 10
KPI_STYLES = Path(__file__).resolve().with_name("kpi.tcss")  # absolute: found from subclasses too


@dataclass
class BoardData:
    report: KpiReport
    live: OperationalSnapshot
    groups: list[str]
    candidates: list[Candidate] = field(default_factory=list)  # candidate problems now (problems.toml)


def _value(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
    return f"{text}{' ' + unit if unit and unit != '%' else unit}"


class CustomPeriod(ModalScreen[tuple[date, date] | None]):
    """Ask for a custom period (first and last day)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="period.cancel")]
    CSS_PATH = KPI_STYLES

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Custom period (UTC days, YYYY-MM-DD)")
            yield Input(placeholder="first day", id="period-from")
            yield Input(placeholder="last day (inclusive)", id="period-to")
            yield Static("", id="period-error")
            with Horizontal():
                yield Button("Show", id="period-ok", variant="primary")
                yield Button("Cancel", id="period-cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#period-ok")
    def submit(self) -> None:
        try:
            first = date.fromisoformat(self.query_one("#period-from", Input).value.strip())
            last = date.fromisoformat(self.query_one("#period-to", Input).value.strip())
        except ValueError:
            self.query_one("#period-error", Static).update("Write both days as YYYY-MM-DD.")
            return
        if last < first:
            self.query_one("#period-error", Static).update("The last day is before the first.")
            return
        self.dismiss((first, last))

    @on(Button.Pressed, "#period-cancel")
    def cancel(self) -> None:
        self.dismiss(None)


class Tile(Static):
    """A headline KPI: large value, target, change from the previous period; border in its RAG colour."""


class KpiScreen(DeskScreen):
    SCREEN_TITLE = "KPI board"
    BINDINGS = [
        Binding("t", "period('today')", "Today", id="kpi.today"),
        Binding("w", "period('7d')", "7 days", id="kpi.7d"),
        Binding("m", "period('30d')", "30 days", id="kpi.30d"),
        Binding("q", "period('quarter')", "Quarter", id="kpi.quarter"),
        Binding("c", "custom_period", "Custom", id="kpi.custom"),
        Binding("g", "next_group", "Group", id="kpi.group"),
        Binding("o", "tab('operational')", "Operational", show=False, id="kpi.tab.operational"),
        Binding("n", "tab('management')", "Management", show=False, id="kpi.tab.management"),
        Binding("s", "tab('strategic')", "Strategic", show=False, id="kpi.tab.strategic"),
        Binding("r", "reload", "Reload", show=False, id="kpi.reload"),
    ]
    CSS_PATH = KPI_STYLES

    def __init__(self) -> None:
        super().__init__()
        self.period_name = "30d"
        self.custom: tuple[date, date] | None = None
        self.group: str | None = None
        self.groups: list[str] = []
        self.data: BoardData | None = None
        self.loads = 0  # finished loads (tests wait on it)

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        yield Static("", id="kpi-bar")
        with TabbedContent(initial="operational"):
            with TabPane("Operational", id="operational"):
                yield OptionList(id="kpi-figures")
                yield Static("", id="kpi-live")
            with TabPane("Management", id="management"), VerticalScroll():
                yield Static("", id="kpi-summary")
                yield Static("", id="kpi-problems")
                yield Static("", id="kpi-changes")
                yield PlotextPlot(id="chart-volume", classes="chart")
                yield PlotextPlot(id="chart-aging", classes="chart")
                yield PlotextPlot(id="chart-sla", classes="chart")
                yield PlotextPlot(id="chart-mttr", classes="chart")
            with TabPane("Strategic", id="strategic"), VerticalScroll():
                yield Grid(id="kpi-tiles")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.query_one("#kpi-figures", OptionList).focus()  # where arrows and Enter work, not the tab bar
        self.action_reload()
        self.set_interval(LIVE_SECONDS, self.refresh_live)

    # ------------------------------------------------------------------ loading

    def _period(self) -> Period:
        from itsm_tui.services import kpi

        now = self.app.clock()
        if self.custom is not None:
            return kpi.custom_period(*self.custom, now)
        return kpi.period_for(self.period_name, now)

    def action_reload(self) -> None:
        period = self._period()
        self._bar(f"{period.label} ... loading")
        self.load(period, self.group)

    @work(thread=True, exclusive=True, group="kpi", exit_on_error=False)
    def load(self, period: Period, group: str | None) -> None:
        from sqlalchemy import select

        from itsm_tui.models import Group
        from itsm_tui.services import kpi
        from itsm_tui.services.problems import candidates

        with self.app.db.session() as session:  # refreshing the roll-up writes
            report = kpi.report(session, self.app.config, period, group, now=self.app.clock())
            live = kpi.operational_snapshot(session, self.app.clock(), group)
            groups = list(session.scalars(select(Group.code).order_by(Group.level, Group.code)))
            found = candidates.candidates(session, self.app.config, now=self.app.clock())
        self.app.call_from_thread(self.show, BoardData(report, live, groups, found))

    def refresh_live(self) -> None:
        if self.app.screen is self and self.data is not None:
            self.load_live(self.group)

    @work(thread=True, exclusive=True, group="kpi-live", exit_on_error=False)
    def load_live(self, group: str | None) -> None:
        from itsm_tui.services import kpi

        with self.app.db.read_session() as session:
            live = kpi.operational_snapshot(session, self.app.clock(), group)
        self.app.call_from_thread(self.show_live, live)

    def _bar(self, text: str) -> None:
        bar = Text()
        bar.append(text, style="bold")
        bar.append(f"  group: {self.group or 'all'}")
        for ids, what in (
            (("kpi.today", "kpi.7d", "kpi.30d", "kpi.quarter", "kpi.custom"), "period"),
            (("kpi.group",), "group"),
            (("kpi.tab.operational", "kpi.tab.management", "kpi.tab.strategic"), "tab"),
        ):
            keys = "/".join(key for key in (key_in_force(self, binding_id) for binding_id in ids) if key)
            if keys:  # the keys in force (the user's key file may move or unbind them)
                bar.append(f"  [{keys}] {what}")
        self.query_one("#kpi-bar", Static).update(bar)

    def show(self, data: BoardData) -> None:
        self.data = data
        self.groups = data.groups
        report = data.report
        tz = self.app.actor.timezone
        self._bar(
            f"{report.period.label} ({local_time(report.period.start, tz, '%m-%d')} to "
            f"{local_time(report.period.end, tz, '%m-%d %H:%M')})"
        )
        self.show_live(data.live)
        self._show_management(report)
        self._show_strategic(report)
        self.loads += 1

    # ------------------------------------------------------------------ operational

    def show_live(self, live: OperationalSnapshot) -> None:
        figures = self.query_one("#kpi-figures", OptionList)
        highlighted = figures.highlighted
        figures.clear_options()
        entries = [
            ("open", f"Open tickets                {live.open:>8,}"),
            ("unassigned", f"Unassigned                  {live.unassigned:>8,}"),
            ("breached", f"Breaching now (overdue)     {live.breached:>8,}"),
            ("soon", f"Breaching within the hour   {live.breaching_within_hour:>8,}"),
        ]
        entries += [
            (f"agent:{login}", f"  {strip_control(login):<25} {count:>8,}")
            for login, count in list(live.workload.items())[:8]
        ]
        for key, label in entries:
            figures.add_option(Option(Text(label), id=key))
        if entries:
            figures.highlighted = min(highlighted or 0, len(entries) - 1)
        table = Table(box=None, show_header=True, header_style="bold", padding=(0, 1))
        table.add_column("Oldest open")
        table.add_column("Opened")
        table.add_column("Title", no_wrap=True, overflow="ellipsis")
        for ref, title, opened in live.oldest:
            table.add_row(
                ref,
                local_time(opened, self.app.actor.timezone, "%Y-%m-%d"),
                Text(strip_control(title, single_line=True)),
            )
        ages = "  ".join(f"{label}: {count:,}" for label, count in live.by_age.items())
        priorities = "  ".join(f"P{p}: {n:,}" for p, n in sorted(live.by_priority.items()))
        body = Table.grid()
        body.add_row(Text(f"Backlog by age  {ages}"))
        body.add_row(Text(f"Open by priority  {priorities}"))
        body.add_row(table)
        self.query_one("#kpi-live", Static).update(body)

    @on(OptionList.OptionSelected, "#kpi-figures")
    def open_figure(self, event: OptionList.OptionSelected) -> None:
        """Open the queue on the tickets behind the figure."""
        key = event.option.id or ""
        group = f" group:{self.group}" if self.group else ""
        if key == "open":
            self.app.open_queue("all_open", group.strip())
        elif key == "unassigned":
            self.app.open_queue("all_open", f"assignee:none{group}")
        elif key == "breached":
            self.app.open_queue("all_open", f"sla:breached{group}")
        elif key == "soon":
            self.app.open_queue("all_open", f"sla:1h{group}")
        elif key.startswith("agent:"):
            self.app.open_queue("all_open", f"assignee:{key.split(':', 1)[1]}{group}")

    # ------------------------------------------------------------------ management

    def _show_management(self, report: KpiReport) -> None:
        summary = Table(box=None, show_header=False, padding=(0, 2))
        for _ in range(4):
            summary.add_column()
        summary.add_row("Opened", f"{report.opened:,}", "Resolved", f"{report.resolved:,}")
        summary.add_row(
            "MTTA",
            _value(report.mtta_hours, "h"),
            "MTTR (wall / business)",
            f"{_value(report.mttr_hours, 'h')} / {_value(report.mttr_business_hours, 'h')}",
        )
        summary.add_row(
            "Escalation rate",
            _value(report.escalation_rate_pct, "%"),
            "Emergency changes",
            _value(report.emergency_share_pct, "%"),
        )
        self.query_one("#kpi-summary", Static).update(summary)
        self._show_problems(report, self.data.candidates if self.data is not None else [])
        self.query_one("#kpi-changes", Static).update(change_table(report.changes))
        days = list(report.opened_per_day)
        labels = [d[5:] for d in days]
        volume = self.query_one("#chart-volume", PlotextPlot)
        plt = volume.plt
        plt.clear_data()
        plt.clear_figure()
        if days:
            positions: list[float] = list(range(len(days)))
            plt.plot(positions, [report.opened_per_day[d] for d in days], label="opened")
            plt.plot(positions, [report.resolved_per_day[d] for d in days], label="resolved")
            step = max(1, len(days) // 8)
            plt.xticks(positions[::step], labels[::step])
        plt.title("Volume per day")
        volume.refresh()
        aging = self.query_one("#chart-aging", PlotextPlot).plt
        aging.clear_data()
        aging.clear_figure()
        aging.bar(list(report.backlog_by_age), list(report.backlog_by_age.values()))
        aging.title("Backlog by age (open now)")
        self.query_one("#chart-aging", PlotextPlot).refresh()
        compliance = self.query_one("#chart-sla", PlotextPlot).plt
        compliance.clear_data()
        compliance.clear_figure()
        priorities = [f"P{p}" for p in report.sla_resolution_by_priority]
        compliance.multiple_bar(
            priorities,
            [
                [v or 0 for v in report.sla_response_by_priority.values()],
                [v or 0 for v in report.sla_resolution_by_priority.values()],
            ],
            # textual-plotext's stub calls it label; plotext's multiple_bar takes labels, one per series.
            labels=["response %", "resolution %"],  # type: ignore[call-arg]
        )
        compliance.ylim(0, 100)
        compliance.title("SLA compliance per priority")
        self.query_one("#chart-sla", PlotextPlot).refresh()
        mttr = self.query_one("#chart-mttr", PlotextPlot).plt
        mttr.clear_data()
        mttr.clear_figure()
        points = [(i, v) for i, v in enumerate(report.mttr_per_day.values()) if v is not None]
        if points:
            mttr.plot([p[0] for p in points], [p[1] for p in points], label="MTTR h")
            step = max(1, len(days) // 8)
            ticks: list[float] = list(range(len(days)))
            mttr.xticks(ticks[::step], labels[::step])
        mttr.title("MTTR per day (hours, wall clock)")
        self.query_one("#chart-mttr", PlotextPlot).refresh()

    def _show_problems(self, report: KpiReport, found: list[Candidate]) -> None:
        """The problem-management and knowledge figures of the period (desk-wide), under the summary, and
        the candidate problems now (the largest first: F7, view 5 lists them all)."""
        p = report.problems
        title = Text("Problems & knowledge", style="bold")
        if report.group:
            title.append(" (all groups)", style="dim")
        figures = Table(box=None, show_header=False, padding=(0, 1))
        for _ in range(4):
            figures.add_column(no_wrap=True)
        figures.add_row("Problems opened", f"{p.opened:,}", "Problems resolved", f"{p.resolved:,}")
        figures.add_row(
            "Time to root cause",
            _value(p.root_cause_hours, "h"),
            "Known-error share",
            _value(p.known_error_share_pct, "%"),
        )
        figures.add_row(
            f"Fixes measured ({p.fix_window_days} d)",
            f"{p.fixes_measured:,}",
            "Incidents /30 d before/after",
            f"{_value(p.before_fix_per_30d)} / {_value(p.after_fix_per_30d)}",
        )
        figures.add_row(
            "Avoided /30 d",
            _value(p.avoided_per_30d),
            "Article uses (articles)",
            f"{p.article_uses:,} ({p.articles_used:,})",
        )
        authors = ", ".join(
            f"{strip_control(a.login, single_line=True)} {a.published:,}" for a in p.top_authors
        )
        footnote = Text(f" Top authors  {authors or 'none'}")
        clusters = Text(" Candidate problems now  ")
        clusters.append(f"{len(found):,}", style="bold")
        if found:
            shown = ", ".join(f"{strip_control(c.key, single_line=True)} ({c.count:,})" for c in found[:3])
            clusters.append(f": {shown}" + (", ..." if len(found) > 3 else "") + " - F7, 5 lists them")
        self.query_one("#kpi-problems", Static).update(Renderables(title, figures, footnote, clusters))

    # ------------------------------------------------------------------ strategic

    def _show_strategic(self, report: KpiReport) -> None:
        grid = self.query_one("#kpi-tiles", Grid)
        grid.remove_children()
        tiles = []
        for figure in report.headline:
            body = Text(justify="center")
            body.append(f"{figure.label}\n")
            body.append(_value(figure.value, figure.unit) + "\n", style=f"bold {RAG_STYLES[figure.status]}")
            target = "-" if figure.target is None else _value(figure.target, figure.unit)
            change = figure.change
            trend = "no previous" if change is None else f"{'+' if change >= 0 else ''}{change:.1f} vs before"
            body.append(f"target {target}  {trend}", style="dim")
            tile = Tile(body, classes=figure.status)
            tile.border_title = figure.status.upper() if figure.status != "grey" else "NO DATA"
            tiles.append(tile)
        grid.mount_all(tiles)

    # ------------------------------------------------------------------ keys

    def action_period(self, name: str) -> None:
        if name not in PERIODS:
            return
        self.period_name, self.custom = name, None
        self.action_reload()

    def action_custom_period(self) -> None:
        def chosen(result: tuple[date, date] | None) -> None:
            if result is not None:
                self.custom = result
                self.action_reload()

        self.app.push_screen(CustomPeriod(), chosen)

    def action_next_group(self) -> None:
        choices = [None, *self.groups]
        self.group = (
            choices[(choices.index(self.group) + 1) % len(choices)] if self.group in choices else None
        )
        self.action_reload()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self._focus_tab(tab)

    def _focus_tab(self, tab: str) -> None:
        """The tab's own content takes the keys: the figures' list, or the scrolling charts and tiles."""
        pane = self.query_one(f"#{tab}", TabPane)
        target = pane.query_one(OptionList) if tab == "operational" else pane.query_one(VerticalScroll)
        target.focus()
