"""A change as plain data for the detail screen and ``itsm change show``: approvals, history, conflicts and,
for a viewer, which actions they may take now (or why not)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Change
from itsm_tui.services import audit, conflicts
from itsm_tui.services.changes.approvers import approval_notes, counted
from itsm_tui.services.changes.helpers import _now
from itsm_tui.services.changes.impact import Impact, impact_of
from itsm_tui.services.changes.permissions import available_actions
from itsm_tui.services.changes.reading import (
    _login_of,
    _login_pair,
    _logins,
    _target_text,
    planned_of,
    review_required,
)
from itsm_tui.services.changes.risk import recorded_answers
from itsm_tui.services.changes.rules import PRE_IMPLEMENTATION
from itsm_tui.services.conflicts import Conflict
from itsm_tui.services.jsondata import jsonable
from itsm_tui.services.tickets.links import linked_records
from itsm_tui.services.users import Actor

T = TypeVar("T")


# A pending decision no longer asked for once the change is past its decision: not needed (it was approved or
# rejected, and may have gone on from there) or moot (it was withdrawn or cancelled).
_STILL_DECIDING = ("draft", "submitted", "assessed")


def decision_label(decision: str, change_state: str) -> str:
    """An approver's decision as the change screen, ``itsm change show`` and the CAB agenda show it."""
    if decision != "pending" or change_state in _STILL_DECIDING:
        return decision
    return "moot" if change_state in ("withdrawn", "cancelled") else "not needed"


@dataclass(frozen=True)
class ApprovalView:
    login: str
    name: str
    decision: str
    reason: str | None
    decided_at: datetime | None
    shown: str = ""  # the decision as shown (decision_label): pending, approved, rejected, not needed, moot


@dataclass(frozen=True)
class HistoryItem:
    at: datetime
    by: str
    action: str
    field: str | None
    old: str | None
    new: str | None


@dataclass
class ChangeView:
    """A change with everything the detail screen and ``itsm change show`` need, as plain data."""

    id: int
    ref: str
    title: str
    description: str
    change_type: str
    template: str | None
    state: str
    risk: str
    planned_start: datetime | None
    planned_end: datetime | None
    actual_start: datetime | None
    actual_end: datetime | None
    targets: tuple[str, ...]
    services: tuple[str, ...]
    implementer: str | None
    requested_by: str | None
    implementation_plan: str
    backout_plan: str
    test_plan: str
    override_reason: str | None
    rejection_reason: str | None
    review_notes: str | None
    outcome: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    approvals: list[ApprovalView]
    approval_rule: str
    review_required: bool
    conflicts: list[Conflict]
    history: list[HistoryItem]
    # action -> None when the viewer may do it now, else the reason they may not
    actions: dict[str, str | None] = field(default_factory=dict)
    # What a reader must know about its approval: nobody can approve it, approvers skipped (who raises or
    # implements a change never approves it), decisions that do not count, approvals reset by a move.
    notices: list[str] = field(default_factory=list)
    # "history does not verify: ..." when the change's audit chain is broken (audit.history_warning)
    history_warning: str | None = None
    # The records linked with the change, both ways (the tickets that link to it): "INC0000042 ticket"
    linked: tuple[str, ...] = ()
    # Why who raised it withdrew it, or a change manager cancelled it
    cancel_reason: str | None = None
    # What its targets touch (open incidents and problems, recent failed changes), for a change not finished
    impact: Impact | None = None
    # The risk questionnaire as assessed: the score, (question, answer, points) and the assessor's notes.
    risk_score: int | None = None
    risk_answers: tuple[tuple[str, str, int], ...] = ()
    assessment_notes: str | None = None

    def as_json(self) -> dict:
        data = jsonable(
            {k: v for k, v in self.__dict__.items() if k not in ("conflicts", "history", "impact")}
        )
        data["impact"] = self.impact.as_json() if self.impact is not None else None
        data["approvals"] = [jsonable(asdict(a)) for a in self.approvals]
        data["conflicts"] = [c.as_json() for c in self.conflicts]
        data["history"] = [jsonable(asdict(h)) for h in self.history]
        data["risk_answers"] = [{"question": q, "answer": a, "points": p} for q, a, p in self.risk_answers]
        return data

    def fields(
        self,
        planned: str,
        window: Callable[[datetime | None, datetime | None], str],
        typed: Callable[[str], T],
    ) -> list[tuple[str, str | T]]:
        """The labelled fields of the change, as the change screen and ``itsm change show`` list them.

        Each writes times its own way: ``planned`` is the planned window as written, ``window`` writes the
        actual one; ``typed`` makes what someone typed (override, rejection, review) safe for its output.
        """
        rows: list[tuple[str, str | T]] = [
            ("Planned", planned),
            ("Targets", ", ".join(self.targets) or "-"),
            ("Implementer", self.implementer or "-"),
            ("Requested by", self.requested_by or "-"),
            ("Approval", self.approval_rule),
        ]
        if self.risk_score is not None:  # assessed with the questionnaire: its score and answers
            rows.insert(-1, ("Risk", f"{self.risk} (score {self.risk_score})"))
        for index, (question, answer, points) in enumerate(self.risk_answers):
            rows.insert(-1, ("Answers" if index == 0 else "", f"{question} {answer} ({points:+d})"))
        if self.template:
            rows.append(("Template", self.template))
        if self.actual_start:
            rows.append(("Actual", window(self.actual_start, self.actual_end)))
        if self.outcome:
            rows.append(("Outcome", self.outcome + (" (review required)" if self.review_required else "")))
        if self.linked:
            rows.append(("Linked", ", ".join(self.linked)))
        for label, text in (
            ("Override", self.override_reason),
            ("Assessment", self.assessment_notes),
            ("Rejected", self.rejection_reason),
            ("Withdrawn" if self.state == "withdrawn" else "Cancelled", self.cancel_reason),
            ("Review", self.review_notes),
        ):
            if text:
                rows.append((label, typed(text)))
        return rows

    def plans(self) -> list[tuple[str, str]]:
        """The description and the plans that are written, each with its heading, in the order shown."""
        return [
            (label, text)
            for label, text in (
                ("Description", self.description),
                ("Implementation plan", self.implementation_plan),
                ("Back-out plan", self.backout_plan),
                ("Test plan", self.test_plan),
            )
            if text
        ]


def view(
    session: Session,
    config: DeskConfig,
    change: Change,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> ChangeView:
    """The change as plain data; with ``actor``, which actions they may take now (or why not)."""
    now = _now(now)
    users = _logins(
        session, {change.implementer_id, change.requested_by_id} | {a.approver_id for a in change.approvals}
    )
    approvals = [
        ApprovalView(
            users.get(a.approver_id, ("?", "?"))[0],
            users.get(a.approver_id, ("?", "?"))[1],
            a.decision,
            a.reason,
            a.decided_at,
            decision_label(a.decision, change.state),
        )
        for a in sorted(change.approvals, key=lambda a: (users.get(a.approver_id, ("", ""))[0], a.id))
    ]
    history = [
        HistoryItem(
            e.at,
            _who(session, users, e.actor_id),
            e.action,
            e.field,
            e.old_value,
            e.new_value,
        )
        for e in audit.history(session, "change", change.id, limit=100)
    ]
    live = change.state in (*PRE_IMPLEMENTATION, "implementing")
    same_service = config.changes.same_service_severity
    found = (
        conflicts.check(session, planned_of(session, change), same_service=same_service)
        if live and change.planned_start
        else []
    )
    found.sort(key=lambda c: (conflicts.SEVERITY_ORDER[c.severity], c.start))  # the worst first
    result = ChangeView(
        id=change.id,
        ref=change.ref,
        title=change.title,
        description=change.description,
        change_type=change.change_type,
        template=change.template,
        state=change.state,
        risk=change.risk,
        planned_start=change.planned_start,
        planned_end=change.planned_end,
        actual_start=change.actual_start,
        actual_end=change.actual_end,
        targets=tuple(_target_text(t.service, t.ci) for t in sorted(change.targets, key=lambda t: t.id)),
        services=tuple(sorted({t.service for t in change.targets})),
        implementer=_login_of(users, change.implementer_id),
        requested_by=_login_of(users, change.requested_by_id),
        implementation_plan=change.implementation_plan,
        backout_plan=change.backout_plan,
        test_plan=change.test_plan,
        override_reason=change.override_reason,
        rejection_reason=change.rejection_reason,
        review_notes=change.review_notes,
        outcome=change.outcome,
        created_at=change.created_at,
        updated_at=change.updated_at,
        version=change.version,
        approvals=approvals,
        approval_rule=_rule_text(config, change),
        review_required=review_required(change),
        conflicts=found,
        history=history,
    )
    result.notices = approval_notes(session, config, change) + _sent_back(change, history)
    result.risk_score = change.risk_score
    result.risk_answers = _answers(config, change)
    result.assessment_notes = change.assessment_notes
    result.history_warning = audit.history_warning(session, "change", change.id)
    result.cancel_reason = change.cancel_reason
    if live:
        result.impact = impact_of(session, config, change, now=now)
    result.linked = tuple(
        f"{record.ref} {record.kind_word}" for record in linked_records(session, "change", change.id)
    )
    if actor is not None:
        result.actions = available_actions(session, config, actor, change, now)
    return result


def _sent_back(change: Change, history: list[HistoryItem]) -> list[str]:
    """While a change moved after its approval (or during it) awaits the new one: when and why."""
    if change.state not in ("submitted", "assessed"):
        return []
    reset = next((h for h in history if h.action in ("reschedule", "edit") and h.field == "approvals"), None)
    if reset is None:
        return []
    if reset.action == "edit" and change.change_type == "normal":  # editing._reassess: edited once assessed
        if change.state != "submitted":
            return []  # assessed again since
        return [
            f"Assessment asked again: {reset.by} edited the change after its assessment at "
            f"{reset.at:%Y-%m-%d %H:%M} UTC, and the CAB decides on the change as assessed"
        ]
    if reset.action == "edit":  # editing.py: its window, targets or implementer edited while being decided
        return [
            f"Approval asked again: {reset.by} edited the change at {reset.at:%Y-%m-%d %H:%M} UTC, and an "
            f"approval holds only for the version of the change it was given for"
        ]
    return [
        f"Approval asked again: {reset.by} moved the change at {reset.at:%Y-%m-%d %H:%M} UTC, and an "
        f"approval holds only for the window it was given for"
    ]


def _who(session: Session, users: Mapping[int, tuple[str, str]], user_id: int | None) -> str:
    """The login of who did something: from ``users`` when known, else looked up (None: the system)."""
    pair = users.get(user_id) if user_id is not None else None
    return (pair or _login_pair(session, user_id))[0]


def _answers(config: DeskConfig, change: Change) -> tuple[tuple[str, str, int], ...]:
    """The recorded answers of the risk questionnaire, in its order: (question, answer, points); an answer
    changes.toml no longer knows shows with 0 points."""
    given = recorded_answers(change)
    rows = []
    for question in config.changes.risk.questions:
        label = given.pop(question.id, None)
        if label is not None:
            points = next((a.points for a in question.answers if a.label == label), 0)
            rows.append((question.text, label, points))
    rows += [(question_id, label, 0) for question_id, label in sorted(given.items())]
    return tuple(rows)


def _rule_text(config: DeskConfig, change: Change) -> str:
    if change.change_type == "standard":
        return f"pre-approved (template {change.template})"
    if change.change_type == "emergency":
        cab = " or the emergency CAB" if config.changes.emergency_cab else ""
        return f"a change manager{cab} approves (not who raised or implements it)"
    asked = len(counted(change))
    policy = config.changes.approval_rule(change.risk)
    if policy.rule == "all":
        return "every CAB member assigned to its services" + (f" ({asked})" if asked else "")
    needed = min(policy.quorum, asked) if asked else policy.quorum
    return f"{needed} of the CAB members assigned to its services" + (
        f" ({needed} of {asked})" if asked else ""
    )
