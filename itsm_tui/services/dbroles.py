"""Database roles on PostgreSQL: a login role per person, least privilege for them, and the identity it gives.

With one shared database role every console could do anything in SQL: rewrite or delete audit rows, delete
tickets. In the deployment for many hosts each person connects as their own login role (peer authentication
on the local socket, or a private ``~/.pgpass`` over TLS), a member of the desk's group role, which may read
every desk table and insert and update the records but delete only what the desk itself deletes in normal
operation (presence, the KPI roll-up, withdrawn role and group memberships) and never touch an audit row
once written. The schema belongs to the owner role, which runs the migrations and :func:`grant_roles`.

The desk's group role is not named in any setting a console could change: it is the role that holds the
desk's INSERT on ``audit_events`` (a role that cannot log in), and only the owner can change that grant. A
connection as one of its members is a person's; its ``session_user`` is the identity
(:func:`database_identity`), checked against the operating-system login. A connection as the owner (or a
superuser) is the single-role setup, where the identity stays the operating-system login.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from itsm_tui.models import Base, User
from itsm_tui.services.access import require
from itsm_tui.services.errors import NotFound, ServiceError, ValidationError

if TYPE_CHECKING:
    from itsm_tui.services.users import Actor

OWNER_ROLE = "itsm_owner"
DESK_ROLE = "itsm_desk"
NAME_BYTES = 63  # PostgreSQL's longest identifier (NAMEDATALEN - 1)
ROLE_NAME = re.compile(r"[a-z_][a-z0-9_.-]*", re.IGNORECASE)  # as logins are (users.LOGIN_PATTERN)
# Held while the roles are planned and granted, so that two admins running it at once take turns.
GRANT_LOCK = int.from_bytes(b"DBROLES", "big")

READ_WRITE = ("SELECT", "INSERT", "UPDATE")
APPEND_ONLY = ("SELECT", "INSERT")
DELETABLE = ("SELECT", "INSERT", "UPDATE", "DELETE")
# What the desk's group role may do to each table, where it is not READ_WRITE. Nothing else anywhere: no
# DELETE on a record, no TRUNCATE, REFERENCES or TRIGGER, no DDL. A table added later (``audit_heads``, the
# head of the audit hash chain, included) gets READ_WRITE, through the default privileges until this runs.
TABLE_PRIVILEGES: dict[str, tuple[str, ...]] = {
    "audit_events": APPEND_ONLY,  # written once, never changed: the trail is only worth something so
    "access_refusals": APPEND_ONLY,  # who tried what: a trail as well
    "alembic_version": ("SELECT",),  # the schema is the owner's
    "presence": DELETABLE,  # a console forgets the records it closed; stale heartbeats are dropped
    "kpi_daily": DELETABLE,  # a day's roll-up is recomputed: deleted and written again
    "kpi_dirty_days": DELETABLE,  # a recomputed day is no longer dirty
    "role_memberships": DELETABLE,  # an admin withdraws a role
    "group_memberships": DELETABLE,  # ... or a group
    "saved_views": DELETABLE,  # a person deletes a queue view of their own
}
SEQUENCE_PRIVILEGES = ("USAGE",)  # nextval for new rows; setval is the owner's
EXTRA_TABLES = ("alembic_version", "audit_heads")  # the desk's tables that are not (or not yet) models


class NeedsPostgreSQL(ServiceError):
    """Database roles are a PostgreSQL matter: SQLite has none (its file's permissions are the guard)."""

    def __init__(self, backend: str) -> None:
        super().__init__(
            f"itsm db grant-roles is for PostgreSQL; this desk's database is {backend}, where the database "
            "file's permissions decide who may use it"
        )


class IdentityMismatch(ServiceError):
    """The process's operating-system login is not the person whose database role it connected as."""

    def __init__(self, role: str, login: str) -> None:
        self.role, self.login = role, login
        super().__init__(
            f"connected to the database as role {role} but logged in as {login}; connect as your own role"
        )


class OwnerConnectionNeeded(ServiceError):
    """Granting needs the schema owner's (or a superuser's) connection."""


class GrantRefused(ServiceError):
    """The database refused one of the statements; nothing was granted."""


def require_postgresql(backend: str) -> None:
    """Refuse, in one line, to manage database roles anywhere but on PostgreSQL."""
    if backend != "postgresql":
        raise NeedsPostgreSQL("SQLite" if backend == "sqlite" else backend)


# --------------------------------------------------------------------------- identity

_IDENTITY_SQL = text(
    """
    SELECT r.rolname AS role,
           r.rolsuper OR pg_has_role(r.oid, c.relowner, 'USAGE') AS owner_like,
           EXISTS (
               SELECT 1
               FROM aclexplode(c.relacl) AS a JOIN pg_roles AS g ON g.oid = a.grantee
               WHERE a.privilege_type = 'INSERT' AND NOT g.rolcanlogin AND g.oid <> c.relowner
                 AND pg_has_role(r.oid, g.oid, 'MEMBER')
           ) AS in_desk
    FROM pg_roles AS r, pg_class AS c
    WHERE r.rolname = session_user AND c.oid = to_regclass('audit_events')
    """
)


def database_identity(session: Session, os_login: Callable[[], str]) -> str | None:
    """The login a personal database role gives, checked against the operating-system login; None when the
    database does not say who this is (SQLite, or PostgreSQL as the owner or shared role, or a superuser).

    On PostgreSQL, a ``session_user`` that is a member of the desk's group role (and has none of the owner's
    privileges) is a person who authenticated to the database as themselves, so that role is the identity:
    a console whose operating-system login (``os_login()``, the real uid's account) differs is refused,
    since whoever runs it holds someone else's credentials or a host whose accounts cannot be trusted.
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    row = session.execute(_IDENTITY_SQL).one_or_none()
    if row is None or row.owner_like or not row.in_desk:
        return None
    role = str(row.role)
    login = os_login()
    if login != role:
        raise IdentityMismatch(role, login)
    return role


# --------------------------------------------------------------------------- the catalog as it stands


@dataclass(frozen=True)
class _Role:
    name: str
    can_login: bool
    superuser: bool
    create_role: bool


@dataclass(frozen=True)
class _Relation:
    name: str
    owner: str
    desk: frozenset[str]  # the privileges the desk's group role holds on it
    public: frozenset[str]  # ... and everyone (PUBLIC)


@dataclass(frozen=True)
class _Catalog:
    """What the database holds now, as far as the desk's roles go."""

    user: _Role  # current_user: who grants
    database: str
    database_owner: str
    schema: str
    schema_owner: str
    database_acl: _Relation
    schema_acl: _Relation
    tables: dict[str, _Relation]
    sequences: dict[str, _Relation]
    default_tables: frozenset[str]  # the desk's default privileges on the owner's future tables
    default_sequences: frozenset[str]
    roles: dict[str, _Role]  # the roles asked about that exist


def _privileges(value: Any) -> frozenset[str]:
    return frozenset(value or ())


def _acl_columns(acl: str, desk: str) -> str:
    """The SQL of two columns: the privileges in ``acl`` of the desk's role, and of PUBLIC."""
    return f"""
        ARRAY(SELECT a.privilege_type FROM aclexplode({acl}) AS a JOIN pg_roles AS g ON g.oid = a.grantee
              WHERE g.rolname = {desk}) AS desk,
        ARRAY(SELECT a.privilege_type FROM aclexplode({acl}) AS a WHERE a.grantee = 0) AS public
    """


def _read_catalog(session: Session, desk: str, owner: str, role_names: Iterable[str]) -> _Catalog:
    params = {"desk": desk}
    me = session.execute(
        text(
            "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        )
    ).one()
    database = session.execute(
        text(
            "SELECT d.datname, pg_get_userbyid(d.datdba) AS owner,"
            + _acl_columns("coalesce(d.datacl, acldefault('d', d.datdba))", ":desk")
            + " FROM pg_database AS d WHERE d.datname = current_database()"
        ),
        params,
    ).one()
    schema = session.execute(
        text(
            "SELECT n.nspname, pg_get_userbyid(n.nspowner) AS owner,"
            + _acl_columns("coalesce(n.nspacl, acldefault('n', n.nspowner))", ":desk")
            + " FROM pg_namespace AS n WHERE n.nspname = current_schema()"
        ),
        params,
    ).one()
    relations = session.execute(
        text(
            "SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner) AS owner, t.relname AS of_table,"
            + _acl_columns(
                "coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\","
                " c.relowner))",
                ":desk",
            )
            + """
            FROM pg_class AS c
            LEFT JOIN pg_depend AS d ON c.relkind = 'S' AND d.classid = 'pg_class'::regclass
                 AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
            LEFT JOIN pg_class AS t ON t.oid = d.refobjid
            WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
              AND c.relkind IN ('r', 'p', 'S')
            """
        ),
        params,
    ).all()
    names = desk_table_names()
    tables = {
        r.relname: _Relation(r.relname, r.owner, _privileges(r.desk), _privileges(r.public))
        for r in relations
        if r.relkind != "S" and r.relname in names
    }
    sequences = {
        r.relname: _Relation(r.relname, r.owner, _privileges(r.desk), _privileges(r.public))
        for r in relations
        if r.relkind == "S" and r.of_table in tables
    }
    defaults = {
        kind: _privileges(privileges)
        for kind, privileges in session.execute(
            text(
                """
                SELECT d.defaclobjtype, array_agg(a.privilege_type)
                FROM pg_default_acl AS d, aclexplode(d.defaclacl) AS a, pg_roles AS g
                WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = :owner)
                  AND d.defaclnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
                  AND g.oid = a.grantee AND g.rolname = :desk
                GROUP BY d.defaclobjtype
                """
            ),
            {"owner": owner, "desk": desk},
        )
    }
    wanted = sorted({desk, owner, *role_names})
    roles = {
        r.rolname: _Role(r.rolname, r.rolcanlogin, r.rolsuper, r.rolcreaterole)
        for r in session.execute(
            text(
                "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole FROM pg_roles "
                "WHERE rolname = ANY(:names)"
            ),
            {"names": wanted},
        )
    }
    return _Catalog(
        user=_Role(me.rolname, me.rolcanlogin, me.rolsuper, me.rolcreaterole),
        database=database.datname,
        database_owner=database.owner,
        schema=schema.nspname,
        schema_owner=schema.owner,
        database_acl=_Relation(
            database.datname, database.owner, _privileges(database.desk), _privileges(database.public)
        ),
        schema_acl=_Relation(
            schema.nspname, schema.owner, _privileges(schema.desk), _privileges(schema.public)
        ),
        tables=tables,
        sequences=sequences,
        default_tables=defaults.get("r", frozenset()),
        default_sequences=defaults.get("S", frozenset()),
        roles=roles,
    )


def desk_table_names() -> frozenset[str]:
    """The tables of the desk: every model's, and those the migrations keep outside the models."""
    return frozenset(Base.metadata.tables) | frozenset(EXTRA_TABLES)


def table_privileges(table: str) -> tuple[str, ...]:
    """What the desk's group role may do to ``table``."""
    return TABLE_PRIVILEGES.get(table, READ_WRITE)


def _acts_as(session: Session, role: str, other: str) -> bool:
    """Whether ``role`` has the privileges of ``other`` (is it, or inherits it; superusers have all)."""
    return bool(
        session.scalar(text("SELECT pg_has_role(:role, :other, 'USAGE')"), {"role": role, "other": other})
    )


def _member_of(session: Session, role: str, group: str) -> bool:
    return bool(
        session.scalar(text("SELECT pg_has_role(:role, :group, 'MEMBER')"), {"role": role, "group": group})
    )


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Step:
    """One statement of the plan and what it does, in words."""

    sql: str
    says: str
    role_ddl: bool = False  # creates or alters a role, or a role's membership: needs CREATEROLE


@dataclass(frozen=True)
class GrantReport:
    """What :func:`grant_roles` did (or, for a dry run, would do)."""

    owner_role: str
    desk_role: str
    database: str
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()
    applied: bool = False
    people: tuple[str, ...] = ()  # the logins whose roles were checked

    @property
    def changed(self) -> bool:
        return bool(self.steps)


@dataclass
class _Planner:
    session: Session
    catalog: _Catalog
    owner: str
    desk: str
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def q(self, name: str) -> str:
        return self.session.get_bind().dialect.identifier_preparer.quote(name)

    def add(self, sql: str, says: str, role_ddl: bool = False) -> None:
        self.steps.append(Step(sql, says, role_ddl))

    def is_member(self, login: str) -> bool:
        """Whether the role ``login`` is a member of the desk's group role (which may not exist yet)."""
        return self.desk in self.catalog.roles and _member_of(self.session, login, self.desk)

    # ------------------------------------------------------------- group roles and ownership

    def group_roles(self, transfer: bool) -> None:
        owner, desk = self.q(self.owner), self.q(self.desk)
        if self.owner not in self.catalog.roles:
            self.add(f"CREATE ROLE {owner} NOLOGIN", f"created the owner role {self.owner}", role_ddl=True)
        if transfer:
            moved = sorted(t.name for t in self.catalog.tables.values() if t.owner != self.owner)
            for name in moved:
                self.add(f"ALTER TABLE {self.q(name)} OWNER TO {owner}", f"{self.owner} now owns {name}")
        role = self.catalog.roles.get(self.desk)
        if role is None:
            self.add(
                f"CREATE ROLE {desk} NOLOGIN",
                f"created the group role {self.desk} (every person of the desk is a member)",
                role_ddl=True,
            )
        elif role.can_login:
            self.add(
                f"ALTER ROLE {desk} NOLOGIN", f"{self.desk} is a group: nobody logs in as it", role_ddl=True
            )

    # ------------------------------------------------------------- database and schema

    def database(self) -> None:
        acl, name = self.catalog.database_acl, self.q(self.catalog.database)
        if not _acts_as(self.session, self.catalog.user.name, self.catalog.database_owner):
            if "CONNECT" in acl.public or "CONNECT" not in acl.desk:
                self.notes.append(
                    f"only the database's owner ({self.catalog.database_owner}) or a superuser can say who "
                    f"may connect: run REVOKE CONNECT ON DATABASE {name} FROM PUBLIC; GRANT CONNECT ON "
                    f"DATABASE {name} TO {self.q(self.desk)}; as one of them"
                )
            return
        if "CONNECT" in acl.public:
            self.add(
                f"REVOKE CONNECT ON DATABASE {name} FROM PUBLIC",
                f"only the desk's roles may connect to {self.catalog.database}",
            )
        if "CONNECT" not in acl.desk:
            self.add(
                f"GRANT CONNECT ON DATABASE {name} TO {self.q(self.desk)}",
                f"{self.desk} may connect to {self.catalog.database}",
            )

    def schema(self) -> None:
        acl, name, desk = self.catalog.schema_acl, self.q(self.catalog.schema), self.q(self.desk)
        if "CREATE" in acl.public:
            if _acts_as(self.session, self.catalog.user.name, self.catalog.schema_owner):
                self.add(
                    f"REVOKE CREATE ON SCHEMA {name} FROM PUBLIC",
                    f"nobody but its owner creates objects in the schema {self.catalog.schema}",
                )
            else:
                self.notes.append(
                    f"everyone may create objects in the schema {self.catalog.schema}; as its owner "
                    f"({self.catalog.schema_owner}) or a superuser run: "
                    f"REVOKE CREATE ON SCHEMA {name} FROM PUBLIC"
                )
        if "CREATE" in acl.desk:
            self.add(f"REVOKE CREATE ON SCHEMA {name} FROM {desk}", f"{self.desk} creates no objects")
        if "USAGE" not in acl.desk:
            self.add(
                f"GRANT USAGE ON SCHEMA {name} TO {desk}",
                f"{self.desk} may use the schema {self.catalog.schema}",
            )

    # ------------------------------------------------------------- tables and sequences

    def relations(
        self, kind: str, relations: dict[str, _Relation], wanted: Callable[[str], tuple[str, ...]]
    ) -> None:
        """Grant what is missing and revoke what is too much, one statement per set of privileges."""
        desk = self.q(self.desk)
        revoke_public = sorted(r.name for r in relations.values() if r.public)
        revokes: dict[tuple[str, ...], list[str]] = {}
        grants: dict[tuple[str, ...], list[str]] = {}
        for relation in sorted(relations.values(), key=lambda r: r.name):
            want = frozenset(wanted(relation.name))
            extra = tuple(sorted(relation.desk - want))
            missing = tuple(p for p in wanted(relation.name) if p not in relation.desk)
            if extra:
                revokes.setdefault(extra, []).append(relation.name)
            if missing:
                grants.setdefault(missing, []).append(relation.name)
        word = "TABLE" if kind == "tables" else "SEQUENCE"
        if revoke_public:
            self.add(
                f"REVOKE ALL ON {word} {', '.join(self.q(n) for n in revoke_public)} FROM PUBLIC",
                f"nobody outside the desk's roles has privileges on {kind} {', '.join(revoke_public)}",
            )
        for privileges, names in sorted(revokes.items()):
            self.add(
                f"REVOKE {', '.join(privileges)} ON {word} {', '.join(self.q(n) for n in names)} FROM {desk}",
                f"{self.desk} no longer holds {', '.join(privileges)} on {', '.join(names)}",
            )
        for privileges, names in sorted(grants.items()):
            self.add(
                f"GRANT {', '.join(privileges)} ON {word} {', '.join(self.q(n) for n in names)} TO {desk}",
                f"{self.desk} now holds {', '.join(privileges)} on {', '.join(names)}",
            )

    def defaults(self) -> None:
        """Future tables and sequences of the owner get the desk's ordinary privileges on creation."""
        owner, desk, schema = self.q(self.owner), self.q(self.desk), self.q(self.catalog.schema)
        prefix = f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema}"
        for privileges, current, word in (
            (READ_WRITE, self.catalog.default_tables, "TABLES"),
            (SEQUENCE_PRIVILEGES, self.catalog.default_sequences, "SEQUENCES"),
        ):
            extra = sorted(current - set(privileges))
            missing = [p for p in privileges if p not in current]
            if extra:
                self.add(
                    f"{prefix} REVOKE {', '.join(extra)} ON {word} FROM {desk}",
                    f"future {word.lower()} of {self.owner}: {self.desk} no longer gets {', '.join(extra)}",
                )
            if missing:
                self.add(
                    f"{prefix} GRANT {', '.join(missing)} ON {word} TO {desk}",
                    f"future {word.lower()} of {self.owner}: {self.desk} gets {', '.join(privileges)}",
                )

    # ------------------------------------------------------------- people

    def person(self, login: str) -> None:
        role, name, desk = self.catalog.roles.get(login), self.q(login), self.q(self.desk)
        if role is None:
            self.add(
                f"CREATE ROLE {name} LOGIN IN ROLE {desk}",
                f"created the login role {login}, a member of {self.desk} (no password: peer authentication "
                "or the person's ~/.pgpass)",
                role_ddl=True,
            )
            return
        if role.superuser:
            raise ValidationError(
                "login", f"the role {login} is a superuser; a person's role must be an ordinary one"
            )
        if not role.can_login:
            self.add(f"ALTER ROLE {name} LOGIN", f"{login} may log in", role_ddl=True)
        if not self.is_member(login):
            self.add(f"GRANT {desk} TO {name}", f"{login} is now a member of {self.desk}", role_ddl=True)
        if self.owner in self.catalog.roles and _acts_as(self.session, login, self.owner):
            self.notes.append(
                f"{login} has the owner's privileges ({self.owner}): their consoles are not restricted and "
                "their identity is their operating-system login"
            )

    def leaver(self, login: str) -> None:
        if login in self.catalog.roles and self.is_member(login):
            self.add(
                f"REVOKE {self.q(self.desk)} FROM {self.q(login)}",
                f"{login} is no longer an active user: no longer a member of {self.desk}",
                role_ddl=True,
            )


def _check_role_name(field_name: str, name: str) -> str:
    if not ROLE_NAME.fullmatch(name) or len(name.encode()) > NAME_BYTES:
        raise ValidationError(
            field_name,
            f"{name!r} is not a role name for the desk: 1 to {NAME_BYTES} letters, digits, '_', '.' or '-', "
            "starting with a letter or '_'",
        )
    if name.lower().startswith("pg_") or name.lower() == "public":
        raise ValidationError(field_name, f"{name!r} is reserved by PostgreSQL; choose another role name")
    return name


def _people(
    session: Session, logins: Sequence[str], all_users: bool
) -> tuple[list[str], list[str], list[str]]:
    """The logins to give a role (active desk users) and, with ``all_users``, the inactive ones and those
    too long for a role name."""
    known = {login: active for login, active in session.execute(select(User.login, User.active))}
    for login in logins:
        if not known.get(login):
            state = "not active" if login in known else "not a user of this service desk"
            raise ValidationError(
                "login", f"{login!r} is {state}; add them first with: itsm user add {login} --role ..."
            )
        if len(login.encode()) > NAME_BYTES:
            raise ValidationError(
                "login", f"the login {login!r} is longer than PostgreSQL's {NAME_BYTES}-byte role names"
            )
    people = set(logins)
    leavers: list[str] = []
    too_long: list[str] = []
    if all_users:
        active = {login for login, is_active in known.items() if is_active}
        too_long = sorted(login for login in active if len(login.encode()) > NAME_BYTES)
        people |= active - set(too_long)
        leavers = sorted(set(known) - active)
    return sorted(people), leavers, too_long


# --------------------------------------------------------------------------- granting


def grant_roles(
    session: Session,
    actor: Actor,
    *,
    desk_role: str = DESK_ROLE,
    owner_role: str | None = None,
    logins: Sequence[str] = (),
    all_users: bool = False,
    dry_run: bool = False,
) -> GrantReport:
    """Create or bring up to date the desk's group roles, their least privileges and the people's login roles.

    Idempotent: it reads what the catalog holds and does only what is missing or too much, so a second run
    changes nothing. ``owner_role`` (default: the role that owns the schema now, i.e. ran the migrations)
    gets the desk's tables if another role has them. Needs an admin of the desk (``desk.grant_roles``)
    connected as the schema's owner or a superuser, and CREATEROLE for the roles it creates. With
    ``dry_run`` the statements are planned and returned, not run.
    """
    require_postgresql(session.get_bind().dialect.name)
    require(actor.roles, "desk.grant_roles")
    desk = _check_role_name("desk-role", desk_role)
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": GRANT_LOCK})
    current_owner = session.scalar(
        text("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass('alembic_version')")
    )
    if current_owner is None:
        raise NotFound("the database has no itsm schema yet; create it with: itsm db upgrade")
    owner = _check_role_name("owner-role", owner_role or current_owner)
    if owner == desk:
        raise ValidationError("desk-role", f"the desk's role and the owner role must differ (both {desk})")
    people, leavers, too_long = _people(session, logins, all_users)
    for login in people:
        if login in (owner, desk):
            raise ValidationError(
                "login", f"{login} is the {'owner' if login == owner else 'desk'} role itself"
            )
    catalog = _read_catalog(session, desk, owner, [*people, *leavers])
    me = catalog.user
    if not (me.superuser or _acts_as(session, me.name, current_owner)):
        raise OwnerConnectionNeeded(
            f"itsm db grant-roles must connect as the schema's owner ({current_owner}) or a superuser, "
            f"not as {me.name}: add user={current_owner} to the database URL (with a peer map or a "
            "~/.pgpass entry for it)"
        )
    group = catalog.roles.get(desk)
    if group is not None and (
        group.superuser or group.create_role or (owner in catalog.roles and _acts_as(session, desk, owner))
    ):
        raise ValidationError(
            "desk-role",
            f"the role {desk} is a superuser, may create roles or has the owner's privileges; "
            "a desk's group role must be an ordinary one (choose another --desk-role)",
        )
    planner = _Planner(session, catalog, owner, desk)
    planner.group_roles(transfer=owner != current_owner)
    planner.database()
    planner.schema()
    planner.relations("tables", catalog.tables, table_privileges)
    planner.relations("sequences", catalog.sequences, lambda _name: SEQUENCE_PRIVILEGES)
    planner.defaults()
    for login in too_long:
        planner.notes.append(f"{login} has no role: the login is longer than {NAME_BYTES} bytes")
    owner_row = catalog.roles.get(owner)
    if owner_row is not None and owner_row.superuser:
        planner.notes.append(
            f"the schema belongs to the superuser {owner}: give it to an owner role of its own, e.g. "
            f"--owner-role {OWNER_ROLE}"
        )
    if "audit_heads" not in catalog.tables:
        planner.notes.append(
            "audit_heads is not in the database yet: when a migration adds it, the default privileges give "
            f"{desk} {', '.join(READ_WRITE)} on it"
        )
    for login in people:
        planner.person(login)
    for login in leavers:
        planner.leaver(login)
    report = GrantReport(
        owner_role=owner,
        desk_role=desk,
        database=catalog.database,
        steps=tuple(planner.steps),
        notes=tuple(planner.notes),
        applied=not dry_run,
        people=tuple(people),
    )
    if any(step.role_ddl for step in report.steps) and not (me.superuser or me.create_role):
        raise OwnerConnectionNeeded(
            f"{me.name} may not create or change roles: give it CREATEROLE (ALTER ROLE {planner.q(me.name)} "
            "CREATEROLE, as a superuser) or run itsm db grant-roles as a superuser"
        )
    if dry_run:
        return report
    for step in report.steps:
        try:
            session.connection().exec_driver_sql(step.sql)
        except DBAPIError as exc:  # the transaction is rolled back as the error leaves the caller's block
            first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise GrantRefused(
                f"the database refused {step.sql!r}: {first}; nothing was granted (run it as the owner "
                "with CREATEROLE, or as a superuser)"
            ) from None
    return report
