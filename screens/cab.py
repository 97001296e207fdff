"""The CAB agenda: one meeting's changes (its own and those carried over), their risk, conflicts and
approvers, and the decisions recorded there; opened from the change calendar.

``[`` / ``]`` (or left / right) go to the previous or next meeting, ``t`` back to the one going on (or the
next). The list's cursor picks a change, whose conflicts and approvers show below; ``a`` approves and ``x``
rejects it at this meeting with a comment (a rejection needs one), offered only when the change's guards
allow it and the meeting is going on or has been held (the agenda's items say why not:
``cab.decision_refusal``, the rule :func:`record_decision` enforces); Enter opens the change; ``m`` writes
the minutes as Markdown to the user's documents folder. The meeting's time is shown in the viewer's zone,
labelled. All database work happens in thread workers; people's text is shown literally.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from rich.console import Group, RenderableType
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from itsm_tui.keymap import fill_keys
from itsm_tui.screens.common import DeskScreen, local_time
from itsm_tui.screens.recordtable import Cell, RecordTable, TableColumn
from itsm_tui.services.changes import Agenda, AgendaItem, Meeting
from itsm_tui.services.conflicts import SEVERITY_ORDER
from itsm_tui.services.errors import ServiceError
from itsm_tui.text import strip_control

POLL_SECONDS = 3.0
CAB_STYLES = Path(__file__).resolve().with_name("cab.tcss")
COLUMNS = [
    TableColumn("ref", "Change", 10),
    TableColumn("status", "State", 19, rank=1),
    TableColumn("risk", "Risk", 9, rank=2),
    TableColumn("conflicts", "Confl", 5, rank=3, align="right"),
    TableColumn("tally", "Appr", 4, rank=2, align="right"),
    TableColumn("title", "Title", 0),
    TableColumn("carried", "From", 5, rank=4),
    TableColumn("window", "Planned", 15, rank=5),  # labelled: "03-21 23:00 CET"
    TableColumn("services", "Services", 16, rank=7),
]
STATUS_STYLE = {
    "awaiting assessment": "italic",
    "awaiting decision": "yellow",
    "approved": "green",
    "scheduled": "green",
    "rejected": "red",
}
RISK_STYLE = {"high": "bold red", "medium": "yellow", "low": ""}
# How the list marks a change's worst conflict (as the calendar marks it).
MARKS = {
    "blocked": ("!", "bold red"),
    "conflict": ("!", "bold red"),
    "warning": ("~", "yellow"),
    "overridden": ("+", "cyan"),
}
DECISION_STYLE = {
    "approved": "green",
    "rejected": "red",
    "pending": "yellow",
    "not needed": "dim",
    "moot": "dim",
}
# Instants in the agenda's detail, labelled with the zone's abbreviation (CET, CEST, EST).
WHEN = "%a %d %b %Y %H:%M %Z"


def minutes_path(meeting: Meeting) -> Path:
    """Where ``m`` writes a meeting's minutes: the user's documents folder (platformdirs)."""
    from platformdirs import user_documents_path

    return user_documents_path() / f"cab-minutes-{meeting.local():%Y-%m-%d}.md"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (its folder made if missing), readable by the user alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


class CabScreen(DeskScreen):
    SCREEN_TITLE = "CAB agenda"
    BINDINGS = [
        Binding("left_square_bracket,left", "meeting(-1)", "Previous", id="cab.previous"),
        Binding("right_square_bracket,right", "meeting(1)", "Next", id="cab.next"),
        Binding("t", "current", "This meeting", show=False, id="cab.current"),
        Binding("enter,o", "open", "Open", id="cab.open"),
        Binding("a", "decide(True)", "Approve", id="cab.approve"),
        Binding("x", "decide(False)", "Reject", id="cab.reject"),
        Binding("m", "minutes", "Minutes", id="cab.minutes"),
        Binding("ctrl+r", "reload", "Reload", show=False, id="cab.reload"),
        Binding("escape", "back", "Back", id="cab.back"),
    ]
    CSS_PATH = CAB_STYLES

    def __init__(self, meeting_start: datetime | None = None) -> None:
        super().__init__()
        self.meeting_start = meeting_start
        self.agenda: Agenda | None = None
        self.generation = 0
        self.shown_generation = -1
        self.fingerprint: tuple | None = None
        self.error: str | None = None
        self.last_minutes: Path | None = None  # where the minutes were last written (tests read it)

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        yield Static("", id="cab-bar")
        yield RecordTable[AgendaItem](id="cab-table", empty="Loading ...")
        with VerticalScroll(id="cab-detail"):
            yield Static("", id="cab-detail-text")
        yield Static("", id="cab-info")
        yield from self.compose_footer()

    @property
    def table(self) -> RecordTable[AgendaItem]:
        return self.query_one("#cab-table", RecordTable)

    @property
    def tz(self) -> str:
        return self.app.actor.timezone

    @property
    def up_to_date(self) -> bool:
        """Whether what is shown comes from the latest read (tests wait for it)."""
        return self.shown_generation == self.generation

    @property
    def current(self) -> AgendaItem | None:
        return self.table.current

    def on_mount(self) -> None:
        self.table.focus()
        self.watch(self.table, "cursor", self._cursor_moved, init=False)
        if self.meeting_start is None:
            self.action_current()
        else:
            self.reload()
        self.set_interval(POLL_SECONDS, self.check_for_changes)

    def on_screen_resume(self) -> None:
        if self.agenda is not None:
            self.reload()

    def on_resize(self) -> None:
        self.draw()

    # ------------------------------------------------------------------ reading

    def reload(self) -> None:
        self.generation += 1
        if self.meeting_start is None:
            self.shown_generation = self.generation
            self.draw()
            return
        self.load(self.generation, self.meeting_start)

    @work(thread=True, exclusive=True, group="cab-load", exit_on_error=False)
    def load(self, generation: int, meeting_start: datetime) -> None:
        from itsm_tui.services import changes

        try:
            with self.app.db.read_session() as session:
                fingerprint = changes.fingerprint(session)
                agenda = changes.agenda(
                    session, self.app.config, meeting_start, self.app.actor, now=self.app.clock()
                )
        except ServiceError as exc:
            self.app.call_from_thread(self._failed, generation, str(exc))
            return
        self.app.call_from_thread(self._loaded, generation, agenda, fingerprint)

    def _failed(self, generation: int, message: str) -> None:
        if generation == self.generation:
            self.error, self.agenda, self.shown_generation = message, None, generation
            self.draw()

    def _loaded(self, generation: int, agenda: Agenda, fingerprint: tuple) -> None:
        if generation != self.generation:
            return
        self.agenda, self.fingerprint, self.error = agenda, fingerprint, None
        self.table.show_rows(
            COLUMNS,
            agenda.items,
            self._cell,
            keep=lambda item: item.ref,
            empty="No changes on this meeting's agenda.",
        )
        self.shown_generation = generation
        self.draw()

    def check_for_changes(self) -> None:
        if self.app.screen is not self or self.fingerprint is None or not self.up_to_date:
            return
        self.poll(self.fingerprint)

    @work(thread=True, exclusive=True, group="cab-poll", exit_on_error=False)
    def poll(self, previous: tuple) -> None:
        from itsm_tui.services import changes

        with self.app.db.read_session() as session:
            current = changes.fingerprint(session)
        if current != previous:
            self.app.call_from_thread(self.reload)

    # ------------------------------------------------------------------ drawing

    def _cell(self, item: AgendaItem, key: str) -> Cell:
        if key == "ref":
            return item.ref, ""
        if key == "status":
            return item.status, STATUS_STYLE.get(item.status, "")
        if key == "risk":
            score = f" {item.risk_score}" if item.risk_score is not None else ""
            return item.risk + score, RISK_STYLE.get(item.risk, "")
        if key == "conflicts":
            if not item.conflicts:
                return "-", "dim"
            worst = min(item.conflicts, key=lambda c: SEVERITY_ORDER[c.severity]).severity
            mark, style = MARKS.get(worst, ("+", "cyan"))
            return f"{mark}{len(item.conflicts)}", style
        if key == "tally":
            return item.tally, ""
        if key == "title":
            return item.title, ""
        if key == "window":
            return local_time(item.planned_start, self.tz, "%m-%d %H:%M %Z"), ""
        if key == "carried":
            if item.carried_from is None:
                return "", ""
            return local_time(item.carried_from, self.tz, "%m-%d"), "yellow"
        if key == "services":
            return ",".join(item.services), ""
        return "", ""

    def draw(self) -> None:
        self.refresh_bindings()
        self._draw_bar()
        self._draw_detail()
        self._draw_info()

    def _draw_bar(self) -> None:
        bar = Text(no_wrap=True, overflow="ellipsis")
        if self.meeting_start is None:
            bar.append(self.error or "The CAB has no meeting", style="bold red")
        else:
            zone = self.tz
            if self.agenda is not None:
                bar.append("CAB " + self.agenda.meeting.label(zone), style="bold")
            else:
                start = local_time(self.meeting_start, zone, "%a %d %b %Y %H:%M")
                bar.append(f"CAB {start} {zone}", style="bold")
            if self.error:
                bar.append(f"  {self.error}", style="bold red")
            elif self.agenda is None or not self.up_to_date:
                bar.append("  loading ...", style="dim")
            else:
                count, decided = len(self.agenda.items), len(self.agenda.decisions)
                counted = f"  {count} change{'s' if count != 1 else ''}"
                decisions = f", {decided} decision{'s' if decided != 1 else ''}"
                tag = ""
                if self.agenda.current:
                    going_on = self.agenda.meeting.start <= self.app.clock()
                    tag = "  in progress" if going_on else "  next meeting"
                more = "  (more not shown)" if self.agenda.truncated else ""
                # Too narrow for all (80 columns, a long zone): the counts go first, whole (the list and the
                # detail show what they count), the decisions' before the changes'.
                room = max(1, (self.size.width or 80) - 2) - bar.cell_len - len(tag) - len(more)
                if len(counted) + len(decisions) > room:
                    decisions = ""
                if len(counted) > room:
                    counted = ""
                bar.append(counted + decisions)
                bar.append(tag, style="yellow")
                bar.append(more, style="bold red")
        bar.truncate(max(1, (self.size.width or 80) - 2), overflow="ellipsis")  # a Static would wrap it
        self.query_one("#cab-bar", Static).update(bar)

    def _draw_detail(self) -> None:
        item = self.current
        detail = self.query_one("#cab-detail-text", Static)
        if item is None:
            lines: list[RenderableType] = []
            if self.agenda is not None and self.agenda.decisions:
                lines.append(self._decisions())
            detail.update(Group(*lines) if lines else Text(""))
            return
        detail.update(Group(*self._item_lines(item)))

    def _item_lines(self, item: AgendaItem) -> list[RenderableType]:
        from itsm_tui.screens.change import conflict_lines

        width = max(20, (self.size.width or 80) - 3)
        zone = self.tz
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(item.ref + " ", style="bold")
        head.append(strip_control(item.title, single_line=True))
        lines: list[RenderableType] = [head]
        when = Text(no_wrap=True, overflow="ellipsis")
        score = f", score {item.risk_score}" if item.risk_score is not None else ""
        when.append(f"{item.change_type}, {item.risk} risk{score}", style=RISK_STYLE.get(item.risk, ""))
        lines.append(when)
        window = Text(no_wrap=True, overflow="ellipsis")
        if item.planned_start:
            start, end = local_time(item.planned_start, zone, WHEN), local_time(item.planned_end, zone, WHEN)
            window.append(f"Planned {start} to {end}")
        else:
            window.append("No planned window")
        lines.append(window)
        if item.warning:
            warning = item.warning[0].upper() + item.warning[1:]
            lines.append(Text(warning, style="bold yellow", no_wrap=True, overflow="ellipsis"))
        state = Text(no_wrap=True, overflow="ellipsis")
        state.append(item.status, style=STATUS_STYLE.get(item.status, ""))
        if item.progress != item.status:
            state.append("; " + strip_control(item.progress, single_line=True))
        lines.append(state)
        if item.carried_from is not None:
            carried = local_time(item.carried_from, zone, "%a %d %b")
            lines.append(Text(f"Carried over from the CAB of {carried}, still undecided", style="yellow"))
        for approver in item.approvers:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"  {strip_control(approver.login, single_line=True):<12} ")
            line.append(f"{approver.label:<10}", style=DECISION_STYLE.get(approver.label, ""))
            if approver.decided_at is not None:
                line.append(f" {local_time(approver.decided_at, zone, '%m-%d %H:%M %Z')}", style="dim")
            if approver.comment:
                line.append(" " + strip_control(approver.comment, single_line=True))
            if not approver.counts:
                line.append(" (does not count)", style="dim")
            lines.append(line)
        if item.conflicts:
            lines.append(conflict_lines(list(item.conflicts), width=width))
        else:
            lines.append(Text("No conflicts.", style="dim"))
        # Why the viewer may not decide a change still awaiting its decision (a decided one: nothing to say).
        undecided = item.state in ("submitted", "assessed")
        refusals = [reason for reason in item.actions.values() if reason and undecided]
        if refusals and len(set(refusals)) == 1:  # wrapped: why is worth reading whole (at 80 columns too)
            lines.append(Text(strip_control(refusals[0], single_line=True), style="dim"))
        elif refusals:
            for action, reason in item.actions.items():
                if reason and undecided:
                    line = Text(f"{action}: {strip_control(reason, single_line=True)}", style="dim")
                    line.no_wrap, line.overflow = True, "ellipsis"
                    lines.append(line)
        if self.agenda is not None and self.agenda.decisions:
            lines.append(self._decisions())
        return lines

    def _decisions(self) -> Text:
        assert self.agenda is not None
        zone = self.tz
        text = Text("Decisions at this meeting:", style="bold")
        for d in self.agenda.decisions:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"  {d.ref} ")
            line.append(d.decision, style=DECISION_STYLE.get(d.decision, ""))
            when = local_time(d.decided_at, zone, "%m-%d %H:%M %Z")
            line.append(f" by {strip_control(d.login, single_line=True)} {when}")
            if d.comment:
                line.append(": " + strip_control(d.comment, single_line=True))
            text.append("\n")
            text.append_text(line)
        return text

    def _draw_info(self) -> None:
        item = self.current
        hints = "{cab.open} opens"
        if item is not None and item.actions.get("approve") is None:
            hints += ", {cab.approve} approves"
        if item is not None and item.actions.get("reject") is None:
            hints += ", {cab.reject} rejects"
        hints += ", {cab.minutes} minutes, {cab.back} back"
        info = Text(fill_keys(self, hints, ", ") + ".", no_wrap=True, overflow="ellipsis", style="dim")
        self.query_one("#cab-info", Static).update(info)

    def _cursor_moved(self) -> None:
        self._draw_detail()
        self._draw_info()
        self.refresh_bindings()

    # ------------------------------------------------------------------ moving

    def action_meeting(self, step: int) -> None:
        from itsm_tui.services import changes

        if self.meeting_start is None:
            return
        try:
            meeting = changes.neighbour(self.app.config, self.meeting_start, step)
        except ServiceError as exc:
            self.app.notify(str(exc), severity="error", markup=False)
            return
        if meeting is None:
            self.app.notify("No other CAB meeting that way.", markup=False)
            return
        self._go(meeting.start)

    def action_current(self) -> None:
        from itsm_tui.services import changes

        try:
            meeting = changes.current_meeting(self.app.config, self.app.clock())
        except ServiceError as exc:
            self.error = str(exc)
            self.meeting_start = None
            self.reload()
            return
        self._go(meeting.start)

    def _go(self, start: datetime) -> None:
        self.meeting_start = start
        self.agenda = None
        self.table.show_rows(COLUMNS, [], self._cell, empty="Loading ...")
        self.reload()
        self.draw()

    def action_reload(self) -> None:
        self.reload()

    def action_back(self) -> None:
        self.dismiss()

    # ------------------------------------------------------------------ acting

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Approve and reject are offered (footer, help, palette, key) only when the change's guard lets the
        viewer take them now: the same guards :func:`record_decision` enforces."""
        if action == "decide":
            item = self.current
            name = "approve" if parameters and parameters[0] else "reject"
            return item is not None and item.actions.get(name, "") is None
        if action in ("open", "minutes"):
            return self.current is not None if action == "open" else self.agenda is not None
        return True

    def action_open(self) -> None:
        item = self.current
        if item is None:
            return
        from itsm_tui.screens.change import ChangeScreen

        self.app.push_screen(ChangeScreen(item.ref), callback=lambda _: self.reload())

    def action_decide(self, approve: bool) -> None:
        item, agenda = self.current, self.agenda
        if item is None or agenda is None:
            return
        from itsm_tui.screens.change import ReasonForm, ReasonValues

        meeting = agenda.meeting
        app, ref, version = self.app, item.ref, item.version

        def save(values: ReasonValues) -> str:  # in the form's worker
            from itsm_tui.services import changes

            with app.db.session() as session:
                change = changes.record_decision(
                    session,
                    app.config,
                    app.actor,
                    ref,
                    approve=approve,
                    comment=values.text,
                    meeting_start=meeting.start,
                    expected_version=version,
                    now=app.clock(),
                )
                return change.state

        verb = "Approve" if approve else "Reject"
        when = meeting.label(self.tz)
        self.app.push_screen(
            ReasonForm(
                f"{verb} {ref} at the CAB",
                save,
                required=not approve,
                label="Comment",
                note=f"Recorded at the CAB of {when}"
                + ("" if approve else "; say why (the requester reads it)"),
            ),
            callback=lambda state: self._decided(ref, approve, state),
        )

    def _decided(self, ref: str, approve: bool, state: object) -> None:
        if state:
            said = "approved" if approve else "rejected"
            self.app.notify(f"You {said} {ref} at the CAB; it is {state}.", markup=False)
        self.reload()

    def action_minutes(self) -> None:
        if self.agenda is not None:
            self.write_minutes(self.agenda)

    @work(thread=True, group="cab-minutes", exit_on_error=False)
    def write_minutes(self, agenda: Agenda) -> None:
        from itsm_tui.services import changes

        path = minutes_path(agenda.meeting)
        text = changes.minutes(agenda, "md", timezone=self.tz)
        try:
            write_private(path, text)
        except OSError as exc:
            self.app.call_from_thread(
                self.app.notify,
                f"The minutes were not written to {path}: {exc.strerror}",
                severity="error",
                markup=False,
            )
            return
        self.last_minutes = path
        self.app.call_from_thread(
            self.app.notify, f"Minutes written to {path}", title="Minutes", markup=False
        )
