"""``itsm db backup`` and ``itsm db check``: a consistent copy while the desk is written; its health."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import textwrap
import time
from pathlib import Path

import pytest
from access_helpers import run_as
from forked import PIPE, Forked
from sqlalchemy import text

from itsm_tui.db import SCHEMA_REVISION
from itsm_tui.services import tickets

# Creates tickets through the services, one transaction each, until it is killed; prints "." per ticket.
WRITER = textwrap.dedent(
    """
    import sys
    from itsm_tui.config import load_config
    from itsm_tui.db import Database
    from itsm_tui.services import tickets, users

    db = Database.connect(sys.argv[1])
    config = load_config()
    number = 0
    while True:
        number += 1
        with db.session() as s:
            actor = users.resolve_actor(s, "agent1")
            tickets.create_ticket(s, config, actor, title=f"Load {number}", requester="Pat")
        print(".", end="", flush=True)
    """
)


def _sqlite_only(db) -> None:
    if db.backend != "sqlite":
        pytest.skip("an SQLite file backup")


def _file(db) -> Path:
    return Path(db.url.removeprefix("sqlite:///"))


def test_a_backup_taken_while_another_process_writes_is_consistent(
    db, staff, tmp_path, monkeypatch, capsys
) -> None:
    _sqlite_only(db)
    db.dispose()  # no connection of this process is carried into the writer (forked: see forked.py)
    writer = Forked(WRITER, db.url, stdout=PIPE, stderr=PIPE)
    try:
        assert writer.stdout is not None
        assert writer.stdout.read(5) == "....."  # it is writing before the backup starts
        copy = tmp_path / "copy.db"
        code, out, err = run_as(monkeypatch, capsys, "admin1", "db", "backup", str(copy), "--db", db.url)
        time.sleep(0.3)
        assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""  # still writing after
    finally:
        writer.kill()
        writer.wait()
    assert code == 0, err
    assert f"schema revision {SCHEMA_REVISION}" in out and "integrity check of the copy: ok" in out
    assert f"{copy.stat().st_size:,} bytes" in out
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        copied = conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
        # every ticket copied has its creation audited: no ticket without its trail
        unaudited = conn.execute(
            "SELECT COUNT(*) FROM tickets t WHERE NOT EXISTS (SELECT 1 FROM audit_events a "
            "WHERE a.entity_type = 'ticket' AND a.entity_id = t.id)"
        ).fetchone()[0]
    assert copied >= 5 and unaudited == 0
    copy_url = f"sqlite:///{copy}"
    code, out, err = run_as(monkeypatch, capsys, "admin1", "db", "check", "--json", "--db", copy_url)
    assert code == 0, (out, err)
    report = json.loads(out)
    assert report["ok"] is True and report["audit"]["verified"] is True and report["quick_check"] == ["ok"]
    assert report["audit"]["records"] >= copied
    code, out, err = run_as(monkeypatch, capsys, "agent1", "ticket", "list", "--db", copy_url)
    assert code == 0, err
    assert "Load 1" in out


def test_backup_refuses_an_existing_file_a_missing_folder_and_an_agent(
    db, staff, tmp_path, monkeypatch, capsys
) -> None:
    _sqlite_only(db)
    existing = tmp_path / "there.db"
    existing.write_text("keep me")
    code, _, err = run_as(monkeypatch, capsys, "admin1", "db", "backup", str(existing), "--db", db.url)
    assert code == 2 and "already exists" in err and "--force" in err and err.count("\n") == 1
    assert existing.read_text() == "keep me"
    code, _, err = run_as(
        monkeypatch, capsys, "admin1", "db", "backup", str(existing), "--force", "--db", db.url
    )
    assert code == 0, err
    assert existing.read_bytes().startswith(b"SQLite format 3\x00")
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600
    missing = tmp_path / "nowhere" / "copy.db"
    code, _, err = run_as(monkeypatch, capsys, "admin1", "db", "backup", str(missing), "--db", db.url)
    assert code == 2 and "does not exist" in err and err.count("\n") == 1
    assert not missing.parent.exists()
    for login in ("agent1", "lead", "mallory"):
        target = tmp_path / f"{login}.db"
        code, _, err = run_as(monkeypatch, capsys, login, "db", "backup", str(target), "--db", db.url)
        assert code == 2 and "admin" in err and "Traceback" not in err, (login, err)
        assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no partial left


def test_db_check_names_an_audit_row_edited_by_sql(db, staff, config, monkeypatch, capsys) -> None:
    with db.session() as s:
        ticket = tickets.create_ticket(s, config, staff["agent1"], title="Printer jam", requester="Pat")
        ticket_id = ticket.id
    code, out, err = run_as(monkeypatch, capsys, "analyst1", "db", "check", "--db", db.url)
    assert code == 0, (out, err)
    assert out.endswith("all good\n") and f"(this program: {SCHEMA_REVISION})" in out
    if db.backend == "sqlite":
        assert "integrity (PRAGMA quick_check): ok" in out
    with db.session() as s:
        s.execute(
            text(
                "UPDATE audit_events SET new_value = 'forged' WHERE entity_type = 'ticket' "
                "AND entity_id = :i AND seq = 1"
            ),
            {"i": ticket_id},
        )
    code, out, err = run_as(monkeypatch, capsys, "analyst1", "db", "check", "--db", db.url)
    assert code == 1, (out, err)
    assert "problem: audit: INC0000001 audit #1" in out and "1 problem(s) found" in out
    code, out, _ = run_as(monkeypatch, capsys, "analyst1", "db", "check", "--json", "--db", db.url)
    report = json.loads(out)
    assert code == 1 and report["ok"] is False and report["audit"]["verified"] is False
    assert [b["entity_id"] for b in report["audit"]["breaks"]] == [ticket_id]
    code, _, err = run_as(monkeypatch, capsys, "mallory", "db", "check", "--db", db.url)
    assert code == 2 and err.count("\n") == 1


def test_db_check_reports_a_schema_behind_the_program(db, staff, monkeypatch, capsys) -> None:
    with db.session() as s:
        s.execute(text("UPDATE alembic_version SET version_num = '0009'"))
    try:
        code, out, _ = run_as(monkeypatch, capsys, "analyst1", "db", "check", "--db", db.url)
    finally:  # the PostgreSQL database is the worker's, shared with later tests
        with db.session() as s:
            s.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": SCHEMA_REVISION})
    assert code == 1
    assert f"schema revision 0009, this program needs {SCHEMA_REVISION}: run `itsm db upgrade`" in out


def test_postgresql_backup_prints_the_pg_dump_line(db, staff, monkeypatch, capsys) -> None:
    if db.backend != "postgresql":
        pytest.skip("PostgreSQL")
    url = db.url.replace("postgresql://postgres@", "postgresql+psycopg://postgres:s3cret@", 1)
    code, out, err = run_as(monkeypatch, capsys, "admin1", "db", "backup", "/tmp/desk.dump", "--db", url)
    assert code == 2 and out == ""
    assert "pg_dump --format=custom --file=/tmp/desk.dump postgresql://postgres@127.0.0.1:5432/" in err
    assert "s3cret" not in err and "+psycopg" not in err and err.count("\n") == 1
    code, _, err = run_as(monkeypatch, capsys, "agent1", "db", "backup", "/tmp/desk.dump", "--db", db.url)
    assert code == 2 and "pg_dump" not in err  # refused before it is told how
    assert os.path.exists("/tmp/desk.dump") is False
