"""The console's modal form, which the ticket forms (forms.py) and the change forms (change.py) are made of.

A form is a ``ModalScreen`` typed by the values it collects (a small frozen dataclass) and by what its save
returns (text by default: a message or a reference); Escape cancels with None. The caller passes ``save``: a
blocking function that runs the service call in the form's thread worker, for example::

    def save(values: AssignValues) -> str:  # runs in a worker thread
        with app.db.session() as session:
            tickets.assign(session, app.config, app.actor, ref, assignee=values.login, group=values.group,
                           expected_version=version_shown)
        return f"{ref} assigned to {values.login}."

    app.push_screen(AssignForm(save=save), callback=after_assign)

The form closes with ``save``'s return value only when the save succeeded. A refusal (a
:class:`~itsm_tui.services.errors.ServiceError`) keeps the form open with everything typed, shows the message
next to the field named by ``ValidationError.field`` (or at the top) and calls ``on_refused(exc)`` on the UI
thread, so that the screen underneath can reload (e.g. on :class:`StaleEdit`). A save that fails otherwise
(the database, a fault) keeps the form open too, says it was not saved, and goes on to the console's handler
of failed workers, which logs it or says that the database is gone.

User text (titles, error messages quoting input) is always rendered literally.

``ctrl+e`` in any form's text area hands its text to the user's editor (``$VISUAL``, ``$EDITOR``, else
``vi``) on the console's own terminal, and puts the edited text back (:func:`edit_in_editor`).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Generic, NamedTuple, Required, TypedDict

from rich.text import Text
from textual import events, on, work
from textual.actions import SkipAction
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static, TextArea
from textual.widgets.select import NoSelection
from textual.worker import Worker, WorkerState
from typing_extensions import TypeVar  # a type parameter's default (typing has it from Python 3.13)

from itsm_tui.keymap import fill_keys
from itsm_tui.screens.common import WorkerErrorsToApp, database_busy, failure_message, local_time
from itsm_tui.services.errors import NotFound, ServiceError, StaleEdit, ValidationError
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from textual import getters

    from itsm_tui.app import ItsmApp

FORM_STYLES = Path(__file__).resolve().with_name("formscreen.tcss")  # absolute: found from subclasses too
SAVE_GROUP = "form-save"

ValuesT = TypeVar("ValuesT")
ChoiceT = TypeVar("ChoiceT")
ResultT = TypeVar("ResultT", default=str)
WidgetT = TypeVar("WidgetT", bound=Widget)


class FormArgs(TypedDict, Generic[ValuesT, ResultT], total=False):
    """What every form is given (see :class:`FormScreen`), for the ``**options`` a form passes on."""

    save: Required[Callable[[ValuesT], ResultT]]
    on_refused: Callable[[ServiceError], None] | None
    title: str | None
    note: str | None
    writing: tuple[str, int] | None


class ShownError(NamedTuple):
    """The error a form shows: beside which field (None: on the top line) and what it says."""

    field: str | None
    message: str

    def __contains__(self, words: object) -> bool:
        """Whether the message says ``words`` (``"say why" in form.error_shown``)."""
        return isinstance(words, str) and words in self.message


def stale_summary(exc: StaleEdit, timezone: str = "UTC") -> str:
    """Who changed the record and when, since the version the user saw (for messages)."""
    by = f" by {exc.who}" if exc.who else ""
    at = f" at {local_time(exc.when, timezone, '%H:%M:%S')} {timezone}" if exc.when else ""
    return f"{exc.ref} was changed{by}{at} after you opened it (version {exc.expected}, now {exc.current})"


def select_value(select: Select[ChoiceT]) -> ChoiceT | None:
    """A Select's value, or None when nothing is chosen."""
    value = select.value
    return None if isinstance(value, NoSelection) else value


def _only_choice(select: Select[ChoiceT]) -> bool:
    """Whether the select offers exactly one value and no blank: there is nothing to choose."""
    legal = select._legal_values  # Textual keeps the offered values (and the blank, if allowed) here
    return len(legal) == 1 and not isinstance(select.value, NoSelection)


class EditorFailed(Exception):
    """The editor could not be run, or failed, or left a file that cannot be read back; the message says
    which, in one line, and that the text is kept."""


def editor_command(environ: Mapping[str, str] | None = None) -> list[str]:
    """The user's editor as a command line: ``$VISUAL``, else ``$EDITOR`` (either may carry arguments, such
    as ``code --wait``), else ``vi``."""
    environ = os.environ if environ is None else environ
    command = (environ.get("VISUAL") or "").strip() or (environ.get("EDITOR") or "").strip() or "vi"
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise EditorFailed(
            f"The editor command {command!r} cannot be read ({exc}); your text is kept."
        ) from None
    return words or ["vi"]


def edit_in_editor(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` as the user left it in their editor (see :func:`editor_command`); raise
    :class:`EditorFailed` when the editor cannot start or fails (the text is then not to be changed).

    The text goes through a temporary file only its owner may read (``mkstemp`` makes it 0600: a reply may
    hold a requester's details), deleted afterwards. The newline most editors add at the end is dropped
    when the text had none."""
    command = editor_command(environ)
    handle, name = tempfile.mkstemp(prefix="itsm-", suffix=".txt")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        try:
            done = subprocess.run([*command, name], check=False)
        except FileNotFoundError:
            raise EditorFailed(
                f"No editor {command[0]!r} found: set $EDITOR (or $VISUAL) to one; your text is kept."
            ) from None
        except OSError as exc:
            raise EditorFailed(
                f"The editor {command[0]!r} could not be started ({exc.strerror or exc}); your text is kept."
            ) from None
        if done.returncode != 0:
            raise EditorFailed(
                f"The editor {command[0]!r} ended with exit status {done.returncode}; "
                "your text is kept as it was."
            )
        try:
            edited = Path(name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise EditorFailed("The edited text is not UTF-8; your text is kept as it was.") from None
        except OSError as exc:
            raise EditorFailed(
                f"The edited text could not be read back ({exc.strerror or exc}); "
                "your text is kept as it was."
            ) from None
    finally:
        Path(name).unlink(missing_ok=True)
    if edited.endswith("\n") and not text.endswith("\n"):
        edited = edited[:-1]
    return edited


class FormScreen(WorkerErrorsToApp, ModalScreen[ResultT], Generic[ValuesT, ResultT]):
    """A modal form: fields with an error line each, an error line on top, ctrl+s saves, Escape cancels."""

    if TYPE_CHECKING:  # the console app, typed (at run time Textual's own property)
        app = getters.app(ItsmApp)

    CSS_PATH = [FORM_STYLES]
    TITLE: ClassVar[str] = "Form"
    # Service field names (ValidationError.field) shown beside a differently named field of this form.
    FIELD_ALIASES: ClassVar[dict[str, str]] = {}
    # Where a NotFound is shown (e.g. the reference field of the link form); None: at the top.
    NOT_FOUND_FIELD: ClassVar[str | None] = None
    # Each field has an error line under it; without, every error shows on the top line (a form whose rows
    # are packed too tightly for them).
    ERRORS_BESIDE_FIELDS: ClassVar[bool] = True
    # Enter in a one-line input saves the form (else it moves to the next field).
    SUBMIT_ON_ENTER: ClassVar[bool] = True
    # The keys line: {binding.id} names the key in force (keymap.fill_keys); a part whose key is unbound
    # is left out.
    HINT: ClassVar[str] = "{form.save} save · tab next field · {form.cancel} cancel · {form.help} keys"
    # A save refused only because another program holds the database's lock is tried again after this
    # long, for as long as the form is open: nothing of it was written (the transaction never began, or
    # was rolled back whole), so trying again cannot save it twice.
    BUSY_RETRY_SECONDS: ClassVar[float] = 2.0
    BUSY_TEXT: ClassVar[str] = (
        "Not saved yet: the database is busy (another program holds it); retrying by itself, "
        "esc to stop. Your text is kept."
    )

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
        Binding("ctrl+s", "save", "Save", id="form.save"),
        # The app's ? is not in force over a modal form; here ? types itself into a text, F1 never does.
        Binding("f1,question_mark", "help", "Keys of this form", id="form.help", key_display="F1"),
        # A priority binding: the text area's own ctrl+e (end of line) would take it first otherwise.
        Binding("ctrl+e", "edit_in_editor", "Edit the text in $EDITOR", id="form.editor", priority=True),
    ]

    def __init__(
        self,
        *,
        save: Callable[[ValuesT], ResultT],
        on_refused: Callable[[ServiceError], None] | None = None,
        title: str | None = None,
        note: str | None = None,
        writing: tuple[str, int] | None = None,
    ) -> None:
        super().__init__()
        self._save = save
        self._on_refused = on_refused
        self.form_title = title or self.TITLE
        self.note = note  # a line above the fields: why the form is asked
        # The record (kind, id) a reply or note is typed to: while the user types, other consoles see it
        # (services/presence.py; the queue's rows and the ticket screen say who is writing).
        self.writing = writing
        self._writing_since: float | None = None  # time.monotonic() of the last writing heartbeat
        self.saving = False
        # The error shown last (None: none is shown), for tests.
        self.error_shown: ShownError | None = None
        self._fields: dict[str, Widget] = {}
        self._busy_retry: Timer | None = None  # the next try of a save the database was too busy for
        self.busy_tries = 0  # saves in a row found the database busy

    # ----------------------------------------------------------------- layout

    @property
    def hint(self) -> str:
        """The keys line under the fields (``HINT``, with the keys in force; a form whose keys depend on
        what it shows says so)."""
        return fill_keys(self, self.HINT)

    def compose(self) -> ComposeResult:
        with Vertical(id="form-box") as box:
            box.border_title = strip_control(self.form_title, single_line=True)
            if self.note:
                yield Static(Text(strip_control(self.note)), id="form-note")
            yield Static("", id="form-error", classes="form-error", markup=False)
            body = VerticalScroll(id="form-body")
            body.can_focus = False
            with body:
                yield from self.compose_fields()
            yield from self.compose_below_fields()
            yield Static(self.hint, id="form-hint", markup=False)

    @on(events.Mount)
    def _settle_focus(self) -> None:
        """Once the form's own ``on_mount`` has shown the rows its values need (Textual runs the subclass's
        handler first), settle the focus where the user's first keystroke belongs."""
        for widget in self._fields.values():
            if isinstance(widget, Select) and _only_choice(widget):
                widget.can_focus = False  # nothing to choose: it reads as the plain value it is
        first = self.first_field_to_fill()
        if first is not None:
            # At once, not deferred like ``Widget.focus``: a form whose ``on_mount`` asked for a particular
            # field (a deferred focus) still has its way.
            self.set_focus(first)

    def first_field_to_fill(self) -> Widget | None:
        """The first shown field that still wants the user: an empty text or a select with nothing chosen;
        when every field holds a value, the first that can take the focus (None: no such field).

        Text typed straight after opening a form then lands in the field that needs it, not in a select
        that already holds its only sensible value (where the keys went nowhere).
        """
        shown = [
            widget
            for name, widget in self._fields.items()
            if widget.can_focus and not widget.disabled and self._row_shown(name)
        ]
        for widget in shown:
            if isinstance(widget, Select) and isinstance(widget.value, NoSelection):
                return widget
            if isinstance(widget, Input | TextArea) and not self._text(widget).strip():
                return widget
        return shown[0] if shown else None

    def _row_shown(self, name: str) -> bool:
        rows = self.query(f"#row-{name}")
        return not rows or not rows.first().has_class("-hidden")

    @staticmethod
    def _text(widget: Input | TextArea) -> str:
        return widget.text if isinstance(widget, TextArea) else widget.value

    def compose_fields(self) -> ComposeResult:
        """The form's rows; use :meth:`row` for each field."""
        yield from ()

    def compose_below_fields(self) -> ComposeResult:
        """What stands between the fields and the hint (e.g. a preview of what saving would do)."""
        yield from ()

    def row(self, name: str, label: str, widget: Widget, *, hidden: bool = False) -> ComposeResult:
        """A labelled field (its widget gets the id ``field-NAME`` unless it has one) with its error line."""
        if widget.id is None:
            widget.id = f"field-{name}"
        self._fields[name] = widget
        with Horizontal(classes="form-row" + (" -hidden" if hidden else ""), id=f"row-{name}"):
            yield Label(label, classes="form-label")
            yield widget
        if self.ERRORS_BESIDE_FIELDS:
            yield Static("", id=f"error-{name}", classes="form-error form-field-error", markup=False)

    def field(self, name: str) -> Widget:
        return self._fields[name]

    def field_of(self, name: str, kind: type[WidgetT]) -> WidgetT:
        """The field ``name``, which is a ``kind``."""
        widget = self._fields[name]
        if not isinstance(widget, kind):
            raise TypeError(f"the field {name} is a {type(widget).__name__}, not a {kind.__name__}")
        return widget

    def text_of(self, name: str) -> str:
        widget = self.field(name)
        if isinstance(widget, TextArea):
            return widget.text
        return self.field_of(name, Input).value

    def choice(self, name: str) -> str | None:
        """What is chosen in the select ``name`` of texts (None: nothing)."""
        value = select_value(self.field_of(name, Select))
        return value if isinstance(value, str) else None

    def checked(self, name: str) -> bool:
        return self.field_of(name, Checkbox).value

    def set_row_visible(self, name: str, visible: bool) -> None:
        self.query_one(f"#row-{name}").set_class(not visible, "-hidden")
        if not visible:
            for line in self.query(f"#error-{name}"):
                line.set_class(False, "-shown")

    # ----------------------------------------------------------------- values and saving

    def collect(self) -> ValuesT:
        """The form's values; raise :class:`ValidationError` for what the form can check itself."""
        raise NotImplementedError

    def action_help(self) -> None:
        """The key help over the form: its keys as they are in force."""
        from itsm_tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))

    def action_cancel(self) -> None:
        if not self.saving:
            self._stop_retrying()
            self.dismiss(None)

    def _stop_retrying(self) -> None:
        if self._busy_retry is not None:
            self._busy_retry.stop()
            self._busy_retry = None

    def _retry_busy_save(self) -> None:
        self._busy_retry = None
        if self.is_attached and not self.saving:
            self.action_save()  # what the fields hold now: an edit made while waiting is saved too

    def action_edit_in_editor(self) -> None:
        """The focused text area's text, edited in the user's editor while the console lends it the
        terminal; elsewhere (a one-line input's ctrl+e: end of line) the key does what it did."""
        area = self.focused
        if not isinstance(area, TextArea) or area.read_only or self.saving:
            raise SkipAction()
        problem: EditorFailed | None = None
        try:
            with self.app.suspend():
                # Nothing may raise out of here: Textual resumes the console only when the block ends.
                try:
                    edited = edit_in_editor(area.text)
                except EditorFailed as exc:
                    problem = exc
        except SuspendNotSupported:
            self._show(
                "This console cannot lend its terminal to an editor (it runs in a browser, or without a "
                "terminal); your text is kept.",
                None,
            )
            return
        if problem is not None:
            self._show(str(problem), None)
            return
        if edited != area.text:
            # As one edit (ctrl+z takes it back), the cursor after the text.
            area.replace(edited, area.document.start, area.document.end, maintain_selection_offset=False)
        area.focus()

    def action_save(self) -> None:
        if self.saving:
            return
        self._stop_retrying()
        if not self.busy_tries:  # while a busy save is tried again, its message stays until the outcome
            self.clear_errors()
        try:
            values = self.collect()
        except ValidationError as exc:
            self.clear_errors()
            self.show_error(exc)
            return
        self.saving = True
        self.query_one("#form-hint", Static).update("Saving ...")
        self._run_save(values)

    @work(thread=True, exclusive=True, exit_on_error=False, group=SAVE_GROUP)
    def _run_save(self, values: ValuesT) -> None:
        try:
            result = self._save(values)
        except ServiceError as exc:  # refused: keep the form and say why
            self.app.call_from_thread(self._refused, exc)
            return
        self.app.call_from_thread(self._saved, result)

    def _saved(self, result: ResultT) -> None:
        self.saving = False
        self.busy_tries = 0
        self.saved(result)
        self.dismiss(result)

    def saved(self, result: ResultT) -> None:
        """Called on success just before the form closes (a hook)."""

    def _refused(self, exc: ServiceError) -> None:
        self._ready_again()
        self.busy_tries = 0
        self.clear_errors()
        self.show_error(exc)
        if self._on_refused is not None:
            self._on_refused(exc)

    def _ready_again(self) -> None:
        self.saving = False
        self.query_one("#form-hint", Static).update(self.hint)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A save that failed otherwise than by a refusal keeps the form open with all that was typed and says
        it was not saved; the failure goes on to the console's handler as well (it logs a fault, and marks
        the database as unreachable). A database too busy to take the save is tried again by itself (see
        ``BUSY_RETRY_SECONDS``); the console hears of the first of such failures in a row only."""
        if event.state != WorkerState.ERROR or event.worker.group != SAVE_GROUP:
            return
        self._ready_again()
        error = event.worker.error
        if error is not None and database_busy(error):
            self.busy_tries += 1
            if self.busy_tries > 1:
                event.prevent_default()  # told (and logged) once already
            self._show(self.BUSY_TEXT, None)
            self._busy_retry = self.set_timer(self.BUSY_RETRY_SECONDS, self._retry_busy_save)
            return
        self.busy_tries = 0
        told = failure_message(error) if error is not None else None
        if told is not None:
            text = f"Not saved: {told[0].lower()}{told[1:]}"  # the driver's detail goes to the console log
        else:
            text = f"Not saved: something went wrong ({type(error).__name__}); what you typed is still here."
        self._show(text, None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.SUBMIT_ON_ENTER:
            self.action_save()
        else:
            self.focus_next()

    # ----------------------------------------------------------------- errors

    @on(Input.Changed)
    @on(TextArea.Changed)
    def _edited(self, event: Input.Changed | TextArea.Changed) -> None:
        """Editing a field hides the error shown beside it (the message has been read); typing a reply or
        note tells other consoles (see ``writing``)."""
        for name, widget in self._fields.items():
            if widget is event.control:
                for line in self.query(f"#error-{name}"):
                    line.set_class(False, "-shown")
        if self.writing is not None and isinstance(event.control, TextArea) and event.control.text.strip():
            now = time.monotonic()
            if self._writing_since is None or now - self._writing_since >= self.WRITING_SECONDS:
                self._writing_since = now
                self._beat_writing(*self.writing)

    WRITING_SECONDS: ClassVar[float] = 5.0  # at most one writing heartbeat this often while typing

    @work(thread=True, exclusive=True, exit_on_error=False, group="form-writing")
    def _beat_writing(self, entity_type: str, entity_id: int) -> None:
        from itsm_tui.services import presence

        app = self.app
        with app.db.session() as session:
            presence.heartbeat(
                session,
                app.actor.id,
                app.console_id,
                presence.writing_kind(entity_type),
                entity_id,
                app.clock(),
            )

    def on_unmount(self) -> None:
        """The form closed: other consoles no longer see the user writing (the row would go stale anyway)."""
        if self.writing is None or self._writing_since is None:
            return
        from itsm_tui.services import presence

        db, console_id = self.app.db, self.app.console_id
        kind, entity_id = presence.writing_kind(self.writing[0]), self.writing[1]

        def leave() -> None:
            with db.session() as session:
                presence.leave(session, console_id, kind, entity_id)

        self.app.run_worker(leave, thread=True, exit_on_error=False, group="presence-leave")

    def clear_errors(self) -> None:
        self.error_shown = None
        for node in self.query(".form-error"):
            node.set_class(False, "-shown")
            if isinstance(node, Static):
                node.update("")

    def error_text(self, exc: ServiceError) -> str:
        if isinstance(exc, StaleEdit):
            return (
                f"Not saved: {stale_summary(exc, self.app.actor.timezone)}. It has been reloaded underneath; "
                f"save again to apply yours over that change, or Esc to drop yours."
            )
        return str(exc) or type(exc).__name__

    def show_error(self, exc: ServiceError) -> None:
        """Show ``exc`` beside the field it names (if the form shows that field), else at the top."""
        name = exc.field if isinstance(exc, ValidationError) else None
        if name is None and isinstance(exc, NotFound):
            name = self.NOT_FOUND_FIELD
        name = self.FIELD_ALIASES.get(name, name) if name else None
        beside = (
            name
            if name in self._fields
            and self.ERRORS_BESIDE_FIELDS
            and not self.query_one(f"#row-{name}").has_class("-hidden")
            else None
        )
        self._show(self.error_text(exc), beside)

    def _show(self, text: str, name: str | None) -> None:
        """``text`` on the error line of the field ``name`` (which gets the focus), or on the top line."""
        line = self.query_one(f"#error-{name}" if name else "#form-error", Static)
        line.update(Text(strip_control(text), style="bold"))
        line.set_class(True, "-shown")
        if name:
            self.field(name).focus()
        self.error_shown = ShownError(name, text)
