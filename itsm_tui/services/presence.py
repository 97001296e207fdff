"""Presence: which consoles have which record open, so a screen can say "Also open by: NAME".

Each console refreshes a heartbeat row per open record (one row per console and record, upserted); a row
whose heartbeat is older than ``stale_after`` no longer counts, so a console that died without leaving
disappears by itself.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from itsm_tui.db import conflict_insert, rowcount
from itsm_tui.models import Presence, User

STALE_AFTER = timedelta(seconds=30)
WRITING = ".writing"
"""Appended to a record's kind for the row a console keeps while someone types a reply or note in it."""
IDS_MAX = 200  # records asked about at once (a screenful of queue rows is far fewer)
# Rows this old are deleted when their record gets a heartbeat (hygiene; they stopped counting long ago).
FORGET_AFTER = timedelta(hours=1)
NAMES_MAX = 20


def new_console_id() -> str:
    """An identifier for one console process (host, process id and a random part), at most 64 characters."""
    host = socket.gethostname().split(".")[0][:30]
    return f"{host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("instants must carry a time zone")
    return now.astimezone(UTC)


def heartbeat(
    session: Session,
    user_id: int,
    console_id: str,
    entity_type: str,
    entity_id: int,
    now: datetime,
) -> None:
    """Record that ``console_id`` (used by ``user_id``) has the record open now (insert or refresh)."""
    now = _utc(now)
    stmt = conflict_insert(session, Presence).values(
        user_id=user_id,
        console_id=console_id,
        entity_type=entity_type,
        entity_id=entity_id,
        heartbeat_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[Presence.console_id, Presence.entity_type, Presence.entity_id],
        set_={"heartbeat_at": stmt.excluded.heartbeat_at, "user_id": stmt.excluded.user_id},
    )
    session.execute(stmt)
    session.execute(
        delete(Presence).where(
            Presence.entity_type == entity_type,
            Presence.entity_id == entity_id,
            Presence.heartbeat_at < now - FORGET_AFTER,
        )
    )


def leave(
    session: Session, console_id: str, entity_type: str | None = None, entity_id: int | None = None
) -> int:
    """Forget that ``console_id`` has a record open (every record of it when no record is named)."""
    stmt = delete(Presence).where(Presence.console_id == console_id)
    if entity_type is not None:
        stmt = stmt.where(Presence.entity_type == entity_type)
    if entity_id is not None:
        stmt = stmt.where(Presence.entity_id == entity_id)
    return rowcount(session.execute(stmt))


def others_viewing(
    session: Session,
    entity_type: str,
    entity_id: int,
    console_id: str,
    now: datetime,
    stale_after: timedelta = STALE_AFTER,
) -> list[str]:
    """Names of the users whose other consoles have the record open (fresh heartbeat), sorted, distinct."""
    now = _utc(now)
    rows = session.scalars(
        select(User.name)
        .join(Presence, Presence.user_id == User.id)
        .where(
            Presence.entity_type == entity_type,
            Presence.entity_id == entity_id,
            Presence.console_id != console_id,
            Presence.heartbeat_at >= now - stale_after,
        )
        .distinct()
        .order_by(User.name)
        .limit(NAMES_MAX)
    )
    return list(rows)


@dataclass(frozen=True)
class Viewer:
    """Someone whose other console has a record open; ``writing``: typing a reply or note in it."""

    name: str
    writing: bool = False


def writing_kind(entity_type: str) -> str:
    """The kind of the presence row kept while a reply or note to a record of ``entity_type`` is typed."""
    return entity_type + WRITING


def viewers(
    session: Session,
    entity_type: str,
    entity_ids: Collection[int],
    console_id: str,
    now: datetime,
    stale_after: timedelta = STALE_AFTER,
) -> dict[int, tuple[Viewer, ...]]:
    """Who else has each of the records ``entity_ids`` open (fresh heartbeats of other consoles), and who
    types in it: one statement over the presence index for all of them (at most :data:`IDS_MAX` records,
    :data:`NAMES_MAX` names each). Records nobody else has open are left out; names are sorted, and someone
    both viewing and writing is listed once, as writing."""
    now = _utc(now)
    ids = sorted(set(entity_ids))[:IDS_MAX]
    if not ids:
        return {}
    writing = writing_kind(entity_type)
    rows = session.execute(
        select(Presence.entity_id, User.name, Presence.entity_type)
        .join(User, Presence.user_id == User.id)
        .where(
            Presence.entity_type.in_((entity_type, writing)),
            Presence.entity_id.in_(ids),
            Presence.console_id != console_id,
            Presence.heartbeat_at >= now - stale_after,
        )
        .distinct()
        .limit(len(ids) * NAMES_MAX * 2)
    )
    found: dict[int, dict[str, bool]] = {}
    for entity_id, name, kind in rows:
        names = found.setdefault(entity_id, {})
        names[name] = names.get(name, False) or kind == writing
    return {
        entity_id: tuple(Viewer(name, names[name]) for name in sorted(names)[:NAMES_MAX])
        for entity_id, names in found.items()
    }
