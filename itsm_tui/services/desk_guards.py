"""Guards of the commands that act on the whole service desk rather than on one record.

Rebuilding the desk with demonstration data, upgrading its schema and running its scheduled jobs (at the
present or at another instant): each has one permission in
:data:`~itsm_tui.services.access.PERMISSIONS` and one guard here, which its command calls before it writes.
A desk with no users yet is being set up, and whoever sets it up may fill and migrate it (as the first
``itsm user add`` makes its author admin); once it has users, the roles decide.

The demo and ``db upgrade`` run before the schema is brought up to date, so their guards read the
roles with plain SQL on the columns every revision of the schema has, not through the ORM models of this
version.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, inspect, text
from sqlalchemy.orm import Session

from itsm_tui.services.access import PermissionDenied, require
from itsm_tui.services.users import Actor, authorize, current_login

PRESENT_BEHIND = timedelta(seconds=60)
"""How far before the real present an SLA scan's ``--now`` may lie and still be the present: the instant a
script took from the clock just before it started ``itsm sla scan --now ...``."""
PRESENT_AHEAD = timedelta(seconds=2)
"""How far after it: no more than clocks disagree within a second or two."""


def has_users(conn: Connection) -> bool:
    """Whether the database holds any user (a database without the users table holds none)."""
    if not inspect(conn).has_table("users"):
        return False
    return conn.execute(text("SELECT 1 FROM users LIMIT 1")).first() is not None


def desk_roles(conn: Connection, login: str) -> frozenset[str] | None:
    """The roles of the active user ``login``; None if the login is no active user of the desk."""
    rows = conn.execute(
        text(
            "SELECT r.role FROM users u LEFT JOIN role_memberships r ON r.user_id = u.id "
            "WHERE u.login = :login AND u.active = :yes"
        ),
        {"login": login, "yes": True},
    ).all()
    if not rows:
        return None
    return frozenset(role for (role,) in rows if role is not None)


def _admins(conn: Connection) -> str:
    logins = conn.execute(
        text(
            "SELECT DISTINCT u.login FROM users u JOIN role_memberships r ON r.user_id = u.id "
            "WHERE r.role = 'admin' AND u.active = :yes ORDER BY u.login LIMIT 20"
        ),
        {"yes": True},
    ).scalars()
    return ", ".join(logins) or "none"


def _require_on(conn: Connection, permission: str, login: str | None) -> None:
    """Refuse ``login`` (the OS login by default) unless it is an active user holding ``permission``; the
    refusal names the admins to ask."""
    login = login or current_login()
    roles = desk_roles(conn, login)
    try:
        if roles is None:
            raise PermissionDenied.not_a_user(permission, login)
        require(roles, permission)
    except PermissionDenied as exc:
        raise PermissionDenied(permission, roles or (), f"{exc} Admins: {_admins(conn)}.") from None


def guard_rebuild(conn: Connection, login: str | None = None) -> None:
    """Replacing the records of a desk that holds some with demonstration data: admins only.

    The demo calls it in the very transaction that deletes the records, so nothing comes between the check
    and the deletion.
    """
    _require_on(conn, "desk.rebuild", login)


def guard_upgrade(conn: Connection, login: str | None = None) -> None:
    """Creating or migrating the schema: anyone while the database has no users (setting up a desk),
    admins once it has."""
    if has_users(conn):
        _require_on(conn, "desk.upgrade", login)


def guard_backup(conn: Connection, login: str | None = None) -> None:
    """Copying the whole desk to a file: admins only, since the copy holds every record and every person's
    details outside the database's own access control."""
    _require_on(conn, "desk.backup", login)


def guard_restore(conn: Connection, login: str | None = None) -> None:
    """Putting a backup in the place of the desk: admins only, since it takes back everything recorded
    since the backup was made."""
    _require_on(conn, "desk.restore", login)


def guard_check(conn: Connection, login: str | None = None) -> None:
    """Checking the database's health (integrity, schema revision, audit chains): any active desk user who
    may read reports. Plain SQL, so that a schema of another revision can still be checked."""
    _require_on(conn, "report.read", login)


def guard_jobs(session: Session, login: str | None = None) -> Actor:
    """Running the SLA job and the change reminders (``itsm sla scan``, ``itsm scheduler``): an active
    desk user, since they flag, notify and escalate in the desk's name."""
    return authorize(session, "desk.jobs", login)


def is_present(at: datetime, now: datetime | None = None) -> bool:
    """Whether ``at`` is the real present, within what a clock read a moment ago may be behind or ahead."""
    now = now or datetime.now(UTC)
    return now - PRESENT_BEHIND <= at <= now + PRESENT_AHEAD


def guard_scan(
    session: Session, at: datetime | None, *, now: datetime | None = None, login: str | None = None
) -> Actor:
    """One SLA scan: at the present for any active desk user; at another instant (flagging breaches that
    have not happened yet, or re-judging the past) for a process manager or an admin."""
    actor = guard_jobs(session, login)
    if at is not None and not is_present(at, now):
        require(actor.roles, "sla.scan_at")
    return actor
