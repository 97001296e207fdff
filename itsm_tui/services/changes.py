"""Change records: reading the change calendar."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from itsm_tui.models import Change, ChangeTarget


@dataclass(frozen=True)
class ChangeRow:
    ref: str
    title: str
    change_type: str
    state: str
    risk: str
    planned_start: datetime | None
    planned_end: datetime | None
    services: tuple[str, ...]


def upcoming(session: Session, now: datetime, *, days: int = 14, limit: int = 200) -> list[ChangeRow]:
    """Changes whose planned window ends after ``now`` and starts within ``days`` days, soonest first."""
    rows = session.scalars(
        select(Change)
        .where(Change.planned_end >= now, Change.planned_start <= now + timedelta(days=days))
        .order_by(Change.planned_start, Change.id)
        .limit(limit)
    ).all()
    targets: dict[int, list[str]] = {}
    if rows:
        for change_id, service in session.execute(
            select(ChangeTarget.change_id, ChangeTarget.service).where(
                ChangeTarget.change_id.in_([c.id for c in rows])
            )
        ):
            targets.setdefault(change_id, []).append(service)
    return [
        ChangeRow(
            c.ref,
            c.title,
            c.change_type,
            c.state,
            c.risk,
            c.planned_start,
            c.planned_end,
            tuple(sorted(set(targets.get(c.id, ())))),
        )
        for c in rows
    ]
