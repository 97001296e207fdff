"""A real PostgreSQL server stopped and started again under an open console, its notification watcher running.

The server is a private one (``pg_private``), on a port of its own: the shared test server is never touched.
While it is down, a save keeps the form open with what was typed and says so in the desk's words; once it is
back, the console finds out by itself (no key pressed), the save goes through once, the watcher listens
again, and nothing committed before the outage is lost.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pg_private import PrivateServer, postgres_bindir, private_server
from pilot_helpers import Toasts, screen_text, settle, type_text, wait_until
from sqlalchemy import create_engine, select, text

from itsm_tui.app import ItsmApp
from itsm_tui.config import DeskConfig
from itsm_tui.db import Database
from itsm_tui.models import Ticket
from itsm_tui.push import NotificationWatcher
from itsm_tui.screens.common import StatusLine
from itsm_tui.screens.forms import NewTicketForm
from itsm_tui.screens.ticket import TicketScreen
from itsm_tui.services import tickets
from itsm_tui.services import users as user_service

SIZE = (120, 40)
BACK_WITHIN = 20.0  # seconds from the server accepting connections again to the flag clearing by itself
TECHNICAL = (
    "sqlalchemy",
    "psycopg",
    "SELECT",
    "INSERT",
    "Background on this error",
    "sqlalche.me",
    "OperationalError",
    "connection to server",
    "Connection refused",
    "127.0.0.1",
)
# login -> (roles, groups, name); the first one becomes admin too.
CAST = {
    "admin1": (["admin"], [], "Admin One"),
    "lead": (["shift_lead"], ["SD-L1"], "Lena Lead"),
    "agent1": (["agent"], ["SD-L1"], "Alex Agent"),
}
BEFORE = ["Mail bounces", "VPN drops hourly", "Badge reader dead"]  # committed before the outage


def status(app: ItsmApp) -> str:
    """The status line of the top-most screen that has one (a form is a modal over its screen)."""
    for screen in reversed(app.screen_stack):
        for line in screen.query(StatusLine):
            return str(line.render())
    raise AssertionError("no screen shows a status line")


@pytest.fixture
def server() -> Iterator[PrivateServer]:
    bindir = postgres_bindir()
    if isinstance(bindir, str):
        pytest.skip(bindir)
    with private_server(bindir) as made:
        yield made


@pytest.fixture
def desk(server: PrivateServer, config: DeskConfig) -> Iterator[tuple[Database, dict[str, str]]]:
    """A migrated desk on the private server with the cast and the tickets of ``BEFORE`` (refs by title)."""
    admin = create_engine(server.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE desk"))
    admin.dispose()
    db = Database.connect(server.url("desk"))
    db.upgrade()
    db.sync_catalog(config)
    with db.session() as session:
        for login, (roles, groups, name) in CAST.items():
            user_service.add_user(
                session, actor_login="admin1", login=login, roles=roles, groups=groups, name=name
            )
        user_service.change_roles(session, actor_login="admin1", login="lead", lead_of=["SD-L1"])
    with db.read_session() as session:
        lead = user_service.resolve_actor(session, "lead")
    refs = {}
    for title in BEFORE:
        with db.session() as session:
            refs[title] = tickets.create_ticket(
                session, config, lead, title=title, requester="Rita Requester", group="SD-L1"
            ).ref
    yield db, refs
    db.dispose()


def listening_backends(server: PrivateServer, watcher: NotificationWatcher) -> int:
    """How many sessions of the server the console's watcher LISTENs on (its pool's, push.PoolListener)."""
    listener = watcher.listener
    pids = [c.info.backend_pid for c in listener.listening()] if listener is not None else []
    engine = create_engine(server.url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(CAST(:pids AS int[]))"),
                    {"pids": pids},
                ).scalar_one()
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("stop_mode", ["fast", "immediate"])
async def test_a_console_rides_out_a_postgresql_restart_and_listens_again(
    server: PrivateServer, desk, config: DeskConfig, stop_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, refs = desk
    with db.read_session() as session:
        agent = user_service.resolve_actor(session, "agent1")
        lead = user_service.resolve_actor(session, "lead")
    # No scheduler: only the watcher and the screens touch the database, so the watcher clears the flag.
    app = ItsmApp(db, config, agent, run_scheduler=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        toasts = Toasts(app, monkeypatch)
        await settle(pilot)
        watcher = app.watcher
        assert watcher is not None
        await wait_until(pilot, lambda: watcher.listening, "the watcher to LISTEN", timeout=10)
        assert app.connected
        await wait_until(pilot, lambda: listening_backends(server, watcher) == 1, "one session", timeout=10)

        # a. The server goes away under an open form.
        server.stop(stop_mode)
        app.new_ticket()
        await wait_until(pilot, lambda: isinstance(app.screen, NewTicketForm), "the NewTicketForm")
        form = app.screen
        assert isinstance(form, NewTicketForm)
        await type_text(pilot, "Printer on fire")
        await pilot.press("tab")
        await type_text(pilot, "Rita Requester")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: form.error_shown is not None, "the failed save to show", timeout=10)
        await wait_until(pilot, lambda: not app.connected, "the lost database to show", timeout=10)
        await settle(pilot)
        assert form.is_current  # still open, with what was typed
        assert form.text_of("title") == "Printer on fire"
        assert form.text_of("requester") == "Rita Requester"
        assert form.error_shown is not None
        assert form.error_shown.message == "Not saved: the database cannot be reached; retrying."
        assert "DATABASE UNREACHABLE - retrying" in status(app)
        assert "The database cannot be reached; retrying." in toasts.shown  # once, however it was found
        assert toasts.shown.count("The database cannot be reached; retrying.") == 1
        shown = screen_text(app)
        for word in TECHNICAL:
            assert word.lower() not in shown.lower(), f"{word!r} shown: {shown}"
            assert not [toast for toast in toasts.shown if word.lower() in toast.lower()], toasts.shown

        # b. The server comes back: the console notices with no key pressed.
        server.start()
        back = time.monotonic()
        await wait_until(pilot, lambda: app.connected, "the flag to clear by itself", timeout=BACK_WITHIN)
        cleared_after = time.monotonic() - back
        await settle(pilot)
        assert "UNREACHABLE" not in status(app), status(app)
        assert "The database is reachable again." in toasts.shown
        assert form.is_current and form.text_of("title") == "Printer on fire"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, TicketScreen), "the created ticket to open")

        # The watcher LISTENs again: a notification made after the restart by another session arrives, and
        # only by NOTIFY (its periodic re-check is put off for the rest of the test).
        await wait_until(pilot, lambda: watcher.listening, "the watcher to LISTEN again", timeout=10)
        await wait_until(pilot, lambda: listening_backends(server, watcher) == 1, "one session", timeout=10)
        watcher.listen_recheck_seconds = 3600.0
        other = Database.connect(server.url("desk"))
        try:
            with other.session() as session:
                tickets.assign(session, config, lead, refs["VPN drops hourly"], assignee="agent1")
        finally:
            other.dispose()
        expected = f"{refs['VPN drops hourly']} (P3) assigned to you by Lena Lead: VPN drops hourly"
        await wait_until(
            pilot, lambda: expected in toasts.shown, "the notification after the restart", timeout=10
        )
        assert app.unread == 1
    print(f"{stop_mode} stop: the flag cleared {cleared_after:.1f} s after the server was back")

    # c. One ticket from the save, and everything committed before the outage.
    with db.read_session() as session:
        titles = sorted(session.scalars(select(Ticket.title)))
        refs_now = {t.title: t.ref for t in session.scalars(select(Ticket))}
        users = sorted(session.scalars(text("SELECT login FROM users")))
    assert titles == sorted([*BEFORE, "Printer on fire"])
    assert {title: refs_now[title] for title in BEFORE} == refs
    assert users == ["admin1", "agent1", "lead"]
