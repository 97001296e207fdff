"""PostgreSQL with a login role per person, on the real server: least privilege, and the identity it gives.

Every test works in one fresh database of its module, owned by an owner role made for it, with the desk's
group role and the people's login roles made by ``itsm db grant-roles``. Roles belong to the whole cluster,
so their names carry a random prefix of this run and are dropped at the end. The test server trusts every
connection, so a test connects as a role by naming it in the URL, where a deployment uses peer
authentication or a password file.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from os_user_helpers import copy_source
from pg_private import deployment_tools
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from itsm_tui.cli import main
from itsm_tui.config import DeskConfig
from itsm_tui.db import Database
from itsm_tui.jobs import sla_scan
from itsm_tui.services import kpi, notifications, presence, tickets
from itsm_tui.services import users as user_service
from itsm_tui.services import views as saved_views
from itsm_tui.services.dbroles import IdentityMismatch

PG_ENV = "ITSM_TEST_PG_URL"
pytestmark = pytest.mark.skipif(
    not os.environ.get(PG_ENV),
    reason=f"the database-role tests need PostgreSQL: set {PG_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)",
)

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # a Monday morning
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
# What a person may do to each table, worked out from what the desk does in normal operation.
APPEND_ONLY = {"audit_events", "access_refusals"}
DELETED_IN_USE = {
    "presence",
    "kpi_daily",
    "kpi_dirty_days",
    "role_memberships",
    "group_memberships",
    "saved_views",  # a person's own queue views
}
READ_ONLY = {"alembic_version"}
OS_LOGIN = "itsm_tui.services.users.os_login"
RUN_AS = (
    "import sys; import itsm_tui.services.users as u; login = sys.argv.pop(1); u.os_login = lambda: login; "
    "from itsm_tui.cli import main; sys.exit(main(sys.argv[1:]))"
)
SUPERUSER = "(the superuser)"


def expected_privileges(table: str) -> set[str]:
    if table in READ_ONLY:
        return {"SELECT"}
    if table in APPEND_ONLY:
        return {"SELECT", "INSERT"}
    if table in DELETED_IN_USE:
        return {"SELECT", "INSERT", "UPDATE", "DELETE"}
    return {"SELECT", "INSERT", "UPDATE"}


@dataclass
class Cluster:
    """The module's database and roles."""

    prefix: str
    database: str
    server_url: str  # the superuser's, to the server's own database
    owner: str
    desk: str
    admin: str
    agent: str
    agent2: str
    lead: str
    config: DeskConfig

    def url(self, role: str | None = None) -> str:
        """The desk database's URL as ``role`` (the superuser by default)."""
        url = make_url(self.server_url).set(database=self.database)
        if role is not None:
            url = url.set(username=role, password=None)
        return url.render_as_string(hide_password=False)

    def login(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    @contextlib.contextmanager
    def engine(self, role: str | None = None) -> Iterator[Engine]:
        engine = create_engine(self.url(role))
        try:
            yield engine
        finally:
            engine.dispose()

    @contextlib.contextmanager
    def database_as(self, role: str | None = None) -> Iterator[Database]:
        db = Database.connect(self.url(role))
        try:
            yield db
        finally:
            db.dispose()

    def scalar(self, sql: str, **params: object) -> object:
        """One value, read as the superuser."""
        with self.engine() as engine, engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def run(self, sql: str) -> None:
        """Statements run as the superuser."""
        with self.engine() as engine, engine.begin() as conn:
            conn.exec_driver_sql(sql)


@contextlib.contextmanager
def logged_in_as(login: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(OS_LOGIN, lambda: login)
        yield


def itsm(login: str, *argv: str) -> tuple[int, str, str]:
    """Run ``itsm ARGV`` in this process as the OS login ``login``: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with logged_in_as(login), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def itsm_process(login: str, *argv: str) -> subprocess.Popen[str]:
    """``itsm ARGV`` in a process of its own, as the OS login ``login``."""
    return subprocess.Popen(
        [sys.executable, "-c", RUN_AS, login, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _server_url() -> str:
    url = os.environ[PG_ENV]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _drop_everything(server: Engine, cluster: Cluster) -> None:
    """Drop the module's database and every role of this run (whatever a failed test left)."""
    with server.connect() as conn:
        roles = list(
            conn.execute(
                text("SELECT rolname FROM pg_roles WHERE starts_with(rolname, :p) ORDER BY rolname"),
                {"p": f"{cluster.prefix}_"},
            ).scalars()
        )
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": cluster.database}
        ).scalar()
    if exists and roles:
        with cluster.engine() as engine, engine.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {', '.join(_q(r) for r in roles)}")
    with server.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {_q(cluster.database)} WITH (FORCE)")
        for role in roles:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {_q(role)}")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture(scope="module")
def cluster(config: DeskConfig) -> Iterator[Cluster]:
    """A fresh database, migrated by its owner role, with four people who have login roles of their own."""
    prefix = f"itsmt_{uuid.uuid4().hex[:8]}"
    c = Cluster(
        prefix=prefix,
        database=f"{prefix}_db",
        server_url=_server_url(),
        owner=f"{prefix}_owner",
        desk=f"{prefix}_desk",
        admin=f"{prefix}_adm",
        agent=f"{prefix}_ag1",
        agent2=f"{prefix}_ag2",
        lead=f"{prefix}_lead",
        config=config,
    )
    server = create_engine(c.server_url, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {_q(c.owner)} LOGIN CREATEROLE")
            conn.exec_driver_sql(f"CREATE DATABASE {_q(c.database)} OWNER {_q(c.owner)}")
        with c.database_as(c.owner) as db:
            db.upgrade()
            db.sync_catalog(config)
            with db.session() as session:  # the first user becomes admin
                user_service.add_user(
                    session, actor_login=c.admin, login=c.admin, roles=["shift_lead"], groups=["SD-L1"]
                )
                for login, role in ((c.agent, "agent"), (c.agent2, "agent"), (c.lead, "shift_lead")):
                    user_service.add_user(
                        session, actor_login=c.admin, login=login, roles=[role], groups=["SD-L1"]
                    )
                user_service.change_roles(session, actor_login=c.admin, login=c.lead, lead_of=["SD-L1"])
        code, _out, err = grant(
            c, c.admin, "--login", c.admin, "--login", c.agent, "--login", c.agent2, "--login", c.lead
        )
        assert code == 0, err
        yield c
    finally:
        _drop_everything(server, c)
        server.dispose()


def grant(c: Cluster, login: str, *argv: str, role: str | None = None) -> tuple[int, str, str]:
    """``itsm db grant-roles`` as the OS login ``login``, connected as ``role`` (default: the owner)."""
    url = c.url(None if role == SUPERUSER else role or c.owner)
    return itsm(login, "db", "grant-roles", "--db", url, "--desk-role", c.desk, *argv)


def finished(process: subprocess.Popen[str]) -> tuple[str, str]:
    """The output of a process that must end within a minute (killed if it does not)."""
    try:
        return process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"still running after a minute: {out} {err}") from None


def snapshot(c: Cluster) -> dict[str, object]:
    """Everything grant-roles may change, as the catalog has it: owners and ACLs of the schema's tables
    and sequences, of the schema and the database, the default privileges, this run's roles and members."""
    with c.engine() as engine, engine.connect() as conn:
        return {
            "relations": conn.execute(
                text(
                    "SELECT relname, relkind, pg_get_userbyid(relowner), relacl::text FROM pg_class "
                    "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'S') ORDER BY relname"
                )
            ).all(),
            "database": conn.execute(
                text("SELECT datacl::text FROM pg_database WHERE datname = current_database()")
            ).all(),
            "schema": conn.execute(
                text("SELECT nspacl::text FROM pg_namespace WHERE nspname = 'public'")
            ).all(),
            "defaults": conn.execute(
                text("SELECT defaclrole, defaclobjtype, defaclacl::text FROM pg_default_acl ORDER BY 1, 2")
            ).all(),
            "roles": conn.execute(
                text(
                    "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolpassword FROM pg_authid "
                    "WHERE starts_with(rolname, :p) ORDER BY rolname"
                ),
                {"p": f"{c.prefix}_"},
            ).all(),
            "members": conn.execute(
                text(
                    "SELECT r.rolname, m.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid "
                    "JOIN pg_roles m ON m.oid = a.member WHERE starts_with(r.rolname, :p) ORDER BY 1, 2"
                ),
                {"p": f"{c.prefix}_"},
            ).all(),
        }


def refused(conn_factory: Callable[[], contextlib.AbstractContextManager], sql: str) -> str:
    """Run ``sql`` in a transaction of its own; it must be refused for want of privilege (SQLSTATE 42501)."""
    with conn_factory() as conn:
        with pytest.raises(DBAPIError) as caught:
            conn.exec_driver_sql(sql)
        conn.rollback()
    state = getattr(caught.value.orig, "sqlstate", None)
    assert state == "42501", f"{sql}: {caught.value.orig}"
    return str(caught.value.orig)


def desk_tables(c: Cluster) -> list[str]:
    with c.engine() as engine, engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            ).scalars()
        )


def first_table(c: Cluster) -> str:
    """The desk's first table by name: the first one a change of owner reaches."""
    return desk_tables(c)[0]


# --------------------------------------------------------------------------- what the grants are


def test_a_person_holds_exactly_the_desks_privileges(cluster: Cluster) -> None:
    c = cluster
    tables = desk_tables(c)
    assert {"tickets", "audit_events", "presence", "users", "alembic_version"} <= set(tables)
    with c.engine() as engine, engine.connect() as conn:
        for table in tables:
            held = {
                p
                for p in PRIVILEGES
                if conn.execute(
                    text("SELECT has_table_privilege(:r, :t, :p)"), {"r": c.agent, "t": table, "p": p}
                ).scalar()
            }
            assert held == expected_privileges(table), table
        sequences = list(
            conn.execute(text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")).scalars()
        )
        assert "tickets_id_seq" in sequences and "audit_events_id_seq" in sequences
        for sequence in sequences:
            check = "SELECT has_sequence_privilege(:r, :s, :p)"
            usage = conn.execute(text(check), {"r": c.agent, "s": sequence, "p": "USAGE"}).scalar()
            setval = conn.execute(text(check), {"r": c.agent, "s": sequence, "p": "UPDATE"}).scalar()
            assert (usage, setval) == (True, False), sequence
        role = conn.execute(
            text(
                "SELECT rolcanlogin, rolsuper, rolcreaterole, rolpassword FROM pg_authid WHERE rolname = :r"
            ),
            {"r": c.agent},
        ).one()
        assert tuple(role) == (True, False, False, None)  # logs in, no password: peer or ~/.pgpass
        group = conn.execute(
            text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": c.desk}
        ).scalar()
        assert group is False
        assert conn.execute(
            text("SELECT pg_has_role(:r, :g, 'MEMBER')"), {"r": c.agent, "g": c.desk}
        ).scalar()
        assert not conn.execute(
            text("SELECT pg_has_role(:r, :g, 'MEMBER')"), {"r": c.agent, "g": c.owner}
        ).scalar()
        # Only the desk's roles connect; nobody but the owner creates objects.
        public_connect = conn.execute(
            text(
                "SELECT count(*) FROM pg_database d, aclexplode(d.datacl) a "
                "WHERE d.datname = current_database() AND a.grantee = 0 AND a.privilege_type = 'CONNECT'"
            )
        ).scalar()
        assert public_connect == 0
        assert conn.execute(
            text("SELECT has_database_privilege(:r, current_database(), 'CONNECT')"), {"r": c.agent}
        ).scalar()
        assert not conn.execute(
            text("SELECT has_schema_privilege(:r, 'public', 'CREATE')"), {"r": c.agent}
        ).scalar()


def test_a_person_reads_and_appends_but_never_rewrites_or_deletes_the_record(cluster: Cluster) -> None:
    c = cluster
    # Something in the trail to tamper with.
    with c.database_as(c.agent) as db, logged_in_as(c.agent), db.session() as s:
        actor = user_service.resolve_actor(s)
        tickets.create_ticket(s, c.config, actor, title="Printer jams", requester="bob", now=T0)
    with c.engine(c.agent) as engine:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM tickets")).scalar() >= 1
            assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() >= 1
            assert conn.execute(text("SELECT session_user")).scalar() == c.agent
        # A raw INSERT into the trail works: a copy of its first row (every column but the id) under a
        # record id no record has.
        with engine.connect() as conn:
            columns = list(
                conn.execute(
                    text(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_name = 'audit_events' AND column_name <> 'id' ORDER BY ordinal_position"
                    )
                ).scalars()
            )
        chosen = ", ".join("-4242" if name == "entity_id" else name for name in columns)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"INSERT INTO audit_events ({', '.join(columns)}) SELECT {chosen} FROM audit_events "
                "ORDER BY id LIMIT 1"
            )
        with engine.connect() as conn:
            assert (
                conn.execute(text("SELECT count(*) FROM audit_events WHERE entity_id = -4242")).scalar() == 1
            )
        attempts = [
            "UPDATE audit_events SET new_value = 'forged'",
            "UPDATE audit_events SET at = at - interval '1 day' WHERE entity_id = -4242",
            "DELETE FROM audit_events",
            "DELETE FROM audit_events WHERE entity_id = -4242",
            "TRUNCATE audit_events",
            "DELETE FROM tickets",
            "TRUNCATE tickets",
            "DELETE FROM ticket_entries",
            "DELETE FROM users",
            "DELETE FROM notifications",
            "UPDATE access_refusals SET detail = ''",
            "UPDATE alembic_version SET version_num = '0001'",
            "SELECT setval('audit_events_id_seq', 1)",
            "CREATE TABLE public.shadow (id integer)",
            "DROP TABLE audit_events",
            "ALTER TABLE audit_events DISABLE TRIGGER ALL",
            "ALTER TABLE tickets ADD COLUMN backdoor text",
            f"SET ROLE {_q(c.owner)}",
            f"CREATE ROLE {_q(c.login('intruder'))} SUPERUSER",
            f"GRANT {_q(c.owner)} TO {_q(c.agent)}",
            "COPY audit_events TO PROGRAM 'true'",
        ]
        for sql in attempts:
            refused(engine.connect, sql)
        # GRANT of a privilege one does not hold only warns; it grants nothing.
        with engine.begin() as conn:
            conn.exec_driver_sql(f"GRANT DELETE ON audit_events TO {_q(c.agent)}")
    assert c.scalar("SELECT has_table_privilege(:r, 'audit_events', 'DELETE')", r=c.agent) is False
    assert c.scalar("SELECT count(*) FROM audit_events WHERE entity_id = -4242") == 1
    assert c.scalar("SELECT count(*) FROM pg_roles WHERE rolname = :r", r=c.login("intruder")) == 0


def test_the_desks_daily_work_runs_as_a_person(cluster: Cluster) -> None:
    """Not too tight: a whole ticket, presence, the SLA job, KPIs, the inbox and user admin, each as the
    person whose role the console connected as."""
    c = cluster
    with c.database_as(c.agent) as db, logged_in_as(c.agent):
        with db.session() as s:
            agent = user_service.resolve_actor(s)
            first = tickets.create_ticket(s, c.config, agent, title="VPN drops", requester="eve", now=T0).ref
            late = tickets.create_ticket(s, c.config, agent, title="Mail slow", requester="eve", now=T0).ref
        with db.session() as s:
            tickets.assign(s, c.config, agent, first, now=T0 + timedelta(minutes=5))
            tickets.transition(s, c.config, agent, first, "in_progress", now=T0 + timedelta(minutes=6))
            tickets.add_entry(
                s,
                c.config,
                agent,
                first,
                body="Replaced the token",
                public=False,
                now=T0 + timedelta(minutes=9),
            )
            tickets.resolve(
                s, c.config, agent, first, code="fixed", note="New token", now=T0 + timedelta(minutes=10)
            )
            tickets.assign(s, c.config, agent, late, now=T0 + timedelta(minutes=5))
        with db.session() as s:
            late_id = tickets.get_ticket(s, late).id
            presence.heartbeat(s, agent.id, "host:1:abc", "ticket", late_id, T0 + timedelta(minutes=11))
        with db.session() as s:
            assert presence.leave(s, "host:1:abc") == 1
        with db.session() as s:  # a queue view of one's own, saved and deleted
            view = saved_views.save_view(s, c.config, agent, name="Mine", key="8", filter_text="vpn", now=T0)
        with db.session() as s:
            saved_views.delete_view(s, agent, view.id, now=T0)
        # Sixty days on: the late ticket has breached its resolution target, the resolved one is closed.
        result = sla_scan.scan(db, c.config, T0 + timedelta(days=60))
        assert result.breaches >= 1 and result.closed >= 1
        with db.session() as s:
            assert kpi.refresh_rollup(s, (T0 + timedelta(days=60)).date()) >= 1  # deletes and rewrites days
        with db.session() as s:
            mine = [
                n
                for n in notifications.list_for(s, agent.id)
                if n.entity_id == late_id and n.kind == "sla_breach"
            ]
            assert len(mine) == 1
            assert notifications.mark_read(s, agent.id, mine[0].id) == 1
    assert c.scalar("SELECT status FROM tickets WHERE ref = :r", r=first) == "closed"
    assert c.scalar("SELECT resolution_breached_at IS NOT NULL FROM tickets WHERE ref = :r", r=late) is True
    assert c.scalar("SELECT count(*) FROM presence WHERE console_id = 'host:1:abc'") == 0
    with c.engine() as engine, engine.connect() as conn:
        moves = conn.execute(
            text(
                "SELECT a.new_value, u.login FROM audit_events a JOIN tickets t ON t.id = a.entity_id "
                "LEFT JOIN users u ON u.id = a.actor_id WHERE a.entity_type = 'ticket' AND t.ref = :r "
                "AND a.field = 'status' AND a.action <> 'create' ORDER BY a.id"
            ),
            {"r": first},
        ).all()
    # Written by the agent's role, then by the SLA job's: taken, worked, resolved, closed.
    assert [tuple(m) for m in moves] == [
        ("assigned", c.agent),
        ("in_progress", c.agent),
        ("resolved", c.agent),
        ("closed", None),
    ]
    assert (
        c.scalar("SELECT count(*) FROM kpi_dirty_days WHERE day < :d", d=(T0 + timedelta(days=60)).date())
        == 0
    )
    # The admin adds and removes roles through their own role (a withdrawn role is a deleted membership).
    with c.database_as(c.admin) as db, logged_in_as(c.admin):
        with db.session() as s:
            user_service.change_roles(s, actor_login=c.admin, login=c.agent2, add=["support_l2"])
        with db.session() as s:
            user_service.change_roles(s, actor_login=c.admin, login=c.agent2, remove=["support_l2"])
    assert (
        c.scalar(
            "SELECT string_agg(r.role, ',') FROM role_memberships r JOIN users u ON u.id = r.user_id "
            "WHERE u.login = :l",
            l=c.agent2,
        )
        == "agent"
    )


# --------------------------------------------------------------------------- identity


def test_the_identity_is_the_database_role_and_another_login_is_refused(cluster: Cluster) -> None:
    c = cluster
    with c.database_as(c.agent) as db:
        with db.read_session() as s, logged_in_as(c.agent):
            assert user_service.resolve_actor(s).login == c.agent
        with db.read_session() as s, logged_in_as(c.agent2), pytest.raises(IdentityMismatch) as caught:
            user_service.resolve_actor(s)
        assert str(caught.value) == (
            f"connected to the database as role {c.agent} but logged in as {c.agent2}; "
            "connect as your own role"
        )
        # Naming the login does not get round it: an admin's OS login with the agent's credentials.
        with db.read_session() as s, logged_in_as(c.admin), pytest.raises(IdentityMismatch):
            user_service.resolve_actor(s, c.admin)
    # The owner's connection (the single-role setup) and a superuser's: the OS login is the identity.
    for role in (c.owner, None):
        with c.database_as(role) as db, db.read_session() as s, logged_in_as(c.agent2):
            assert user_service.resolve_actor(s).login == c.agent2


def test_a_process_with_someone_elses_role_is_refused_before_it_does_anything(cluster: Cluster) -> None:
    """Real processes: the console, the user admin, the SLA job and serve, each of an OS login that holds
    another person's role."""
    c = cluster
    before = c.scalar("SELECT count(*) FROM audit_events")
    promote = itsm_process(c.admin, "user", "role", c.agent2, "--add", "admin", "--db", c.url(c.agent))
    console = itsm_process(c.agent2, "--db", c.url(c.agent))
    scan = itsm_process(c.agent2, "sla", "scan", "--db", c.url(c.agent))  # the jobs resolve alike
    serve = itsm_process(c.agent2, "serve", "--port", "1", "--db", c.url(c.agent))  # and so does serve
    for process, login in ((promote, c.admin), (console, c.agent2), (scan, c.agent2), (serve, c.agent2)):
        out, err = finished(process)
        assert process.returncode == 2, (out, err)
        assert err.strip() == (
            f"itsm: error: connected to the database as role {c.agent} but logged in as {login}; "
            "connect as your own role"
        )
    assert (
        c.scalar(
            "SELECT count(*) FROM role_memberships r JOIN users u ON u.id = r.user_id "
            "WHERE u.login = :l AND r.role = 'admin'",
            l=c.agent2,
        )
        == 0
    )
    assert c.scalar("SELECT count(*) FROM audit_events") == before


# --------------------------------------------------------------------------- itsm db grant-roles


def test_grant_roles_twice_in_a_row_changes_nothing_the_second_time(cluster: Cluster) -> None:
    c = cluster
    people = ("--login", c.admin, "--login", c.agent, "--login", c.agent2, "--login", c.lead)
    assert grant(c, c.admin, *people)[0] == 0
    before = snapshot(c)
    code, out, err = grant(c, c.admin, *people)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (
        f"nothing to change: {c.desk} and {c.owner} already hold exactly the desk's privileges on "
        f"{c.database}, and {', '.join(sorted([c.admin, c.agent, c.agent2, c.lead]))} their login roles"
    )
    assert snapshot(c) == before


def test_grant_roles_takes_back_what_was_granted_too_much(cluster: Cluster) -> None:
    c = cluster
    c.run(
        f"GRANT DELETE, TRUNCATE, UPDATE ON audit_events TO {_q(c.desk)}; "
        f"GRANT ALL ON tickets TO PUBLIC; "
        f"REVOKE UPDATE ON notifications FROM {_q(c.desk)}; "
        f"REVOKE {_q(c.desk)} FROM {_q(c.agent2)}; "
        f"GRANT CONNECT ON DATABASE {_q(c.database)} TO PUBLIC"
    )
    assert c.scalar("SELECT has_table_privilege(:r, 'audit_events', 'DELETE')", r=c.agent) is True
    code, out, err = grant(c, c.admin, "--login", c.agent2)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert f"{c.desk} no longer holds DELETE, TRUNCATE, UPDATE on audit_events" in lines
    assert "nobody outside the desk's roles has privileges on tables tickets" in lines
    assert f"{c.desk} now holds UPDATE on notifications" in lines
    assert f"{c.agent2} is now a member of {c.desk}" in lines
    assert f"only the desk's roles may connect to {c.database}" in lines
    with c.engine() as engine, engine.connect() as conn:
        for table, role in (("audit_events", c.agent), ("notifications", c.agent), ("tickets", "public")):
            held = {
                p
                for p in PRIVILEGES
                if conn.execute(
                    text("SELECT has_table_privilege(:r, :t, :p)"), {"r": role, "t": table, "p": p}
                ).scalar()
            }
            assert held == (set() if role == "public" else expected_privileges(table)), (table, role)
    assert c.scalar("SELECT pg_has_role(:r, :g, 'MEMBER')", r=c.agent2, g=c.desk) is True


def test_grant_roles_dry_run_prints_the_sql_and_changes_nothing(cluster: Cluster) -> None:
    c = cluster
    newcomer = c.login("dry")
    with c.database_as(c.owner) as db, db.session() as s:
        user_service.add_user(s, actor_login=c.admin, login=newcomer, roles=["agent"], groups=["SD-L1"])
    before = snapshot(c)
    code, out, err = grant(c, c.admin, "--login", newcomer, "--dry-run")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"-- itsm db grant-roles on {c.database} (dry run: nothing was changed)"
    assert f"CREATE ROLE {newcomer} LOGIN IN ROLE {c.desk};" in lines
    assert snapshot(c) == before
    assert c.scalar("SELECT count(*) FROM pg_roles WHERE rolname = :r", r=newcomer) == 0


def test_grant_roles_for_all_users_adds_newcomers_and_drops_leavers(cluster: Cluster) -> None:
    c = cluster
    newcomer, leaver = c.login("new"), c.login("gone")
    with c.database_as(c.owner) as db, db.session() as s:
        for login in (newcomer, leaver):
            user_service.add_user(s, actor_login=c.admin, login=login, roles=["agent"], groups=["SD-L1"])
    assert grant(c, c.admin, "--login", leaver)[0] == 0
    with c.engine(leaver) as engine, engine.connect() as conn:
        assert conn.execute(text("SELECT session_user")).scalar() == leaver
    c.run(f"UPDATE users SET active = false WHERE login = '{leaver}'")
    code, out, err = grant(c, c.admin, "--all-users")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert (
        f"created the login role {newcomer}, a member of {c.desk} (no password: peer authentication or the "
        "person's ~/.pgpass)" in lines
    )
    assert f"{leaver} is no longer an active user: no longer a member of {c.desk}" in lines
    assert c.scalar("SELECT pg_has_role(:r, :g, 'MEMBER')", r=newcomer, g=c.desk) is True
    assert c.scalar("SELECT pg_has_role(:r, :g, 'MEMBER')", r=leaver, g=c.desk) is False
    with pytest.raises(OperationalError, match="permission denied for database"), c.engine(leaver) as engine:
        engine.connect().close()


def test_grant_roles_is_refused_to_all_but_an_admin_on_the_owners_connection(
    cluster: Cluster, tmp_path: Path
) -> None:
    c = cluster
    before = snapshot(c)
    code, out, err = grant(c, c.agent, "--login", c.agent)
    assert (code, out) == (2, "")
    assert err.startswith("itsm: error: You may not grant the desk's database roles and privileges")
    assert "admin" in err
    code, out, err = grant(c, c.agent, role=c.agent)  # an agent on their own role: the same refusal
    assert (code, out) == (2, "") and "You may not grant the desk's database roles" in err
    code, out, err = grant(c, c.admin, role=c.admin)  # an admin, but on their own (restricted) role
    assert (code, out) == (2, "")
    assert err == (
        f"itsm: error: itsm db grant-roles must connect as the schema's owner ({c.owner}) or a superuser, "
        f"not as {c.admin}: add user={c.owner} to the database URL (with a peer map or a ~/.pgpass entry "
        "for it)\n"
    )
    code, out, err = grant(c, c.admin, "--login", c.login("nobody"))
    assert code == 2 and "is not a user of this service desk" in err
    code, out, err = grant(c, c.admin, "--desk-role", "pg_monitor")
    assert code == 2 and "reserved by PostgreSQL" in err
    # The owner may create a role but not give its tables to one it is no member of: the statement is
    # refused and the whole run undone, the role it had just created included.
    other = c.login("elsewhere")
    code, out, err = grant(c, c.admin, "--owner-role", other)
    assert (code, out) == (2, "")
    assert err.startswith(
        f"itsm: error: the database refused 'ALTER TABLE {first_table(c)} OWNER TO {other}': "
    )
    assert err.endswith("nothing was granted (run it as the owner with CREATEROLE, or as a superuser)\n")
    assert c.scalar("SELECT count(*) FROM pg_roles WHERE rolname = :r", r=other) == 0
    assert snapshot(c) == before
    # SQLite: one line, and no database file made only to say so.
    target = tmp_path / "desk" / "itsm.db"
    code, out, err = itsm(c.admin, "db", "grant-roles", "--db", f"sqlite:///{target}")
    assert code == 2
    assert err == (
        "itsm: error: itsm db grant-roles is for PostgreSQL; this desk's database is SQLite, where the "
        "database file's permissions decide who may use it\n"
    )
    assert not target.parent.exists()


def test_admins_granting_at_once_take_turns(cluster: Cluster) -> None:
    """Two real processes grant the same new person's role at once: one creates it, the other finds it made
    (without the lock the second would fail on a role that already exists)."""
    c = cluster
    newcomer = c.login("both")
    with c.database_as(c.owner) as db, db.session() as s:
        user_service.add_user(s, actor_login=c.admin, login=newcomer, roles=["agent"], groups=["SD-L1"])
    args = ("db", "grant-roles", "--db", c.url(c.owner), "--desk-role", c.desk, "--login", newcomer)
    with c.engine() as engine, engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": int.from_bytes(b"DBROLES", "big")})
        processes = [itsm_process(c.admin, *args) for _ in range(2)]
        deadline = time.monotonic() + 60
        while True:  # both are waiting for the lock, past every check, about to plan
            waiting = holder.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            ).scalar()
            if waiting == 2:
                break
            assert all(p.poll() is None for p in processes), [finished(p) for p in processes]
            assert time.monotonic() < deadline, "the two grant-roles never waited for each other"
            time.sleep(0.05)
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": int.from_bytes(b"DBROLES", "big")})
        holder.commit()
    results = [(*finished(p), p.returncode) for p in processes]
    assert [code for _out, _err, code in results] == [0, 0], results
    created = [out for out, _err, _code in results if f"created the login role {newcomer}" in out]
    unchanged = [out for out, _err, _code in results if out.startswith("nothing to change")]
    assert (len(created), len(unchanged)) == (1, 1), results
    assert c.scalar("SELECT pg_has_role(:r, :g, 'MEMBER')", r=newcomer, g=c.desk) is True


def test_future_tables_get_the_desks_privileges_and_audit_heads_is_read_write(cluster: Cluster) -> None:
    """The hash chain's ``audit_heads`` may come with a later migration: the owner's default privileges give
    a new table SELECT, INSERT and UPDATE at once, which is what grant-roles then finds right for it."""
    c = cluster
    made_here = c.scalar("SELECT to_regclass('audit_heads') IS NULL")
    with c.engine(c.owner) as engine, engine.begin() as conn:
        if made_here:
            conn.exec_driver_sql(
                "CREATE TABLE audit_heads (entity_type varchar(16), entity_id integer, seq integer, "
                "hash varchar(64), PRIMARY KEY (entity_type, entity_id))"
            )
        conn.exec_driver_sql("CREATE TABLE later_things (id serial PRIMARY KEY, name text)")
    try:
        for table in ("audit_heads", "later_things"):
            held = {
                p
                for p in PRIVILEGES
                if c.scalar("SELECT has_table_privilege(:r, :t, :p)", r=c.agent, t=table, p=p)
            }
            assert held == {"SELECT", "INSERT", "UPDATE"}, table
        assert (
            c.scalar("SELECT has_sequence_privilege(:r, 'later_things_id_seq', 'USAGE')", r=c.agent) is True
        )
        code, out, err = grant(c, c.admin)
        assert (code, err) == (0, "")
        assert "audit_heads" not in out  # neither missing nor too much
        held = {
            p
            for p in PRIVILEGES
            if c.scalar("SELECT has_table_privilege(:r, 'audit_heads', :p)", r=c.agent, p=p)
        }
        assert held == {"SELECT", "INSERT", "UPDATE"}
    finally:
        with c.engine(c.owner) as engine, engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE later_things")
            if made_here:
                conn.exec_driver_sql("DROP TABLE audit_heads")


def test_a_superuser_hands_the_schema_to_another_owner_role(cluster: Cluster) -> None:
    """The way out of the single shared role: a superuser gives the tables to an owner role (created if it
    is missing); the desk keeps its privileges and the new owner's future tables follow. Then back."""
    c = cluster
    other = c.login("owner2")
    code, out, err = grant(c, c.admin, "--owner-role", other, role=SUPERUSER)
    assert (code, err) == (0, ""), out
    lines = out.splitlines()
    assert f"created the owner role {other}" in lines
    assert f"{other} now owns tickets" in lines and f"{other} now owns audit_events" in lines
    assert (
        c.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> :o", o=other)
        == 0
    )
    assert c.scalar("SELECT has_table_privilege(:r, 'audit_events', 'DELETE')", r=c.agent) is False
    assert c.scalar("SELECT has_table_privilege(:r, 'tickets', 'UPDATE')", r=c.agent) is True
    code, out, err = grant(c, c.admin, "--owner-role", c.owner, role=SUPERUSER)
    assert (code, err) == (0, ""), out
    assert (
        c.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> :o", o=c.owner)
        == 0
    )


# ------------------------------------------------------------------------- the README's deployment, for real


def test_the_documented_deployment_with_peer_authentication(request: pytest.FixtureRequest) -> None:
    """README's "PostgreSQL for many hosts", with real operating-system users on a private server with its
    pg_hba.conf and pg_ident.conf: the admin migrates and grants as the owner through the peer map, the agent
    works as their own role with no user in the URL, and nobody gets in as someone else."""
    tools = deployment_tools()
    if isinstance(tools, str):
        pytest.skip(tools)
    bindir, _system_python = tools
    desk_python = request.getfixturevalue("desk_python")  # built only once the test can run
    tag = uuid.uuid4().hex[:6]
    admin, agent = f"itp{tag}a", f"itp{tag}b"
    base = Path(tempfile.mkdtemp(prefix="itsm-peer-", dir="/tmp"))
    base.chmod(0o755)
    sock, data = base / "sock", base / "pgdata"
    made: list[str] = []

    def as_user(user: str, *argv: str | Path) -> subprocess.CompletedProcess[str]:
        home = base / "home" / user
        env = [f"HOME={home}", "PATH=/usr/bin:/bin", "LANG=C.UTF-8", f"PYTHONPATH={base / 'src'}"]
        env += [f"XDG_{kind}_HOME={home}/{kind.lower()}" for kind in ("CONFIG", "DATA", "CACHE", "STATE")]
        return subprocess.run(
            ["runuser", "-u", user, "--", "env", "-i", *env, *map(str, argv)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=base,
        )

    def itsm_as(user: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return as_user(user, desk_python, "-m", "itsm_tui.cli", *argv)

    def ok(result: subprocess.CompletedProcess[str]) -> str:
        assert result.returncode == 0, (result.args, result.stdout, result.stderr)
        return result.stdout

    try:
        for user in (admin, agent):
            subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", user], check=True)
            made.append(user)
            (base / "home" / user).mkdir(parents=True)
            shutil.chown(base / "home" / user, user)
            (base / "home" / user).chmod(0o700)
        copy_source(base / "src")  # the code under test, where the other users may read it
        sock.mkdir()
        data.mkdir()
        shutil.chown(sock, "postgres")
        shutil.chown(data, "postgres")
        ok(
            as_user(
                "postgres",
                bindir / "initdb",
                "-D",
                data,
                "-U",
                "postgres",
                "--auth-local=peer",
                "--auth-host=reject",
            )
        )
        (data / "pg_hba.conf").write_text(
            "local  all   postgres                peer\n"
            "local  itsm  itsm_owner              peer map=itsm_owner\n"
            "local  itsm  +itsm_desk              peer\n"
        )
        (data / "pg_ident.conf").write_text(f"itsm_owner  {admin}  itsm_owner\n")
        server = f"-c listen_addresses='' -c unix_socket_directories='{sock}' -p 5432"
        ok(
            as_user(
                "postgres",
                bindir / "pg_ctl",
                "-D",
                data,
                "-l",
                data / "server.log",
                "-w",
                "-o",
                server,
                "start",
            )
        )
        # 1. The database and its owner.
        ok(as_user("postgres", bindir / "psql", "-h", sock, "-c", "CREATE ROLE itsm_owner LOGIN CREATEROLE"))
        ok(as_user("postgres", bindir / "createdb", "-h", sock, "--owner", "itsm_owner", "itsm"))
        # 3. The schema, the first admin and the roles, as the admin through the peer map.
        owner = f"postgresql:///itsm?host={sock}&user=itsm_owner"
        ok(itsm_as(admin, "db", "upgrade", "--db", owner))
        ok(itsm_as(admin, "user", "add", admin, "--role", "shift_lead", "--group", "SD-L1", "--db", owner))
        ok(itsm_as(admin, "user", "add", agent, "--role", "agent", "--group", "SD-L1", "--db", owner))
        granted = ok(itsm_as(admin, "db", "grant-roles", "--db", owner, "--all-users"))
        assert f"created the login role {agent}, a member of itsm_desk" in granted
        # 4. Every person: the URL names no role; peer authentication takes the login.
        peer = f"postgresql:///itsm?host={sock}"
        created = ok(
            itsm_as(agent, "ticket", "create", "--title", "Laptop dead", "--requester", "kim", "--db", peer)
        )
        assert created.startswith("INC0000001 P3 new: Laptop dead")
        # Nobody is anybody else: the server refuses the agent as the admin's role or as the owner, ...
        for role in (admin, "itsm_owner"):
            result = itsm_as(agent, "user", "list", "--db", f"{peer}&user={role}")
            assert result.returncode == 2, (result.stdout, result.stderr)
            assert "Peer authentication failed" in result.stderr and "Traceback" not in result.stderr
        # ... the admin's own role is no owner, and the agent's role cannot touch the trail in SQL.
        result = itsm_as(admin, "db", "grant-roles", "--db", peer)
        assert result.returncode == 2 and "must connect as the schema's owner (itsm_owner)" in result.stderr
        result = as_user(agent, bindir / "psql", "-h", sock, "-d", "itsm", "-c", "DELETE FROM audit_events")
        assert result.returncode != 0 and "permission denied for table audit_events" in result.stderr
        who = ok(
            as_user(
                "postgres",
                bindir / "psql",
                "-h",
                sock,
                "-d",
                "itsm",
                "-Atc",
                "SELECT DISTINCT u.login FROM audit_events a JOIN users u ON u.id = a.actor_id "
                "WHERE a.entity_type = 'ticket'",
            )
        )
        assert who.split() == [agent]
    finally:
        if (data / "PG_VERSION").exists():
            as_user("postgres", bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop")
        for user in made:
            subprocess.run(["userdel", user], check=False)
        shutil.rmtree(base, ignore_errors=True)
