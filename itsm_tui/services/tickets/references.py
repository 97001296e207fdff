"""Ticket references: INC0000001 for incidents, REQ0000001 for requests, numbered per kind."""

from __future__ import annotations

from sqlalchemy import Insert
from sqlalchemy.orm import Session

from itsm_tui.models import Counter

PREFIX = {"incident": "INC", "request": "REQ"}


def next_reference(session: Session, prefix: str) -> str:
    """Allocate the next reference (INC0000001 ...) inside the caller's transaction."""
    # One upsert, so two first tickets of a kind created at once cannot both insert the counter row.
    bump = {"value": Counter.value + 1}
    stmt: Insert
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        pg = pg_insert(Counter).values(name=prefix, value=1)
        stmt = pg.on_conflict_do_update(index_elements=[Counter.name], set_=bump)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        lite = sqlite_insert(Counter).values(name=prefix, value=1)
        stmt = lite.on_conflict_do_update(index_elements=[Counter.name], set_=bump)
    value = session.execute(stmt.returning(Counter.value)).scalar_one()
    return f"{prefix}{value:07d}"
