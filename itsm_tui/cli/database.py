"""``itsm demo`` and ``itsm db``: the demonstration data and the database schema.

These connect without a :class:`~itsm_tui.cli.desk.Desk`, which refuses a schema that is not current:
``db status`` reports the schema as it finds it, and ``db upgrade`` and ``demo`` bring it up to date.
"""

from __future__ import annotations

import argparse
import sys

from itsm_tui.cli.desk import Handler


def cmd_demo(args: argparse.Namespace) -> int:
    from itsm_tui.config import load_config, resolve_database_url
    from itsm_tui.db import Database
    from itsm_tui.demo import build_demo, is_empty

    config = load_config()
    url = resolve_database_url(args.db)
    db = Database.connect(url)
    try:
        db.upgrade()
        db.sync_catalog(config)
        if args.if_empty and not args.force and not is_empty(db):
            print("the database already holds data; left as it is")
            return 0
        summary = build_demo(
            db,
            config,
            tickets=args.tickets,
            seed=args.seed,
            anchor=args.anchor,
            force=args.force,
            progress=lambda text: print(text, file=sys.stderr),
        )
    finally:
        db.dispose()
    print(summary)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from itsm_tui.config import load_config, resolve_database_url
    from itsm_tui.db import SCHEMA_REVISION, Database, safe_url

    config = load_config()
    url = resolve_database_url(args.db)
    db = Database.connect(url)
    try:
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
    from itsm_tui.config import resolve_database_url
    from itsm_tui.db import SCHEMA_REVISION, Database, safe_url

    url = resolve_database_url(args.db)
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
