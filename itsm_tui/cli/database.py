"""``itsm demo`` and ``itsm db``: the demonstration data and the database schema.

These connect without a :class:`~itsm_tui.cli.desk.Desk`, which refuses a schema that is not current:
``db status`` reports the schema as it finds it, and ``db upgrade`` and ``demo`` bring it up to date. Both
write to the whole desk, so their guards (``services/desk_guards.py``) are asked before the schema is
touched.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path

from itsm_tui.cli.desk import CliError, Handler, database_source, database_url
from itsm_tui.cli.output import plain


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


EXIT_UNHEALTHY = 1


def pg_dump_command(url: str, target: str) -> str:
    """The ``pg_dump`` line that backs up the PostgreSQL desk at ``url`` into ``target``, without the
    password (pg_dump reads it from ~/.pgpass or PGPASSWORD) and without SQLAlchemy's driver name."""
    import shlex

    from sqlalchemy.engine import make_url

    plain_url = make_url(url).set(drivername="postgresql", password=None)
    rendered = plain_url.render_as_string(hide_password=False)
    return f"pg_dump --format=custom --file={shlex.quote(target)} {shlex.quote(rendered)}"


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:") or "uri" in parsed.query:
        return None
    return Path(database)


def _revision_of(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version LIMIT 1").fetchone()
    except sqlite3.DatabaseError:
        return None
    return None if row is None else str(row[0])


def cmd_db_backup(args: argparse.Namespace) -> int:
    """Copy an SQLite desk with SQLite's online backup API, which reads one consistent snapshot while the
    consoles go on writing, into a new file only its owner may read; then check the copy itself."""
    from itsm_tui.db import Database, require_existing_sqlite
    from itsm_tui.services import desk_guards

    url = database_url(args)
    require_existing_sqlite(url, database_source(args))
    target = Path(args.file)
    db = Database.connect(url)
    try:
        with db.engine.connect() as conn:
            desk_guards.guard_backup(conn)
        backend = db.backend
    finally:
        db.dispose()
    if backend == "postgresql":
        raise CliError(
            f"a PostgreSQL desk is backed up with pg_dump: {pg_dump_command(url, str(target))} "
            "(restore with pg_restore)"
        )
    source = _sqlite_file(url)
    if source is None:
        raise CliError("only an SQLite desk kept in a file can be backed up with `itsm db backup`")
    shown = plain(str(target))
    if args.file.endswith(os.sep) or target.is_dir():
        raise CliError(f"{shown} names a folder; give the name of the file to write in it")
    if not target.parent.is_dir():
        raise CliError(
            f"the folder {plain(str(target.parent))} does not exist; create it or give another FILE"
        )
    if target.exists() and not args.force:
        raise CliError(f"{shown} already exists; give another FILE, or --force to replace it")
    if target.exists() and target.resolve() == source.resolve():
        raise CliError(f"{shown} is the database itself; give another FILE")
    # Written beside the target and renamed over it at the end, so a failed copy never leaves half a file.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise CliError(f"cannot write in {plain(str(target.parent))}: {exc.strerror}") from None
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # all pages in one step: one read transaction, so one consistent snapshot
            dst.execute("PRAGMA journal_mode=DELETE")
            integrity = [str(row[0]) for row in dst.execute("PRAGMA integrity_check").fetchall()]
            revision = _revision_of(dst)
        finally:
            dst.close()
            src.close()
        if integrity != ["ok"]:
            raise CliError(f"the copy failed its integrity check ({integrity[0]}); it was not kept")
        os.chmod(partial, 0o600)
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()
    size = target.stat().st_size
    print(
        f"backed up {plain(str(source))} to {plain(str(target))}: {size:,} bytes, schema revision "
        f"{revision or 'none'}, integrity check of the copy: ok"
    )
    return 0


_HOLDINGS = ("tickets", "changes", "users", "audit_events")


def _holdings(conn: sqlite3.Connection) -> dict[str, int]:
    return {table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) for table in _HOLDINGS}


def _newest_audit(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT max(at) FROM audit_events").fetchone()
    return str(row[0])[:16] + " UTC" if row and row[0] else "none"


def _describe(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[table]:,} {table.replace('_', ' ')}" for table in _HOLDINGS)


def cmd_db_restore(args: argparse.Namespace) -> int:
    """Write a backup into the desk's own file with SQLite's backup API: one transaction under the write
    lock, so consoles that are open go on with the restored desk at their next read, and nobody has to
    delete files under them. The backup is checked (an SQLite desk of this schema revision, intact)
    before anything is written, and the restore is recorded in the restored desk's audit trail."""
    from datetime import UTC, datetime

    from itsm_tui.db import SCHEMA_REVISION, SQLITE_HEADER, Database, require_existing_sqlite
    from itsm_tui.services import audit, desk_guards
    from itsm_tui.services.users import current_login

    url = database_url(args)
    require_existing_sqlite(url, database_source(args))
    db = Database.connect(url)
    try:
        with db.engine.connect() as conn:
            desk_guards.guard_restore(conn)
        backend = db.backend
    finally:
        db.dispose()
    backup = Path(args.file)
    if backend == "postgresql":
        raise CliError(
            "a PostgreSQL desk is restored with pg_restore into a new, empty database: pg_restore "
            f"--no-owner --dbname=NEW_URL {plain(str(backup))}, then itsm db grant-roles --all-users "
            "and itsm db check on it, and the consoles pointed at it (README, Backup and restore)"
        )
    live = _sqlite_file(url)
    if live is None:
        raise CliError("only an SQLite desk kept in a file can be restored with `itsm db restore`")
    shown = plain(str(backup))
    if not backup.is_file():
        raise CliError(f"{shown} is no file; give the backup made by `itsm db backup`")
    if backup.resolve() == live.resolve():
        raise CliError(f"{shown} is the database itself; give the backup")
    with backup.open("rb") as file:
        if file.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise CliError(f"{shown} is not an SQLite database; give the backup made by `itsm db backup`")
    source = sqlite3.connect(f"file:{backup.absolute()}?mode=ro", uri=True)
    target = sqlite3.connect(f"file:{live.absolute()}?mode=rw", uri=True, timeout=30)
    try:
        integrity = [str(row[0]) for row in source.execute("PRAGMA integrity_check").fetchall()]
        if integrity != ["ok"]:
            raise CliError(f"{shown} fails its integrity check ({plain(integrity[0])}); nothing was restored")
        revision = _revision_of(source)
        if revision != SCHEMA_REVISION:
            raise CliError(
                f"{shown} is at schema revision {revision or 'none'} and this desk at {SCHEMA_REVISION}: "
                f"bring a copy of it up first (itsm db upgrade --db COPY), then restore the copy"
            )
        have, restore = _holdings(target), _holdings(source)
        newest = _newest_audit(source)
        if not args.force:
            raise CliError(
                f"the desk holds {_describe(have)}; the backup {_describe(restore)} (newest audit "
                f"entry {newest}): everything recorded after it is lost. Give --force to restore"
            )
        target.execute("PRAGMA busy_timeout=30000")
        source.backup(target)  # one step: every page under the write lock, in one transaction
        check = [str(row[0]) for row in target.execute("PRAGMA quick_check").fetchall()]
    finally:
        target.close()
        source.close()
    if check != ["ok"]:
        raise CliError(f"the restored desk fails its check ({plain(check[0])}); restore it again")
    restored = Database.connect(url)
    try:
        with restored.session() as session:
            from sqlalchemy import select

            from itsm_tui.models import User

            login = current_login()
            admin = session.scalar(select(User.id).where(User.login == login))
            audit.record(
                session,
                entity_type="desk",
                entity_id=1,
                actor_id=admin,
                at=datetime.now(UTC),
                action="restored",
                field="backup",
                old=f"{_describe(have)}",
                new=f"{backup.absolute()} ({_describe(restore)}, newest audit entry {newest}) by {login}",
            )
    finally:
        restored.dispose()
    print(
        f"restored {plain(str(live))} from {shown}: {_describe(restore)}; newest audit entry {newest}. "
        "Open consoles go on with the restored desk."
    )
    return 0


def cmd_db_check(args: argparse.Namespace) -> int:
    """The database's health in one report: SQLite's quick_check, the schema revision against this
    program's, and every record's audit chain. Exit 1 when any of them is wrong."""
    from itsm_tui.db import SCHEMA_REVISION, Database, require_existing_sqlite, safe_url
    from itsm_tui.services import audit, desk_guards, users

    url = database_url(args)
    require_existing_sqlite(url, database_source(args))
    db = Database.connect(url)
    report: dict[str, object] = {"database": safe_url(url)}
    problems: list[str] = []
    try:
        with db.engine.connect() as conn:
            desk_guards.guard_check(conn)
            if db.backend == "sqlite":
                found = [str(row[0]) for row in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
                report["quick_check"] = found
                if found != ["ok"]:
                    problems += [f"quick_check: {line}" for line in found]
            else:
                report["quick_check"] = None  # PostgreSQL checks its pages itself
        current = db.current_revision()
        report["schema_revision"], report["program_revision"] = current, SCHEMA_REVISION
        if current != SCHEMA_REVISION:
            problems.append(
                f"schema revision {current or 'none'}, this program needs {SCHEMA_REVISION}: "
                "run `itsm db upgrade`"
            )
            report["audit"] = None
        else:
            with db.read_session() as session:
                actor = users.authorize(session, "report.read")
                result = audit.verify(session, actor)
            report["audit"] = {
                "verified": result.ok,
                "records": result.records,
                "rows": result.rows,
                "breaks": [found.as_json() for found in result.breaks],
            }
            problems += [f"audit: {found.describe()}" for found in result.breaks]
    finally:
        db.dispose()
    report["ok"] = not problems
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"database: {plain(str(report['database']))}")
        if report["quick_check"] is not None:
            quick = "ok" if report["quick_check"] == ["ok"] else "FAILED"
            print(f"integrity (PRAGMA quick_check): {quick}")
        print(f"schema revision: {current or 'none'} (this program: {SCHEMA_REVISION})")
        audit_report = report["audit"]
        if isinstance(audit_report, dict):
            rows, records = audit_report["rows"], audit_report["records"]
            print(f"audit chains: {rows:,} rows of {records:,} records checked")
        for line in problems:
            print(f"problem: {plain(line)}")
        print("all good" if not problems else f"{len(problems):,} problem(s) found")
    return 0 if not problems else EXIT_UNHEALTHY


HANDLERS: dict[str, Handler] = {
    "demo": cmd_demo,
    "db upgrade": cmd_db_upgrade,
    "db status": cmd_db_status,
    "db backup": cmd_db_backup,
    "db restore": cmd_db_restore,
    "db check": cmd_db_check,
}
