"""Windows and freezes: the maintenance windows and the blackouts (change freezes), opened from the change
calendar; change managers add, edit and delete them here.

Two lists (tab moves between them): the maintenance windows, each in its own time zone, and the blackouts,
in the viewer's zone (labelled). The blackout form lists, as its period and service are typed, the live
changes the freeze would block (``changes.blocked_by_blackout``, in a worker); saving tells their owners.
A delete asks first, naming what goes. Whether the keys that write are offered is the services' rule
(``changes.window_refusal``); every save carries the version shown, so a save over someone else's newer
edit is refused and the lists reload; the form (or the confirmation) then takes the newer version: the
fields not typed in show its values, and saving again applies what was typed over it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from itsm_tui.keymap import fill_keys
from itsm_tui.screens.change import TIME_FORMAT, ChangeForm, parse_when
from itsm_tui.screens.common import DeskScreen, fit_hints, local_time
from itsm_tui.screens.formscreen import FormScreen
from itsm_tui.screens.recordtable import RecordTable, TableColumn
from itsm_tui.services import changes
from itsm_tui.services.changes import BlackoutRow, Blocked, BlockedChange, WindowLists, WindowRow
from itsm_tui.services.changes.windows import blackout_row, window_row
from itsm_tui.services.conflicts import quoted
from itsm_tui.services.errors import ServiceError, StaleEdit, ValidationError
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

WINDOWS_STYLES = Path(__file__).resolve().with_name("change_windows.tcss")
PREVIEW_LINES = 5  # blocked changes the form lists (then "... and N more")

# Each window opens in its own zone: the opening time carries it (at 80 columns too), the whole name when it
# fits, else its last part ("America/New_York" -> "New_York"); the selected window's line names it whole.
OPENS_WIDTH = 17
WINDOW_NAME_MIN = 15  # the name's cells at 80 columns, beside a scroll bar too, with every column shown
WINDOW_COLUMNS = [
    TableColumn("id", "ID", 4, rank=0, align="right"),
    TableColumn("service", "SERVICE", 10, rank=1),
    TableColumn("when", "OPENS (ZONE)", OPENS_WIDTH, rank=2),
    TableColumn("length", "FOR", 6, rank=2, align="right"),
    TableColumn("rule", "RULE", 20, rank=3),
    TableColumn("name", "NAME", 0),
]
BLACKOUT_COLUMNS = [
    TableColumn("id", "ID", 4, rank=0, align="right"),
    TableColumn("from", "FROM", 16, rank=1),
    TableColumn("to", "TO", 16, rank=2),
    TableColumn("service", "SERVICE", 10, rank=3),
    TableColumn("name", "NAME", 0),
]


def window_cell(row: WindowRow, key: str) -> tuple[str, str]:
    if key == "id":
        return str(row.id), "dim"
    if key == "service":
        return row.service, "cyan"
    if key == "when":
        return f"{row.start_local} {zone_label(row.timezone, OPENS_WIDTH - len(row.start_local) - 1)}", ""
    if key == "length":
        return f"{row.duration_minutes}m", ""
    if key == "rule":
        return row.rrule, ""
    return row.name, ""


def zone_label(zone: str, width: int) -> str:
    """``zone`` in at most ``width`` cells: whole, else its last part (the place: "America/New_York" reads
    "New_York"), else cut with an ellipsis."""
    short = zone if len(zone) <= width else zone.rsplit("/", 1)[-1]
    return short if len(short) <= width else short[: max(0, width - 1)] + "…"


def blackout_cells(timezone: str) -> Callable[[BlackoutRow, str], tuple[str, str]]:
    def cell(row: BlackoutRow, key: str) -> tuple[str, str]:
        if key == "id":
            return str(row.id), "dim"
        if key == "from":
            return local_time(row.start, timezone, TIME_FORMAT), "red"
        if key == "to":
            return local_time(row.end, timezone, TIME_FORMAT), "red"
        if key == "service":
            return row.service or "all", "cyan"
        return row.name, ""

    return cell


def blackout_text(row: BlackoutRow, timezone: str) -> str:
    """A blackout in one line: name, scope and period in ``timezone`` (labelled)."""
    period = f"{local_time(row.start, timezone, TIME_FORMAT)} to {local_time(row.end, timezone, TIME_FORMAT)}"
    return f"the blackout {quoted(row.name)} ({row.service or 'all services'}, {period} {timezone})"


def window_text(row: WindowRow) -> str:
    return (
        f"the maintenance window {quoted(row.name)} ({row.service}, {row.rrule} at {row.start_local} "
        f"{row.timezone} for {row.duration_minutes} min)"
    )


def blocked_lines(found: Blocked, timezone: str, limit: int = PREVIEW_LINES) -> Text:
    """What a freeze would block, for the form: a heading line and a line per change (times in
    ``timezone``, labelled in the heading)."""
    if not found.total:
        return Text("It blocks no live change.", style="green")
    blocked, overridden = found.blocked, found.overridden
    count = len(blocked) + (found.total - len(found.changes))
    head = Text(f"It blocks {count} live change{'s' if count != 1 else ''}", style="bold red")
    if overridden:
        head.append(f"; lets in {len(overridden)} emergency (override)", style="cyan")
    head.append(f" (times in {timezone}):", style="")
    lines = [head]
    ordered = [*blocked, *overridden]
    shown = ordered if len(ordered) <= limit else ordered[: limit - 1]
    for change in shown:
        lines.append(_blocked_line(change, timezone))
    if len(shown) < found.total:
        lines.append(Text(f"... and {found.total - len(shown)} more", style="bold"))
    return Text("\n").join(lines)


def _blocked_line(change: BlockedChange, timezone: str) -> Text:
    mark, style = ("override", "cyan") if change.overridden else ("BLOCKED", "bold red")
    line = Text(f"{mark:<8} ", style=style)
    line.append(f"{change.ref} ", style="bold")
    start = local_time(change.start, timezone, "%m-%d %H:%M")
    end = local_time(change.end, timezone, "%H:%M" if change.end - change.start < _DAY else "%m-%d %H:%M")
    line.append(f"{change.state:<10} {start}-{end} ")
    line.append(strip_control(change.title, single_line=True))
    line.no_wrap = True
    line.overflow = "ellipsis"
    return line


_DAY = datetime(2000, 1, 2) - datetime(2000, 1, 1)


# --------------------------------------------------------------------------- the forms

ValuesT = TypeVar("ValuesT")
RowT = TypeVar("RowT", WindowRow, BlackoutRow)


class RowForm(ChangeForm[ValuesT], Generic[ValuesT, RowT]):
    """A form that adds a row (``edited`` None) or edits one. A save refused as stale reads the row again
    (``reload`` reads the lists underneath): the fields not typed in show its newer values, the version
    checked is the newer one, so saving again applies what was typed over it."""

    def __init__(
        self, row: RowT | None, title: str | None, reload: Callable[[], object] | None = None
    ) -> None:
        super().__init__(self._store, title=title)
        self.edited: RowT | None = row
        self.reload = reload
        self.shown: dict[str, str] = {}  # each text field as filled in (what counts as not typed in)
        self.newer_shown: int | None = None  # the version a stale save took in (tests wait for it)
        self._on_refused = self._refused_here

    def filled(self, row: RowT) -> dict[str, str]:
        """Each text field as ``row`` fills it in."""
        raise NotImplementedError

    def read_row(self, session: Session, row_id: int) -> RowT | None:
        raise NotImplementedError

    def _store(self, values: ValuesT) -> str:
        raise NotImplementedError

    def on_mount(self) -> None:
        self.shown = {
            name: self.text_of(name) for name in self._fields if isinstance(self.field(name), Input)
        }
        super().on_mount()

    def error_text(self, exc: ServiceError) -> str:
        if isinstance(exc, StaleEdit):  # who changed it, when (in the viewer's zone), that it was reloaded
            return super(ChangeForm, self).error_text(exc)
        return super().error_text(exc)

    def _refused_here(self, exc: ServiceError) -> None:
        if isinstance(exc, StaleEdit) and self.edited is not None:
            if self.reload is not None:
                self.reload()
            self.take_newer(self.edited.id)

    @work(thread=True, exclusive=True, group="row-form-newer", exit_on_error=False)
    def take_newer(self, row_id: int) -> None:
        with self.app.db.read_session() as session:
            row = self.read_row(session, row_id)
        self.app.call_from_thread(self._newer, row)

    def _newer(self, row: RowT | None) -> None:
        if row is None or not self.is_attached or self.saving:
            return  # deleted meanwhile: saving says so
        filled = self.filled(row)
        typed = {name for name in self.shown if self.text_of(name) != self.shown[name]}
        for name in self.shown:
            if name not in typed:
                self.field_of(name, Input).value = filled[name]
        self.shown = {name: filled[name] if name in typed else self.text_of(name) for name in self.shown}
        self.edited = row
        self.took(row)
        self.newer_shown = row.version

    def took(self, row: RowT) -> None:
        """What else the form keeps of the newer row (a hook)."""


@dataclass(frozen=True)
class BlackoutValues:
    name: str
    service: str  # "": every service
    start: datetime
    end: datetime
    reason: str


class BlackoutForm(RowForm[BlackoutValues, BlackoutRow]):
    """A new blackout, or one edited: name, service (blank: every service), period in the viewer's zone,
    reason; the live changes it would block show under the fields as they are typed."""

    TITLE = "New blackout"
    SHOW_CONFLICTS = True

    def __init__(
        self,
        start: datetime,
        end: datetime,
        row: BlackoutRow | None = None,
        reload: Callable[[], object] | None = None,
    ) -> None:
        title = f"Edit blackout {row.id}" if row else None
        super().__init__(row, title, reload)
        self.start, self.end = start, end
        self.blocked: Blocked | None = None  # what the preview showed last (tests wait for it)

    def filled(self, row: BlackoutRow) -> dict[str, str]:
        tz = self.app.actor.timezone
        return {
            "name": row.name,
            "service": row.service or "",
            "start": local_time(row.start, tz, TIME_FORMAT),
            "end": local_time(row.end, tz, TIME_FORMAT),
            "reason": row.reason or "",
        }

    def read_row(self, session: Session, row_id: int) -> BlackoutRow | None:
        return blackout_row(session, row_id)

    def took(self, row: BlackoutRow) -> None:
        self.start, self.end = row.start, row.end
        self.schedule_preview()

    def compose_fields(self) -> ComposeResult:
        tz = self.app.actor.timezone
        row = self.edited
        yield from self.row(
            "name", "Name", Input(row.name if row else "", id="name", placeholder="what freeze")
        )
        yield from self.row(
            "service",
            "Service",
            Input((row.service or "") if row else "", id="service", placeholder="blank: every service"),
        )
        yield from self.row("start", "Start", Input(local_time(self.start, tz, TIME_FORMAT), id="start"))
        yield from self.row("end", "End", Input(local_time(self.end, tz, TIME_FORMAT), id="end"))
        yield from self.row(
            "reason", "Reason", Input((row.reason or "") if row else "", id="reason", placeholder="why")
        )
        yield Static(Text(f"Times in {tz}.", style="dim"), id="form-zone")

    def compose_below_fields(self) -> ComposeResult:
        yield Static(
            Text("The live changes it blocks show here as you type.", style="dim"), id="form-conflicts"
        )

    def on_mount(self) -> None:
        self.field("name").focus()
        super().on_mount()

    def collect(self) -> BlackoutValues:
        tz = self.app.actor.timezone
        return BlackoutValues(
            self.value("name"),
            self.value("service"),
            parse_when("start", self.value("start"), tz),
            parse_when("end", self.value("end"), tz),
            self.value("reason"),
        )

    def preview_values(self) -> BlackoutValues:
        return self.collect()

    @work(thread=True, exclusive=True, group="blackout-form-preview", exit_on_error=False)
    def run_preview(self, generation: int, values: BlackoutValues) -> None:
        try:
            with self.app.db.read_session() as session:
                found = changes.blocked_by_blackout(
                    session,
                    self.app.config,
                    start=values.start,
                    end=values.end,
                    service=values.service or None,
                    exclude_id=self.edited.id if self.edited else None,
                    name=values.name or "the new freeze",
                )
        except ServiceError as exc:
            self.app.call_from_thread(self._show_blocked, generation, None, self.error_text(exc))
            return
        self.app.call_from_thread(self._show_blocked, generation, found, None)

    def _show_blocked(self, generation: int, found: Blocked | None, problem: str | None) -> None:
        if generation != self.preview_generation:
            return
        panel = self.query_one("#form-conflicts", Static)
        self.preview_shown = generation
        self.blocked = found
        if found is None:
            text = strip_control(problem or "", single_line=True)
            panel.update(Text(f"Not checked yet: {text}", style="dim"))
        else:
            panel.update(blocked_lines(found, self.app.actor.timezone))

    def _store(self, values: BlackoutValues) -> str:
        app = self.app
        with app.db.session() as session:
            if self.edited is None:
                blackout = changes.add_blackout(
                    session,
                    app.actor,
                    name=values.name,
                    start=values.start,
                    end=values.end,
                    service=values.service or None,
                    reason=values.reason,
                    config=app.config,
                    now=app.clock(),
                )
            else:
                blackout = changes.edit_blackout(
                    session,
                    app.actor,
                    self.edited.id,
                    config=app.config,
                    name=values.name,
                    reason=values.reason,
                    service=values.service,
                    start=values.start,
                    end=values.end,
                    expected_version=self.edited.version,
                    now=app.clock(),
                )
            found = changes.blocked_by_saved(session, app.config, blackout)
            said = f"Blackout {blackout.id} saved. {found.summary()}"
        return said


@dataclass(frozen=True)
class WindowValues:
    name: str
    service: str
    rrule: str
    start_local: str
    minutes: int
    timezone: str


class WindowForm(RowForm[WindowValues, WindowRow]):
    """A new maintenance window, or one edited: name, service, RRULE, local opening time, minutes, zone."""

    TITLE = "New maintenance window"

    def __init__(self, row: WindowRow | None = None, reload: Callable[[], object] | None = None) -> None:
        super().__init__(row, f"Edit window {row.id}" if row else None, reload)

    def filled(self, row: WindowRow) -> dict[str, str]:
        return {
            "name": row.name,
            "service": row.service,
            "rrule": row.rrule,
            "start_local": row.start_local,
            "duration_minutes": str(row.duration_minutes),
            "timezone": row.timezone,
        }

    def read_row(self, session: Session, row_id: int) -> WindowRow | None:
        return window_row(session, row_id)

    def compose_fields(self) -> ComposeResult:
        row = self.edited
        zone = row.timezone if row else self.app.actor.timezone
        yield from self.row(
            "name", "Name", Input(row.name if row else "", id="name", placeholder="what window")
        )
        yield from self.row("service", "Service", Input(row.service if row else "", id="service"))
        yield from self.row(
            "rrule",
            "Rule",
            Input(
                row.rrule if row else "FREQ=WEEKLY;BYDAY=SA", id="rrule", placeholder="FREQ=WEEKLY;BYDAY=SA"
            ),
        )
        yield from self.row(
            "start_local", "Opens at", Input(row.start_local if row else "22:00", id="start_local")
        )
        yield from self.row(
            "duration_minutes",
            "Minutes",
            Input(str(row.duration_minutes) if row else "120", id="duration_minutes", type="integer"),
        )
        yield from self.row("timezone", "Zone", Input(zone, id="timezone", placeholder="e.g. Europe/Berlin"))

    def on_mount(self) -> None:
        self.field("name").focus()
        super().on_mount()

    def collect(self) -> WindowValues:
        minutes = self.value("duration_minutes")
        if not minutes.isdigit():
            raise ValidationError("duration_minutes", "give the length in whole minutes")
        return WindowValues(
            self.value("name"),
            self.value("service"),
            self.value("rrule"),
            self.value("start_local"),
            int(minutes),
            self.value("timezone"),
        )

    def _store(self, values: WindowValues) -> str:
        app = self.app
        with app.db.session() as session:
            if self.edited is None:
                window = changes.add_window(
                    session,
                    app.actor,
                    name=values.name,
                    service=values.service,
                    rrule=values.rrule,
                    start_local=values.start_local,
                    duration_minutes=values.minutes,
                    timezone=values.timezone,
                    config=app.config,
                    now=app.clock(),
                )
            else:
                window = changes.edit_window(
                    session,
                    app.actor,
                    self.edited.id,
                    config=app.config,
                    name=values.name,
                    service=values.service,
                    rrule=values.rrule,
                    start_local=values.start_local,
                    duration_minutes=values.minutes,
                    timezone=values.timezone,
                    expected_version=self.edited.version,
                    now=app.clock(),
                )
            return f"Window {window.id} saved."


class ConfirmDelete(FormScreen[bool]):
    """Delete a window or a blackout? It names what goes; the delete key of this form says yes."""

    TITLE = "Delete"
    HINT = "{windows.confirm_delete} delete · {form.cancel} keep it"
    BINDINGS = [Binding("enter,y", "save", "Delete", id="windows.confirm_delete")]

    def __init__(
        self,
        question: str,
        save: Callable[[bool], str],
        reread: Callable[[], tuple[str, Callable[[bool], str]] | None] | None = None,
    ) -> None:
        super().__init__(save=self._delete, on_refused=self._refused_here)
        self.question, self._deleting = question, save
        # After a stale delete: the question and the delete of what is there now (None: nothing is).
        self.reread = reread
        self.newer_shown = 0  # how many times a stale delete took in the newer row (tests wait for it)

    def compose_fields(self) -> ComposeResult:
        yield Static(Text(strip_control(self.question), style="bold"), id="confirm-question")

    def _delete(self, yes: bool) -> str:
        return self._deleting(yes)

    def _refused_here(self, exc: ServiceError) -> None:
        if isinstance(exc, StaleEdit) and self.reread is not None:
            self.take_newer()

    @work(thread=True, exclusive=True, group="confirm-newer", exit_on_error=False)
    def take_newer(self) -> None:
        assert self.reread is not None
        newer = self.reread()
        self.app.call_from_thread(self._newer, newer)

    def _newer(self, newer: tuple[str, Callable[[bool], str]] | None) -> None:
        if newer is None or not self.is_attached or self.saving:
            return
        self.question, self._deleting = newer
        self.query_one("#confirm-question", Static).update(Text(strip_control(self.question), style="bold"))
        self.newer_shown += 1

    def collect(self) -> bool:
        return True


# --------------------------------------------------------------------------- the screen


class WindowsScreen(DeskScreen):
    """The maintenance windows and the blackouts; Escape goes back to the calendar."""

    SCREEN_TITLE = "Windows and freezes"
    CSS_PATH = WINDOWS_STYLES
    BINDINGS = [
        Binding("n", "new_blackout", "New freeze", id="windows.new_blackout"),
        Binding("e", "edit", "Edit", id="windows.edit"),
        Binding("d", "delete", "Delete", id="windows.delete"),
        Binding("tab", "switch", "Other list", id="windows.switch"),
        Binding("N", "new_window", "New window", id="windows.new_window"),
        Binding("escape", "back", "Back", id="windows.back"),
        Binding("r", "reload", "Reload", show=False, id="windows.reload"),
    ]
    WRITES: ClassVar[tuple[str, ...]] = ("new_blackout", "new_window", "edit", "delete")

    def __init__(self, day: datetime | None = None) -> None:
        super().__init__()
        self.day = day  # where a new freeze starts (the calendar's selected day)
        self.lists: WindowLists | None = None
        self.generation = 0
        self.shown_generation = -1

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        yield Static("Maintenance windows (each in its own zone)", id="win-head-windows", classes="win-head")
        yield RecordTable[WindowRow](id="win-windows", empty="No maintenance windows.")
        yield Static("", id="win-head-blackouts", classes="win-head")
        yield RecordTable[BlackoutRow](id="win-blackouts", empty="No blackouts.")
        yield Static("", id="win-info")
        yield from self.compose_footer()

    @property
    def windows_table(self) -> RecordTable[WindowRow]:
        return self.query_one("#win-windows", RecordTable)

    @property
    def blackouts_table(self) -> RecordTable[BlackoutRow]:
        return self.query_one("#win-blackouts", RecordTable)

    @property
    def up_to_date(self) -> bool:
        return self.lists is not None and self.shown_generation == self.generation

    def on_mount(self) -> None:
        tz = self.app.actor.timezone
        self.query_one("#win-head-blackouts", Static).update(f"Blackouts (change freezes), times in {tz}")
        for table in (self.windows_table, self.blackouts_table):
            self.watch(table, "cursor", lambda _: self._draw_info(), init=False)
        self.blackouts_table.focus()
        self.reload()

    # ------------------------------------------------------------------ loading

    def reload(self) -> None:
        self.generation += 1
        self.load(self.generation)

    @work(thread=True, exclusive=True, group="windows-load", exit_on_error=False)
    def load(self, generation: int) -> None:
        with self.app.db.read_session() as session:
            lists = changes.window_lists(session)
        self.app.call_from_thread(self._loaded, generation, lists)

    def _loaded(self, generation: int, lists: WindowLists) -> None:
        if generation != self.generation:
            return
        self.lists = lists
        self.shown_generation = generation
        self.windows_table.show_rows(
            WINDOW_COLUMNS, lists.windows, window_cell, keep=lambda r: r.id, flex_min=WINDOW_NAME_MIN
        )
        self.blackouts_table.show_rows(
            BLACKOUT_COLUMNS, lists.blackouts, blackout_cells(self.app.actor.timezone), keep=lambda r: r.id
        )
        self._draw_info()

    def action_reload(self) -> None:
        self.reload()

    # ------------------------------------------------------------------ what is selected

    def current(self) -> WindowRow | BlackoutRow | None:
        """The row under the cursor of the list that has the focus (the blackouts' when neither has)."""
        if self.focused is self.windows_table:
            return self.windows_table.current
        return self.blackouts_table.current

    def _draw_info(self) -> None:
        """The selected row in a line (a window's zone named whole), then the key hints that fit beside it
        (the last left out first: they are in the footer too); a line too long alone ends in an ellipsis."""
        row = self.current()
        hints = fill_keys(self, " · {windows.edit} edit · {windows.delete} delete", " · ")
        if isinstance(row, BlackoutRow):
            reason = strip_control(row.reason, single_line=True) if row.reason else "none given"
            said = f"{row.id}: why: {reason}"
        elif isinstance(row, WindowRow):
            since = local_time(row.valid_from, row.timezone, "%Y-%m-%d")
            until = local_time(row.valid_until, row.timezone, "%Y-%m-%d") if row.valid_until else "no end"
            said = f"{row.id}: opens {row.start_local} {row.timezone}; valid from {since}, until {until}"
        else:
            said = fill_keys(self, "{windows.switch} other list")
            hints = fill_keys(self, " · {windows.new_blackout} new freeze", " · ")
        width = max(1, (self.size.width or 80) - 2)  # the line's padding
        info = Text(said)
        info.append(hints, style="dim")
        info = fit_hints(info, width, " · ", keep=len(said))
        info.truncate(width, overflow="ellipsis")  # a Static wraps a Text: cut it here, with an ellipsis
        self.query_one("#win-info", Static).update(info)

    def on_descendant_focus(self) -> None:
        self._draw_info()

    def on_resize(self) -> None:
        self._draw_info()

    # ------------------------------------------------------------------ keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The keys that write are offered only to whom the services' rule lets write windows."""
        if action in self.WRITES:
            return changes.window_refusal(self.app.actor) is None
        return True

    def action_back(self) -> None:
        self.dismiss(None)

    def action_switch(self) -> None:
        other = self.windows_table if self.focused is self.blackouts_table else self.blackouts_table
        other.focus()

    def action_new_blackout(self) -> None:
        from datetime import time, timedelta
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(self.app.actor.timezone)
        day = (self.day or self.app.clock()).astimezone(zone).date()
        start = datetime.combine(day, time(0), zone)
        self.app.push_screen(BlackoutForm(start, start + timedelta(days=1)), callback=self._after)

    def action_new_window(self) -> None:
        self.app.push_screen(WindowForm(), callback=self._after)

    def action_edit(self) -> None:
        row = self.current()
        if isinstance(row, BlackoutRow):
            self.app.push_screen(BlackoutForm(row.start, row.end, row, self.reload), callback=self._after)
        elif isinstance(row, WindowRow):
            self.app.push_screen(WindowForm(row, self.reload), callback=self._after)
        else:
            self.app.notify("Nothing selected: pick a window or a blackout first.", markup=False)

    def action_delete(self) -> None:
        row = self.current()
        if row is None:
            self.app.notify("Nothing selected: pick a window or a blackout first.", markup=False)
            return
        question, save = self._deleting(row)
        reread = self._reread_blackout if isinstance(row, BlackoutRow) else self._reread_window
        self.app.push_screen(ConfirmDelete(question, save, lambda: reread(row.id)), callback=self._after)

    def _deleting(self, row: WindowRow | BlackoutRow) -> tuple[str, Callable[[bool], str]]:
        """The question naming ``row`` and its delete, at the version shown."""
        app = self.app
        if isinstance(row, BlackoutRow):
            question = f"Delete {blackout_text(row, app.actor.timezone)}?"
        else:
            question = f"Delete {window_text(row)}?"

        def save(_: bool) -> str:
            with app.db.session() as session:
                if isinstance(row, BlackoutRow):
                    changes.delete_blackout(
                        session, app.actor, row.id, expected_version=row.version, now=app.clock()
                    )
                    return f"Blackout {row.id} deleted."
                changes.delete_window(
                    session, app.actor, row.id, expected_version=row.version, now=app.clock()
                )
                return f"Window {row.id} deleted."

        return question, save

    def _reread_blackout(self, row_id: int) -> tuple[str, Callable[[bool], str]] | None:
        """After a stale delete (in the confirmation's worker): the lists read again, and the question and
        delete of the blackout as it is now."""
        self.app.call_from_thread(self.reload)
        with self.app.db.read_session() as session:
            row = blackout_row(session, row_id)
        return self._deleting(row) if row is not None else None

    def _reread_window(self, row_id: int) -> tuple[str, Callable[[bool], str]] | None:
        self.app.call_from_thread(self.reload)
        with self.app.db.read_session() as session:
            row = window_row(session, row_id)
        return self._deleting(row) if row is not None else None

    def _after(self, result: object) -> None:
        if isinstance(result, str) and result:
            self.app.notify(result, markup=False, timeout=8)
        self.reload()
