"""Notifications reach open consoles: another process's event shows as a toast and in the unread count."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
from pilot_helpers import screen_text, settle, wait_until
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from itsm_tui.app import ItsmApp
from itsm_tui.db import make_engine
from itsm_tui.push import NotificationWatcher
from itsm_tui.services import tickets


def other_process_assigns(db_url: str, ref: str, assignee: str, as_login: str = "lead") -> None:
    """Run `itsm ticket update REF --assign LOGIN` as another console user, in another process."""
    code = (
        "import sys; import itsm_tui.services.users as u; u.os_login = lambda: sys.argv[1]; "
        "from itsm_tui.cli import main; sys.exit(main(sys.argv[2:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, as_login, "ticket", "update", ref, "--db", db_url, "--assign", assignee],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr


def new_ticket(db, config, actor, title="Printer jammed") -> str:
    with db.session() as s:
        return tickets.create_ticket(s, config, actor, title=title, requester="Rita").ref


def eventually(predicate, seconds: float = 20.0) -> bool:
    """Whether ``predicate()`` comes true within ``seconds`` (for the watcher's thread, outside any app)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_watcher_hears_another_process(db, db_url, config, staff):
    ref = new_ticket(db, config, staff["agent1"])
    heard: list = []
    watcher = NotificationWatcher(
        db, staff["agent2"].id, on_new=lambda rows, unread: heard.append((rows, unread))
    )
    watcher.start()
    try:
        assert eventually(lambda: watcher.last_id == 0 and (db.backend == "sqlite" or watcher.listening))
        other_process_assigns(db_url, ref, "agent2")
        assert eventually(lambda: heard)
    finally:
        watcher.stop()
    rows, unread = heard[0]
    assert unread == 1
    assert rows[0].kind == "assigned" and ref in rows[0].message and "Lead" in rows[0].message


def test_postgres_listener_listens_again_when_its_connection_drops(pg_url, db, config, staff):
    if db.backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    refs = [new_ticket(db, config, staff["agent1"], f"T{i}") for i in range(2)]
    heard: list = []
    watcher = NotificationWatcher(
        db, staff["agent2"].id, on_new=lambda rows, unread: heard.extend(rows), poll_seconds=0.2
    )
    watcher.start()
    try:
        assert eventually(lambda: watcher.listening and watcher.listener is not None)
        listener = watcher.listener
        assert listener is not None
        pids = [connection.info.backend_pid for connection in listener.listening()]
        admin = make_engine(db.url, poolclass=NullPool)  # not the pool whose connection is killed
        try:
            with admin.connect() as conn:
                killed = conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[])) AS pid"),
                    {"pids": pids},
                ).scalars()
                assert all(killed)
                conn.commit()
        finally:
            admin.dispose()
        other_process_assigns(db.url, refs[0], "agent2")
        assert eventually(lambda: len(heard) == 1)  # caught up by the connection that replaced it
        assert eventually(lambda: watcher.listening)
        assert not {c.info.backend_pid for c in listener.listening()} & set(pids)  # on a new session
        watcher.listen_recheck_seconds = 3600.0  # from here on only NOTIFY tells it
        other_process_assigns(db.url, refs[1], "agent2")
        assert eventually(lambda: len(heard) == 2)
    finally:
        watcher.stop()


async def test_console_shows_toast_and_count_for_another_process(db, db_url, config, staff):
    title = "[red]VPN[/red] \x1b[2Jdown"
    ref = new_ticket(db, config, staff["agent1"], title)
    app = ItsmApp(db, config, staff["agent2"], run_scheduler=False)
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        await settle(pilot)
        assert app.unread == 0
        await asyncio.to_thread(other_process_assigns, db_url, ref, "agent2")  # the console runs meanwhile
        await wait_until(pilot, lambda: app.unread == 1, "the other process's notification")
        assert app.unread == 1
        await wait_until(pilot, lambda: app.screen.query("Toast"), "the toast")
        shown = screen_text(app)
        assert f"{ref} (P3) assigned to you by Lead" in shown
        # the title as typed, not as markup or a control sequence (the toast may wrap it)
        assert "[red]VPN[/red]" in shown and "^[[2Jdown" in shown and "\x1b" not in shown
        assert "1 unread" in shown
