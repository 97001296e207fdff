"""Hearing of new notifications for one user, in a background thread.

On PostgreSQL the watcher LISTENs for ``pg_notify`` (sent in the transaction that wrote the notification,
so it arrives at commit) on the connections of the console's own pool (:class:`PoolListener`), so that a
quiet console holds one connection to the server, not one for its work and another to listen on; it also
re-checks now and then, and while no connection of the pool is open (the server gone) it polls until
one is again. On SQLite it polls the newest notification id of the user, an indexed lookup that costs
microseconds, twice a second.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

from itsm_tui.db import Database
from itsm_tui.services import notifications
from itsm_tui.services.notifications import NotificationRow

log = logging.getLogger("itsm.push")

NewNotifications = Callable[[list[NotificationRow], int], None]  # new rows (oldest first), unread count
ConnectionState = Callable[[bool], None]


class PoolListener:
    """LISTEN on every connection the engine's pool hands out, and hear what arrives on them.

    The first time a connection of the pool is checked out it LISTENs on :data:`notifications.PG_CHANNEL`
    (and commits, before the caller's work begins); psycopg hands a notification to :meth:`_notified`
    in whichever thread reads the connection next: a worker running a statement on it, or
    :meth:`wait`, which waits for any listening connection to have something to read while it sits in the
    pool (taking psycopg's lock of the connection, so that it never reads in the middle of someone's
    statement). PostgreSQL delivers a notification to a session between its transactions, and a console's
    transactions are short, so it is heard at once. A connection that fails is left to the pool, which
    opens a new one at the next checkout; that one listens too (:attr:`fresh` says so, for a catch-up).
    """

    def __init__(self, engine: Engine, channel: str, payload: str) -> None:
        self.engine, self.channel, self.payload = engine, channel, payload
        self.heard = threading.Event()  # a notification for this user arrived
        self.fresh = threading.Event()  # a connection started listening: what came before it is unheard
        self._lock = threading.Lock()
        self._connections: dict[int, Any] = {}  # id -> psycopg connection listening
        event.listen(engine, "checkout", self._checkout)
        for name in ("close", "close_detached", "detach", "invalidate"):
            event.listen(engine, name, self._gone)

    def remove(self) -> None:
        event.remove(self.engine, "checkout", self._checkout)
        for name in ("close", "close_detached", "detach", "invalidate"):
            event.remove(self.engine, name, self._gone)
        with self._lock:
            self._connections.clear()

    def _checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        with self._lock:
            if self._connections.get(id(dbapi_connection)) is dbapi_connection:
                return
        try:
            dbapi_connection.execute(f"LISTEN {self.channel}")
            dbapi_connection.commit()  # LISTEN takes effect at commit; nothing of the caller's has begun
        except Exception as exc:  # lost since the pool's ping: the pool takes another connection
            raise DisconnectionError(f"LISTEN failed: {exc}") from exc
        dbapi_connection.add_notify_handler(self._notified)
        with self._lock:
            self._connections[id(dbapi_connection)] = dbapi_connection
        self.fresh.set()

    def _gone(self, dbapi_connection: Any, *_args: Any) -> None:
        with self._lock:
            if self._connections.get(id(dbapi_connection)) is dbapi_connection:
                del self._connections[id(dbapi_connection)]

    def _notified(self, note: Any) -> None:
        if note.channel == self.channel and note.payload == self.payload:
            self.heard.set()

    def listening(self) -> list[Any]:
        """The open connections that listen."""
        with self._lock:
            return [c for c in self._connections.values() if not c.closed]

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for a listening connection to have something to read, and read
        the notifications on it (:attr:`heard` is set if one is for this user)."""
        connections = self.listening()
        if not connections:
            time.sleep(timeout)
            return
        try:
            readable, _, _ = select.select(connections, [], [], timeout)
        except Exception:  # closed meanwhile: the next round sees it gone
            return
        for connection in readable:
            # Something to read: a notification, or the reply to a statement another thread is running (it
            # holds the lock, reads the reply and any notification with it; this waits for it to finish).
            if not connection.lock.acquire(timeout=5):
                continue
            try:
                if connection.closed:
                    continue
                pgconn = connection.pgconn
                pgconn.consume_input()
                while (note := pgconn.notifies()) is not None:
                    if note.relname.decode() == self.channel and note.extra.decode() == self.payload:
                        self.heard.set()
            except Exception as exc:  # the server went away: the pool replaces the connection when used
                log.debug("reading notifications failed: %s", exc)
                self._gone(connection)
            finally:
                connection.lock.release()


class NotificationWatcher:
    """Calls ``on_new`` (from its own thread) whenever the user has new notifications."""

    def __init__(
        self,
        db: Database,
        user_id: int,
        on_new: NewNotifications,
        on_connection: ConnectionState | None = None,
        poll_seconds: float = 0.5,
        listen_recheck_seconds: float = 5.0,
    ) -> None:
        self.db, self.user_id, self.on_new = db, user_id, on_new
        self.on_connection = on_connection or (lambda ok: None)
        self.poll_seconds, self.listen_recheck_seconds = poll_seconds, listen_recheck_seconds
        self.last_id = 0
        self.connected = True
        self.listening = False
        self.listener: PoolListener | None = None  # on PostgreSQL, while the watcher runs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="itsm-notifications", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def recheck(self) -> None:
        """Someone else found the database failing: the next good check reports the way back."""
        self.connected = False

    # ------------------------------------------------------------------ checking

    def check(self) -> None:
        """Fetch anything newer than what was seen; report it, with the unread count."""
        try:
            with self.db.read_session() as session:
                newest = notifications.newest_id(session, self.user_id)
                rows = (
                    notifications.since(session, self.user_id, self.last_id) if newest > self.last_id else []
                )
                unread = notifications.unread_count(session, self.user_id) if rows else None
        except Exception as exc:  # the database is gone for now: say so, keep trying
            log.debug("notification check failed: %s", exc)
            self._set_connected(False)
            return
        self._set_connected(True)
        if rows:
            self.last_id = rows[-1].id
            self.on_new(rows, unread or 0)

    def _set_connected(self, ok: bool) -> None:
        if ok != self.connected:
            self.connected = ok
            self.on_connection(ok)

    def _prime(self) -> None:
        """Start from the newest notification: what came before is in the inbox, not a toast."""
        while not self._stop.is_set():
            try:
                with self.db.read_session() as session:
                    self.last_id = notifications.newest_id(session, self.user_id)
                return
            except Exception:
                self._set_connected(False)
                self._stop.wait(2)

    # ------------------------------------------------------------------ loops

    def _run(self) -> None:
        self._prime()
        while not self._stop.is_set():
            if self.db.backend == "postgresql":
                try:
                    self._listen()
                except Exception as exc:  # dropped connection: poll until listening works again
                    log.debug("LISTEN failed: %s", exc)
                    self.listening = False
                    self._poll(until=time.monotonic() + 5)
            else:
                self._poll(until=None)

    def _poll(self, until: float | None) -> None:
        while not self._stop.is_set() and (until is None or time.monotonic() < until):
            self.check()
            self._stop.wait(self.poll_seconds)

    def _listen(self) -> None:
        """Hear notifications on the pool's connections (:class:`PoolListener`) until stopped; while none
        of them is open (the server gone, or not yet used), poll, which opens one once the server is back."""
        listener = self.listener = PoolListener(self.db.engine, notifications.PG_CHANNEL, str(self.user_id))
        try:
            self.check()  # opens a connection of the pool, which then listens
            last_check = time.monotonic()
            while not self._stop.is_set():
                if not listener.listening():
                    self.listening = False
                    self._stop.wait(self.poll_seconds)
                    self.check()
                    last_check = time.monotonic()
                    continue
                self.listening = True
                listener.wait(0.25)
                caught_up = listener.fresh.is_set()  # a new connection listens: catch up on the gap
                if caught_up or listener.heard.is_set():
                    listener.fresh.clear()
                    listener.heard.clear()
                    self.check()
                    last_check = time.monotonic()
                elif time.monotonic() - last_check > self.listen_recheck_seconds:
                    self.check()
                    last_check = time.monotonic()
        finally:
            self.listening = False
            self.listener = None
            listener.remove()
