"""Problems by reference, and the problem list's views and filter (the queue's grammar: words and tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from itsm_tui.models import KnownError, Link, Problem, User
from itsm_tui.services.errors import NotFound
from itsm_tui.services.problems.rules import OPEN_STATUSES, STATUS_LABELS, STATUSES
from itsm_tui.services.users import Actor

VIEWS: dict[str, str] = {
    "mine": "My problems",
    "open": "Open by priority",
    "known_errors": "Known errors",
    "all": "All problems",
}
LIMIT_MAX = 200
TOKENS = ("p", "svc", "status", "owner", "ci", "cat")


def normal_ref(text: str | None) -> str:
    """``PRB0000012`` from ``prb12``, ``PRB12`` or ``12``; anything else upper-cased as given."""
    value = (text or "").strip().upper()
    if value.isdigit():
        return f"PRB{int(value):07d}"
    if value.startswith("PRB") and value[3:].isdigit():
        return f"PRB{int(value[3:]):07d}"
    return value


def get_problem(session: Session, ref: str, *, for_update: bool = False) -> Problem:
    wanted = normal_ref(ref)
    stmt = select(Problem).where(Problem.ref == wanted)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    problem = session.scalar(stmt)
    if problem is None:
        raise NotFound(f"no problem {wanted!r}; give a reference such as PRB0000004 (itsm problem list)")
    return problem


@dataclass(frozen=True)
class ProblemRow:
    id: int
    ref: str
    title: str
    status: str
    priority: int
    service: str | None
    ci: str | None
    owner: str | None  # login
    opened_at: datetime
    incidents: int  # linked incidents
    known_error: str | None  # the known error in force

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    def as_json(self) -> dict:
        from itsm_tui.services.jsondata import instant

        return {
            "ref": self.ref,
            "title": self.title,
            "status": self.status,
            "priority": self.priority,
            "service": self.service,
            "ci": self.ci,
            "owner": self.owner,
            "opened_at": instant(self.opened_at),
            "incidents": self.incidents,
            "known_error": self.known_error,
        }


@dataclass(frozen=True)
class ProblemList:
    rows: list[ProblemRow]
    error: str | None = None  # the filter's refusal, one line (nothing was read)


def from_a_ticket() -> ColumnElement[bool]:
    """A link's source is a ticket, tested on a copy of the column (coalesce(x, x) is x): a problem's linked
    incidents are then read by ``ix_links_target``, where SQLite without statistics would take the first
    column of ``uq_links_pair`` instead (every ticket's links, for each problem)."""
    return func.coalesce(Link.source_type, Link.source_type) == "ticket"


class FilterError(ValueError):
    pass


def _filtered(stmt: Select, text: str) -> Select:
    for word in text.split():
        key, sep, value = word.partition(":")
        if sep and key.lower() in TOKENS:
            key = key.lower()
            if not value:
                raise FilterError(f"{key}: needs a value, e.g. {key}:{_EXAMPLE[key]}")
            if key == "p":
                if not value.isdigit() or not 1 <= int(value) <= 5:
                    raise FilterError(f"p: takes a priority 1 to 5, not {value!r}")
                stmt = stmt.where(Problem.priority == int(value))
            elif key == "status":
                wanted = value.lower().replace(" ", "_")
                if wanted not in STATUSES:
                    raise FilterError(f"status: is one of {', '.join(STATUSES)}, not {value!r}")
                stmt = stmt.where(Problem.status == wanted)
            elif key == "svc":
                stmt = stmt.where(Problem.service == value.lower())
            elif key == "ci":
                stmt = stmt.where(func.lower(Problem.ci) == value.lower())
            elif key == "cat":
                stmt = stmt.where(Problem.category == value.lower())
            elif key == "owner":
                owner = select(User.id).where(User.login == value).scalar_subquery()
                stmt = stmt.where(Problem.owner_id == owner)
            continue
        # SQLite's lower() folds ASCII letters only: the word is also asked with only those folded, so that
        # "Über" finds "Über" there as PostgreSQL's lower() finds it.
        patterns = {_like(word.lower()), _like("".join(c.lower() if c.isascii() else c for c in word))}
        columns = (Problem.title, Problem.description, Problem.ref, func.coalesce(Problem.root_cause, ""))
        stmt = stmt.where(
            or_(*(func.lower(column).like(p, escape="\\") for column in columns for p in sorted(patterns)))
        )
    return stmt


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


_EXAMPLE = {
    "p": "1",
    "svc": "email",
    "status": "investigating",
    "owner": "xproblem",
    "ci": "PRN-0042",
    "cat": "hardware",
}


def list_problems(
    session: Session, actor: Actor, *, view: str = "open", text: str = "", limit: int = 100
) -> ProblemList:
    """One view's problems (at most ``limit``, :data:`LIMIT_MAX`), filtered by ``text``.

    The views read the problems along ``ix_problems_status`` / ``ix_problems_owner``; each row's count of
    linked incidents and its known error in force are index lookups (``ix_links_target``,
    ``ix_known_errors_problem_id``) for the rows shown only.
    """
    if view not in VIEWS:
        return ProblemList([], f"no view {view!r}; the views are: {', '.join(VIEWS)}")
    limit = max(1, min(int(limit), LIMIT_MAX))
    incidents = (
        select(func.count(Link.id))
        .where(Link.target_type == "problem", Link.target_id == Problem.id, from_a_ticket())
        .correlate(Problem)
        .scalar_subquery()
    )
    known = (
        select(KnownError.ref)
        .where(KnownError.problem_id == Problem.id, KnownError.status == "published")
        .order_by(KnownError.id.desc())
        .limit(1)
        .correlate(Problem)
        .scalar_subquery()
    )
    stmt = select(
        Problem.id,
        Problem.ref,
        Problem.title,
        Problem.status,
        Problem.priority,
        Problem.service,
        Problem.ci,
        User.login,
        Problem.opened_at,
        incidents,
        known,
    ).outerjoin(User, User.id == Problem.owner_id)
    if view == "mine":
        stmt = stmt.where(Problem.owner_id == actor.id, Problem.status.in_(OPEN_STATUSES))
        stmt = stmt.order_by(Problem.priority, Problem.opened_at, Problem.id)
    elif view == "open":
        stmt = stmt.where(Problem.status.in_(OPEN_STATUSES)).order_by(
            Problem.priority, Problem.opened_at, Problem.id
        )
    elif view == "known_errors":
        stmt = stmt.where(
            Problem.id.in_(select(KnownError.problem_id).where(KnownError.status == "published"))
        ).order_by(Problem.priority, Problem.opened_at, Problem.id)
    else:
        stmt = stmt.order_by(Problem.id.desc())
    try:
        stmt = _filtered(stmt, text)
    except FilterError as exc:
        return ProblemList([], str(exc))
    rows = [ProblemRow(*row) for row in session.execute(stmt.limit(limit))]
    return ProblemList(rows)
