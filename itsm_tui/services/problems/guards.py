"""Who may take which action on a problem, and when: one small guard per action of :data:`rules.ACTIONS`.

A guard looks at the problem's status, what it holds (a root cause, a fix, a published known error) and the
actor's roles, never at the inputs of the step (a reason, a verification note). Each step enforces its
action's guard first, and :func:`available_actions` asks the same guards, so what a screen offers is what the
service then allows, with the same words when it refuses.

Roles (``access.PERMISSIONS``): problem managers own, resolve, close, cancel and retire (``problem.own``);
L2/L3 and problem managers record the analysis, work the fix and publish known errors
(``problem.analyse``); whoever may link a ticket links incidents to a problem (``ticket.link``: agents
too); every role reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from sqlalchemy import select
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import KnownError, Problem
from itsm_tui.services.access import has_permission, require
from itsm_tui.services.errors import InvalidTransition, ServiceError
from itsm_tui.services.problems.rules import ACTION_LABELS, ENDED_STATUSES, STATUS_LABELS, TRANSITIONS
from itsm_tui.services.users import Actor

Guard: TypeAlias = Callable[[Session, DeskConfig, Actor, Problem, datetime], None]


@dataclass(frozen=True)
class ActionOffer:
    action: str
    label: str
    refusal: str | None  # None: offered; else why not, in the service's words


def _move(problem: Problem, to: str) -> None:
    allowed = TRANSITIONS.get(problem.status, ())
    if to not in allowed:
        raise InvalidTransition(problem.ref, problem.status, to, allowed)


def _not_ended(problem: Problem) -> None:
    if problem.status in ENDED_STATUSES:
        raise ServiceError(f"{problem.ref} is {STATUS_LABELS[problem.status]}: it is no longer worked")


def published_known_error(session: Session, problem: Problem) -> KnownError | None:
    """The problem's known error in force (published, not retired), if any."""
    return session.scalar(
        select(KnownError)
        .where(KnownError.problem_id == problem.id, KnownError.status == "published")
        .order_by(KnownError.id.desc())
        .limit(1)
    )


def guard_create(actor: Actor) -> None:
    require(actor.roles, "problem.create")


def create_refusal(actor: Actor) -> str | None:
    """Why ``actor`` may not raise a problem (None: they may), as :func:`guard_create` refuses."""
    try:
        guard_create(actor)
    except ServiceError as exc:
        return str(exc)
    return None


def guard_edit(session: Session, config: DeskConfig, actor: Actor, problem: Problem, now: datetime) -> None:
    _not_ended(problem)
    if not has_permission(actor.roles, "problem.own"):
        require(actor.roles, "problem.analyse")


def guard_analyse(
    session: Session, config: DeskConfig, actor: Actor, problem: Problem, now: datetime
) -> None:
    _not_ended(problem)
    require(actor.roles, "problem.analyse")


def guard_assign(session: Session, config: DeskConfig, actor: Actor, problem: Problem, now: datetime) -> None:
    _not_ended(problem)
    require(actor.roles, "problem.own")


def guard_investigate(
    session: Session, config: DeskConfig, actor: Actor, problem: Problem, now: datetime
) -> None:
    _move(problem, "investigating")
    if problem.status == "resolved":
        raise ServiceError(f"{problem.ref} is resolved: reopen it to investigate again")
    require(actor.roles, "problem.analyse")


def guard_publish(
    session: Session, config: DeskConfig, actor: Actor, problem: Problem, now: datetime
) -> None:
    if problem.status not in ("new", "investigating", "known_error", "fix_in_progress"):
        raise InvalidTransition(problem.ref, problem.status, "known_error", TRANSITIONS[problem.status])
    require(actor.roles, "problem.analyse")
    known = published_known_error(session, problem)
    if known is not None:
        raise ServiceError(f"{problem.ref} has its known error {known.ref} published already")
    if not (problem.root_cause or "").strip():
        raise ServiceError(f"{problem.ref} has no root cause yet: record it in the analysis first")
    if not (problem.workaround or "").strip():
        raise ServiceError(f"{problem.ref} has no workaround yet: record it in the analysis first")


def guard_start_fix(
    session: Session, config: DeskConfig, actor: Actor, problem: Problem, now: datetime
) -> None:
    _move(problem, "fix_in_progress")
    require(actor.roles, "problem.analyse")
    if not (problem.root_cause or "").strip():
        raise ServiceError(f"{problem.ref} has no root cause yet: record it in the analysis first")
    if not (problem.permanent_fix or "").strip():
        raise ServiceError(f"{problem.ref} has no permanent fix described: record it in the analysis first")


def _owner_move(problem: Problem, actor: Actor, to: str) -> None:
    _move(problem, to)
    require(actor.roles, "problem.own")


def guard_resolve(
    session: Session, config: DeskConfig, actor: Actor, problem: Problem, now: datetime
) -> None:
    _owner_move(problem, actor, "resolved")
    if not (problem.permanent_fix or "").strip():  # it may have been cleared since the fix was started
        raise ServiceError(f"{problem.ref} has no permanent fix described: record it in the analysis first")


def guard_close(session: Session, config: DeskConfig, actor: Actor, problem: Problem, now: datetime) -> None:
    _owner_move(problem, actor, "closed")


def guard_reopen(session: Session, config: DeskConfig, actor: Actor, problem: Problem, now: datetime) -> None:
    if problem.status != "resolved":
        if "investigating" in TRANSITIONS[problem.status]:
            raise ServiceError(f"{problem.ref} is {STATUS_LABELS[problem.status]}: start the investigation")
        raise InvalidTransition(problem.ref, problem.status, "investigating", TRANSITIONS[problem.status])
    require(actor.roles, "problem.own")


def guard_cancel(session: Session, config: DeskConfig, actor: Actor, problem: Problem, now: datetime) -> None:
    _owner_move(problem, actor, "cancelled")


def guard_duplicate(
    session: Session, config: DeskConfig, actor: Actor, problem: Problem, now: datetime
) -> None:
    _owner_move(problem, actor, "duplicate")


def guard_link_incident(
    session: Session, config: DeskConfig, actor: Actor, problem: Problem, now: datetime
) -> None:
    _not_ended(problem)
    require(actor.roles, "ticket.link")


def guard_link_change(
    session: Session, config: DeskConfig, actor: Actor, problem: Problem, now: datetime
) -> None:
    _not_ended(problem)
    if not has_permission(actor.roles, "problem.own"):
        require(actor.roles, "problem.analyse")


def guard_retire_known_error(
    session: Session, config: DeskConfig, actor: Actor, problem: Problem, now: datetime
) -> None:
    require(actor.roles, "problem.own")
    if published_known_error(session, problem) is None:
        raise ServiceError(f"{problem.ref} has no known error in force to retire")


GUARDS: dict[str, Guard] = {
    "edit": guard_edit,
    "analyse": guard_analyse,
    "assign": guard_assign,
    "investigate": guard_investigate,
    "publish": guard_publish,
    "start_fix": guard_start_fix,
    "resolve": guard_resolve,
    "close": guard_close,
    "reopen": guard_reopen,
    "cancel": guard_cancel,
    "duplicate": guard_duplicate,
    "link_incident": guard_link_incident,
    "link_change": guard_link_change,
    "retire_known_error": guard_retire_known_error,
}
assert set(GUARDS) == set(ACTION_LABELS)


def enforce(
    session: Session, config: DeskConfig, actor: Actor, action: str, problem: Problem, now: datetime
) -> None:
    GUARDS[action](session, config, actor, problem, now)


def available_actions(
    session: Session, config: DeskConfig, actor: Actor, problem: Problem, now: datetime
) -> tuple[ActionOffer, ...]:
    """Every action with why it is not offered (None when it is): the guards the steps enforce."""
    offers: list[ActionOffer] = []
    for action, guard in GUARDS.items():
        try:
            guard(session, config, actor, problem, now)
        except ServiceError as exc:
            offers.append(ActionOffer(action, ACTION_LABELS[action], str(exc)))
        else:
            offers.append(ActionOffer(action, ACTION_LABELS[action], None))
    return tuple(offers)
