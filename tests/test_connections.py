"""How many connections a console holds on PostgreSQL: one, which its notification watcher listens on.

A console's engine keeps one pooled connection between actions (``db.PG_POOL``); what workers need at
the same moment is opened for that moment and closed when given back; the watcher LISTENs on the
pool's connections (``push.PoolListener``) instead of opening one of its own. So N consoles hold N
connections of the server (``bench/many_consoles.py`` measures it for N = 10, 50, 100).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from itsm_tui.db import Database, make_engine
from itsm_tui.models import User, utcnow
from itsm_tui.push import NotificationWatcher
from itsm_tui.services import notifications


def eventually(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def console(empty_pg_url) -> Iterator[tuple[Database, str, int]]:
    """A console's handle on the database, its connections named so that the server can count them, and
    the id of its user."""
    name = f"console-{uuid.uuid4().hex[:8]}"
    url = make_url(empty_pg_url).update_query_dict({"application_name": name})
    db = Database.connect(url.render_as_string(hide_password=False))
    with db.session() as session:
        user = User(login=f"u{name[-8:]}", name="Una User", timezone="UTC", created_at=utcnow())
        session.add(user)
        session.flush()
        user_id = user.id
    yield db, name, user_id
    db.dispose()


@pytest.fixture
def server(empty_pg_url) -> Iterator[Engine]:
    """Another program on the same database, counting its sessions (no pool: it keeps none)."""
    engine = make_engine(empty_pg_url, poolclass=NullPool)
    yield engine
    engine.dispose()


def sessions_of(server: Engine, name: str) -> int:
    with server.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"), {"name": name}
            ).scalar_one()
        )


def notify(url: str, user_id: int, key: str) -> None:
    other = Database.connect(url)
    try:
        with other.session() as session:
            notifications.notify(
                session, [user_id], kind="assigned", event_key=key, entity=None, message=f"note {key}"
            )
    finally:
        other.dispose()


def test_a_console_holds_one_connection_which_hears_notifications(console, server, empty_pg_url):
    db, name, user_id = console
    heard: list[str] = []
    watcher = NotificationWatcher(
        db, user_id, on_new=lambda rows, unread: heard.extend(r.message for r in rows)
    )
    watcher.listen_recheck_seconds = 3600.0  # only NOTIFY tells it
    watcher.start()
    try:
        assert eventually(lambda: watcher.listening)
        # Five workers reading at once: the pool opens what they need for the moment ...
        start = threading.Barrier(5)

        def read() -> None:
            start.wait()
            with db.read_session() as session:
                session.execute(text("SELECT pg_sleep(0.3)"))

        readers = [threading.Thread(target=read) for _ in range(5)]
        for reader in readers:
            reader.start()
        assert eventually(lambda: sessions_of(server, name) >= 5)
        for reader in readers:
            reader.join()
        # ... and closes it when given back: one session stays, and it is the one that listens.
        assert eventually(lambda: sessions_of(server, name) == 1)
        time.sleep(0.3)
        assert sessions_of(server, name) == 1
        notify(empty_pg_url, user_id, "first")
        assert eventually(lambda: heard == ["note first"], 5)
        assert sessions_of(server, name) == 1
    finally:
        watcher.stop()


def test_a_notification_arriving_while_a_worker_uses_the_connection_is_heard(console, empty_pg_url):
    """The one connection is busy with the console's reads most of the time here: the notification is read
    by whichever thread reads the connection (a worker's statement, or the watcher) and still heard."""
    db, _name, user_id = console
    heard: list[str] = []
    watcher = NotificationWatcher(
        db, user_id, on_new=lambda rows, unread: heard.extend(r.message for r in rows)
    )
    watcher.listen_recheck_seconds = 3600.0
    watcher.start()
    stop = threading.Event()

    def busy() -> None:  # back-to-back short reads, as a console scrolling through its queue
        while not stop.is_set():
            with db.read_session() as session:
                session.execute(text("SELECT pg_sleep(0.01)"))

    worker = threading.Thread(target=busy)
    try:
        assert eventually(lambda: watcher.listening)
        worker.start()
        for n in range(3):
            notify(empty_pg_url, user_id, f"busy{n}")
            assert eventually(lambda n=n: len(heard) == n + 1, 5), heard
        assert heard == ["note busy0", "note busy1", "note busy2"]
    finally:
        stop.set()
        if worker.is_alive():
            worker.join()
        watcher.stop()
