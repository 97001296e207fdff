"""Demonstration data: 90 days of a plausible service desk, deterministic for a seed and an anchor instant.

Tickets open with weekday and hour-of-day seasonality; each one's history is then lived move by move in
time order, by the rules of the services and of the SLA job, up to the anchor, so the demo is what a desk
running the console would hold: a scan at the anchor finds nothing to do, and every stored SLA instant is
the engine's for the ticket's audit trail. The rows are inserted in bulk (on PostgreSQL a COPY of the text
the worker processes laid out, elsewhere the driver's executemany; one transaction, the indexes built after
the load), so a million tickets take a few minutes.

The data tables are in :mod:`.tables` and the people in :mod:`.roster`; :mod:`.generator` writes the
records through the bulk :mod:`.writer`, with the tickets made chunk by chunk by the factory of
:mod:`.tickets` (in worker processes when there are several chunks), each ticket's moves made by
:mod:`.history` as the services make them, on the fast business clock of :mod:`.clock`; the change
calendar comes from :mod:`.changes`; the knowledge articles, problems and known errors are then made, once
the load is indexed, by the services' own steps (:mod:`.problems`); :mod:`.store` reads what the database
holds, wipes it, marks what the demo made and finishes it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, insert
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.db import Database
from itsm_tui.demo.generator import Generator
from itsm_tui.demo.roster import Staff
from itsm_tui.demo.store import (
    DemoRefused,
    Holdings,
    analyze,
    anchor_instant,
    holdings,
    indexes_after,
    is_empty,
    mark_demo,
    reset_sequences,
    restore_groups,
    search_index_after,
    unsynchronised,
    wipe,
)
from itsm_tui.demo.tables import HISTORY_DAYS
from itsm_tui.models import RoleMembership
from itsm_tui.services import desk_guards, users
from itsm_tui.services.kpi import rebuild_days

__all__ = ["BATCH", "DemoRefused", "Holdings", "build_demo", "check_replace", "holdings", "is_empty"]

BATCH = 20_000
"""Tickets per chunk: each chunk is made (in a worker process when there are several) and inserted whole."""


def check_replace(
    conn: Connection, *, force: bool = False, delete_live: bool = False, login: str | None = None
) -> Holdings:
    """What building the demo on this database would delete, if it may; refused otherwise.

    An empty database may be filled by anyone (a new desk being tried out). One that holds records is
    replaced only when asked (``force``) by an admin (:func:`~itsm_tui.services.desk_guards.guard_rebuild`,
    ``login`` the OS login by default), and only if the demo made every record in it: a record made after
    the demo was built, or a database the demo never built, is a live desk's, deleted only when that is
    asked for by name as well (``delete_live``, ``--delete-live-records``).
    """
    held = holdings(conn)
    if held.empty:
        return held
    if not (force or delete_live):
        raise DemoRefused(
            f"the database already holds {held.describe()}; an admin replaces everything in it with "
            f"demonstration data with --force (--if-empty leaves it as it is)"
        )
    desk_guards.guard_rebuild(conn, login)
    if held.live and not delete_live:
        raise DemoRefused(
            f"the database is a live service desk: it holds {held.describe_live()}; "
            f"--force replaces only a demo, add --delete-live-records to delete them all the same"
        )
    return held


def _builder_administers(conn: Connection, builder: Staff) -> None:
    """Make the one who built the demo (the OS login, the demo's shift lead) its admin as well, as the first
    user of any desk is: so that they may add users to it, and replace it with a new demo, themselves."""
    if "admin" not in builder.roles:
        conn.execute(insert(RoleMembership).values(user_id=builder.id, role="admin"))


def build_demo(
    db: Database,
    config: DeskConfig,
    *,
    tickets: int = 5000,
    seed: int = 1,
    anchor: datetime | date | None = None,
    force: bool = False,
    delete_live: bool = False,
    progress: Callable[[str], None] = lambda text: None,
) -> str:
    """Fill the database with demonstration data and return a one-line summary.

    A database that holds records is replaced as :func:`check_replace` allows, checked in the very
    transaction that deletes them (its tables locked on PostgreSQL, the write lock held on SQLite), so
    nothing made meanwhile is deleted unchecked; what is deleted is named (``progress`` and the summary).
    """
    end = anchor_instant(anchor)
    login = users.current_login()
    connection = db.engine.connect().execution_options(sqlite_begin="IMMEDIATE")
    with connection as conn, unsynchronised(conn), conn.begin():
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE users, tickets, changes IN EXCLUSIVE MODE")
        held = check_replace(conn, force=force, delete_live=delete_live, login=login)
        replaced = "" if held.empty else f"replaced {held.describe()}; "
        if replaced:
            progress(f"deleting {held.describe()} ...")
        with search_index_after(conn):
            truncated = wipe(conn)
            restore_groups(conn, config)
            generator = Generator(conn, config, random.Random(seed), end, tickets, progress, BATCH)
            generator.writer.freeze = truncated
            with indexes_after(conn):
                generator.run()
                progress("indexing ...")
            generator.knowledge_and_problems()
        _builder_administers(conn, generator.os_user)
        mark_demo(conn)
        progress("computing the KPI roll-up ...")
        with Session(bind=conn) as session:
            rebuild_days(session, (end - timedelta(days=HISTORY_DAYS + 1)).date(), end.date())
        if conn.dialect.name != "sqlite":
            reset_sequences(conn)
    analyze(db)
    c = generator.writer.counts
    return (
        f"{replaced}demo data: {c.get('tickets', 0)} tickets ({generator.open_count} open), "
        f"{c.get('users', 0)} users, "
        f"{c.get('problems', 0)} problems, {c.get('known_errors', 0)} known errors, "
        f"{c.get('knowledge_articles', 0)} articles, {c.get('changes', 0)} changes, "
        f"{c.get('audit_events', 0)} audit events; history to {end:%Y-%m-%d %H:%M} UTC; "
        f"console login: {generator.os_login}"
    )
