"""Reading changes: one by reference, lists for the calendar and ``itsm change list``, and the small
lookups (logins, targets, the planned window) the other modules share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from itsm_tui.models import Change, ChangeTarget, User
from itsm_tui.services.conflicts import Planned, changes_select
from itsm_tui.services.errors import NotFound
from itsm_tui.services.jsondata import jsonable


def ref_of(session: Session, change_id: int) -> str | None:
    """The reference of the change with this id, or None if there is none (e.g. from a notification)."""
    return session.scalar(select(Change.ref).where(Change.id == change_id))


def version_of(session: Session, ref: str) -> int | None:
    """The version of the change ``ref`` (exactly as stored), or None if there is none: one lookup on the
    unique reference index, what a screen showing the change polls to see that someone else acted on it."""
    return session.scalar(select(Change.version).where(Change.ref == ref))


def get_change(session: Session, ref: str, *, for_update: bool = False) -> Change:
    """A change by reference (CHG0000001, case and zero padding forgiven: chg1 works)."""
    text = (ref or "").strip().upper()
    if text.isdigit():
        text = f"CHG{int(text):07d}"
    elif text.startswith("CHG") and text[3:].isdigit():
        text = f"CHG{int(text[3:]):07d}"
    stmt = select(Change).where(Change.ref == text)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    change = session.scalar(stmt)
    if change is None:
        raise NotFound(f"no change {ref!r}; `itsm change list` shows the changes")
    return change


@dataclass(frozen=True)
class ChangeRow:
    """One change on the calendar or in a list."""

    ref: str
    title: str
    change_type: str
    state: str
    risk: str
    planned_start: datetime | None
    planned_end: datetime | None
    services: tuple[str, ...]
    id: int = 0
    implementer: str | None = None
    version: int = 1
    # How it ended (implemented, failed, backed_out) and when it really ran, once known.
    outcome: str | None = None
    actual_start: datetime | None = None
    actual_end: datetime | None = None

    def as_json(self) -> dict:
        return jsonable(asdict(self))

    @property
    def shown_start(self) -> datetime | None:
        """Where the calendar draws the change: its actual window once it ran (both ends known), else the
        planned one."""
        return self.actual_start if self.actual_start and self.actual_end else self.planned_start

    @property
    def shown_end(self) -> datetime | None:
        return self.actual_end if self.actual_start and self.actual_end else self.planned_end


# What :func:`_change_row` reads beside :func:`conflicts.changes_select`'s columns.
ROW_COLUMNS = (
    Change.title,
    Change.risk,
    Change.version,
    Change.outcome,
    Change.actual_start,
    Change.actual_end,
)


def list_changes(
    session: Session,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    states: Sequence[str] | None = None,
    change_type: str | None = None,
    service: str | None = None,
    limit: int = 200,
) -> list[ChangeRow]:
    """Changes whose planned window overlaps [start, end), by planned start (bounded; plain columns, two
    queries however many rows)."""
    stmt = changes_select(*ROW_COLUMNS).limit(max(1, min(limit, 100_000)))
    if start is not None:
        stmt = stmt.where(Change.planned_end > start)
    if end is not None:
        stmt = stmt.where(Change.planned_start < end)
    if states:
        stmt = stmt.where(Change.state.in_(list(states)))
    if change_type:
        stmt = stmt.where(Change.change_type == change_type)
    if service:
        stmt = stmt.where(
            Change.id.in_(select(ChangeTarget.change_id).where(ChangeTarget.service == service.lower()))
        )
    rows = session.execute(stmt).all()
    services: dict[int, set[str]] = {}
    ids = [r.id for r in rows]
    for offset in range(0, len(ids), 900):  # stay below every backend's bound-parameter limit
        for change_id, target in session.execute(
            select(ChangeTarget.change_id, ChangeTarget.service).where(
                ChangeTarget.change_id.in_(ids[offset : offset + 900])
            )
        ):
            services.setdefault(change_id, set()).add(target)
    return [_change_row(r, services.get(r.id, ())) for r in rows]


def _change_row(row: Row[Any], services: Iterable[str]) -> ChangeRow:
    """A change read by :func:`conflicts.changes_select` with :data:`ROW_COLUMNS`; its services."""
    return ChangeRow(
        row.ref,
        row.title,
        row.change_type,
        row.state,
        row.risk,
        row.planned_start,
        row.planned_end,
        tuple(sorted(services)),
        row.id,
        row.login,
        row.version,
        row.outcome,
        row.actual_start,
        row.actual_end,
    )


def upcoming(session: Session, now: datetime, *, days: int = 14, limit: int = 200) -> list[ChangeRow]:
    """Changes whose planned window ends after ``now`` and starts within ``days`` days, soonest first."""
    return list_changes(session, start=now, end=now + timedelta(days=days), limit=limit)


def _login_pair(session: Session, user_id: int | None) -> tuple[str, str]:
    if user_id is None:
        return ("system", "the system")
    row = session.execute(select(User.login, User.name).where(User.id == user_id)).first()
    return (row.login, row.name) if row else ("?", "?")


def _logins(session: Session, user_ids: Iterable[int | None]) -> dict[int, tuple[str, str]]:
    ids = sorted({i for i in user_ids if i is not None})
    if not ids:
        return {}
    return {
        r.id: (r.login, r.name)
        for r in session.execute(select(User.id, User.login, User.name).where(User.id.in_(ids)))
    }


def _login_of(users: Mapping[int, tuple[str, str]], user_id: int | None) -> str | None:
    """The login of ``user_id`` among ``users`` (from :func:`_logins`); None for nobody or someone unknown."""
    pair = users.get(user_id) if user_id is not None else None
    return pair[0] if pair else None


def _target_text(service: str, ci: str | None) -> str:
    return f"{service}:{ci}" if ci else service


def _planned_window(change: Change) -> tuple[datetime, datetime]:
    """The planned window of a saved change: creating one and every move require both ends, so the
    columns, nullable for the schema's sake, are always set."""
    return cast(datetime, change.planned_start), cast(datetime, change.planned_end)


def review_required(change: Change) -> bool:
    """A failed, backed-out or emergency change needs a post-implementation review before it closes."""
    return change.outcome in ("failed", "backed_out") or change.change_type == "emergency"


def planned_of(session: Session, change: Change) -> Planned:
    """The change as the conflict check sees it."""
    login = (
        session.scalar(select(User.login).where(User.id == change.implementer_id))
        if change.implementer_id
        else None
    )
    start, end = _planned_window(change)
    return Planned(
        id=change.id,
        ref=change.ref,
        change_type=change.change_type,
        state=change.state,
        start=start,
        end=end,
        services=frozenset(t.service for t in change.targets),
        cis=frozenset(t.ci for t in change.targets if t.ci),
        implementer_id=change.implementer_id,
        implementer=login,
        override_reason=change.override_reason,
        targets=frozenset((t.service, t.ci or None) for t in change.targets),
    )
