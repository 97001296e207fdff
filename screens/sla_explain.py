"""Why a ticket's SLA times are what they are (``w`` on the ticket screen), and the lines the ticket forms
show of what saving a change would do to them.

The panel is a modal screen over the ticket: for each target its policy and calendar, start, minutes, each
pause with the business time it counted, each re-target (who, when, from which priority to which), the
warning and due instants and the verdict, in the person's time zone. It scrolls; Escape closes it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from itsm_tui.keymap import fill_keys
from itsm_tui.screens.common import WorkerErrorsToApp, literal, local_time
from itsm_tui.services import sla_explain
from itsm_tui.services.errors import ServiceError
from itsm_tui.services.sla_explain import Explanation, Preview, TargetExplanation, hours_minutes
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from textual import getters

    from itsm_tui.app import ItsmApp

VERDICT_STYLE = {
    "ok": "green",
    "met": "green",
    "warning": "bold yellow",
    "breached": "bold red",
    "stopped": "dim",
}
LABELS = {"response": "Response", "resolution": "Resolution"}
SHORT = "%m-%d %H:%M"


def _when(instant: datetime | None, tz: str) -> str:
    return local_time(instant, tz, SHORT)


def _span(start: datetime, end: datetime | None, tz: str) -> str:
    """``03-07 10:30 - 12:30`` (the end's day only when it is another day); an open end is "now"."""
    if end is None:
        return f"{_when(start, tz)} - now"
    same_day = local_time(start, tz, "%Y-%m-%d") == local_time(end, tz, "%Y-%m-%d")
    return f"{_when(start, tz)} - {local_time(end, tz, '%H:%M') if same_day else _when(end, tz)}"


def target_table(t: TargetExplanation, tz: str) -> Group:
    """One target: a head line with the verdict, then a row for each thing its times come from."""
    head = Text(LABELS.get(t.target, t.target), style="bold underline")
    head.append("  ")
    head.append(t.verdict, style=VERDICT_STYLE.get(t.verdict, ""))
    calendar = "always open" if t.always_open else f"{t.calendar_timezone} hours"
    head.append(f"  P{t.priority} on {t.calendar} ({calendar})")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True, width=10)
    grid.add_column(ratio=1)
    if not t.running:
        grid.add_row("Stopped", f"{t.stopped_by} {_when(t.stopped_at, tz)}: its times are frozen")
    start = "opened" if t.start_kind == "opened" else "restarted by a reopen"
    grid.add_row("Start", f"{_when(t.start, tz)} ({start})")
    grid.add_row(
        "Target",
        f"{t.target_minutes} min of business time, warning at {round(t.warning_ratio * 100)}%",
    )
    if not t.pauses:
        grid.add_row("Pauses", "none")
    for index, pause in enumerate(t.pauses):
        line = Text(f"{_span(pause.start, pause.end, tz)} {pause.reason}: ")
        if pause.under_way and pause.counted:
            line.append(f"{hours_minutes(pause.business_seconds)} so far, moves the due on resuming")
        elif pause.counted:
            line.append(f"{hours_minutes(pause.business_seconds)}, moved the due")
        else:
            line.append("moved nothing", style="dim")
        grid.add_row("Pauses" if index == 0 else "", line)
    if not t.retargets:
        grid.add_row("Re-target", "none")
    for index, change in enumerate(t.retargets):
        line = Text(f"{_when(change.at, tz)} ")
        line.append_text(literal(change.by))
        line.append(f" P{change.old_priority} -> P{change.new_priority} ")
        line.append("re-measured from the start" if change.applied else "after it stopped", style="dim")
        grid.add_row("Re-target" if index == 0 else "", line)
    grid.add_row("Warning", _when(t.warn_at, tz) + (" (flagged)" if t.warned_at else ""))
    due = Text(_when(t.due_at, tz) + (" (breach flagged)" if t.breached_at else ""))
    if t.seconds_left is not None:
        word = "left" if t.seconds_left >= 0 else "overdue"
        due.append(f"  {hours_minutes(t.seconds_left)} {word}", style=VERDICT_STYLE.get(t.verdict, ""))
    grid.add_row("Due", due)
    if t.due_if_resumed_now is not None:
        grid.add_row("", f"resumed now: due {_when(t.due_if_resumed_now, tz)}")
    if t.recomputed_due_at is not None:
        grid.add_row(
            "", Text(f"the rules now give {_when(t.recomputed_due_at, tz)}; stored one counts", "dim")
        )
    return Group(head, grid, Text(""))


def explanation_renderable(explained: Explanation, tz: str) -> Group:
    head = Text(f"{explained.ref}  P{explained.priority}  {explained.status}", style="bold")
    head.append(f"  times in {tz}", style="dim")
    parts: list[Text | Group] = [head, literal(explained.title), Text("")]
    parts += [target_table(t, tz) for t in explained.targets]
    return Group(*parts)


def preview_text(preview: Preview, tz: str) -> Text:
    """What saving would do to the SLA times, for a form: each target's verdict and due (with what it was),
    then a warning line for what the SLA job would do at once."""
    text = Text()
    if not preview.moves and not preview.job:
        text.append("SLA times unchanged", style="dim")
        if preview.change.status == "pending":
            text.append("; the resolution clock stands still from now", style="dim")
        text.append(".", style="dim")
        return text
    text.append(f"SLA if saved (times in {tz}):", style="bold")
    for t in preview.targets:
        text.append(f"\n{LABELS.get(t.target, t.target):<11}")
        text.append(f"{t.verdict_after:<9}", style=VERDICT_STYLE.get(t.verdict_after, ""))
        text.append(f"due {_when(t.due_after, tz)}")
        if t.due_after != t.due_before:
            text.append(f" (was {_when(t.due_before, tz)})", style="dim")
        if t.paused_after and t.running_after:
            text.append(", paused", style="dim")
        elif t.escalates_on_breach and not t.event_now:
            text.append(f", a breach sends it to {t.escalates_on_breach}", style="dim")
    for line in preview.warnings:
        text.append("\n! " + strip_control(line, single_line=True), style="bold red")
    return text


class SlaExplainScreen(WorkerErrorsToApp, ModalScreen[None]):
    """Why these SLA times: the explanation of one ticket's targets, read in a worker, scrollable."""

    if TYPE_CHECKING:  # the console app, typed (at run time Textual's own property)
        app = getters.app(ItsmApp)

    CSS_PATH = [Path(__file__).resolve().with_name("sla_explain.tcss")]
    BINDINGS = [Binding("escape,q", "close", "Close", id="why.close")]

    def __init__(self, ref: str) -> None:
        super().__init__()
        self.ref = ref
        self.explanation: Explanation | None = None  # the one shown (tests wait for it)

    def compose(self) -> ComposeResult:
        with Vertical(id="why-box") as box:
            box.border_title = f"Why these SLA times: {self.ref}"
            with VerticalScroll(id="why-body"):
                yield Static("Loading ...", id="why-text")
            yield Static(
                fill_keys(self, "up/down/PgUp/PgDn scroll · {why.close} close"), id="why-hint", markup=False
            )

    def on_mount(self) -> None:
        self.query_one("#why-body").focus()
        self.load()

    def action_close(self) -> None:
        self.dismiss(None)

    @work(thread=True, exclusive=True, exit_on_error=False, group="sla-explain")
    def load(self) -> None:
        app = self.app
        try:
            with app.db.read_session() as session:
                explained = sla_explain.explain(session, app.config, self.ref, app.clock())
        except ServiceError as exc:
            app.call_from_thread(self._show_problem, str(exc))
            return
        app.call_from_thread(self.show, explained)

    def show(self, explained: Explanation) -> None:
        self.explanation = explained
        self.query_one("#why-text", Static).update(explanation_renderable(explained, self.app.actor.timezone))

    def _show_problem(self, message: str) -> None:
        self.query_one("#why-text", Static).update(Text(strip_control(message)))
