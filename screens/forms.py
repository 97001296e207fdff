"""Typed modal forms for tickets: assign, escalate, status, resolve, reply or note, impact and urgency, link,
KEDB search, rating, the new-ticket form and the edit form.

Every form is a ``ModalScreen`` that dismisses with a small frozen dataclass (Escape cancels with None).
A caller that wants the save itself to be checked passes ``save``: a blocking function that runs the service
call in the form's thread worker, for example::

    def save(values: AssignValues) -> None:  # runs in a worker thread
        with app.db.session() as session:
            tickets.assign(session, app.config, app.actor, ref, assignee=values.login, group=values.group,
                           expected_version=version_shown)

    app.push_screen(AssignForm(save=save), callback=after_assign)

The form dismisses with ``save``'s return value (or its values when it returns None) only when the save
succeeded. A refused save (any exception) keeps the form open with everything typed, shows the message next to
the field named by ``ValidationError.field`` (or at the top) and calls ``on_refused(exc)`` on the UI thread,
so that the screen underneath can reload (e.g. on :class:`StaleEdit`). Without ``save`` a form dismisses with
its values at once.

User text (titles, KEDB results, error messages quoting input) is always rendered literally.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from itsm_tui.config import LEVELS, DeskConfig
from itsm_tui.screens.common import literal, local_time
from itsm_tui.services.errors import NotFound, StaleEdit, ValidationError
from itsm_tui.services.tickets import PENDING_REASONS
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from textual import getters

    from itsm_tui.app import ItsmApp

ResultT = TypeVar("ResultT")

SCORES = ((5, "excellent"), (4, "good"), (3, "fair"), (2, "poor"), (1, "very poor"))


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class AssignValues:
    login: str
    group: str | None = None


@dataclass(frozen=True)
class EscalateValues:
    group: str | None
    reason: str


@dataclass(frozen=True)
class TransitionValues:
    to_status: str
    reason: str | None = None
    code: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class ResolveValues:
    code: str | None
    note: str


@dataclass(frozen=True)
class TextValues:
    text: str
    public: bool


@dataclass(frozen=True)
class ImpactUrgencyValues:
    impact: str
    urgency: str
    priority: int


@dataclass(frozen=True)
class LinkValues:
    target: str


@dataclass(frozen=True)
class KedbChoice:
    ref: str
    kind: str  # known_error | article
    title: str
    has_workaround: bool


@dataclass(frozen=True)
class RateValues:
    score: int | None
    comment: str | None


@dataclass(frozen=True)
class NewTicketValues:
    title: str
    description: str
    kind: str
    impact: str
    urgency: str
    category: str | None
    service: str | None
    ci: str | None
    requester: str
    group: str | None


CLASSIFICATION = {"category", "service", "ci"}


@dataclass(frozen=True)
class TicketEdits:
    """Fields of a ticket as the edit form shows them; None for one left as it is."""

    title: str | None = None
    requester: str | None = None
    category: str | None = None
    service: str | None = None
    ci: str | None = None
    description: str | None = None

    def changed_from(self, shown: TicketEdits) -> TicketEdits:
        """Only the fields that differ from ``shown`` (an emptied choice is left as it was); category, service
        and CI go together when one of them changed, as they are checked together."""
        typed = {name: value for name, value in asdict(self).items() if value is not None}
        changed = {name for name, value in typed.items() if value != (getattr(shown, name) or "")}
        if changed & CLASSIFICATION:
            changed |= CLASSIFICATION & set(typed)
        return TicketEdits(**{name: typed[name] for name in changed})

    def as_changes(self) -> dict[str, str]:
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class CreatedTicket:
    id: int
    ref: str
    priority: int


# --------------------------------------------------------------------------- the base form


def stale_summary(exc: StaleEdit, timezone: str = "UTC") -> str:
    """Who changed the record and when, since the version the user saw (for messages)."""
    by = f" by {exc.who}" if exc.who else ""
    at = f" at {local_time(exc.when, timezone, '%H:%M:%S')}" if exc.when else ""
    return f"{exc.ref} was changed{by}{at} after you opened it (version {exc.expected}, now {exc.current})"


def select_value(select: Select) -> Any:
    """A Select's value, or None when nothing is chosen."""
    return None if select.is_blank() else select.value


class FormScreen(ModalScreen[ResultT], Generic[ResultT]):
    """A modal form: fields with an error line each, an error line on top, ctrl+s saves, Escape cancels."""

    if TYPE_CHECKING:  # the console app, typed (at run time Textual's own property)
        app = getters.app(ItsmApp)

    TITLE: ClassVar[str] = "Form"
    # Service field names (ValidationError.field) shown beside a differently named field of this form.
    FIELD_ALIASES: ClassVar[dict[str, str]] = {}
    # Where a NotFound is shown (e.g. the reference field of the link form); None: at the top.
    NOT_FOUND_FIELD: ClassVar[str | None] = None
    # Enter in a one-line input saves the form (else it moves to the next field).
    SUBMIT_ON_ENTER: ClassVar[bool] = True
    HINT: ClassVar[str] = "ctrl+s save · tab next field · esc cancel"

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
        Binding("ctrl+s", "save", "Save", id="form.save"),
    ]
    DEFAULT_CSS = """
    FormScreen { align: center middle; }
    FormScreen #form-box {
        width: 78; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    FormScreen #form-body { height: auto; max-height: 80vh; }
    FormScreen .form-row { height: auto; }
    FormScreen .form-label { width: 12; color: $text-muted; }
    FormScreen .form-row > Input, FormScreen .form-row > Select { width: 1fr; }
    FormScreen .form-row > TextArea { width: 1fr; height: 4; }
    FormScreen .form-row > .form-value { width: 1fr; }
    FormScreen .form-error { color: $text-error; display: none; }
    FormScreen .form-error.-shown { display: block; }
    FormScreen .form-field-error { padding-left: 12; }
    FormScreen #form-hint { color: $text-muted; height: 1; }
    FormScreen .-hidden { display: none; }
    """

    def __init__(
        self,
        *,
        save: Callable[[Any], Any] | None = None,
        on_refused: Callable[[Exception], None] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__()
        self._save = save
        self._on_refused = on_refused
        self.form_title = title or self.TITLE
        self.saving = False
        # (field shown beside, or None for the top line; message) of the last error shown, for tests.
        self.error_shown: tuple[str | None, str] | None = None

    # ----------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        with Vertical(id="form-box") as box:
            box.border_title = strip_control(self.form_title, single_line=True)
            yield Static("", id="form-error", classes="form-error", markup=False)
            body = VerticalScroll(id="form-body")
            body.can_focus = False
            with body:
                yield from self.compose_fields()
            yield Static(self.HINT, id="form-hint", markup=False)

    def compose_fields(self) -> ComposeResult:
        """The form's rows; use :meth:`row` for each field."""
        yield from ()

    def row(self, name: str, label: str, widget: Widget, *, hidden: bool = False) -> ComposeResult:
        """A labelled field (its widget gets the id ``field-NAME``) with its error line below."""
        if widget.id is None:
            widget.id = f"field-{name}"
        with Horizontal(classes="form-row" + (" -hidden" if hidden else ""), id=f"row-{name}"):
            yield Label(label, classes="form-label")
            yield widget
        yield Static("", id=f"error-{name}", classes="form-error form-field-error", markup=False)

    def field(self, name: str) -> Any:
        return self.query_one(f"#field-{name}")

    def text_of(self, name: str) -> str:
        widget = self.field(name)
        return widget.text if isinstance(widget, TextArea) else widget.value

    def set_row_visible(self, name: str, visible: bool) -> None:
        self.query_one(f"#row-{name}").set_class(not visible, "-hidden")
        if not visible:
            self.query_one(f"#error-{name}").set_class(False, "-shown")

    # ----------------------------------------------------------------- values and saving

    def collect(self) -> Any:
        """The form's values; raise :class:`ValidationError` for what the form can check itself."""
        raise NotImplementedError

    def action_cancel(self) -> None:
        if not self.saving:
            self.dismiss(None)

    def action_save(self) -> None:
        if self.saving:
            return
        self.clear_errors()
        try:
            values = self.collect()
        except ValidationError as exc:
            self.show_error(exc)
            return
        if self._save is None:
            self.dismiss(values)
            return
        self.saving = True
        self.query_one("#form-hint", Static).update("Saving ...")
        self._run_save(values)

    @work(thread=True, exclusive=True, exit_on_error=False, group="form-save")
    def _run_save(self, values: Any) -> None:
        try:
            result = self._save(values)
        except Exception as exc:  # refused (or the database failed): keep the form and say why
            self.app.call_from_thread(self._refused, exc)
            return
        self.app.call_from_thread(self._saved, values if result is None else result)

    def _saved(self, result: Any) -> None:
        self.saving = False
        self.saved(result)
        self.dismiss(result)

    def saved(self, result: Any) -> None:
        """Called on success just before the form closes (a hook)."""

    def _refused(self, exc: Exception) -> None:
        self.saving = False
        self.query_one("#form-hint", Static).update(self.HINT)
        self.show_error(exc)
        if self._on_refused is not None:
            self._on_refused(exc)

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
        """Editing a field hides the error shown beside it (the message has been read)."""
        field_id = event.control.id or ""
        if field_id.startswith("field-"):
            for node in self.query(f"#error-{field_id.removeprefix('field-')}"):
                node.set_class(False, "-shown")

    def clear_errors(self) -> None:
        self.error_shown = None
        for node in self.query(".form-error"):
            node.set_class(False, "-shown")
            if isinstance(node, Static):
                node.update("")

    def error_text(self, exc: Exception) -> str:
        message = str(exc) or type(exc).__name__
        if isinstance(exc, StaleEdit):
            return (
                f"Not saved: {stale_summary(exc, _timezone(self.app))}. It has been reloaded underneath; "
                f"save again to apply yours over that change, or Esc to drop yours."
            )
        if not isinstance(exc, ValidationError | NotFound) and type(exc).__module__.startswith("sqlalchemy"):
            return f"The database refused the save ({type(exc).__name__}); nothing was changed. {message}"
        return message

    def show_error(self, exc: Exception) -> None:
        """Show ``exc`` beside the field it names (if the form has it), else at the top."""
        name = getattr(exc, "field", None)
        if name is None and isinstance(exc, NotFound):
            name = self.NOT_FOUND_FIELD
        name = self.FIELD_ALIASES.get(name, name) if name else None
        target = None
        if name and name.isidentifier():
            matches = self.query(f"#error-{name}")
            if matches and not self.query_one(f"#row-{name}").has_class("-hidden"):
                target = matches.first(Static)
        if target is None:
            target = self.query_one("#form-error", Static)
        target.update(Text(strip_control(self.error_text(exc)), style="bold"))
        target.set_class(True, "-shown")
        if name and target.id == f"error-{name}":
            field = self.query(f"#field-{name}")
            if field:
                field.first().focus()
        self.error_shown = (name if target.id != "form-error" else None, self.error_text(exc))


def _timezone(app: Any) -> str:
    actor = getattr(app, "actor", None)
    return getattr(actor, "timezone", "UTC")


# --------------------------------------------------------------------------- ticket forms


def _compact_input(value: str = "", placeholder: str = "", **kwargs) -> Input:
    return Input(value=value, placeholder=placeholder, compact=True, **kwargs)


def _compact_select(options: Sequence[tuple[Any, Any]], **kwargs) -> Select:
    return Select(options, compact=True, **kwargs)


def _text_area(text: str = "") -> TextArea:
    return TextArea(text, compact=True, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")


class AssignForm(FormScreen[Any]):
    """Assign to someone (by login), optionally moving the ticket to another group (shift leads)."""

    TITLE = "Assign"
    FIELD_ALIASES = {"assignee": "login"}

    def __init__(
        self,
        *,
        groups: Sequence[str] = (),
        logins: Sequence[str] = (),
        login: str = "",
        group: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.groups, self.logins, self.initial = list(groups), list(logins), (login, group)

    def compose_fields(self) -> ComposeResult:
        from textual.suggester import SuggestFromList

        suggester = SuggestFromList(self.logins, case_sensitive=False) if self.logins else None
        login, group = self.initial
        yield from self.row("login", "Login", _compact_input(login, "e.g. agent2", suggester=suggester))
        groups = self.groups or list(self.app.config.groups)
        yield from self.row(
            "group",
            "Group",
            _compact_select(
                [(code, code) for code in groups],
                prompt="(keep the ticket's group)",
                value=group if group in groups else Select.NULL,
            ),
        )

    def collect(self) -> AssignValues:
        login = self.text_of("login").strip()
        if not login:
            raise ValidationError("login", "type the login of the person to assign it to")
        return AssignValues(login, select_value(self.field("group")))


class EscalateForm(FormScreen[Any]):
    """Functional escalation: hand the ticket to another group, saying why."""

    TITLE = "Escalate"

    def __init__(self, *, groups: Sequence[str] = (), current_group: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.groups, self.current_group = list(groups), current_group

    def compose_fields(self) -> ComposeResult:
        groups = [g for g in (self.groups or list(self.app.config.groups)) if g != self.current_group]
        yield from self.row(
            "group",
            "To group",
            _compact_select([(code, code) for code in groups], prompt="(the service's support group)"),
        )
        yield from self.row("reason", "Reason", _compact_input(placeholder="why (goes into the work notes)"))

    def collect(self) -> EscalateValues:
        return EscalateValues(select_value(self.field("group")), self.text_of("reason").strip())


class TransitionForm(FormScreen[Any]):
    """Change the status: only the allowed targets are offered; asks for what the target needs."""

    TITLE = "Change status"

    def __init__(
        self,
        *,
        current: str,
        targets: Sequence[str],
        resolution_codes: Sequence[str] = (),
        target: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.current, self.targets = current, tuple(targets)
        self.resolution_codes = tuple(resolution_codes)
        self.initial_target = (
            target if target in self.targets else (self.targets[0] if self.targets else None)
        )

    def compose_fields(self) -> ComposeResult:
        yield Static(Text(f"Now {self.current}; it may go to: {', '.join(self.targets) or 'nothing'}"))
        yield from self.row(
            "to_status",
            "New status",
            _compact_select(
                [(self._label(t), t) for t in self.targets],
                allow_blank=not self.targets,
                value=self.initial_target if self.initial_target else Select.NULL,
            ),
        )
        yield from self.row(
            "pending_reason",
            "Waiting for",
            _compact_select([(r, r) for r in PENDING_REASONS], prompt="(choose why it waits)"),
            hidden=True,
        )
        yield from self.row("reason", "Reason", _compact_input(), hidden=True)
        codes = self.resolution_codes or self.app.config.resolution_codes
        yield from self.row(
            "code", "Code", _compact_select([(c, c) for c in codes], prompt="(resolution code)"), hidden=True
        )
        yield from self.row("note", "Resolution", _text_area(), hidden=True)

    def _label(self, target: str) -> str:
        if self.current == "resolved" and target == "in_progress":
            return "in_progress (reopen)"
        return target

    def on_mount(self) -> None:
        self._show_rows(self.initial_target)

    @on(Select.Changed, "#field-to_status")
    def _target_changed(self, event: Select.Changed) -> None:
        self._show_rows(select_value(event.select))

    def _show_rows(self, target: str | None) -> None:
        reopening = self.current == "resolved" and target == "in_progress"
        self.set_row_visible("pending_reason", target == "pending")
        self.set_row_visible("reason", target == "cancelled" or reopening)
        self.set_row_visible("code", target == "resolved")
        self.set_row_visible("note", target == "resolved")
        placeholder = "why it is cancelled (e.g. duplicate of INC0000123)"
        if reopening:
            placeholder = "what is still wrong"
        self.field("reason").placeholder = placeholder

    # The service names the pending reason "reason" too: show it beside whichever reason row is visible.
    def show_error(self, exc: Exception) -> None:
        if getattr(exc, "field", None) == "reason" and select_value(self.field("to_status")) == "pending":
            exc = ValidationError("pending_reason", str(exc))
        super().show_error(exc)

    def collect(self) -> TransitionValues:
        target = select_value(self.field("to_status"))
        if target is None:
            raise ValidationError("to_status", "choose the new status")
        reason = code = note = None
        if target == "pending":
            reason = select_value(self.field("pending_reason"))
        elif target == "cancelled" or (self.current == "resolved" and target == "in_progress"):
            reason = self.text_of("reason").strip()
        elif target == "resolved":
            code = select_value(self.field("code"))
            note = self.text_of("note").strip()
        return TransitionValues(target, reason, code, note)


class ResolveForm(FormScreen[Any]):
    """Resolve with a resolution code (from the catalog) and a note saying what was done."""

    TITLE = "Resolve"
    HINT = "ctrl+s resolve · tab next field · esc cancel"

    def __init__(self, *, resolution_codes: Sequence[str] = (), **kwargs) -> None:
        super().__init__(**kwargs)
        self.resolution_codes = tuple(resolution_codes)

    def compose_fields(self) -> ComposeResult:
        codes = self.resolution_codes or self.app.config.resolution_codes
        yield from self.row(
            "code", "Code", _compact_select([(c, c) for c in codes], prompt="(choose a code)")
        )
        yield from self.row("note", "Note", _text_area())

    def collect(self) -> ResolveValues:
        return ResolveValues(select_value(self.field("code")), self.text_of("note").strip())


class TextForm(FormScreen[Any]):
    """A public reply (``public``) or an internal work note; several lines."""

    FIELD_ALIASES = {"body": "text"}
    SUBMIT_ON_ENTER = False
    DEFAULT_CSS = """
    TextForm .form-row > TextArea { height: 8; }
    """

    def __init__(self, *, public: bool, text: str = "", **kwargs) -> None:
        kwargs.setdefault("title", "Public reply (the requester sees it)" if public else "Internal work note")
        super().__init__(**kwargs)
        self.public, self.initial = public, text

    def compose_fields(self) -> ComposeResult:
        yield from self.row("text", "Reply" if self.public else "Note", _text_area(self.initial))

    def collect(self) -> TextValues:
        return TextValues(self.text_of("text"), self.public)


class ImpactUrgencyForm(FormScreen[Any]):
    """Change impact and urgency; the priority the matrix gives is shown as you change them."""

    TITLE = "Impact and urgency"

    def __init__(self, *, impact: str, urgency: str, config: DeskConfig | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.initial = (impact, urgency)
        self.config = config

    def compose_fields(self) -> ComposeResult:
        impact, urgency = self.initial
        options = [(level, level) for level in LEVELS]
        yield from self.row("impact", "Impact", _compact_select(options, allow_blank=False, value=impact))
        yield from self.row("urgency", "Urgency", _compact_select(options, allow_blank=False, value=urgency))
        yield from self.row("priority", "Priority", Static("", id="field-priority", classes="form-value"))

    def on_mount(self) -> None:
        self.config = self.config or self.app.config
        self._preview()

    @on(Select.Changed)
    def _preview(self) -> None:
        impact, urgency = select_value(self.field("impact")), select_value(self.field("urgency"))
        if impact is None or urgency is None:
            return
        before = self.config.priority_for(*self.initial)
        after = self.config.priority_for(impact, urgency)
        text = Text(f"P{after}", style="bold")
        text.append(f"  (now P{before})" if after != before else "  (unchanged)")
        self.query_one("#field-priority", Static).update(text)

    def collect(self) -> ImpactUrgencyValues:
        impact, urgency = select_value(self.field("impact")), select_value(self.field("urgency"))
        return ImpactUrgencyValues(impact, urgency, self.config.priority_for(impact, urgency))


class LinkForm(FormScreen[Any]):
    """Link the ticket to a problem, known error, article, change or another ticket, by reference."""

    TITLE = "Link"
    FIELD_ALIASES = {"target": "target"}
    NOT_FOUND_FIELD = "target"

    def compose_fields(self) -> ComposeResult:
        yield from self.row(
            "target", "Reference", _compact_input(placeholder="PRB0000001, KE.., KB.., CHG.., INC..")
        )

    def collect(self) -> LinkValues:
        target = self.text_of("target").strip().upper()
        if not target:
            raise ValidationError("target", "type a reference such as PRB0000001")
        return LinkValues(target)


class KedbForm(FormScreen[Any]):
    """Search the KEDB and knowledge articles by words; Enter applies the chosen known error's workaround
    (a work note and a link) or links the chosen article."""

    TITLE = "KEDB and knowledge search"
    HINT = "type words · down: results · enter apply/link · esc close"
    SEARCH_DELAY = 0.25
    BINDINGS = [Binding("down", "results", "Results", id="kedb.results", show=False)]
    DEFAULT_CSS = """
    KedbForm #kedb-results { height: 8; border: none; }
    KedbForm #kedb-preview { height: auto; max-height: 6; color: $text-muted; }
    """

    def __init__(self, *, search: Callable[[str], list] | None = None, words: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self._search_fn = search
        self.initial_words = words
        self.hits: list = []
        self._timer = None

    def compose_fields(self) -> ComposeResult:
        yield from self.row("words", "Words", _compact_input(self.initial_words, "e.g. vpn timeout"))
        yield OptionList(id="kedb-results")
        yield Static("", id="kedb-preview")

    def on_mount(self) -> None:
        if self.initial_words:
            self.search(self.initial_words)

    @on(Input.Changed, "#field-words")
    def _words_changed(self, event: Input.Changed) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.SEARCH_DELAY, lambda: self.search(event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.hits:
            self.action_results()
        else:
            self.search(event.value)

    def action_results(self) -> None:
        results = self.query_one("#kedb-results", OptionList)
        if results.option_count:
            results.focus()
            if results.highlighted is None:
                results.highlighted = 0

    @work(thread=True, exclusive=True, exit_on_error=False, group="kedb-search")
    def search(self, words: str) -> None:
        search = self._search_fn or self._default_search
        try:
            hits = search(words)
        except Exception as exc:
            self.app.call_from_thread(self.show_error, exc)
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_hits, words, hits)

    def _default_search(self, words: str) -> list:
        from itsm_tui.services import knowledge

        with self.app.db.read_session() as session:
            return knowledge.search(session, words)

    def _show_hits(self, words: str, hits: list) -> None:
        self.hits = hits
        results = self.query_one("#kedb-results", OptionList)
        results.clear_options()
        for hit in hits:
            label = Text()
            label.append(hit.ref, style="bold")
            label.append(" KE " if hit.kind == "known_error" else " KB ", style="cyan")
            label.append_text(literal(hit.title))
            results.add_option(Option(label, id=hit.ref))
        preview = self.query_one("#kedb-preview", Static)
        if words.strip() and not hits:
            preview.update(Text("Nothing found; try other words."))
        elif not hits:
            preview.update("")
        else:
            results.highlighted = 0
            self._preview(0)

    @on(OptionList.OptionHighlighted, "#kedb-results")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._preview(event.option_index)

    def _preview(self, index: int) -> None:
        if not 0 <= index < len(self.hits):
            return
        hit = self.hits[index]
        text = Text(strip_control(hit.snippet))
        if hit.kind == "known_error":
            text.append("\nWorkaround: ", style="bold")
            text.append(strip_control(hit.workaround) if hit.workaround else "(none; Enter links it)")
        else:
            text.append("\n(Enter links this article)")
        self.query_one("#kedb-preview", Static).update(text)

    @on(OptionList.OptionSelected, "#kedb-results")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_save()

    def collect(self) -> KedbChoice:
        results = self.query_one("#kedb-results", OptionList)
        index = results.highlighted
        if index is None or not 0 <= index < len(self.hits):
            raise ValidationError("words", "search, then choose a result (down arrow, Enter)")
        hit = self.hits[index]
        return KedbChoice(hit.ref, hit.kind, hit.title, bool((hit.workaround or "").strip()))


class RateForm(FormScreen[Any]):
    """Record the requester's satisfaction (1-5) and an optional comment."""

    TITLE = "Satisfaction rating"

    def compose_fields(self) -> ComposeResult:
        options = [(f"{score} - {label}", score) for score, label in SCORES]
        yield from self.row("score", "Score", _compact_select(options, prompt="(1-5)"))
        yield from self.row("comment", "Comment", _compact_input(placeholder="what the requester said"))

    def collect(self) -> RateValues:
        score = select_value(self.field("score"))
        if score is None:
            raise ValidationError("score", "choose a score from 1 (very poor) to 5 (excellent)")
        return RateValues(score, self.text_of("comment").strip() or None)


# --------------------------------------------------------------------------- new ticket


class _TicketFieldsForm(FormScreen[Any]):
    """What the new-ticket and edit forms share: category (offered by the ticket's kind), service and CI (a
    service narrows the CIs offered), and a three-line description."""

    SUBMIT_ON_ENTER = False
    DEFAULT_CSS = """
    _TicketFieldsForm .form-row > TextArea { height: 3; }
    """

    def __init__(self, *, config: DeskConfig | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config

    def kind(self) -> str:
        return "incident"

    def compose_classification(self) -> ComposeResult:
        config = self.config = self.config or self.app.config
        yield from self.row("category", "Category", _compact_select([], prompt="(category)"))
        yield from self.row(
            "service",
            "Service",
            _compact_select(
                [(f"{s.code} - {s.name}", s.code) for s in config.services.values()], prompt="(service)"
            ),
        )
        yield from self.row("ci", "CI", _compact_select([], prompt="(configuration item)"))

    def _offer_categories(self, shown: str | None = None) -> None:
        """The categories of the ticket's kind; ``shown``, the ticket's own, stays though not listed."""
        category = self.field("category")
        keep = shown or select_value(category)
        options = list(self.config.categories.get(self.kind(), ()))
        if shown and shown not in options:
            options.append(shown)
        category.set_options([(c, c) for c in options])
        if keep in options:
            category.value = keep

    @on(Select.Changed, "#field-service")
    def _service_changed(self) -> None:
        self._offer_cis()

    def _offer_cis(self, shown: str | None = None) -> None:
        """The CIs of the chosen service (of every service if none); ``shown``, the ticket's own, stays."""
        service = select_value(self.field("service"))
        ci = self.field("ci")
        keep = shown or select_value(ci)
        services = [self.config.services[service]] if service in self.config.services else []
        cis = [c for s in services or self.config.services.values() for c in s.cis]
        if shown and shown not in cis:
            cis.append(shown)
        ci.set_options([(c, c) for c in cis])
        if keep in cis:
            ci.value = keep


class NewTicketForm(_TicketFieldsForm):
    """Log a new incident or request. The priority the matrix gives is previewed as impact and urgency change.

    Without ``save`` the ticket is created through the app's database and the form closes with a
    :class:`CreatedTicket`.
    """

    TITLE = "New ticket"
    HINT = "ctrl+s create · tab/enter next field · esc cancel"

    def __init__(self, *, config: DeskConfig | None = None, requester: str = "", **kwargs) -> None:
        super().__init__(config=config, **kwargs)
        self.initial_requester = requester
        if self._save is None:
            self._save = self._create

    def kind(self) -> str:
        return select_value(self.field("kind")) or "incident"

    def compose_fields(self) -> ComposeResult:
        config = self.config = self.config or self.app.config
        levels = [(level, level) for level in LEVELS]
        yield from self.row("title", "Title", _compact_input(placeholder="one line: what is wrong or wanted"))
        yield from self.row(
            "requester", "Requester", _compact_input(self.initial_requester, "who reported it")
        )
        yield from self.row(
            "kind",
            "Kind",
            _compact_select([("incident", "incident"), ("request", "request")], allow_blank=False),
        )
        yield from self.row("impact", "Impact", _compact_select(levels, allow_blank=False, value="medium"))
        yield from self.row("urgency", "Urgency", _compact_select(levels, allow_blank=False, value="medium"))
        yield from self.row("priority", "Priority", Static("", id="field-priority", classes="form-value"))
        yield from self.compose_classification()
        yield from self.row(
            "group",
            "Group",
            _compact_select(
                [(f"{g.code} - {g.name}", g.code) for g in config.groups.values()],
                prompt="(first line: the service desk)",
            ),
        )
        yield from self.row("description", "Description", _text_area())

    def on_mount(self) -> None:
        self._offer_categories()
        self._offer_cis()
        self._preview()

    @on(Select.Changed, "#field-kind")
    def _kind_changed(self) -> None:
        self._offer_categories()

    @on(Select.Changed, "#field-impact")
    @on(Select.Changed, "#field-urgency")
    def _preview(self) -> None:
        impact, urgency = select_value(self.field("impact")), select_value(self.field("urgency"))
        if impact and urgency:
            priority = self.config.priority_for(impact, urgency)
            policy = self.config.policies.get(priority)
            text = Text(f"P{priority}", style="bold")
            if policy is not None:
                text.append(
                    f"  (respond within {_minutes(policy.response_minutes)}, "
                    f"resolve within {_minutes(policy.resolution_minutes)}, {policy.calendar})"
                )
            self.query_one("#field-priority", Static).update(text)

    @property
    def previewed_priority(self) -> int:
        return self.config.priority_for(
            select_value(self.field("impact")), select_value(self.field("urgency"))
        )

    def collect(self) -> NewTicketValues:
        return NewTicketValues(
            title=self.text_of("title"),
            description=self.text_of("description"),
            kind=self.kind(),
            impact=select_value(self.field("impact")),
            urgency=select_value(self.field("urgency")),
            category=select_value(self.field("category")),
            service=select_value(self.field("service")),
            ci=select_value(self.field("ci")),
            requester=self.text_of("requester"),
            group=select_value(self.field("group")),
        )

    def _create(self, values: NewTicketValues) -> CreatedTicket:
        from itsm_tui.services import tickets

        app = self.app
        with app.db.session() as session:
            ticket = tickets.create_ticket(session, app.config, app.actor, **asdict(values))
            return CreatedTicket(ticket.id, ticket.ref, ticket.priority)

    def saved(self, result: Any) -> None:
        if isinstance(result, CreatedTicket):
            self.app.notify(f"{result.ref} created (P{result.priority}).", title="New ticket", markup=False)


class EditTicketForm(_TicketFieldsForm):
    """Correct a ticket's title, requester, category, service, CI or description; the form closes with the
    fields that differ from what was shown (:class:`TicketEdits`)."""

    TITLE = "Edit ticket"

    def __init__(self, *, shown: TicketEdits, kind: str = "incident", **kwargs) -> None:
        super().__init__(**kwargs)
        self.shown = shown
        self.ticket_kind = kind

    def kind(self) -> str:
        return self.ticket_kind

    def compose_fields(self) -> ComposeResult:
        shown = self.shown
        yield from self.row("title", "Title", _compact_input(shown.title))
        yield from self.row("requester", "Requester", _compact_input(shown.requester))
        yield from self.compose_classification()
        yield from self.row("description", "Description", _text_area(shown.description or ""))

    def on_mount(self) -> None:
        service = self.field("service")
        if self.shown.service in self.config.services:
            with service.prevent(Select.Changed):  # the CIs are offered below, keeping the ticket's own
                service.value = self.shown.service
        self._offer_categories(self.shown.category)
        self._offer_cis(self.shown.ci)

    def collect(self) -> TicketEdits:
        typed = TicketEdits(
            title=self.text_of("title"),
            requester=self.text_of("requester"),
            category=select_value(self.field("category")),
            service=select_value(self.field("service")),
            ci=select_value(self.field("ci")),
            description=self.text_of("description"),
        )
        return typed.changed_from(self.shown)


def _minutes(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}"
