"""Demonstration data: 90 days of a plausible service desk, deterministic for a seed and an anchor instant.

Tickets open with weekday and hour-of-day seasonality; each one's history is then lived move by move in
time order, by the rules of the services and of the SLA job, up to the anchor, so the demo is what a desk
running the console would hold: a scan at the anchor finds nothing to do, and every stored SLA instant is
the engine's for the ticket's audit trail. The rows are inserted in bulk (driver-level executemany, one
transaction, the indexes built after the load), so a million tickets take a few minutes.

The data tables are in :mod:`.tables` and the people in :mod:`.roster`; :mod:`.generator` writes the
records through the bulk :mod:`.writer`, with the tickets made chunk by chunk by the factory of
:mod:`.tickets` (in worker processes when there are several chunks), each ticket's moves made by
:mod:`.history` as the services make them, on the fast business clock of :mod:`.clock`; the change
calendar comes from :mod:`.changes`; :mod:`.store` refuses, wipes and finishes the database.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.db import Database
from itsm_tui.demo.generator import Generator
from itsm_tui.demo.store import (
    DemoRefused,
    analyze,
    anchor_instant,
    indexes_after,
    is_empty,
    record_counts,
    reset_sequences,
    restore_groups,
    unsynchronised,
    wipe,
)
from itsm_tui.demo.tables import HISTORY_DAYS
from itsm_tui.services.kpi import rebuild_days

__all__ = ["BATCH", "DemoRefused", "build_demo", "is_empty"]

BATCH = 20_000
"""Tickets per chunk: each chunk is made (in a worker process when there are several) and inserted whole."""


def build_demo(
    db: Database,
    config: DeskConfig,
    *,
    tickets: int = 5000,
    seed: int = 1,
    anchor: datetime | date | None = None,
    force: bool = False,
    progress: Callable[[str], None] = lambda text: None,
) -> str:
    """Fill the database with demonstration data and return a one-line summary."""
    end = anchor_instant(anchor)
    with db.engine.begin() as conn:
        existing, users = record_counts(conn)
        if (existing or users) and not force:
            raise DemoRefused(
                f"the database already holds {existing} tickets and {users} users; "
                f"add --force to replace everything in it with demonstration data"
            )
    with db.engine.connect() as conn, unsynchronised(conn), conn.begin():
        wipe(conn)
        restore_groups(conn, config)
        generator = Generator(conn, config, random.Random(seed), end, tickets, progress, BATCH)
        with indexes_after(conn):
            generator.run()
            progress("indexing ...")
        progress("computing the KPI roll-up ...")
        with Session(bind=conn) as session:
            rebuild_days(session, (end - timedelta(days=HISTORY_DAYS + 1)).date(), end.date())
        if conn.dialect.name != "sqlite":
            reset_sequences(conn)
    analyze(db)
    c = generator.writer.counts
    return (
        f"demo data: {c.get('tickets', 0)} tickets ({generator.open_count} open), {c.get('users', 0)} users, "
        f"{c.get('problems', 0)} problems, {c.get('known_errors', 0)} known errors, "
        f"{c.get('knowledge_articles', 0)} articles, {c.get('changes', 0)} changes, "
        f"{c.get('audit_events', 0)} audit events; history to {end:%Y-%m-%d %H:%M} UTC; "
        f"console login: {generator.os_login}"
    )
