"""The risk questionnaire of changes.toml ``[risk]``: what the desk suggests as the answers, the score of a
set of answers and the risk it gives, and the questionnaire of one change as plain data (the assess form and
``itsm change risk``).

The answers are kept on the change (``risk_answers``: JSON, question id -> answer label, sorted) with their
score (``risk_score``); :func:`record_answers` writes them audited, as one line ``services=one; backout=no``.
Three questions can be suggested from the change itself (``RiskQuestion.suggest``): how many services it
affects, whether it is planned outside a maintenance window of its services (the conflict check's
``outside_window``), and whether a change its services and CIs reach failed or was backed out in the last
``[impact] failed_days`` days (the Impact list's rule, ``impact.failed_changes``). The assessor may answer
otherwise; the suggestion is advice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig, RiskQuestion
from itsm_tui.models import Change
from itsm_tui.services import audit, conflicts
from itsm_tui.services.changes.helpers import _now
from itsm_tui.services.changes.impact import failed_changes, targets_scope
from itsm_tui.services.changes.reading import planned_of
from itsm_tui.services.errors import ValidationError
from itsm_tui.services.jsondata import jsonable
from itsm_tui.services.users import Actor

# The failed changes a suggestion names (the newest first); the answer needs only one.
FAILURES_SHOWN = 5


@dataclass(frozen=True)
class AnswerChoice:
    """One answer a question offers, with the points it adds to the score."""

    label: str
    points: int


@dataclass(frozen=True)
class QuestionView:
    """One question of a change's questionnaire: its answers, the answer recorded (or else suggested) and
    why the desk suggests what it does."""

    id: str
    text: str
    answers: tuple[AnswerChoice, ...]
    answer: str | None  # recorded, or else suggested (None: neither)
    suggested: str | None  # what the desk works out (None: the assessor answers)
    why: str | None  # the facts behind the suggestion ("2 services: email, vpn")
    recorded: bool  # ``answer`` is the recorded one

    def points(self, label: str | None) -> int | None:
        """The points of the answer ``label`` (None: no such answer)."""
        return next((a.points for a in self.answers if a.label == label), None)


@dataclass(frozen=True)
class Questionnaire:
    """A change's risk questionnaire as the assess form and ``itsm change risk`` show it."""

    ref: str
    version: int
    state: str
    risk: str  # the change's risk now
    questions: tuple[QuestionView, ...]
    score: int | None  # of the answers shown (recorded or suggested); None while one is unanswered
    level: str | None  # the risk that score gives
    recorded: bool  # the change holds answers (else those shown are the desk's suggestions)
    recorded_score: int | None
    notes: str | None
    medium: int  # from this score a change is medium risk
    high: int  # and from this one high

    def answers(self) -> dict[str, str]:
        """The answers shown, by question id (unanswered questions left out)."""
        return {q.id: q.answer for q in self.questions if q.answer is not None}

    def as_json(self) -> dict:
        return jsonable(asdict(self))


def _question(config: DeskConfig, question_id: str) -> RiskQuestion:
    for question in config.changes.risk.questions:
        if question.id == question_id:
            return question
    known = ", ".join(q.id for q in config.changes.risk.questions) or "none"
    raise ValidationError("answer", f"there is no risk question {question_id!r}; the questions: {known}")


def normalise(config: DeskConfig, answers: Mapping[str, str]) -> dict[str, str]:
    """``answers`` with each question id and answer as changes.toml writes them (case and spaces around them
    forgiven); an unknown question or answer is refused, naming what there is."""
    result: dict[str, str] = {}
    for raw_id, raw_answer in answers.items():
        question = _question(config, raw_id.strip().lower())
        wanted = " ".join(str(raw_answer).split()).lower()
        label = next((a.label for a in question.answers if a.label.lower() == wanted), None)
        if label is None:
            allowed = ", ".join(repr(a.label) for a in question.answers)
            raise ValidationError(
                question.id, f"answer {question.id!r} with one of {allowed}, not {str(raw_answer)!r}"
            )
        result[question.id] = label
    return result


def score(config: DeskConfig, answers: Mapping[str, str]) -> tuple[int, str]:
    """The score of ``answers`` (question id -> answer label) and the risk it gives; every question must be
    answered, with one of its answers."""
    given = normalise(config, answers)
    total = 0
    for question in config.changes.risk.questions:
        label = given.get(question.id)
        if label is None:
            allowed = ", ".join(repr(a.label) for a in question.answers)
            raise ValidationError(
                question.id, f"answer {question.id!r} ({question.text}) with one of {allowed}"
            )
        total += next(a.points for a in question.answers if a.label == label)
    return total, config.changes.risk.level(total)


def answers_text(value: str | None) -> str | None:
    """Recorded answers (the JSON of ``risk_answers``) as one line: ``backout=no; services=one``."""
    if not value:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return value
    if not isinstance(data, dict):
        return value
    return "; ".join(f"{key}={data[key]}" for key in sorted(data))


def recorded_answers(change: Change) -> dict[str, str]:
    """The answers recorded on ``change`` (question id -> label); none if it holds none (or no object)."""
    if not change.risk_answers:
        return {}
    try:
        data = json.loads(change.risk_answers)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(key): str(label) for key, label in data.items()}


def record_answers(
    session: Session,
    change: Change,
    answers: Mapping[str, str],
    actor: Actor | None,
    now: datetime,
    action: str = "assess",
) -> bool:
    """Keep ``answers`` (already normalised) on ``change``, audited as one line of ``question=answer``."""
    text = json.dumps(dict(answers), sort_keys=True)
    return audit.set_field(
        session,
        change,
        "change",
        "risk_answers",
        text,
        actor.id if actor else None,
        now,
        action,
        lambda old, new: (answers_text(old), answers_text(new)),
    )


# --------------------------------------------------------------------------- what the desk suggests


def _pick(question: RiskQuestion, index: int) -> str:
    """The answer at ``index`` of a suggested question (its last when it has fewer)."""
    return question.answers[min(index, len(question.answers) - 1)].label


def _outside_windows(session: Session, change: Change) -> list[str]:
    """The services of ``change`` outside every one of whose maintenance windows it is planned."""
    if change.planned_start is None or change.planned_end is None:
        return []
    planned = planned_of(session, change)  # outside a window: the windows alone decide it
    found = conflicts.find_conflicts([planned], conflicts.window_specs(session, planned.services))
    return sorted(
        {
            c.resource.removeprefix("service ")
            for c in found
            if c.kind == "outside_window" and change.ref in c.refs
        }
    )


def recent_failures(
    session: Session, config: DeskConfig, change: Change, now: datetime
) -> list[tuple[str, str, datetime]]:
    """The recent failures the change's Impact lists (:func:`impact.failed_changes`: the changes its services
    and CIs reach that failed or were backed out and ended, actually or else as planned, in the last
    ``[impact] failed_days`` days): (ref, outcome, end), the newest first, a few."""
    services, cis = targets_scope((t.service, t.ci) for t in change.targets)
    found, _ = failed_changes(
        session,
        config,
        services=services,
        cis=cis,
        exclude_change_id=change.id,
        now=now,
        limit=FAILURES_SHOWN,
    )
    return [(row.ref, row.outcome or "failed", _aware(row.ended_at)) for row in found]


def _aware(value: datetime) -> datetime:
    """An instant read back from either database, in UTC (a naive one is UTC already)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def suggestions(
    session: Session, config: DeskConfig, change: Change, now: datetime | None = None
) -> dict[str, tuple[str, str]]:
    """What the desk suggests for the questions it can answer from the change: id -> (answer, why)."""
    now = _now(now)
    result: dict[str, tuple[str, str]] = {}
    for question in config.changes.risk.questions:
        if question.suggest == "services":
            services = sorted({t.service for t in change.targets})
            count = len(services)
            index = 0 if count <= 1 else 1 if count <= 3 else 2
            why = f"{count} service{'s' if count != 1 else ''}: {', '.join(services) or 'none'}"
            result[question.id] = (_pick(question, index), why)
        elif question.suggest == "window":
            outside = _outside_windows(session, change)
            why = (
                f"outside every window of {', '.join(outside)}"
                if outside
                else "inside its windows (or it has none)"
            )
            result[question.id] = (_pick(question, 1 if outside else 0), why)
        elif question.suggest == "failures":
            failed = recent_failures(session, config, change, now)
            days = config.changes.failed_days
            if failed:
                why = ", ".join(
                    f"{ref} {outcome.replace('_', ' ')} {max(0, (now - end).days)} days ago"
                    for ref, outcome, end in failed
                )
            else:
                why = f"none in the last {days} days"
            result[question.id] = (_pick(question, 1 if failed else 0), why)
    return result


def suggested_answers(
    session: Session, config: DeskConfig, change: Change, now: datetime | None = None
) -> dict[str, str]:
    """The answers the desk suggests for the questions it can work out (question id -> answer label)."""
    return {key: answer for key, (answer, _) in suggestions(session, config, change, now).items()}


def questionnaire(
    session: Session, config: DeskConfig, change: Change, now: datetime | None = None
) -> Questionnaire:
    """The change's questionnaire: each question with the answer recorded, or else the one suggested, the
    score of those answers (once every question has one) and the risk it gives."""
    policy = config.changes.risk
    recorded = recorded_answers(change)
    suggested = suggestions(session, config, change, now)
    questions: list[QuestionView] = []
    for question in policy.questions:
        hint = suggested.get(question.id)
        mine = recorded.get(question.id)
        if mine is not None and mine not in {a.label for a in question.answers}:
            mine = None  # an answer changes.toml no longer offers: to be answered again
        questions.append(
            QuestionView(
                id=question.id,
                text=question.text,
                answers=tuple(AnswerChoice(a.label, a.points) for a in question.answers),
                answer=mine if mine is not None else (hint[0] if hint else None),
                suggested=hint[0] if hint else None,
                why=hint[1] if hint else None,
                recorded=mine is not None,
            )
        )
    total: int | None = None
    level: str | None = None
    if all(q.answer is not None for q in questions):
        total, level = score(config, {q.id: q.answer for q in questions if q.answer is not None})
    return Questionnaire(
        ref=change.ref,
        version=change.version,
        state=change.state,
        risk=change.risk,
        questions=tuple(questions),
        score=total,
        level=level,
        recorded=bool(recorded),
        recorded_score=change.risk_score,
        notes=change.assessment_notes,
        medium=policy.medium,
        high=policy.high,
    )
