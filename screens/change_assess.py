"""The change screen's forms that ask before they act: the assessment (the risk questionnaire of
changes.toml, scored live as the answers change), an approval (a comment, confirmed; the calendar's ``a``
opens it too) and closing.

The questionnaire comes with the change (the change screen reads it in its load worker while the viewer may
assess), so ``e`` opens the form at once. Each question is a select of its answers with their points; the
desk's suggestions are marked "(suggested)". The score and the risk it gives follow the answers as they
change (``risk.score`` of the configuration: no database); the risk may be set otherwise, and then the
notes say why (the service refuses it without). Saving runs ``changes.assess`` against the version shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import Input, Select, Static, TextArea

from itsm_tui.screens.formscreen import FORM_STYLES, FormScreen, ValuesT, select_value
from itsm_tui.services import changes
from itsm_tui.services.changes.risk import Questionnaire, QuestionView, score
from itsm_tui.services.changes.rules import RISKS
from itsm_tui.services.errors import ServiceError, ValidationError
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from itsm_tui.app import ItsmApp
    from itsm_tui.services.changes import ChangeView

ASSESS_STYLES = Path(__file__).resolve().with_name("change_assess.tcss")
SUGGESTED = "(suggested)"


@dataclass(frozen=True)
class AssessValues:
    answers: dict[str, str]
    risk: str | None  # None: the score's
    notes: str


@dataclass(frozen=True)
class CommentValues:
    text: str


class AskingForm(FormScreen[ValuesT]):
    """A form of the change screen that asks before acting: its rows packed close (change_assess.tcss), an
    error on the top line naming the field."""

    CSS_PATH = [FORM_STYLES, ASSESS_STYLES]
    ERRORS_BESIDE_FIELDS = False

    def error_text(self, exc: ServiceError) -> str:
        """The service's words, naming the field (nothing is reloaded underneath a change's form)."""
        return f"{exc.field}: {exc}" if isinstance(exc, ValidationError) else str(exc)


def answer_options(question: QuestionView) -> list[tuple[str, str]]:
    """A question's answers as a select offers them: the label, its points, and the desk's suggestion."""
    return [
        (
            f"{a.label} ({a.points:+d})" + (f" {SUGGESTED}" if a.label == question.suggested else ""),
            a.label,
        )
        for a in question.answers
    ]


def question_line(question: QuestionView) -> Text:
    """The question above its select, with why the desk suggests its answer (if it does)."""
    line = Text(question.text, style="bold")
    if question.why:
        line.append(f"  desk: {strip_control(question.why, single_line=True)}", style="dim")
    return line


class AssessForm(AskingForm[AssessValues]):
    """Assess a change with the risk questionnaire; the score shows as the answers change."""

    TITLE = "Assess"
    HINT = "{form.save} save · tab next question · enter choose · {form.cancel} cancel · {form.help} keys"

    def __init__(self, ref: str, version: int, questionnaire: Questionnaire) -> None:
        self.ref, self.version, self.questionnaire = ref, version, questionnaire
        given = "the answers recorded" if questionnaire.recorded else f"{SUGGESTED}: the desk's answer"
        super().__init__(
            save=self._store,
            title=f"Assess {ref}: risk",
            note=f"Points add up to the risk; {given}, change any.",
        )
        self.score_shown: tuple[int, str] | None = None  # the score and level shown last (tests read it)

    def compose_fields(self) -> ComposeResult:
        for question in self.questionnaire.questions:
            yield Static(question_line(question), classes="assess-question")
            yield from self.row(
                question.id,
                question.id,
                Select(
                    answer_options(question),
                    value=question.answer if question.answer is not None else Select.NULL,
                    allow_blank=question.answer is None,
                    prompt="answer",
                    id=f"answer-{question.id}",
                ),
            )
        shown = self.questionnaire
        recorded_level = shown.level if shown.recorded else None
        override = shown.risk if recorded_level is not None and shown.risk != recorded_level else None
        yield from self.row(
            "risk",
            "Risk",
            Select(
                [(f"{r} (override: say why)", r) for r in RISKS],
                value=override if override is not None else Select.NULL,
                prompt="as scored",
                id="risk",
            ),
        )
        yield from self.row("notes", "Notes", TextArea(shown.notes or "", id="notes"))

    def compose_below_fields(self) -> ComposeResult:
        yield Static("", id="assess-score")

    def on_mount(self) -> None:
        self._show_score()

    @on(Select.Changed)
    def _answer_changed(self) -> None:
        self._show_score()

    def answers(self) -> dict[str, str]:
        """The answers chosen so far, by question id."""
        chosen = {q.id: self.choice(q.id) for q in self.questionnaire.questions}
        return {key: value for key, value in chosen.items() if value is not None}

    def _show_score(self) -> None:
        if not self.is_mounted:
            return
        shown = self.questionnaire
        line = Text()
        answers = self.answers()
        bounds = f"(medium from {shown.medium}, high from {shown.high})"
        try:
            total, level = score(self.app.config, answers)
        except ValidationError:
            missing = len(shown.questions) - len(answers)
            self.score_shown = None
            line.append(f"Score: answer every question ({missing} to go) {bounds}", style="dim")
        else:
            self.score_shown = (total, level)
            line.append(f"Score {total}: {level} risk ", style="bold")
            line.append(bounds, style="dim")
            override = select_value(self.field_of("risk", Select))
            if isinstance(override, str) and override != level:
                line.append(f"\nAssessed as {override} risk instead: say why in the notes", style="yellow")
        self.query_one("#assess-score", Static).update(line)

    def collect(self) -> AssessValues:
        override = self.choice("risk")
        return AssessValues(self.answers(), override, self.text_of("notes").strip())

    def _store(self, values: AssessValues) -> str:
        app = self.app
        with app.db.session() as session:
            change = changes.assess(
                session,
                app.config,
                app.actor,
                self.ref,
                answers=values.answers if self.questionnaire.questions else None,  # none in changes.toml
                risk=values.risk,
                notes=values.notes or None,
                expected_version=self.version,
                now=app.clock(),
            )
            progress = changes.approval_progress(session, app.config, change)
            risk = f"{change.risk} risk (score {change.risk_score})"
        return f"{self.ref}: {progress}.\n{risk}"

    def saved(self, result: str) -> None:
        message, _, risk = result.partition("\n")
        self.app.notify(message, title=f"Assessed: {risk}", markup=False)


class ApproveForm(AskingForm[CommentValues]):
    """Approve a change: an optional comment, saved only by the save key (Enter does not approve)."""

    TITLE = "Approve"
    SUBMIT_ON_ENTER = False
    HINT = "{form.save} approve · {form.cancel} cancel · {form.help} keys"

    def __init__(self, app: ItsmApp, view: ChangeView, progress: str) -> None:
        self.ref = view.ref
        if view.change_type == "emergency":
            what = "One decision settles an emergency change: approving it approves it."
        else:
            what = f"Approvals so far: {progress}. The rule: {view.approval_rule}."
        title = strip_control(view.title, single_line=True)
        note = f"Approve {view.ref} ({view.risk} risk): {title}\n{what}"
        super().__init__(save=_approver(app, view.ref, view.version), title=f"Approve {view.ref}", note=note)

    def compose_fields(self) -> ComposeResult:
        yield from self.row(
            "reason", "Comment", Input(id="reason", placeholder="a comment for the requester (optional)")
        )

    def collect(self) -> CommentValues:
        return CommentValues(self.text_of("reason").strip())

    def saved(self, result: str) -> None:
        self.app.notify(result, title="Approved", markup=False)


def _approver(app: ItsmApp, ref: str, version: int) -> Callable[[CommentValues], str]:
    def save(values: CommentValues) -> str:
        with app.db.session() as session:
            change = changes.approve(
                session,
                app.config,
                app.actor,
                ref,
                reason=values.text or None,
                expected_version=version,
                now=app.clock(),
            )
            progress = changes.approval_progress(session, app.config, change)
        return f"You approved {ref}: " + ("it is approved." if progress == "approved" else f"{progress}.")

    return save


class CloseForm(AskingForm[CommentValues]):
    """Close a change, once confirmed: a closed change is final."""

    TITLE = "Close"
    HINT = "{form.save} close it · {form.cancel} keep it open · {form.help} keys"

    def __init__(self, view: ChangeView) -> None:
        self.ref, self.version = view.ref, view.version
        outcome = f", {view.outcome.replace('_', ' ')}" if view.outcome else ""
        title = strip_control(view.title, single_line=True)
        final = "A closed change is final: nothing more is done on it."
        note = f"Close {view.ref} ({view.state}{outcome}): {title}\n{final}"
        super().__init__(save=self._store, title=f"Close {view.ref}", note=note)

    def collect(self) -> CommentValues:
        return CommentValues("")

    def _store(self, values: CommentValues) -> str:
        app = self.app
        with app.db.session() as session:
            change = changes.close(
                session, app.config, app.actor, self.ref, expected_version=self.version, now=app.clock()
            )
            return change.state

    def saved(self, result: str) -> None:
        self.app.notify(f"{self.ref}: {result}.", title="Closed", markup=False)
