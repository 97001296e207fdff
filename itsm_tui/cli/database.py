"""``itsm demo`` and ``itsm db``: the demonstration data and the database schema.

These connect without a :class:`~itsm_tui.cli.desk.Desk`, which refuses a schema that is not current:
``db status`` reports the schema as it finds it, and ``db upgrade`` and ``demo`` bring it up to date. Both
write to the whole desk, so their guards (``services/desk_guards.py``) are asked before the schema is
touched.
"""

from __future__ import annotations

import argparse
import sys

from itsm_tui.cli.desk import Handler, database_source, database_url


def cmd_demo(args: argparse.Namespace) -> int:
    """Build the demo; over a database that holds records, only as :func:`itsm_tui.demo.check_replace`
    allows, asked before the schema is touched (and again by the build, in its own transaction)."""
    from itsm_tui.config import load_config
    from itsm_tui.db import Database
    from itsm_tui.demo import build_demo, check_replace, holdings

    config = load_config()
    url = database_url(args)
    db = Database.connect(url)
    force, delete_live = args.force or args.delete_live_records, args.delete_live_records
    try:
        with db.engine.connect() as conn:
            if args.if_empty and not force:
                if not holdings(conn).empty:
                    print("the database already holds data; left as it is")
                    return 0
            else:
                check_replace(conn, force=force, delete_live=delete_live)
        db.upgrade()
        db.sync_catalog(config)
        summary = build_demo(
            db,
            config,
            tickets=args.tickets,
            seed=args.seed,
            anchor=args.anchor,
            force=force,
            delete_live=delete_live,
            progress=lambda text: print(text, file=sys.stderr),
        )
    finally:
        db.dispose()
    print(summary)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Create or migrate the schema: anyone on a database without users, an admin on a desk's."""
    from itsm_tui.config import load_config
    from itsm_tui.db import SCHEMA_REVISION, Database, safe_url
    from itsm_tui.services import desk_guards

    config = load_config()
    url = database_url(args)
    db = Database.connect(url)
    try:
        with db.engine.connect() as conn:
            desk_guards.guard_upgrade(conn)
        before = db.current_revision()
        db.upgrade()
        db.sync_catalog(config)
    finally:
        db.dispose()
    if before == SCHEMA_REVISION:
        print(f"{safe_url(url)}: already at revision {SCHEMA_REVISION}")
    else:
        print(f"{safe_url(url)}: upgraded from {before or 'empty'} to revision {SCHEMA_REVISION}")
    return 0


def cmd_db_status(args: argparse.Namespace) -> int:
    from itsm_tui.db import SCHEMA_REVISION, Database, require_existing_sqlite, safe_url

    url = database_url(args)
    require_existing_sqlite(
        url, database_source(args)
    )  # a status looks: it never makes the file it was asked about
    db = Database.connect(url)
    try:
        current = db.current_revision()
    finally:
        db.dispose()
    state = "up to date" if current == SCHEMA_REVISION else "needs `itsm db upgrade`"
    print(f"{safe_url(url)}: revision {current or 'none'} (this program: {SCHEMA_REVISION}) - {state}")
    return 0


HANDLERS: dict[str, Handler] = {
    "demo": cmd_demo,
    "db upgrade": cmd_db_upgrade,
    "db status": cmd_db_status,
}
