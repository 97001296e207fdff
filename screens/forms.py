"""Typed modal forms for tickets: assign, escalate, status, resolve, reply or note, impact and urgency, link,
KEDB search, rating, the new-ticket form and the edit form.

Each is a :class:`~itsm_tui.screens.formscreen.FormScreen` typed by its values, a small frozen dataclass; the
screen that opens it passes the save (a service call, run in the form's worker) and gets what the save
returns once it succeeded. A refused save keeps the form open with everything typed and says why, beside
the field concerned when the form shows it.

User text (titles, KEDB results, error messages quoting input) is always rendered literally.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath
from typing import Unpack

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.suggester import Suggester, SuggestFromList
from textual.timer import Timer
from textual.widgets import Input, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option
from textual.widgets.select import NoSelection
from textual.worker import get_current_worker

from itsm_tui.config import LEVELS, DeskConfig
from itsm_tui.keymap import fill_keys
from itsm_tui.screens.common import literal
from itsm_tui.screens.formscreen import FORM_STYLES, ChoiceT, FormArgs, ResultT, ValuesT
from itsm_tui.screens.formscreen import FormScreen as FormScreen
from itsm_tui.screens.formscreen import ShownError as ShownError
from itsm_tui.screens.formscreen import select_value as select_value
from itsm_tui.screens.formscreen import stale_summary as stale_summary
from itsm_tui.screens.sla_explain import preview_text
from itsm_tui.services.errors import ServiceError, ValidationError
from itsm_tui.services.knowledge import KnowledgeHit
from itsm_tui.services.sla_explain import Preview, ProposedChange
from itsm_tui.services.tickets import PENDING_REASONS
from itsm_tui.services.workload import Member, filter_members
from itsm_tui.text import strip_control

TICKET_FORM_STYLES: list[str | PurePath] = [FORM_STYLES, Path(__file__).resolve().with_name("forms.tcss")]

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
    score: int
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


# --------------------------------------------------------------------------- ticket forms


def _compact_input(
    value: str | None = "", placeholder: str = "", suggester: Suggester | None = None
) -> Input:
    return Input(value=value, placeholder=placeholder, compact=True, suggester=suggester)


def _compact_select(
    options: Sequence[tuple[str, ChoiceT]],
    *,
    prompt: str = "Select",
    allow_blank: bool = True,
    value: ChoiceT | NoSelection = Select.NULL,
) -> Select[ChoiceT]:
    return Select(options, compact=True, prompt=prompt, allow_blank=allow_blank, value=value)


def _text_area(text: str = "") -> TextArea:
    return TextArea(text, compact=True, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")


class AssignForm(FormScreen[AssignValues]):
    """Assign to a member of the ticket's group, picked from the group's members with their open tickets
    (the least loaded first): typing filters the list, Up/Down move in it, Enter picks. Choosing another
    group (shift leads) lists that group's members instead, and moves the ticket there. A login typed that
    no member listed matches is sent as typed (the service says why it cannot be assigned)."""

    TITLE = "Assign"
    FIELD_ALIASES = {"assignee": "login"}
    HINT = "type to filter · up/down member · enter pick · tab group · {form.cancel} cancel"
    CSS_PATH = TICKET_FORM_STYLES
    BINDINGS = [
        Binding("down", "member(1)", "Next member", show=False, id="form.member_next"),
        Binding("up", "member(-1)", "Previous member", show=False, id="form.member_previous"),
    ]

    def __init__(
        self,
        *,
        groups: Sequence[str] = (),
        logins: Sequence[str] = (),
        login: str = "",
        group: str | None = None,
        ticket_group: str | None = None,
        **options: Unpack[FormArgs[AssignValues]],
    ) -> None:
        super().__init__(**options)
        self.groups, self.logins, self.initial = list(groups), list(logins), (login, group)
        self.ticket_group = ticket_group  # whose members are listed while the group is kept
        self.members: list[Member] | None = None  # the listed group's members, once read (tests wait)
        self.members_of: str | None = None  # the group they are of
        self.shown_members: list[Member] = []  # those the typed text matches, in the list's order

    def compose_fields(self) -> ComposeResult:
        suggester = SuggestFromList(self.logins, case_sensitive=False) if self.logins else None
        login, group = self.initial
        yield from self.row("login", "Login", _compact_input(login, "type to filter", suggester=suggester))
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
        members = OptionList(id="assign-members")
        members.can_focus = False  # moved from the login field (up/down), so typing never leaves it
        yield members
        yield Static("", id="assign-members-note")

    def on_mount(self) -> None:
        self.load_members(self.listed_group())

    def listed_group(self) -> str | None:
        """The group whose members the list shows: the one chosen, else the ticket's."""
        return self.choice("group") or self.ticket_group

    @on(Select.Changed, "#field-group")
    def _group_changed(self) -> None:
        self.members = None
        self._show_filtered()
        self.load_members(self.listed_group())

    @work(thread=True, exclusive=True, exit_on_error=False, group="assign-members")
    def load_members(self, group: str | None) -> None:
        from itsm_tui.services import workload

        members: list[Member] = []
        if group is not None:
            with self.app.db.read_session() as session:
                members = workload.group_members(session, group)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._members_read, group, members)

    def _members_read(self, group: str | None, members: list[Member]) -> None:
        if group != self.listed_group():
            return  # another group was chosen meanwhile: its own read follows
        self.members, self.members_of = members, group
        self._show_filtered()

    @on(Input.Changed, "#field-login")
    def _typed(self) -> None:
        self._show_filtered()

    def _show_filtered(self) -> None:
        typed = self.text_of("login").strip()
        listed = self.query_one("#assign-members", OptionList)
        note = self.query_one("#assign-members-note", Static)
        listed.clear_options()
        group = self.listed_group()
        if self.members is None or group is None:
            self.shown_members = []
            note.update(
                Text("No group: choose one to list its members.")
                if group is None
                else Text(f"Reading the members of {group} ...")
            )
            return
        # Those the text matches, the one whose login it is first.
        shown = sorted(filter_members(self.members, typed), key=lambda m: m.login.lower() != typed.lower())
        self.shown_members = shown
        for member in shown:
            label = Text()
            label.append_text(literal(member.login.ljust(12), style="bold"))
            label.append(" ")
            label.append_text(literal(member.name[:24].ljust(24)))
            label.append(f" {member.open:>4} open", style="cyan")
            if member.is_lead:
                label.append("  lead", style="dim")
            listed.add_option(Option(label, id=member.login))
        if shown:
            listed.highlighted = 0
            note.update(
                Text(f"{len(shown)} of {len(self.members)} members of {group}; enter picks the one shown")
            )
        elif self.members:
            note.update(Text(f"No member of {group} matches; enter assigns the login as typed."))
        else:
            note.update(Text(f"{group} has no active members; choose another group."))

    def action_member(self, step: int) -> None:
        listed = self.query_one("#assign-members", OptionList)
        if listed.option_count:
            current = listed.highlighted if listed.highlighted is not None else -step
            listed.highlighted = min(max(0, current + step), listed.option_count - 1)

    @on(OptionList.OptionSelected, "#assign-members")
    def _clicked(self, event: OptionList.OptionSelected) -> None:
        listed = self.query_one("#assign-members", OptionList)
        listed.highlighted = event.option_index
        self.action_save()

    def picked(self) -> Member | None:
        """The member highlighted in the list (None: the list is empty)."""
        index = self.query_one("#assign-members", OptionList).highlighted
        if index is None or not 0 <= index < len(self.shown_members):
            return None
        return self.shown_members[index]

    def collect(self) -> AssignValues:
        picked = self.picked()
        login = picked.login if picked is not None else self.text_of("login").strip()
        if not login:
            raise ValidationError("login", "type the login of the person to assign it to, or pick a member")
        return AssignValues(login, self.choice("group"))


class EscalateForm(FormScreen[EscalateValues]):
    """Functional escalation: hand the ticket to another group, saying why."""

    TITLE = "Escalate"

    def __init__(
        self,
        *,
        groups: Sequence[str] = (),
        current_group: str | None = None,
        **options: Unpack[FormArgs[EscalateValues]],
    ) -> None:
        super().__init__(**options)
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
        return EscalateValues(self.choice("group"), self.text_of("reason").strip())


SLA_PREVIEW_GROUP = "sla-preview"


class SlaPreviewForm(FormScreen[ValuesT]):
    """A form whose change may move SLA targets. Given ``sla_preview`` (a blocking call, run in a thread
    worker: the service's preview of a change), it shows under the fields, as the values change, the due
    instants and verdicts saving would give and what the SLA job would then do at once (a breach, an
    escalation that takes the ticket away)."""

    CSS_PATH = TICKET_FORM_STYLES

    def __init__(
        self,
        *,
        sla_preview: Callable[[ProposedChange], Preview] | None = None,
        **options: Unpack[FormArgs[ValuesT]],
    ) -> None:
        super().__init__(**options)
        self._sla_preview = sla_preview
        self.sla_previewed: Preview | None = None  # the preview shown last (tests wait for it)
        self._sla_generation = 0

    def compose_below_fields(self) -> ComposeResult:
        if self._sla_preview is not None:
            yield Static("", id="form-sla-preview")

    def proposed_change(self) -> ProposedChange | None:
        """The change the fields hold now, to preview (None: nothing to preview)."""
        return None

    def refresh_sla_preview(self) -> None:
        if self._sla_preview is None or not self.is_mounted:
            return
        self._sla_generation += 1
        change = self.proposed_change()
        if change is None:
            self.sla_previewed = None
            self.query_one("#form-sla-preview", Static).update("")
            return
        self._run_sla_preview(self._sla_generation, change)

    @work(thread=True, exclusive=True, exit_on_error=False, group=SLA_PREVIEW_GROUP)
    def _run_sla_preview(self, generation: int, change: ProposedChange) -> None:
        if self._sla_preview is None:
            return
        try:
            result = self._sla_preview(change)
        except ServiceError as exc:
            self.app.call_from_thread(self._show_sla_preview, generation, None, str(exc))
            return
        self.app.call_from_thread(self._show_sla_preview, generation, result, None)

    def _show_sla_preview(self, generation: int, result: Preview | None, problem: str | None) -> None:
        if generation != self._sla_generation:
            return  # the values changed since
        panel = self.query_one("#form-sla-preview", Static)
        self.sla_previewed = result
        if result is None:
            text = Text(f"SLA not previewed: {strip_control(problem, single_line=True)}", style="dim")
            panel.update(text)
            return
        panel.update(preview_text(result, self.app.actor.timezone))


class TransitionForm(SlaPreviewForm[TransitionValues]):
    """Change the status: only the allowed targets are offered; asks for what the target needs; with
    ``sla_preview``, what the move does to the SLA times shows as the target is chosen."""

    TITLE = "Change status"

    def __init__(
        self,
        *,
        current: str,
        targets: Sequence[str],
        resolution_codes: Sequence[str] = (),
        target: str | None = None,
        sla_preview: Callable[[ProposedChange], Preview] | None = None,
        **options: Unpack[FormArgs[TransitionValues]],
    ) -> None:
        super().__init__(sla_preview=sla_preview, **options)
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
        self.refresh_sla_preview()

    @on(Select.Changed, "#field-to_status")
    def _target_changed(self) -> None:
        self._show_rows(self.choice("to_status"))
        self.refresh_sla_preview()

    def proposed_change(self) -> ProposedChange | None:
        target = self.choice("to_status")
        if target is None:
            return None
        return ProposedChange(status=target, pending_reason=self.choice("pending_reason"))

    def _show_rows(self, target: str | None) -> None:
        reopening = self.current == "resolved" and target == "in_progress"
        self.set_row_visible("pending_reason", target == "pending")
        self.set_row_visible("reason", target == "cancelled" or reopening)
        self.set_row_visible("code", target == "resolved")
        self.set_row_visible("note", target == "resolved")
        placeholder = "why it is cancelled (e.g. duplicate of INC0000123)"
        if reopening:
            placeholder = "what is still wrong"
        self.field_of("reason", Input).placeholder = placeholder

    # The service names the pending reason "reason" too: show it beside whichever reason row is visible.
    def show_error(self, exc: ServiceError) -> None:
        if (
            isinstance(exc, ValidationError)
            and exc.field == "reason"
            and self.choice("to_status") == "pending"
        ):
            exc = ValidationError("pending_reason", str(exc))
        super().show_error(exc)

    def collect(self) -> TransitionValues:
        target = self.choice("to_status")
        if target is None:
            raise ValidationError("to_status", "choose the new status")
        reason = code = note = None
        if target == "pending":
            reason = self.choice("pending_reason")
        elif target == "cancelled" or (self.current == "resolved" and target == "in_progress"):
            reason = self.text_of("reason").strip()
        elif target == "resolved":
            code = self.choice("code")
            note = self.text_of("note").strip()
        return TransitionValues(target, reason, code, note)


class ResolveForm(FormScreen[ResolveValues]):
    """Resolve with a resolution code (from the catalog) and a note saying what was done."""

    TITLE = "Resolve"
    HINT = "{form.save} resolve · tab next field · {form.cancel} cancel · {form.help} keys"

    def __init__(
        self, *, resolution_codes: Sequence[str] = (), **options: Unpack[FormArgs[ResolveValues]]
    ) -> None:
        super().__init__(**options)
        self.resolution_codes = tuple(resolution_codes)

    def compose_fields(self) -> ComposeResult:
        codes = self.resolution_codes or self.app.config.resolution_codes
        yield from self.row(
            "code", "Code", _compact_select([(c, c) for c in codes], prompt="(choose a code)")
        )
        yield from self.row("note", "Note", _text_area())

    def collect(self) -> ResolveValues:
        return ResolveValues(self.choice("code"), self.text_of("note").strip())


class TextForm(FormScreen[TextValues]):
    """A public reply (``public``) or an internal work note; several lines.

    ``templates``: (name, text) of the canned texts offered (replies.toml, already filled for the ticket).
    Picking one puts its text into an empty field, or at the cursor into what was typed already (a greeting
    written first is kept); the list then goes back to its prompt, ready for the next pick, and the text
    has the focus again. The text comes before the list, so it takes the focus when the form opens.
    """

    CSS_PATH = TICKET_FORM_STYLES
    FIELD_ALIASES = {"body": "text"}
    SUBMIT_ON_ENTER = False
    HINT = (
        "{form.save} save · {form.editor} $EDITOR · tab next field · {form.cancel} cancel · {form.help} keys"
    )
    TEMPLATE_HINT = (
        "{form.save} save · {form.template} template · {form.editor} $EDITOR · {form.cancel} cancel · "
        "{form.help} keys"
    )
    BINDINGS = [Binding("ctrl+t", "pick_template", "Insert a reply or note template", id="form.template")]

    def __init__(
        self,
        *,
        public: bool,
        text: str = "",
        templates: Sequence[tuple[str, str]] = (),
        **options: Unpack[FormArgs[TextValues]],
    ) -> None:
        options.setdefault(
            "title", "Public reply (the requester sees it)" if public else "Internal work note"
        )
        super().__init__(**options)
        self.public, self.initial = public, text
        self.templates = dict(templates)

    @property
    def hint(self) -> str:
        return fill_keys(self, self.TEMPLATE_HINT if self.templates else self.HINT)

    def compose_fields(self) -> ComposeResult:
        yield from self.row("text", "Reply" if self.public else "Note", _text_area(self.initial))
        if self.templates:
            # Names shown literally (a Select reads a plain string as markup).
            names = [(Text(strip_control(name, single_line=True)), name) for name in self.templates]
            picker = Select(names, compact=True, prompt="(insert a template)", allow_blank=True)
            yield from self.row("template", "Template", picker)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pick_template":
            return bool(self.templates)
        return super().check_action(action, parameters)

    def action_pick_template(self) -> None:
        select = self.field_of("template", Select)
        select.focus()
        select.action_show_overlay()  # the list open at its prompt: down goes to the first template

    @on(Select.Changed, "#field-template")
    def _template_picked(self, event: Select.Changed) -> None:
        name = event.value
        if not isinstance(name, str) or name not in self.templates:
            return  # back at the prompt
        text, area = self.templates[name], self.field_of("text", TextArea)
        if area.text.strip():
            area.insert(text, maintain_selection_offset=False)
        else:
            area.replace(text, area.document.start, area.document.end, maintain_selection_offset=False)
        event.select.clear()
        area.focus()

    def collect(self) -> TextValues:
        return TextValues(self.text_of("text"), self.public)


class ImpactUrgencyForm(SlaPreviewForm[ImpactUrgencyValues]):
    """Change impact and urgency; the priority the matrix gives is shown as you change them, and with
    ``sla_preview`` what it does to the SLA times."""

    TITLE = "Impact and urgency"

    def __init__(
        self,
        *,
        impact: str,
        urgency: str,
        config: DeskConfig | None = None,
        sla_preview: Callable[[ProposedChange], Preview] | None = None,
        **options: Unpack[FormArgs[ImpactUrgencyValues]],
    ) -> None:
        super().__init__(sla_preview=sla_preview, **options)
        self.initial = (impact, urgency)
        self._config = config

    @property
    def config(self) -> DeskConfig:
        return self._config or self.app.config

    def compose_fields(self) -> ComposeResult:
        impact, urgency = self.initial
        options = [(level, level) for level in LEVELS]
        yield from self.row("impact", "Impact", _compact_select(options, allow_blank=False, value=impact))
        yield from self.row("urgency", "Urgency", _compact_select(options, allow_blank=False, value=urgency))
        yield from self.row("priority", "Priority", Static("", id="field-priority", classes="form-value"))

    def on_mount(self) -> None:
        self._preview()

    @on(Select.Changed)
    def _preview(self) -> None:
        impact, urgency = self.choice("impact"), self.choice("urgency")
        if impact is None or urgency is None:
            return
        before = self.config.priority_for(*self.initial)
        after = self.config.priority_for(impact, urgency)
        text = Text(f"P{after}", style="bold")
        text.append(f"  (now P{before})" if after != before else "  (unchanged)")
        self.query_one("#field-priority", Static).update(text)
        self.refresh_sla_preview()

    def proposed_change(self) -> ProposedChange | None:
        impact, urgency = self.choice("impact"), self.choice("urgency")
        if impact is None or urgency is None:
            return None
        return ProposedChange(impact=impact, urgency=urgency)

    def collect(self) -> ImpactUrgencyValues:
        # Neither select can be emptied: the initial levels only stand in for the type checker.
        impact = self.choice("impact") or self.initial[0]
        urgency = self.choice("urgency") or self.initial[1]
        return ImpactUrgencyValues(impact, urgency, self.config.priority_for(impact, urgency))


class LinkForm(FormScreen[LinkValues]):
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


class KedbForm(FormScreen[KedbChoice]):
    """Search the KEDB and knowledge articles by words; Enter applies the chosen known error's workaround
    (a work note and a link) or links the chosen article."""

    TITLE = "KEDB and knowledge search"
    HINT = "type words · down: results · enter apply/link · {form.cancel} close · {form.help} keys"
    SEARCH_DELAY = 0.25
    CSS_PATH = TICKET_FORM_STYLES
    BINDINGS = [Binding("down", "results", "Results", id="kedb.results", show=False)]

    def __init__(
        self,
        *,
        search: Callable[[str], list[KnowledgeHit]] | None = None,
        words: str = "",
        **options: Unpack[FormArgs[KedbChoice]],
    ) -> None:
        super().__init__(**options)
        self._search_fn = search
        self.initial_words = words
        self.hits: list[KnowledgeHit] = []
        self._timer: Timer | None = None

    def compose_fields(self) -> ComposeResult:
        yield from self.row("words", "Words", _compact_input(self.initial_words, "e.g. vpn timeout"))
        yield OptionList(id="kedb-results")
        yield Static("", id="kedb-preview")

    def on_mount(self) -> None:
        if self.initial_words or self._search_fn is not None:  # a ticket's own matches need no words
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
        except ServiceError as exc:
            self.app.call_from_thread(self.show_error, exc)
            return
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_hits, words, hits)

    def _default_search(self, words: str) -> list[KnowledgeHit]:
        from itsm_tui.services import knowledge

        with self.app.db.read_session() as session:
            return knowledge.search(session, words)

    def _show_hits(self, words: str, hits: list[KnowledgeHit]) -> None:
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


class RateForm(FormScreen[RateValues]):
    """Record the requester's satisfaction (1-5) and an optional comment."""

    TITLE = "Satisfaction rating"

    def compose_fields(self) -> ComposeResult:
        options = [(f"{score} - {label}", score) for score, label in SCORES]
        yield from self.row("score", "Score", _compact_select(options, prompt="(1-5)"))
        yield from self.row("comment", "Comment", _compact_input(placeholder="what the requester said"))

    def collect(self) -> RateValues:
        score = select_value(self.field_of("score", Select))
        if not isinstance(score, int):
            raise ValidationError("score", "choose a score from 1 (very poor) to 5 (excellent)")
        return RateValues(score, self.text_of("comment").strip() or None)


# --------------------------------------------------------------------------- new ticket


class _TicketFieldsForm(FormScreen[ValuesT, ResultT]):
    """What the new-ticket and edit forms share: category (offered by the ticket's kind), service and CI (a
    service narrows the CIs offered), and a three-line description."""

    CSS_PATH = TICKET_FORM_STYLES
    SUBMIT_ON_ENTER = False

    def __init__(
        self, *, config: DeskConfig | None = None, **options: Unpack[FormArgs[ValuesT, ResultT]]
    ) -> None:
        super().__init__(**options)
        self._config = config

    @property
    def config(self) -> DeskConfig:
        return self._config or self.app.config

    def kind(self) -> str:
        return "incident"

    def compose_classification(self) -> ComposeResult:
        config = self.config
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
        category: Select[str] = self.field_of("category", Select)
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
        service = self.choice("service")
        ci: Select[str] = self.field_of("ci", Select)
        keep = shown or select_value(ci)
        services = [self.config.services[service]] if service in self.config.services else []
        cis = [c for s in services or self.config.services.values() for c in s.cis]
        if shown and shown not in cis:
            cis.append(shown)
        ci.set_options([(c, c) for c in cis])
        if keep in cis:
            ci.value = keep


class NewTicketForm(_TicketFieldsForm[NewTicketValues, CreatedTicket]):
    """Log a new incident or request. The priority the matrix gives is previewed as impact and urgency change.

    Without ``save`` the ticket is created through the app's database and the form closes with a
    :class:`CreatedTicket`.
    """

    TITLE = "New ticket"
    HINT = "{form.save} create · tab/enter next field · {form.cancel} cancel · {form.help} keys"

    def __init__(
        self,
        *,
        config: DeskConfig | None = None,
        requester: str = "",
        save: Callable[[NewTicketValues], CreatedTicket] | None = None,
        on_refused: Callable[[ServiceError], None] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(config=config, save=save or self._create, on_refused=on_refused, title=title)
        self.initial_requester = requester

    def kind(self) -> str:
        return self.choice("kind") or "incident"

    def compose_fields(self) -> ComposeResult:
        config = self.config
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
        impact, urgency = self.choice("impact"), self.choice("urgency")
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

    def levels(self) -> tuple[str, str]:
        """The impact and urgency chosen (neither select can be emptied; medium stands in for the types)."""
        return self.choice("impact") or "medium", self.choice("urgency") or "medium"

    @property
    def previewed_priority(self) -> int:
        return self.config.priority_for(*self.levels())

    def collect(self) -> NewTicketValues:
        impact, urgency = self.levels()
        return NewTicketValues(
            title=self.text_of("title"),
            description=self.text_of("description"),
            kind=self.kind(),
            impact=impact,
            urgency=urgency,
            category=self.choice("category"),
            service=self.choice("service"),
            ci=self.choice("ci"),
            requester=self.text_of("requester"),
            group=self.choice("group"),
        )

    def _create(self, values: NewTicketValues) -> CreatedTicket:
        from itsm_tui.services import tickets

        app = self.app
        with app.db.session() as session:
            ticket = tickets.create_ticket(session, app.config, app.actor, **asdict(values))
            return CreatedTicket(ticket.id, ticket.ref, ticket.priority)

    def saved(self, result: CreatedTicket) -> None:
        self.app.notify(f"{result.ref} created (P{result.priority}).", title="New ticket", markup=False)


class EditTicketForm(_TicketFieldsForm[TicketEdits]):
    """Correct a ticket's title, requester, category, service, CI or description; the form closes with the
    fields that differ from what was shown (:class:`TicketEdits`)."""

    TITLE = "Edit ticket"

    def __init__(
        self,
        *,
        shown: TicketEdits,
        kind: str = "incident",
        config: DeskConfig | None = None,
        **options: Unpack[FormArgs[TicketEdits]],
    ) -> None:
        super().__init__(config=config, **options)
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
        service: Select[str] = self.field_of("service", Select)
        if self.shown.service in self.config.services:
            with service.prevent(Select.Changed):  # the CIs are offered below, keeping the ticket's own
                service.value = self.shown.service
        self._offer_categories(self.shown.category)
        self._offer_cis(self.shown.ci)

    def collect(self) -> TicketEdits:
        typed = TicketEdits(
            title=self.text_of("title"),
            requester=self.text_of("requester"),
            category=self.choice("category"),
            service=self.choice("service"),
            ci=self.choice("ci"),
            description=self.text_of("description"),
        )
        return typed.changed_from(self.shown)


def _minutes(minutes: int) -> str:
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}"
