"""The access trail: refused privileged attempts, and when each user was last seen.

Unlike the other services, these open their own transaction on the database instead of taking the
caller's session. A refusal is recorded because the refused transaction is rolled back: written in it, the
record would vanish with it. Both the command line (one place: its error handling) and the console (the
sessions of its workers, :class:`RecordingDatabase`) call :func:`record_refusal`, so a refusal is recorded
alike wherever it happened. Recording never stands in the way: a database that cannot take the record
(unreachable, read-only, an older schema) leaves the refusal told to the person as it was, and the failure
goes to the log.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from itsm_tui.db import Database, ReadCancel
from itsm_tui.models import AccessRefusal, User, utc_or_now
from itsm_tui.services.access import PermissionDenied

log = logging.getLogger("itsm.access")

SEEN_EVERY = timedelta(minutes=1)
"""``last_seen_at`` moves only when it is older than this: a burst of commands writes it once."""

# The widths of access_refusals' text columns (models.AccessRefusal).
ACTION_WIDTH = 80
PERMISSION_WIDTH = 40
DETAIL_WIDTH = 2000  # a refusal's message is one line; this only bounds what a caller could pass in


def record_refusal(
    db: Database,
    *,
    login: str,
    action: str,
    detail: str,
    permission: str | None = None,
    user_id: int | None = None,
    at: datetime | None = None,
) -> bool:
    """Record one refused attempt in its own transaction; whether it was written.

    ``login`` is who tried (the operating-system login, a desk user or not); the user's id is looked up
    when not given. ``action`` is what they tried (a command such as ``demo --force``, or a permission
    such as ``ticket.assign_others`` in the console), ``detail`` the refusal they were told.
    """
    at = utc_or_now(at)
    try:
        with db.session() as session:
            if user_id is None:
                user_id = session.scalar(select(User.id).where(User.login == login))
            session.add(
                AccessRefusal(
                    at=at,
                    login=login[:64],
                    user_id=user_id,
                    action=action[:ACTION_WIDTH],
                    permission=permission[:PERMISSION_WIDTH] if permission else None,
                    detail=detail[:DETAIL_WIDTH],
                )
            )
    except SQLAlchemyError as exc:
        # Info, not a warning: with no log configured (the command line) Python would print a warning,
        # traceback and all, on stderr, under the one line the person is told.
        log.info("could not record the refused attempt of %s at %s: %s", login, action, _first_line(exc))
        return False
    return True


def mark_seen(session: Session, login: str, now: datetime | None = None) -> None:
    """Note that ``login`` is at work now (a console opened, a command run): one UPDATE, which writes only
    when the last note is older than :data:`SEEN_EVERY`."""
    now = utc_or_now(now)
    session.execute(
        update(User)
        .where(
            User.login == login,
            (User.last_seen_at.is_(None)) | (User.last_seen_at < now - SEEN_EVERY),
        )
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    )


SEEN_WAIT_MS = 1000
"""How long noting an activity waits for a lock someone else holds (a long write, a migration) before it
gives up: bookkeeping never holds the command up for longer."""


def seen(db: Database, login: str, now: datetime | None = None) -> None:
    """:func:`mark_seen` in its own short transaction, waiting at most :data:`SEEN_WAIT_MS` for a lock; a
    failure is logged, never raised (it is bookkeeping)."""
    sqlite = db.backend == "sqlite"
    try:
        with db.engine.connect() as conn:
            usual = None
            try:
                with conn.begin(), Session(bind=conn) as session:
                    if sqlite:  # the connection's busy timeout (not transactional), for this update only
                        usual = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
                        conn.exec_driver_sql(f"PRAGMA busy_timeout = {SEEN_WAIT_MS}")
                    else:
                        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{SEEN_WAIT_MS}ms'")
                    mark_seen(session, login, now)
            finally:
                if usual is not None:  # the pooled connection goes back as it came
                    conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(usual)}")
    except SQLAlchemyError as exc:
        log.info("could not note the activity of %s: %s", login, _first_line(exc))


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@dataclass
class RecordingDatabase(Database):
    """The console's handle on the database: a permission refusal that leaves one of its sessions is
    recorded (as the console user's, under the permission refused) once that session has been rolled back,
    then goes on to the screen that shows it.

    Every database action of the console runs in a session of a thread worker, so this is the one place
    its refusals pass through, and the recording happens in the worker, off the UI thread.
    """

    login: str = ""
    user_id: int | None = None

    @classmethod
    def around(cls, db: Database, login: str, user_id: int | None) -> RecordingDatabase:
        """The same engine and session factories as ``db``, recording the refusals of ``login``."""
        return cls(db.url, db.engine, db._writer, db._reader, login=login, user_id=user_id)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        with self._recording(), super().session() as session:
            yield session

    @contextlib.contextmanager
    def read_session(self, cancel: ReadCancel | None = None) -> Iterator[Session]:
        with self._recording(), super().read_session(cancel) as session:
            yield session

    @contextlib.contextmanager
    def _recording(self) -> Iterator[None]:
        try:
            yield
        except PermissionDenied as exc:
            record_refusal(
                self,
                login=self.login,
                user_id=self.user_id,
                action=f"console: {exc.permission}",
                permission=exc.permission,
                detail=str(exc),
            )
            raise
