"""Hearing of new notifications for one user, in a background thread.

On PostgreSQL the watcher LISTENs for ``pg_notify`` (sent in the transaction that wrote the notification,
so it arrives at commit); it also re-checks now and then, and if the listening connection drops it falls
back to polling until it can listen again. On SQLite it polls the newest notification id of the user, an
indexed lookup that costs microseconds, twice a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.engine import make_url

from itsm_tui.db import PG_KEEPALIVES, Database
from itsm_tui.services import notifications
from itsm_tui.services.notifications import NotificationRow

log = logging.getLogger("itsm.push")

NewNotifications = Callable[[list[NotificationRow], int], None]  # new rows (oldest first), unread count
ConnectionState = Callable[[bool], None]


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
        import psycopg

        conninfo = make_url(self.db.url).set(drivername="postgresql").render_as_string(hide_password=False)
        # Keepalives: a LISTEN connection only waits, so without them a network that drops it silently
        # would leave the console deaf until the kernel gives up on it, hours later.
        conninfo = psycopg.conninfo.make_conninfo(conninfo, connect_timeout=5, **PG_KEEPALIVES)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"LISTEN {notifications.PG_CHANNEL}")
            self.listening = True
            self.check()  # anything that arrived before LISTEN took effect
            last_check = time.monotonic()
            wanted = str(self.user_id)
            while not self._stop.is_set():
                heard = False
                for note in conn.notifies(timeout=0.25, stop_after=1):
                    if note.payload == wanted:
                        heard = True
                if heard or time.monotonic() - last_check > self.listen_recheck_seconds:
                    self.check()
                    last_check = time.monotonic()
        self.listening = False
