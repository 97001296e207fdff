"""A backup put back under an open console: ``itsm db restore`` writes it into the desk's own file, and a
file replaced by hand (deleted and copied back, or renamed over) is reopened by the console by itself.

The console is a Pilot app on an SQLite file; the restores are done as an admin would, from outside the
console's connections (the CLI in this process, or plain file operations); what the file holds afterwards is
read with a fresh ``sqlite3`` connection, not through the console's engine.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from pilot_helpers import settle, type_text, wait_until
from sqlalchemy.engine import make_url

from itsm_tui.app import ItsmApp
from itsm_tui.cli import main
from itsm_tui.screens.common import StatusLine
from itsm_tui.screens.forms import NewTicketForm
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import tickets

SIZE = (120, 40)


def itsm(login: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("itsm_tui.services.users.os_login", lambda: login)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def titles_in(path: Path) -> list[str]:
    """The ticket titles the file holds, read by a connection of its own."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT title FROM tickets ORDER BY id")]
    finally:
        conn.close()


def backup_of(path: Path, target: Path) -> None:
    source, copy = sqlite3.connect(path), sqlite3.connect(target)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()
        source.close()


def status(app: ItsmApp) -> str:
    return str(app.screen.query_one(StatusLine).render())


@pytest.fixture
def desk(staff_sqlite, config, tmp_path):
    """The staff desk with one ticket, a backup of it, then a second ticket the backup does not hold."""
    db, staff = staff_sqlite
    path = Path(str(make_url(db.url).database))
    with db.session() as session:
        tickets.create_ticket(session, config, staff["agent1"], title="Before the backup", requester="Ann")
    backup = tmp_path / "backup.db"
    backup_of(path, backup)
    with db.session() as session:
        tickets.create_ticket(session, config, staff["agent1"], title="After the backup", requester="Bob")
    return db, staff, path, backup


async def open_new_ticket(pilot, app: ItsmApp, title: str) -> NewTicketForm:
    app.new_ticket()
    await wait_until(pilot, lambda: isinstance(app.screen, NewTicketForm), "the NewTicketForm")
    form = app.screen
    assert isinstance(form, NewTicketForm)
    await type_text(pilot, title)
    await pilot.press("tab")
    await type_text(pilot, "Rita Requester")
    return form


def remove_desk_files(path: Path, *suffixes: str) -> None:
    for suffix in suffixes:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


# --------------------------------------------------------------------------- itsm db restore


def test_restore_says_what_would_be_lost_and_needs_force(desk) -> None:
    _db, _staff, path, backup = desk
    code, out, err = itsm("admin1", "db", "restore", str(backup), "--db", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    # the desk holds two tickets, the backup one; both counted as they are
    assert "the desk holds 2 tickets" in err and "the backup 1 tickets" in err and "--force" in err
    assert titles_in(path) == ["Before the backup", "After the backup"]


def test_an_agent_may_not_restore(desk) -> None:
    _db, _staff, path, backup = desk
    code, _out, err = itsm("agent1", "db", "restore", str(backup), "--force", "--db", str(path))
    assert code == 2 and "replace the whole service desk database" in err
    assert titles_in(path) == ["Before the backup", "After the backup"]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda tmp: tmp / "missing.db", "is no file"),
        (lambda tmp: (tmp / "notes.txt").write_text("hello") and tmp / "notes.txt", "is not an SQLite"),
    ],
)
def test_restore_refuses_what_is_no_backup(desk, tmp_path, make, words) -> None:
    _db, _staff, path, _backup = desk
    code, _out, err = itsm("admin1", "db", "restore", str(make(tmp_path)), "--force", "--db", str(path))
    assert code == 2 and words in err and err.count("\n") == 1
    assert titles_in(path) == ["Before the backup", "After the backup"]


def test_restore_refuses_a_backup_of_another_schema_revision(desk, tmp_path) -> None:
    _db, _staff, path, backup = desk
    older = tmp_path / "older.db"
    shutil.copy(backup, older)
    conn = sqlite3.connect(older)
    conn.execute("UPDATE alembic_version SET version_num = '0009'")
    conn.commit()
    conn.close()
    code, _out, err = itsm("admin1", "db", "restore", str(older), "--force", "--db", str(path))
    assert code == 2 and "revision 0009" in err and "itsm db upgrade" in err
    assert titles_in(path) == ["Before the backup", "After the backup"]


async def test_a_restore_under_an_open_console_is_seen_and_the_console_saves_into_it(desk, config):
    db, staff, path, backup = desk
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        form = await open_new_ticket(pilot, app, "Typed during the restore")
        code, out, err = itsm("admin1", "db", "restore", str(backup), "--force", "--db", str(path))
        assert code == 0, err
        assert "restored" in out and "1 tickets" in out
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the created ticket to open")
        assert form.error_shown is None
        assert app.connected
    assert titles_in(path) == ["Before the backup", "Typed during the restore"]
    conn = sqlite3.connect(path)
    try:
        recorded = conn.execute(
            "SELECT a.action, u.login FROM audit_events a LEFT JOIN users u ON u.id = a.actor_id "
            "WHERE a.entity_type = 'desk'"
        ).fetchall()
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    assert recorded == [("restored", "admin1")]
    code, out, _err = itsm("admin1", "db", "check", "--db", str(path))
    assert code == 0 and "all good" in out


# --------------------------------------------------------------------------- a file replaced by hand


@pytest.mark.parametrize("how", ["delete, then copy back", "rename over"])
async def test_the_console_reopens_a_desk_file_put_back_by_hand(desk, config, how, monkeypatch):
    db, staff, path, backup = desk
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        form = await open_new_ticket(pilot, app, "Printer on fire")
        if how == "rename over":
            staged = path.with_name("staged.db")
            shutil.copy(backup, staged)
            # The copy first, then the old file's logs: removed before, they could be made again by the
            # console's own writes to the old file, still in place until the rename.
            os.replace(staged, path)
            remove_desk_files(path, "-wal", "-shm")
        else:
            remove_desk_files(path, "", "-wal", "-shm")
            await pilot.press("ctrl+s")  # while the file is gone: refused in the desk's words, text kept
            await wait_until(pilot, lambda: form.error_shown is not None, "the failed save to show")
            await settle(pilot)
            assert form.is_current and form.text_of("title") == "Printer on fire"
            assert not app.connected and "cannot be reached" in str(form.error_shown)
            assert not path.exists()  # the console made no empty desk in its place
            shutil.copy(backup, path)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the created ticket to open")
        # A read that came between the rename and the logs' removal was refused (the stale -wal) and set the
        # flag after the save had begun; the console's next database work clears it.
        await wait_until(pilot, lambda: app.connected, "the status line to clear", timeout=15)
        await settle(pilot)
        assert "UNREACHABLE" not in status(app)  # the ticket screen's status line
    assert titles_in(path) == ["Before the backup", "Printer on fire"]


async def test_a_file_put_back_beside_the_old_files_log_is_not_mixed_with_it(desk, config, caplog):
    """The old desk's -wal holds pages the backup does not: opening the new file with it would read the
    old desk's ticket into the backup (SQLite applies the log it finds). The console refuses to open it,
    says the database cannot be reached, and logs what the admin must remove."""
    db, staff, path, backup = desk
    app = ItsmApp(db, config, staff["agent1"], run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert Path(f"{path}-wal").stat().st_size > 0  # "After the backup" is in the log, not the file
        form = await open_new_ticket(pilot, app, "Printer on fire")
        remove_desk_files(path, "")
        shutil.copy(backup, path)
        with caplog.at_level(logging.WARNING):
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: form.error_shown is not None, "the refused save to show")
            await settle(pilot)
        assert form.is_current and form.text_of("title") == "Printer on fire"
        assert not app.connected and "cannot be reached" in str(form.error_shown)
        assert any("-wal of the file it replaced" in record.getMessage() for record in caplog.records)
        assert titles_in_backup_only(path) == ["Before the backup"]
        remove_desk_files(path, "-wal", "-shm")  # what the log told the admin to do
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the created ticket to open")
    assert titles_in(path) == ["Before the backup", "Printer on fire"]


def titles_in_backup_only(path: Path) -> list[str]:
    """The titles in the main file alone, its log left out (``immutable``: nothing else is read)."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT title FROM tickets ORDER BY id")]
    finally:
        conn.close()
