"""Schema management: migrations, automatic creation of a new SQLite file, refusal of an old schema."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from itsm_tui.cli import main
from itsm_tui.db import (
    MIGRATIONS_DIR,
    SCHEMA_REVISION,
    Database,
    DatabaseError,
    alembic_config,
    open_database,
)


def test_schema_revision_constant_is_the_newest_migration():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_current_head() == SCHEMA_REVISION
    assert MIGRATIONS_DIR.is_dir()


def test_brand_new_sqlite_file_is_created_and_migrated(tmp_path, config):
    path = tmp_path / "sub" / "desk.db"
    db = open_database(f"sqlite:///{path}", config)
    assert path.exists()
    assert db.current_revision() == SCHEMA_REVISION
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        groups = conn.exec_driver_sql("SELECT code FROM groups ORDER BY code").scalars().all()
    assert groups == sorted(config.groups)
    db.dispose()


def test_older_revision_is_refused_with_the_upgrade_command(sqlite_url):
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()
    with pytest.raises(DatabaseError) as exc:
        open_database(sqlite_url)
    assert "itsm db upgrade" in str(exc.value)


def test_cli_refuses_old_schema_with_exit_2(sqlite_url, capsys):
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()
    assert main(["ticket", "list", "--db", sqlite_url]) == 2
    assert "itsm db upgrade" in capsys.readouterr().err


def test_non_itsm_sqlite_file_is_not_touched(tmp_path):
    path = tmp_path / "other.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE something (x INTEGER)"))
    engine.dispose()
    with pytest.raises(DatabaseError) as exc:
        open_database(f"sqlite:///{path}")
    assert "no itsm schema" in str(exc.value)


def test_db_upgrade_command(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["db", "upgrade", "--db", url]) == 0
    assert "upgraded from empty" in capsys.readouterr().out
    assert main(["db", "upgrade", "--db", url]) == 0
    assert "already at revision" in capsys.readouterr().out
    assert main(["db", "status", "--db", url]) == 0
    assert "up to date" in capsys.readouterr().out


def test_db_url_precedence(monkeypatch, tmp_path):
    from itsm_tui.config import default_database_url, resolve_database_url

    monkeypatch.delenv("ITSM_DB_URL", raising=False)
    assert resolve_database_url(None) == default_database_url()
    assert default_database_url().endswith("itsm.db")
    monkeypatch.setenv("ITSM_DB_URL", "sqlite:////env.db")
    assert resolve_database_url(None) == "sqlite:////env.db"
    assert resolve_database_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert resolve_database_url(str(tmp_path / "a.db")) == f"sqlite:///{tmp_path / 'a.db'}"


def test_empty_postgres_database_is_refused_until_upgraded(pg_url):
    # A fresh database on the same server, created empty.
    from sqlalchemy.engine import make_url

    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = make_url(pg_url).database + "_empty"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    try:
        with pytest.raises(DatabaseError) as exc:
            open_database(url)
        assert "itsm db upgrade" in str(exc.value)
        Database.connect(url).upgrade()
        db = open_database(url)
        assert db.current_revision() == SCHEMA_REVISION
        db.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_urgent_queue_reads_the_open_due_index(sqlite_url):
    """The queue's first page (all open, SLA order) is served by the partial index on open tickets."""
    from datetime import UTC, datetime

    from itsm_tui.services import queue
    from itsm_tui.services.users import Actor

    db = Database.connect(sqlite_url)
    captured = []
    from sqlalchemy import event

    @event.listens_for(db.engine, "before_cursor_execute")
    def grab(conn, cursor, statement, parameters, context, executemany):
        if "FROM tickets" in statement and not statement.startswith("EXPLAIN"):
            captured.append((statement, parameters))

    with db.read_session() as session:
        actor = Actor(1, "x", "x", frozenset({"agent"}))
        queue.fetch_page(
            session, queue.query_for(actor, "all_open", queue.Filter(), None, None, datetime.now(UTC))
        )
        statement, parameters = captured[-1]
        plan = " ".join(
            str(row[-1])
            for row in session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        )
    db.dispose()
    assert "tickets USING INDEX ix_tickets_open_due" in plan, plan
    # the page is read in index order; only its own (at most 50) rows are put back in order after the joins
    assert plan.count("TEMP B-TREE") <= 1 and plan.index("TEMP B-TREE") > plan.index("SCAN anon_1"), plan
