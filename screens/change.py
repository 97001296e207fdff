"""One change (a modal over the calendar): fields, approvals, conflicts, plans, history and its actions; and
the forms the calendar uses: reason, outcome, review notes, schedule / move, new change.

The actions the viewer may not take are dimmed and say why (the role or rule) when their key is pressed; the
service decides in any case. Saves carry the version shown, so a save over someone else's newer change is
refused and the change reloads. The new-change and schedule forms check conflicts while you type (in a
worker) and show them before anything is saved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from zoneinfo import ZoneInfo

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import events, on, work
from textual.actions import parse as parse_action
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Select, Static

from itsm_tui.keymap import key_in_force
from itsm_tui.screens.change_impact import impact_line, impact_section
from itsm_tui.screens.common import WorkerErrorsToApp, literal, local_time
from itsm_tui.screens.formscreen import FORM_STYLES, FormScreen, ValuesT
from itsm_tui.services import changes
from itsm_tui.services.audit import shown_value
from itsm_tui.services.changes import ChangeBlocked, ChangeView, Impact, OutsideWindow
from itsm_tui.services.changes.risk import Questionnaire, questionnaire
from itsm_tui.services.changes.slots import SlotQuery
from itsm_tui.services.conflicts import SEVERITY_LABEL, SEVERITY_ORDER, Conflict
from itsm_tui.services.errors import ServiceError, StaleEdit, ValidationError
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from textual import getters

    from itsm_tui.app import ItsmApp
    from itsm_tui.models import Change

CHANGE_STYLES = Path(__file__).resolve().with_name("change.tcss")

SEVERITY_STYLE = {"blocked": "bold red", "conflict": "bold red", "warning": "yellow", "overridden": "cyan"}
STATE_STYLE = {
    "approved": "green",
    "scheduled": "green",
    "rejected": "red",
    "failed": "red",
    "backed_out": "red",
    "withdrawn": "dim",
    "cancelled": "red",
}
TIME_FORMAT = "%Y-%m-%d %H:%M"
POLL_SECONDS = 2.0  # how often an open change looks whether someone else acted on it


def zoned(instant: datetime | None, tz: str, fmt: str = TIME_FORMAT) -> str:
    """An instant in the viewer's zone, labelled with the zone's abbreviation (``2026-03-07 22:00 CET``)."""
    return local_time(instant, tz, f"{fmt} %Z")


# action -> (binding id, label) on the actions line, in lifecycle order (shown with the key in force)
ACTION_KEYS = {
    "submit": ("change.submit", "submit"),
    "edit": ("change.edit", "edit"),
    "withdraw": ("change.withdraw", "withdraw"),
    "assess": ("change.assess", "assess"),
    "approve": ("change.approve", "approve"),
    "reject": ("change.reject", "reject"),
    "schedule": ("change.schedule", "schedule"),
    "reschedule": ("change.schedule", "move"),
    "cancel": ("change.cancel", "cancel"),
    "start": ("change.start", "begin"),
    "complete": ("change.complete", "complete"),
    "review": ("change.review", "review"),
    "close": ("change.close", "close"),
}


def conflict_lines(found: list[Conflict], width: int | None = None, limit: int | None = None) -> Text:
    """Conflicts, worst first; with ``width`` one line each, at most ``limit``: a message too long for the
    line is said shorter, never cut before its interval (:meth:`Conflict.fitted`)."""
    ordered = sorted(found, key=lambda c: (SEVERITY_ORDER[c.severity], c.start))
    shown = ordered if limit is None or len(ordered) <= limit else ordered[: limit - 1]
    lines: list[Text] = []
    for conflict in shown:
        line = Text(f"{SEVERITY_LABEL[conflict.severity]:<8} ", style=SEVERITY_STYLE[conflict.severity])
        if width is None:
            line.append(strip_control(conflict.message, single_line=True))
        else:
            line.append(strip_control(conflict.fitted(max(20, width - line.cell_len)), single_line=True))
            line.truncate(width, overflow="ellipsis")
        lines.append(line)
    if len(shown) < len(ordered):
        lines.append(Text(f"... and {len(ordered) - len(shown)} more", style="bold"))
    return Text("\n").join(lines)


def notice_lines(notices: list[str]) -> list[Text]:
    """The change's approval notices, each a line of its own above its fields ("No possible approver"
    loudest)."""
    return [
        Text(
            f"! {strip_control(notice)}",
            style="bold red" if notice.startswith("No possible approver") else "bold yellow",
        )
        for notice in notices
    ]


def parse_when(field: str, text: str, tz: str) -> datetime:
    """A local wall-clock time (``2026-03-07 22:00``) or an ISO instant with an offset."""
    value = (text or "").strip().replace("T", " ")
    if not value:
        raise ValidationError(field, f"give the {field} as YYYY-MM-DD HH:MM ({tz})")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(field, f"{text!r} is not a time; write e.g. 2026-03-07 22:00 ({tz})") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    return parsed


# --------------------------------------------------------------------------- the change


class ChangeScreen(WorkerErrorsToApp, ModalScreen[None]):
    """One change; Escape goes back to the calendar."""

    if TYPE_CHECKING:  # the console app, typed (at run time Textual's own property)
        app = getters.app(ItsmApp)

    CSS_PATH = [CHANGE_STYLES]
    BINDINGS = [
        Binding("escape", "back", "Back", id="change.back"),
        Binding("u", "act('submit')", "Submit", id="change.submit"),
        Binding("E", "act('edit')", "Edit", id="change.edit"),
        Binding("W", "act('withdraw')", "Withdraw", id="change.withdraw"),
        Binding("C", "act('cancel')", "Cancel the change", id="change.cancel"),
        Binding("e", "act('assess')", "Assess", id="change.assess"),
        Binding("a", "act('approve')", "Approve", id="change.approve"),
        Binding("x", "act('reject')", "Reject", id="change.reject"),
        Binding("s", "act('schedule')", "Schedule/move", id="change.schedule"),
        Binding("b", "act('start')", "Begin implementing", id="change.start"),
        Binding("c", "act('complete')", "Complete", id="change.complete"),
        Binding("p", "act('review')", "Review", id="change.review"),
        Binding("z", "act('close')", "Close", id="change.close"),
        Binding("question_mark,f1", "help", "Keys", id="change.help", key_display="?"),
        Binding("ctrl+r", "reload", "Reload", id="change.reload"),
        # A modal over the calendar: the app's F5 does not reach through, so the change has its own.
        Binding("f5", "app.switch_mode('inbox')", "Inbox", show=False, id="change.inbox"),
    ]

    def __init__(self, ref: str) -> None:
        super().__init__()
        self.ref = ref
        self.view: ChangeView | None = None
        # Read with the change while the viewer may assess it (the assess form opens at once) or approve it.
        self.questionnaire: Questionnaire | None = None
        self.progress = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="change-box") as box:
            box.border_title = self.ref
            yield Static("Loading ...", id="change-head")
            with VerticalScroll(id="change-body"):
                yield Static("", id="change-fields")
            yield Static("", id="change-actions")

    def on_mount(self) -> None:
        self.query_one("#change-body").focus()
        self.load()
        self.set_interval(POLL_SECONDS, self.check_for_changes)

    def check_for_changes(self) -> None:
        """Reload when someone else acted on the change (its version moved on): never while a form or
        another screen is over this one, nor before the change is shown."""
        if self.view is None or self.app.screen is not self:
            return
        self.poll(self.view.ref, self.view.version)

    @work(thread=True, exclusive=True, group="change-poll", exit_on_error=False)
    def poll(self, ref: str, shown: int) -> None:
        with self.app.db.read_session() as session:
            current = changes.version_of(session, ref)
        if current is not None and current != shown:
            self.app.call_from_thread(self._moved_on, shown)

    def _moved_on(self, shown: int) -> None:
        if self.view is not None and self.view.version == shown and self.app.screen is self:
            self.load()

    @work(thread=True, exclusive=True, group="change-load", exit_on_error=False)
    def load(self) -> None:
        app = self.app
        with app.db.read_session() as session:
            change = changes.get_change(session, self.ref)
            view = changes.view(session, app.config, change, app.actor, app.clock())
            asks = view.actions.get("assess") is None
            asked = questionnaire(session, app.config, change, app.clock()) if asks else None
            progress = changes.approval_progress(session, app.config, change)
        app.call_from_thread(self._loaded, view, asked, progress)

    def _loaded(self, view: ChangeView, questionnaire: Questionnaire | None, progress: str) -> None:
        self.questionnaire, self.progress = questionnaire, progress
        self.show(view)

    def _asked(self, result: str | None) -> None:
        """An asking form (change_assess.py) closed: it told what it did; the change is read again."""
        self.load()

    def action_reload(self) -> None:
        self.load()

    def action_back(self) -> None:
        self.dismiss(None)

    def show(self, view: ChangeView) -> None:
        self.view = view
        tz = self.app.actor.timezone
        head = Text()
        head.append(f"{view.ref} ", style="bold")
        head.append(f"{view.change_type} ", style="bold")
        head.append(view.state, style=f"bold {STATE_STYLE.get(view.state, 'yellow')}")
        head.append(f"  {view.risk} risk  v{view.version}\n")
        head.append_text(literal(view.title, style="bold"))
        if view.history_warning:  # the change's audit chain is broken: said above everything else
            head.append("\n" + view.history_warning, style="bold red")
        self.query_one("#change-head", Static).update(head)

        fields = Table.grid(padding=(0, 1))
        fields.add_column(style="dim", no_wrap=True)
        fields.add_column()

        def window(start: datetime | None, end: datetime | None) -> str:
            return f"{zoned(start, tz)} - {zoned(end, tz)}"

        planned = f"{window(view.planned_start, view.planned_end)} ({tz})"
        for label, value in view.fields(planned, window, lambda text: Text(strip_control(text))):
            fields.add_row(label, value)
        parts: list[RenderableType] = [*notice_lines(view.notices), fields]
        if view.conflicts:
            parts += [Text("\nConflicts", style="bold"), conflict_lines(view.conflicts)]
        else:
            parts.append(Text("\nNo conflicts.", style="green"))
        if view.impact is not None:
            parts.append(impact_section(view.impact))
        if view.approvals:
            approvals = Table.grid(padding=(0, 1))
            for approval in view.approvals:
                shown = approval.shown or approval.decision
                style = {"approved": "green", "rejected": "red", "pending": "yellow"}.get(shown, "dim")
                approvals.add_row(
                    approval.login,
                    Text(shown, style=style),
                    zoned(approval.decided_at, tz) if approval.decided_at else "",
                    Text(strip_control(approval.reason or "", single_line=True)),
                )
            parts += [Text("\nApprovals", style="bold"), approvals]
        for label, value in view.plans():
            parts += [Text(f"\n{label}", style="bold"), Text(strip_control(value))]
        if view.history:
            history = Table.grid(padding=(0, 1))
            zone = ZoneInfo(tz)
            for item in view.history[:40]:
                old, new = shown_value(item.old, zone, True), shown_value(item.new, zone, True)
                what = f"{item.field}: {old} -> {new}" if item.old else f"{item.field}: {new}"
                history.add_row(
                    zoned(item.at, tz, "%m-%d %H:%M"),
                    item.by,
                    Text(strip_control(what, single_line=True), overflow="ellipsis", no_wrap=True),
                )
            parts += [Text("\nHistory (newest first)", style="bold"), history]
        body = self.query_one("#change-body", VerticalScroll)
        kept = body.scroll_y  # a reload (someone else acted on it) keeps the reader's place
        self.query_one("#change-fields", Static).update(Group(*parts))
        if kept:
            self.call_after_refresh(body.scroll_to, y=kept, animate=False)
        self._show_actions()

    def _show_actions(self) -> None:
        """The keys of the actions open to the viewer now (any other key says why not)."""
        line = Text()
        view = self.view
        if view is None:
            return
        shown: set[str] = set()
        for action, (binding_id, label) in ACTION_KEYS.items():
            if binding_id in shown or self.refusal(action) is not None:
                continue
            shown.add(binding_id)
            if action in ("schedule", "reschedule"):
                label = "schedule" if view.actions.get("schedule") is None else "move"
            key = key_in_force(self, binding_id)
            if key:
                line.append(f"{key} ", style="bold")
                line.append(f"{label}  ")
            else:  # unbound by the user's key file: the command palette still offers it
                line.append(f"{label} (ctrl+p)  ")
        if not shown:
            line.append("No action is open to you now (a key says why).  ", style="dim")
        back = key_in_force(self, "change.back")
        if back:
            line.append(f"{back} ", style="bold")
            line.append("back")
        self.query_one("#change-actions", Static).update(line)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A step the viewer may not take now (the change's guards, as the actions line says) is shown
        disabled and not offered in the palette; its key says why (:meth:`on_key`)."""
        if action == "act" and self.view is not None and parameters:
            return None if self.refusal(str(parameters[0])) is not None else True
        return True

    def on_key(self, event: events.Key) -> None:
        """A disabled step's key says why instead of doing nothing."""
        active = self.active_bindings.get(event.key)
        if active is None or active.enabled or active.node is not self:
            return
        _, name, parameters = parse_action(active.binding.action)
        if name == "act" and parameters:
            event.stop()
            event.prevent_default()
            self.action_act(str(parameters[0]))

    def action_help(self) -> None:
        """The key help over the change (the app's ? is not in force over this modal screen)."""
        from itsm_tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))

    def refusal(self, action: str) -> str | None:
        if self.view is None:
            return "the change is still loading"
        actions = self.view.actions
        if action == "schedule" and (actions.get("schedule") is None or actions.get("reschedule") is None):
            return None  # s schedules an approved change and moves any other
        return actions.get(action)

    # ----------------------------------------------------------------- actions

    def action_act(self, action: str) -> None:
        reason = self.refusal(action)
        view = self.view
        if reason is not None or view is None:
            self.app.notify(
                reason or "the change is still loading",
                title=f"Cannot {action}",
                severity="warning",
                markup=False,
                timeout=8,
            )
            return
        app, ref, version = self.app, view.ref, view.version
        if action == "reject":
            app.push_screen(ReasonForm(f"Reject {ref}", reject_saver(app, ref, version), True), self._done)
        elif action == "schedule":
            app.push_screen(
                ScheduleForm(
                    ref, view.change_type, view.state, view.planned_start, view.planned_end, version
                ),
                self._done,
            )
        elif action == "complete":
            app.push_screen(CompleteForm(ref, version), self._done)
        elif action in ("edit", "withdraw", "cancel"):  # their forms: change_edit.py, through the app
            app.push_screen(app.change_step_form(action, view, self.load), self._done)
        elif action == "review":
            save = _saver(app, changes.start_review, ref, version, "notes")
            app.push_screen(NotesForm(f"Review {ref}", "Findings", save, required=False), self._done)
        elif action == "close" and view.state == "review" and not view.review_notes:
            save = _saver(app, changes.close, ref, version, "review_notes")
            app.push_screen(NotesForm(f"Close {ref}", "Review notes", save, required=True), self._done)
        elif action in ("assess", "approve", "close") and (action != "assess" or self.questionnaire):
            from itsm_tui.screens.change_assess import ApproveForm, AssessForm, CloseForm

            form: AssessForm | ApproveForm | CloseForm
            if action == "assess" and self.questionnaire is not None:
                form = AssessForm(ref, version, self.questionnaire)
            elif action == "approve":
                form = ApproveForm(app, view, self.progress)
            else:
                form = CloseForm(view)
            app.push_screen(form, self._asked)
        else:
            self.run_step(action, version)

    @work(thread=True, exclusive=True, group="change-step", exit_on_error=False)
    def run_step(self, action: str, version: int) -> None:
        app = self.app
        steps: dict[str, Callable[..., Change]] = {
            "submit": changes.submit,
            "assess": changes.assess,
            "approve": changes.approve,
            "start": changes.start_implementation,
            "close": changes.close,
        }
        fn = steps[action]
        try:
            with app.db.session() as session:
                change = fn(
                    session, app.config, app.actor, self.ref, expected_version=version, now=app.clock()
                )
                state = changes.approval_progress(session, app.config, change)
                notice = changes.approver_notice(session, app.config, change)
        except ChangeBlocked as exc:
            if self.view and self.view.change_type == "emergency" and action == "submit":
                app.call_from_thread(
                    self._ask_override, changes.submit, "Override the blackout for {ref}", str(exc)
                )
                return
            app.call_from_thread(
                app.notify, str(exc), title="Blocked", severity="error", markup=False, timeout=10
            )
            return
        except OutsideWindow as exc:  # a change manager starting outside the window: ask why
            app.call_from_thread(
                self._ask_override,
                changes.start_implementation,
                "Start {ref} outside its window",
                str(exc),
            )
            return
        except ServiceError as exc:
            app.call_from_thread(
                app.notify, str(exc), title=f"Not done: {action}", severity="error", markup=False, timeout=10
            )
            if isinstance(exc, StaleEdit):
                app.call_from_thread(self.load)
            return
        app.call_from_thread(app.notify, f"{self.ref}: {state}.", title=action.capitalize(), markup=False)
        if notice is not None:
            app.call_from_thread(
                app.notify,
                notice,
                title="Nobody can approve it",
                severity="warning",
                markup=False,
                timeout=15,
            )
        app.call_from_thread(self.load)

    def _ask_override(self, step: Callable[..., Change], title: str, message: str) -> None:
        """Ask the change manager why ``step`` (submitting over a blackout, starting outside the window)
        should go ahead anyway; the reason is saved with the step (its ``override_reason``)."""
        view = self.view
        if view is None:
            return
        save = _saver(self.app, step, view.ref, view.version, "override_reason")
        form = ReasonForm(
            title.format(ref=view.ref), save, required=True, note=message, label="Override reason"
        )
        self.app.push_screen(form, self._done)

    def _done(self, result: str | None) -> None:
        if (
            result in ("assessed", "submitted")
            and self.view
            and self.view.state not in ("assessed", "submitted")
        ):
            self.app.notify(
                f"{self.ref} moved: it is {result} again, awaiting approval for its new window.",
                title="Sent back for approval",
                severity="warning",
                markup=False,
                timeout=10,
            )
        elif result:
            self.app.notify(f"{self.ref} saved.", markup=False)
        self.load()


# --------------------------------------------------------------------------- forms


@dataclass(frozen=True)
class ReasonValues:
    text: str


@dataclass(frozen=True)
class OutcomeValues:
    outcome: str
    note: str


@dataclass(frozen=True)
class WindowValues:
    start: datetime
    end: datetime | None
    override: str | None


@dataclass(frozen=True)
class NewChangeValues:
    change_type: str
    template: str | None
    title: str | None
    targets: tuple[str, ...]
    start: datetime
    end: datetime | None
    risk: str | None
    implementer: str | None
    implementation_plan: str | None
    backout_plan: str | None
    test_plan: str | None
    override: str | None
    submit: bool


def _step(app: ItsmApp, step: Callable[..., Change], ref: str, version: int, **fields: object) -> str:
    """Run one change service step on ``ref`` in a session of its own, as the console's user at the console's
    clock, against the version shown; the change's state after it."""
    with app.db.session() as session:
        change = step(
            session, app.config, app.actor, ref, expected_version=version, now=app.clock(), **fields
        )
        return change.state


def _saver(
    app: ItsmApp, step: Callable[..., Change], ref: str, version: int, field: str
) -> Callable[[ReasonValues], str]:
    """A save function (run in the form's worker) calling one change service step with one text field."""

    def save(values: ReasonValues) -> str:
        return _step(app, step, ref, version, **{field: values.text})

    return save


def reject_saver(app: ItsmApp, ref: str, version: int) -> Callable[[ReasonValues], str]:
    return _saver(app, changes.reject, ref, version, "reason")


class ChangeForm(FormScreen[ValuesT]):
    """A form of the change screen or the calendar: its rows packed close, so an error shows on the top line
    (naming the field); a form that ``SHOW_CONFLICTS`` checks the conflicts saving would meet while the
    fields are filled in (in a worker) and shows them under the fields. A form with ``start`` and ``end``
    fields that says what to look for (:meth:`slot_query`) offers the next free slots (change_slots.py).

    It closes with what ``save`` returns (the change's new state, or its reference).
    """

    CSS_PATH = [FORM_STYLES, CHANGE_STYLES]
    TITLE = "Change"
    ERRORS_BESIDE_FIELDS = False
    SHOW_CONFLICTS: ClassVar[bool] = False
    # A form whose fields hold times says in which zone, above its fields ("Times in Europe/Berlin.").
    TIMES_NOTE: ClassVar[bool] = False
    BINDINGS = [Binding("ctrl+f", "find_slot", "Next free slot", id="form.find_slot")]
    HINT = (
        "{form.save} save · {form.find_slot} free slot · tab next field · {form.cancel} cancel · "
        "{form.help} keys"
    )

    def __init__(
        self, save: Callable[[ValuesT], str], *, title: str | None = None, note: str | None = None
    ) -> None:
        super().__init__(save=save, title=title, note=note)
        self.previewed: list[Conflict] | None = None  # the conflicts last shown (tests wait for them)
        self.preview_generation = 0
        self.preview_shown = -1

    def compose(self) -> ComposeResult:
        if self.TIMES_NOTE and self.note is None:
            self.note = f"Times in {self.app.actor.timezone}."
        yield from super().compose()

    def compose_below_fields(self) -> ComposeResult:
        if self.SHOW_CONFLICTS:
            yield Static(Text("Conflicts show here as you type.", style="dim"), id="form-conflicts")

    def value(self, name: str) -> str:
        """What is typed in the field ``name``, without the spaces around it."""
        return self.text_of(name).strip()

    def error_text(self, exc: ServiceError) -> str:
        """The service's words, naming the field (nothing is reloaded underneath a change's form)."""
        return f"{exc.field}: {exc}" if isinstance(exc, ValidationError) else str(exc)

    # ----------------------------------------------------------------- conflicts before saving

    # ----------------------------------------------------------------- the next free slot

    def slot_query(self) -> SlotQuery | None:
        """What the find-slot key looks for (the targets, implementer and length typed so far, or the change
        moved); a ValidationError says what to fill in first. None: this form finds no slots."""
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "find_slot":  # offered by the forms that say what to look for
            return type(self).slot_query is not ChangeForm.slot_query
        return True

    def action_find_slot(self) -> None:
        from itsm_tui.screens.change_slots import find_slot

        find_slot(self)

    def preview_values(self) -> ValuesT | None:
        """What the preview checks, or None if the form cannot be checked yet."""
        return None

    def schedule_preview(self) -> None:
        if not self.SHOW_CONFLICTS or not self.is_mounted:
            return
        self.preview_generation += 1
        generation = self.preview_generation
        self.set_timer(0.25, lambda: self._start_preview(generation))

    def _start_preview(self, generation: int) -> None:
        if generation != self.preview_generation:
            return  # typed on since
        try:
            values = self.preview_values()
        except ValidationError as exc:
            self._show_preview(generation, None, self.error_text(exc))
            return
        if values is not None:
            self.run_preview(generation, values)

    @work(thread=True, exclusive=True, group="change-form-preview", exit_on_error=False)
    def run_preview(self, generation: int, values: ValuesT) -> None:
        try:
            with self.app.db.read_session() as session:
                found = self.check(session, values)
        except ServiceError as exc:
            self.app.call_from_thread(self._show_preview, generation, None, self.error_text(exc))
            return
        self.app.call_from_thread(self._show_preview, generation, found, None)

    def check(self, session: Session, values: ValuesT) -> list[Conflict]:
        raise NotImplementedError

    def _show_preview(self, generation: int, found: list[Conflict] | None, problem: str | None) -> None:
        if generation != self.preview_generation:
            return
        panel = self.query_one("#form-conflicts", Static)
        self.preview_shown = generation
        self.previewed = found
        if problem is not None:
            panel.update(Text(f"Not checked yet: {strip_control(problem, single_line=True)}", style="dim"))
        elif not found:
            panel.update(Text("No conflicts.", style="green"))
        else:
            panel.update(conflict_lines(found, width=max(20, panel.size.width or 74), limit=5))

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        self.schedule_preview()

    def on_mount(self) -> None:
        self.schedule_preview()


class ReasonForm(ChangeForm[ReasonValues]):
    """One line of text: a rejection reason, an approval note, a blackout override reason."""

    PLACEHOLDER: ClassVar[str] = "why (the requester reads it)"
    # The service's name for the text, when it refuses an empty one.
    FIELD: ClassVar[str] = "reason"
    REQUIRED_MESSAGE: ClassVar[str] = "say why (it is recorded in the audit trail)"

    def __init__(
        self,
        title: str,
        save: Callable[[ReasonValues], str],
        required: bool = True,
        *,
        note: str | None = None,
        label: str = "Reason",
    ) -> None:
        super().__init__(save, title=title, note=note)
        self.required = required
        self.label = label

    def compose_fields(self) -> ComposeResult:
        yield from self.row("reason", self.label, Input(id="reason", placeholder=self.PLACEHOLDER))

    def on_mount(self) -> None:
        self.field("reason").focus()

    def collect(self) -> ReasonValues:
        text = self.value("reason")
        if self.required and not text:
            raise ValidationError(self.FIELD, self.REQUIRED_MESSAGE)
        return ReasonValues(text)


class NotesForm(ReasonForm):
    """What a review found: its notes (required to close a reviewed change)."""

    PLACEHOLDER = "what happened, what was learnt"
    FIELD = "review_notes"
    REQUIRED_MESSAGE = "record the review's findings to close the change"

    def __init__(self, title: str, label: str, save: Callable[[ReasonValues], str], required: bool) -> None:
        super().__init__(title, save, required, label=label)


class CompleteForm(ChangeForm[OutcomeValues]):
    """How the implementation ended, and a note (needed unless it went as planned)."""

    TITLE = "Record the outcome"

    def __init__(self, ref: str, version: int) -> None:
        self.ref, self.version = ref, version
        super().__init__(self._store, title=f"Outcome of {ref}")

    def compose_fields(self) -> ComposeResult:
        outcomes = [("implemented", "implemented"), ("failed", "failed"), ("backed out", "backed_out")]
        yield from self.row(
            "outcome", "Outcome", Select(outcomes, value="implemented", allow_blank=False, id="outcome")
        )
        yield from self.row(
            "note", "Note", Input(id="note", placeholder="what happened (needed unless implemented)")
        )

    def on_mount(self) -> None:
        self.field("outcome").focus()

    def collect(self) -> OutcomeValues:
        return OutcomeValues(self.choice("outcome") or "implemented", self.value("note"))

    def _store(self, values: OutcomeValues) -> str:
        return _step(
            self.app, changes.complete, self.ref, self.version, outcome=values.outcome, note=values.note
        )


class ScheduleForm(ChangeForm[WindowValues]):
    """Schedule an approved change or move one to a new window; its conflicts show before saving."""

    SHOW_CONFLICTS = True
    TIMES_NOTE = True

    def __init__(
        self,
        ref: str,
        change_type: str,
        state: str,
        start: datetime | None,
        end: datetime | None,
        version: int,
    ) -> None:
        self.ref, self.change_type, self.state, self.version = ref, change_type, state, version
        self.start, self.end = start, end
        super().__init__(self._store, title=f"{'Schedule' if state == 'approved' else 'Move'} {ref}")

    def compose_fields(self) -> ComposeResult:
        tz = self.app.actor.timezone
        start = local_time(self.start, tz, TIME_FORMAT) if self.start else ""
        end = local_time(self.end, tz, TIME_FORMAT) if self.end else ""
        yield from self.row("start", "Start", Input(start, id="start"))
        yield from self.row("end", "End", Input(end, id="end"))
        yield from self.row(
            "override",
            "Override",
            Input(id="override", placeholder="emergency in a blackout: why"),
            hidden=self.change_type != "emergency",
        )

    def on_mount(self) -> None:
        self.field("start").focus()
        super().on_mount()

    def collect(self) -> WindowValues:
        tz = self.app.actor.timezone
        start = parse_when("start", self.value("start"), tz)
        end = parse_when("end", self.value("end"), tz) if self.value("end") else None
        return WindowValues(start, end, self.value("override") or None)

    def preview_values(self) -> WindowValues:
        return self.collect()

    def slot_query(self) -> SlotQuery:
        """The change's own targets and implementer, as long as the window typed (else as it is)."""
        try:
            values = self.collect()
        except ValidationError:
            return SlotQuery(ref=self.ref)
        return SlotQuery(ref=self.ref, duration=values.end - values.start if values.end else None)

    def check(self, session: Session, values: WindowValues) -> list[Conflict]:
        return changes.preview_move(
            session, self.app.config, self.ref, values.start, values.end, values.override
        )

    def _store(self, values: WindowValues) -> str:
        step = changes.schedule if self.state == "approved" else changes.reschedule
        return _step(
            self.app,
            step,
            self.ref,
            self.version,
            start=values.start,
            end=values.end,
            override_reason=values.override,
        )


class NewChangeForm(ChangeForm[NewChangeValues]):
    """Raise a change (and submit it); the conflicts it would have show while the fields are filled in.

    It closes with the new change's reference."""

    TITLE = "New change"
    SHOW_CONFLICTS = True
    TIMES_NOTE = True

    def __init__(self, start: datetime) -> None:
        super().__init__(self._store)
        self.start = start
        self.impact: Impact | None = None  # what the targets typed touch, as last shown
        self._checked_impact: Impact | None = None  # found by the preview's worker, shown with its conflicts

    def compose_below_fields(self) -> ComposeResult:
        yield from super().compose_below_fields()
        yield Static(impact_line(None), id="form-impact")

    def _show_preview(self, generation: int, found: list[Conflict] | None, problem: str | None) -> None:
        super()._show_preview(generation, found, problem)
        if generation == self.preview_generation:
            self.impact = self._checked_impact if problem is None else None
            self.query_one("#form-impact", Static).update(impact_line(self.impact, problem))

    def compose_fields(self) -> ComposeResult:
        config = self.app.config
        tz = self.app.actor.timezone
        types = [("normal", "normal"), ("standard (template)", "standard"), ("emergency", "emergency")]
        templates = [(f"{t.code}: {t.title}", t.code) for t in config.changes.templates.values()]
        end = self.start + timedelta(hours=2)
        yield from self.row("type", "Type", Select(types, value="normal", allow_blank=False, id="type"))
        yield from self.row(
            "template", "Template", Select(templates, prompt="pick a template", id="template"), hidden=True
        )
        yield from self.row("title", "Title", Input(id="title", placeholder="what changes"))
        yield from self.row(
            "targets", "Targets", Input(id="targets", placeholder="services or CIs: network, core-sw-01")
        )
        yield from self.row("start", "Start", Input(local_time(self.start, tz, TIME_FORMAT), id="start"))
        yield from self.row("end", "End", Input(local_time(end, tz, TIME_FORMAT), id="end"))
        yield from self.row(
            "risk",
            "Risk",
            Select([(r, r) for r in ("low", "medium", "high")], value="medium", allow_blank=False, id="risk"),
        )
        yield from self.row(
            "implementer", "Implementer", Input(self.app.actor.login, id="implementer", placeholder="login")
        )
        yield from self.row("plan", "Plan", Input(id="plan", placeholder="implementation plan"))
        yield from self.row("backout", "Back-out", Input(id="backout", placeholder="back-out plan"))
        yield from self.row("test", "Test", Input(id="test", placeholder="test plan (optional)"))
        yield from self.row(
            "override",
            "Override",
            Input(id="override", placeholder="emergency in a blackout: why"),
            hidden=True,
        )
        yield from self.row("submit", "Submit now", Checkbox("submit when saved", value=True, id="submit"))

    def on_mount(self) -> None:
        self.field("type").focus()
        super().on_mount()

    @on(Select.Changed, "#type")
    def _type_changed(self, event: Select.Changed) -> None:
        standard = event.value == "standard"
        self.set_row_visible("template", standard)
        for name in ("plan", "backout", "test", "risk"):
            self.set_row_visible(name, not standard)
        self.set_row_visible("override", event.value == "emergency")

    def collect(self) -> NewChangeValues:
        tz = self.app.actor.timezone
        change_type = self.choice("type") or "normal"
        standard = change_type == "standard"
        return NewChangeValues(
            change_type=change_type,
            template=self.choice("template") if standard else None,
            title=self.value("title") or None,
            targets=(self.value("targets"),),
            start=parse_when("start", self.value("start"), tz),
            end=parse_when("end", self.value("end"), tz) if self.value("end") else None,
            risk=None if standard else self.choice("risk"),
            implementer=self.value("implementer") or None,
            implementation_plan=None if standard else self.value("plan"),
            backout_plan=None if standard else self.value("backout"),
            test_plan=None if standard else self.value("test"),
            override=self.value("override") or None,
            submit=self.checked("submit"),
        )

    def preview_values(self) -> NewChangeValues:
        values = self.collect()
        if not values.targets[0]:
            raise ValidationError("targets", "name the affected services or CIs")
        return values

    def slot_query(self) -> SlotQuery:
        """The targets, implementer and type typed, as long as the window typed (a standard change without
        an end: its template's longest)."""
        values = self.preview_values()
        templates = self.app.config.changes.templates
        if values.end is not None:
            length = values.end - values.start
        elif values.change_type == "standard" and values.template in templates:
            length = timedelta(minutes=templates[values.template].duration_minutes)
        else:
            raise ValidationError("end", "give the planned end: the slot is as long as the change")
        return SlotQuery(values.targets, values.implementer, length, values.change_type)

    def check(self, session: Session, values: NewChangeValues) -> list[Conflict]:
        found = changes.preview(
            session,
            self.app.config,
            change_type=values.change_type,
            targets=list(values.targets),
            start=values.start,
            end=values.end,
            template=values.template,
            implementer=values.implementer,
            override_reason=values.override,
        )
        config = self.app.config
        services, cis = changes.targets_scope(changes.parse_targets(config, values.targets))
        self._checked_impact = changes.impact.impact(
            session, config, services=services, cis=cis, now=self.app.clock()
        )
        return found

    def _store(self, values: NewChangeValues) -> str:
        app = self.app
        with app.db.session() as session:
            change = changes.create_change(
                session,
                app.config,
                app.actor,
                change_type=values.change_type,
                template=values.template,
                title=values.title,
                targets=list(values.targets),
                start=values.start,
                end=values.end,
                risk=values.risk,
                implementer=values.implementer,
                implementation_plan=values.implementation_plan,
                backout_plan=values.backout_plan,
                test_plan=values.test_plan,
                now=app.clock(),
            )
            notice = None
            if values.submit:
                changes.submit(
                    session,
                    app.config,
                    app.actor,
                    change.ref,
                    override_reason=values.override,
                    now=app.clock(),
                )
                notice = changes.approver_notice(session, app.config, change)
        if notice is not None:  # logged all the same (an emergency must be), but said loudly
            app.call_from_thread(
                app.notify,
                notice,
                title="Nobody can approve it",
                severity="warning",
                markup=False,
                timeout=15,
            )
        return change.ref
