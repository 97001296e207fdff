"""The next free slots for a change, picked from a change form (the form's ``{form.find_slot}`` key).

A change form that has ``start`` and ``end`` fields says what to look for (:meth:`ChangeForm.slot_query`:
the targets, implementer and length typed so far, or the change being moved); :class:`SlotPicker` asks the
service for the next slots in a worker and lists them in the viewer's zone, labelled with it. The chosen
slot goes into the form's start and end fields as the form reads them (local wall-clock time, with the
offset only where the local time occurs twice), which re-runs the form's conflict preview; leaving the
picker leaves the form as it was.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from itsm_tui.keymap import fill_keys
from itsm_tui.screens.common import WorkerErrorsToApp
from itsm_tui.services import changes
from itsm_tui.services.changes import Slot, SlotQuery
from itsm_tui.services.errors import ServiceError, ValidationError
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from textual import getters
    from textual.widget import Widget

    from itsm_tui.app import ItsmApp

SLOTS_STYLES = Path(__file__).resolve().with_name("change_slots.tcss")
FIELD_FORMAT = "%Y-%m-%d %H:%M"  # as the change forms show and read their times (change.TIME_FORMAT)
COUNT = 5


def field_text(instant: datetime, tz: str) -> str:
    """``instant`` as a change form's time field takes it: the wall-clock time in ``tz``, with its offset
    only when that wall-clock time would be read as another instant (the hour that occurs twice)."""
    zone = ZoneInfo(tz)
    local = instant.astimezone(zone)
    text = local.strftime(FIELD_FORMAT)
    if local.replace(tzinfo=None).replace(tzinfo=zone) != instant:
        offset = local.strftime("%z")
        text += f"{offset[:3]}:{offset[3:]}"
    return text


def slot_text(slot: Slot, tz: str) -> Text:
    """One slot on one line: its start and end in ``tz`` labelled with the zone, and its window."""
    zone = ZoneInfo(tz)
    start, end = slot.start.astimezone(zone), slot.end.astimezone(zone)
    until = end.strftime("%H:%M %Z") if end.date() == start.date() else end.strftime("%a %m-%d %H:%M %Z")
    line = Text(f"{start:%a %Y-%m-%d %H:%M %Z} - {until}", no_wrap=True, overflow="ellipsis")
    if slot.window:
        line.append(f"  {strip_control(slot.window, single_line=True)}", style="dim")
    return line


class SlotForm(Protocol):
    """A change form that finds slots (:class:`~itsm_tui.screens.change.ChangeForm` with ``start`` and
    ``end`` fields and a ``slot_query``), as this module uses it."""

    @property
    def app(self) -> ItsmApp: ...

    @property
    def is_attached(self) -> bool: ...

    def slot_query(self) -> SlotQuery | None: ...

    def clear_errors(self) -> None: ...

    def show_error(self, exc: ServiceError) -> None: ...

    def field(self, name: str) -> Widget: ...


def find_slot(form: SlotForm) -> None:
    """What the form's find-slot key does: ask the form what to look for (a refusal shows on the form),
    open the picker, and put the slot chosen into the form."""
    try:
        query = form.slot_query()
    except ValidationError as exc:
        form.clear_errors()
        form.show_error(exc)
        return
    if query is None:
        return
    form.clear_errors()  # what it said to fill in is filled in now
    what = query.ref or "the new change"
    form.app.push_screen(SlotPicker(query, f"Free slots for {what}"), lambda slot: put_slot(form, slot))


def put_slot(form: SlotForm, slot: Slot | None) -> None:
    """The chosen slot into the form's start and end fields (nothing chosen: the form stays as it was)."""
    if slot is None or not form.is_attached:
        return
    tz = form.app.actor.timezone
    for name, instant in (("start", slot.start), ("end", slot.end)):
        field = form.field(name)
        assert isinstance(field, Input), f"the field {name} is a text input"
        field.value = field_text(instant, tz)
    form.clear_errors()
    form.field("start").focus()


class SlotPicker(WorkerErrorsToApp, ModalScreen[Slot | None]):
    """The next free slots for what a change form holds; the one chosen is what it closes with."""

    if TYPE_CHECKING:  # the console app, typed (at run time Textual's own property)
        app = getters.app(ItsmApp)

    CSS_PATH = [SLOTS_STYLES]
    BINDINGS = [
        Binding("escape", "back", "Back to the form", id="slots.back"),
        # A priority binding: the list's own Enter would take it first otherwise.
        Binding("enter", "pick", "Put the slot into the form", id="slots.pick", priority=True),
        Binding("f1,question_mark", "help", "Keys", id="slots.help", key_display="F1"),
    ]
    HINT = "{slots.pick} put it into the form · {slots.back} back, the form as it was · {slots.help} keys"

    def __init__(self, query: SlotQuery, title: str, count: int = COUNT) -> None:
        super().__init__()
        self.query_of_form = query
        self.title_text = title
        self.count = count
        self.slots: list[Slot] | None = None  # what is listed (None: still looking); tests wait for it
        self.problem: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="slots-box") as box:
            box.border_title = strip_control(self.title_text, single_line=True)
            yield Static(Text("Looking for the next free slots ...", style="dim"), id="slots-head")
            yield OptionList(id="slots-list", markup=False)
            yield Static(fill_keys(self, self.HINT), id="slots-hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#slots-list", OptionList).focus()
        self.find()

    @work(thread=True, exclusive=True, group="change-slots", exit_on_error=False)
    def find(self) -> None:
        app = self.app
        try:
            with app.db.read_session() as session:
                found = changes.find_slots(
                    session, app.config, self.query_of_form, count=self.count, now=app.clock()
                )
        except ServiceError as exc:
            text = f"{exc.field}: {exc}" if isinstance(exc, ValidationError) else str(exc)
            app.call_from_thread(self._show, [], text)
            return
        app.call_from_thread(self._show, found, None)

    def _show(self, found: list[Slot], problem: str | None) -> None:
        tz = self.app.actor.timezone
        head = self.query_one("#slots-head", Static)
        listed = self.query_one("#slots-list", OptionList)
        listed.clear_options()
        self.problem = problem
        if problem is not None:
            head.update(Text(f"No slot looked for: {strip_control(problem, single_line=True)}", style="bold"))
        elif not found:
            days = self.app.config.changes.slot_horizon_days
            head.update(Text(f"No free slot in the next {days} days.", style="bold"))
        else:
            head.update(Text(f"The next {len(found)} free slots, times in {tz}:"))
            listed.add_options([Option(slot_text(slot, tz), id=str(n)) for n, slot in enumerate(found)])
            listed.highlighted = 0
        listed.display = bool(found)
        self.slots = found
        self.refresh_bindings()
        self.query_one("#slots-hint", Static).update(fill_keys(self, self.HINT))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pick":
            return bool(self.slots)
        return True

    def action_pick(self) -> None:
        listed = self.query_one("#slots-list", OptionList)
        if self.slots and listed.highlighted is not None:
            self.dismiss(self.slots[listed.highlighted])

    @on(OptionList.OptionSelected, "#slots-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if self.slots:
            self.dismiss(self.slots[event.option_index])

    def action_back(self) -> None:
        self.dismiss(None)

    def action_help(self) -> None:
        from itsm_tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))
