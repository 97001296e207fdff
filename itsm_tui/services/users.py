"""Identity: console users are operating-system logins, with roles and group memberships.

Only admins add users or change roles, except the very first user of a database, who becomes admin.
"""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from itsm_tui.constants import ROLES
from itsm_tui.models import Group, GroupMembership, RoleMembership, User, utcnow
from itsm_tui.services import dbroles
from itsm_tui.services.access import PermissionDenied, require
from itsm_tui.services.errors import NotFound, ValidationError
from itsm_tui.services.inputs import known_timezone

LOGIN_PATTERN = re.compile(r"[a-z_][a-z0-9_.-]{0,63}", re.IGNORECASE)


@dataclass(frozen=True)
class Actor:
    """The user doing something, as the services see them."""

    id: int
    login: str
    name: str
    roles: frozenset[str]
    group_ids: frozenset[int] = field(default_factory=frozenset)
    group_codes: frozenset[str] = field(default_factory=frozenset)
    timezone: str = "UTC"

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


class UnknownUser(Exception):
    """The operating-system login is not a user of this service desk; one line saying how to become one."""

    def __init__(self, login: str, first_user: bool) -> None:
        self.login = login
        self.first_user = first_user  # the desk has no users yet: nothing to refuse, only to set up
        if first_user:
            message = (
                f"This service desk has no users yet; make yourself its first user (and admin) with "
                f"`itsm user add {login} --role shift_lead --group SD-L1`, or load the demonstration data "
                f"with `itsm demo`"
            )
        else:
            message = (
                f"The login {login!r} is not a user of this service desk; ask an admin to run "
                f"`itsm user add {login} --role agent --group SD-L1` (with the role and group that fit; "
                f"`itsm user list` shows the admins)"
            )
        super().__init__(message)


def os_login() -> str:
    """The account of this process's real user id, from the password database.

    Never the environment: ``LOGNAME``, ``USER`` and ``LNAME`` are the caller's to set, so anyone could
    claim to be an admin with them. A uid the password database does not know has no login.
    """
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        raise UnknownUser(f"uid {uid}", first_user=False) from None


def current_login() -> str:
    """The operating-system login of the person running this process."""
    return os_login()


def actor_from_user(user: User) -> Actor:
    return Actor(
        id=user.id,
        login=user.login,
        name=user.name,
        roles=frozenset(m.role for m in user.roles),
        group_ids=frozenset(m.group_id for m in user.groups),
        group_codes=frozenset(m.group.code for m in user.groups),
        timezone=user.timezone,
    )


def resolve_actor(session: Session, login: str | None = None) -> Actor:
    """The :class:`Actor` for a login (the OS login by default); :class:`UnknownUser` if there is none."""
    # A personal PostgreSQL role is the identity, and is refused unless it is the OS login, also when the
    # caller names the login (the CLI's user admin passes the OS login).
    by_role = dbroles.database_identity(session, os_login)
    login = login or by_role or current_login()
    user = session.scalar(select(User).where(User.login == login, User.active.is_(True)))
    if user is None:
        first = session.scalar(select(func.count()).select_from(User)) == 0
        raise UnknownUser(login, first)
    return actor_from_user(user)


def _groups_by_code(session: Session, codes: list[str]) -> list[Group]:
    groups = {g.code.lower(): g for g in session.scalars(select(Group))}
    result = []
    for code in codes:
        group = groups.get(code.lower())
        if group is None:
            known = ", ".join(sorted(g.code for g in groups.values()))
            raise ValidationError("group", f"unknown group {code!r}; groups are: {known}")
        result.append(group)
    return result


def _check_roles(roles: list[str]) -> None:
    for role in roles:
        if role not in ROLES:
            raise ValidationError("role", f"unknown role {role!r}; roles are: {', '.join(ROLES)}")


def _admin_actor(session: Session, actor_login: str) -> Actor:
    """The admin doing user administration; anyone else (a login that is no user included) is refused in
    one line that names the admins to ask."""
    try:
        actor = authorize(session, "user.admin", actor_login)
    except PermissionDenied as exc:
        admins = ", ".join(admin_logins(session)) or "none"
        raise PermissionDenied("user.admin", (), f"{exc} Admins: {admins}.") from None
    return actor


def authorize(session: Session, permission: str, login: str | None = None) -> Actor:
    """The acting user (the OS login by default) if they hold ``permission``.

    Refused with :class:`PermissionDenied`, in one line, for a user without it and for a login that is no
    active user of the desk: a privileged command is refused alike whoever tries it (and is recorded as a
    refused attempt), rather than answered with the how-to-join message :class:`UnknownUser` gives.
    """
    login = login or current_login()
    try:
        actor = resolve_actor(session, login)
    except UnknownUser:
        raise PermissionDenied.not_a_user(permission, login) from None
    require(actor.roles, permission)
    return actor


FIRST_USER_LOCK = int.from_bytes(b"ADDUSER", "big")
"""The PostgreSQL advisory lock held while a user is added (a 64-bit key, as the lock takes)."""


def _serialise_user_admin(session: Session) -> None:
    """Make concurrent additions of users take turns, so that exactly one of them is the first.

    On PostgreSQL two transactions would both count no users under READ COMMITTED and both make their user
    admin: a transaction-level advisory lock, taken before counting and released at commit or rollback, lets
    the next one count after the first has committed. SQLite needs nothing here: the desk's write sessions
    begin IMMEDIATE, so the write lock is held before the count (and a deferred transaction that read a
    count another writer then changed cannot commit on top of it).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FIRST_USER_LOCK})


def admin_logins(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(User.login).join(RoleMembership).where(RoleMembership.role == "admin").order_by(User.login)
        )
    )


def add_user(
    session: Session,
    *,
    actor_login: str,
    login: str,
    roles: list[str],
    groups: list[str],
    name: str | None = None,
    email: str | None = None,
    timezone: str = "UTC",
) -> User:
    """Add a user. The first user of a database needs no admin and becomes admin themselves.

    Whether this is the first user is decided under :func:`_serialise_user_admin`, so that however many
    people add themselves to an empty desk at once, one becomes its admin and the others are refused.
    """
    from itsm_tui.services import audit  # the writes' trail, not needed to read who one is

    if not LOGIN_PATTERN.fullmatch(login):
        raise ValidationError("login", f"{login!r} is not a valid login name")
    if not roles:
        raise ValidationError("role", f"give at least one --role ({', '.join(ROLES)})")
    _check_roles(roles)
    known_timezone(timezone)
    _serialise_user_admin(session)
    first = session.scalar(select(func.count()).select_from(User)) == 0
    actor_id = None
    if first:
        roles = sorted(set(roles) | {"admin"})
    else:
        actor_id = _admin_actor(session, actor_login).id
    if session.scalar(select(User.id).where(User.login == login)) is not None:
        raise ValidationError(
            "login", f"user {login!r} already exists; change roles with `itsm user role {login}`"
        )
    group_rows = _groups_by_code(session, groups)
    now = utcnow()
    user = User(login=login, name=name or login, email=email, timezone=timezone, created_at=now)
    user.roles = [RoleMembership(role=r) for r in sorted(set(roles))]
    user.groups = [GroupMembership(group_id=g.id) for g in group_rows]
    session.add(user)
    session.flush()
    by = actor_id or user.id
    audit.record_for(session, "user", user, by, now, "create", "roles", ",".join(sorted(set(roles))))
    if group_rows:
        audit.record_for(
            session, "user", user, by, now, "create", "groups", ",".join(g.code for g in group_rows)
        )
    return user


def change_roles(
    session: Session,
    *,
    actor_login: str,
    login: str,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    add_groups: Sequence[str] = (),
    remove_groups: Sequence[str] = (),
    lead_of: Sequence[str] = (),
) -> User:
    """Grant or withdraw roles and group memberships (admins only)."""
    from itsm_tui.services import audit  # the writes' trail, not needed to read who one is

    actor = _admin_actor(session, actor_login)
    _check_roles([*add, *remove])
    user = session.scalar(select(User).where(User.login == login))
    if user is None:
        raise NotFound(f"no user {login!r}; `itsm user list` shows the users")
    now = utcnow()
    old_roles = set(user.role_names)
    new_roles = (old_roles | set(add)) - set(remove)
    if not new_roles:
        raise ValidationError("role", "a user keeps at least one role")
    if "admin" in old_roles and "admin" not in new_roles and admin_logins(session) == [login]:
        raise ValidationError("role", f"{login!r} is the last admin; make someone else admin first")
    if new_roles != old_roles:
        user.roles = [m for m in user.roles if m.role in new_roles] + [
            RoleMembership(role=r) for r in sorted(new_roles - old_roles)
        ]
        old, new = ",".join(sorted(old_roles)), ",".join(sorted(new_roles))
        audit.record_for(session, "user", user, actor.id, now, "update", "roles", new, old)
    old_groups = {m.group.code for m in user.groups}
    leads = {g.code for g in _groups_by_code(session, list(lead_of))}
    wanted = {g.code: g for g in _groups_by_code(session, [*old_groups, *add_groups, *lead_of])}
    for g in _groups_by_code(session, list(remove_groups)):
        wanted.pop(g.code, None)
    if set(wanted) != old_groups or leads:
        kept = {m.group.code: m for m in user.groups if m.group.code in wanted}
        for code, group in wanted.items():
            if code not in kept:
                kept[code] = GroupMembership(group_id=group.id, group=group)
            if code in leads:
                kept[code].is_lead = True
        user.groups = list(kept.values())
        lead = f" (lead of {','.join(sorted(leads))})" if leads else ""
        old, new = ",".join(sorted(old_groups)), ",".join(sorted(wanted)) + lead
        audit.record_for(session, "user", user, actor.id, now, "update", "groups", new, old)
    return user


@dataclass(frozen=True)
class UserRow:
    login: str
    name: str
    roles: list[str]
    groups: list[str]
    lead_of: list[str]
    active: bool


def list_users(session: Session) -> list[UserRow]:
    users = session.scalars(select(User).order_by(User.login))
    return [
        UserRow(
            login=u.login,
            name=u.name,
            roles=u.role_names,
            groups=sorted(m.group.code for m in u.groups),
            lead_of=sorted(m.group.code for m in u.groups if m.is_lead),
            active=u.active,
        )
        for u in users
    ]


def raci_users(
    session: Session, config, activity: str, letter: str, *, group_ids: list[int] | None = None
) -> list[str]:
    """Logins of the active users who are ``letter`` (R, A, C or I) for ``activity`` in the RACI matrix.

    With ``group_ids`` only members of those groups count (e.g. the shift lead of the ticket's group);
    if no member of them holds the role, every holder of the role does.
    """
    roles = config.raci_roles(activity, letter)
    if not roles:
        return []
    stmt = (
        select(User.login)
        .join(RoleMembership, RoleMembership.user_id == User.id)
        .where(RoleMembership.role.in_(roles), User.active.is_(True))
        .distinct()
        .order_by(User.login)
    )
    if group_ids:
        scoped = stmt.join(GroupMembership, GroupMembership.user_id == User.id).where(
            GroupMembership.group_id.in_(group_ids)
        )
        logins = list(session.scalars(scoped))
        if logins:
            return logins
    return list(session.scalars(stmt))
