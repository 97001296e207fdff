"""Shared fixtures: a fresh database per test on SQLite and, when ITSM_TEST_PG_URL is set, on PostgreSQL.

The suite runs on several pytest-xdist workers at once (``-n auto`` in pyproject.toml's ``addopts``; ``-n 0``
runs it in one process). Each worker has its own session: its own temporary folder, SQLite templates and
PostgreSQL database. The whole run gets one private home for the console's user folders (configuration, data,
cache), shared by the workers and the processes the tests start, so nothing is read from or left in the real
home.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from itsm_tui.config import CONFIG_FILES, DeskConfig, load_config, shipped_config_dir
from itsm_tui.db import Database
from itsm_tui.demo import build_demo
from itsm_tui.models import Base
from itsm_tui.services import users as user_service

try:
    import fcntl
except ImportError:  # Windows has no fcntl: there each worker builds its own demo databases
    fcntl = None

PG_ENV = "ITSM_TEST_PG_URL"
HOME_ENV = "ITSM_TEST_HOME"  # the run's private home, set by the first process of the run for the others

# Settings of the user's environment that would make the console read another database or configuration.
DESK_ENV = ("ITSM_DB_URL", "ITSM_CONFIG_DIR")
USER_DIRS = {
    "XDG_CONFIG_HOME": "config",
    "XDG_DATA_HOME": "data",
    "XDG_CACHE_HOME": "cache",  # the holiday cache: its writes are atomic, so workers share it safely
    "XDG_STATE_HOME": "state",
}

# login -> (roles, groups); the first one becomes admin too.
STAFF = {
    "admin1": (["admin"], []),
    "lead": (["shift_lead"], ["SD-L1"]),
    "agent1": (["agent"], ["SD-L1"]),
    "agent2": (["agent"], ["SD-L1"]),
    "net1": (["support_l2"], ["NET-L2"]),
    "app1": (["support_l2"], ["APP-L2"]),
    "eng1": (["support_l3"], ["ENG-L3"]),
    "analyst1": (["analyst"], []),
    "cab1": (["cab_member"], []),
    "chm": (["change_manager"], []),
    "prm": (["problem_manager"], []),
}


_home_key = pytest.StashKey[tuple[Path, dict[str, str | None]]]()  # the home, the variables it replaced


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per CPU core. Much of a worker's time goes to waiting (for PostgreSQL, for
    child processes, for a console's frames): on two cores the suite took 576 s with two workers, 432 s with
    three (when it was smaller); with three its CPU was 158% of the two cores', so four keep them busier."""
    return 2 * (os.cpu_count() or 1)


def pytest_configure(config: pytest.Config) -> None:
    """Give the run its private home before any test (or xdist worker, which inherits it) starts."""
    if os.environ.get(HOME_ENV):
        return  # a worker of this run: the controller made it
    home = Path(tempfile.mkdtemp(prefix="itsm-tests-home-"))
    changed = {HOME_ENV: str(home)} | {variable: str(home / folder) for variable, folder in USER_DIRS.items()}
    config.stash[_home_key] = home, {variable: os.environ.get(variable) for variable in (*changed, *DESK_ENV)}
    for folder in USER_DIRS.values():
        (home / folder).mkdir()
    os.environ.update(changed)
    for variable in DESK_ENV:
        os.environ.pop(variable, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _home_key not in config.stash:
        return
    home, saved = config.stash[_home_key]
    shutil.rmtree(home, ignore_errors=True)
    for variable, value in saved.items():
        if value is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = value


@pytest.fixture(scope="session")
def config() -> DeskConfig:
    return load_config()


def _pg_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        return None
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A brand-new PostgreSQL database for this test session (each xdist worker has its own), migrated,
    dropped at the end."""
    admin_url = _pg_admin_url()
    if admin_url is None:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"itsm_test_{worker}_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # a set URL that cannot connect is a failure, not a skip
        pytest.fail(f"{PG_ENV} is set but PostgreSQL cannot be used: {exc}")
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    Database.connect(url).upgrade()
    yield url
    _PgCleaner.close(url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _add_staff(database: Database) -> None:
    """The standard cast (``STAFF``), added through the services as an admin would."""
    with database.session() as session:
        for login, (roles, groups) in STAFF.items():
            user_service.add_user(
                session, actor_login="admin1", login=login, roles=roles, groups=groups, name=login.title()
            )
        user_service.change_roles(session, actor_login="admin1", login="lead", lead_of=["SD-L1"])


def _table_rows(database: Database) -> tuple[int, ...]:
    """How many rows each table holds, in ``Base.metadata.sorted_tables`` order."""
    tables = Base.metadata.sorted_tables
    counts = [select(func.count()).select_from(table).scalar_subquery() for table in tables]
    with database.read_session() as session:
        return tuple(session.execute(select(*counts)).one())


class _PgCleaner:
    """Empties a worker's PostgreSQL database between tests, and puts the standard cast back in it, over one
    connection kept for the session (a new connection is a new server process each time).

    The cast is added once through the services (``_add_staff``); its rows and the sequences' positions are
    kept and written back as they were, in the transaction that empties the tables: the same rows, the same
    ids, the same audit chain, in a fraction of the time the services take to make them."""

    _cleaners: ClassVar[dict[str, _PgCleaner]] = {}

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, pool_size=1, pool_pre_ping=True)
        self.tables = Base.metadata.sorted_tables
        self.staff: list[tuple[Any, list[dict[str, Any]]]] | None = None
        self.staff_sequences: list[tuple[str, int | None]] = []
        self.staff_counts: tuple[int, ...] = ()

    @classmethod
    def of(cls, url: str) -> _PgCleaner:
        if url not in cls._cleaners:
            cls._cleaners[url] = cls(url)
        return cls._cleaners[url]

    @classmethod
    def close(cls, url: str) -> None:
        cleaner = cls._cleaners.pop(url, None)
        if cleaner is not None:
            cleaner.engine.dispose()

    def _sequences(self, conn) -> list[tuple[str, int | None]]:
        return [
            (row[0], row[1])
            for row in conn.execute(
                text(
                    "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename), last_value "
                    "FROM pg_sequences"
                )
            )
        ]

    def empty(self, config: DeskConfig | None = None) -> tuple[int, ...] | None:
        """Delete every row and restart the sequences: what TRUNCATE ... RESTART IDENTITY does, but DELETE is
        some twenty times faster on the few rows a test leaves (TRUNCATE makes new files for every table).

        With ``config``, the catalog's groups and the standard cast are put back then, as ``_add_staff``
        made them (the first time, it makes them): the tables' row counts are returned."""
        if config is not None and self.staff is None:
            self._keep_staff(config)
        with self.engine.begin() as conn:
            sequences: list[tuple[str, int | None]] = self.staff_sequences
            if config is None:
                sequences = [(name, None) for name, _ in self._sequences(conn)]
            statements = [f'DELETE FROM "{table.name}"' for table in reversed(self.tables)]
            statements += [
                f"SELECT setval('{name}', 1, false)" if value is None else f"SELECT setval('{name}', {value})"
                for name, value in sequences
            ]
            conn.exec_driver_sql("; ".join(statements))
            if config is not None:
                for table, rows in self.staff or ():
                    conn.execute(table.insert(), rows)
        return None if config is None else self.staff_counts

    def _keep_staff(self, config: DeskConfig) -> None:
        self.empty()
        database = Database.connect(self.engine.url.render_as_string(hide_password=False))
        try:
            database.sync_catalog(config)
            _add_staff(database)
            self.staff_counts = _table_rows(database)
        finally:
            database.dispose()
        kept: list[tuple[Any, list[dict[str, Any]]]] = []
        with self.engine.connect() as conn:
            for table in self.tables:
                columns = [column for column in table.columns if column.computed is None]
                rows = [dict(row) for row in conn.execute(select(*columns)).mappings()]
                if rows:
                    kept.append((table, rows))
            self.staff_sequences = self._sequences(conn)
        self.staff = kept


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated, empty SQLite file that each test copies (migrating once is faster)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database.connect(f"sqlite:///{path}")
    db.upgrade()
    _checkpoint(db)
    db.dispose()
    return path


def _checkpoint(db: Database) -> None:
    """Write the log into the SQLite file: then the file alone is the whole database, to copy."""
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


@pytest.fixture(scope="session")
def staff_template(tmp_path_factory, sqlite_template, config) -> tuple[Path, tuple[int, ...]]:
    """The migrated SQLite file with the catalog's groups and the standard cast in it, made once through
    the services (``_add_staff``) and copied by each test that asks for ``staff``; its tables' row counts."""
    path = tmp_path_factory.mktemp("staff-template") / "staff.db"
    shutil.copy(sqlite_template, path)
    db = Database.connect(f"sqlite:///{path}")
    db.sync_catalog(config)
    _add_staff(db)
    counts = _table_rows(db)
    _checkpoint(db)
    db.dispose()
    return path, counts


# The row counts of the test's database, made with the standard cast in it (see ``staff``).
_staffed = pytest.StashKey[tuple[int, ...]]()


@pytest.fixture
def empty_pg_url(pg_url) -> str:
    """The worker's PostgreSQL database, emptied of what earlier tests left in it."""
    _PgCleaner.of(pg_url).empty()
    return pg_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, config) -> str:
    """The URL of an empty, migrated database: one per test, on each backend. For a test that asks for
    ``staff``, the database is made with the cast in it (see ``staff``)."""
    with_staff = "staff" in request.fixturenames
    if request.param == "sqlite":
        target = tmp_path / "desk.db"
        if with_staff:
            template, request.node.stash[_staffed] = request.getfixturevalue("staff_template")
        else:
            template = request.getfixturevalue("sqlite_template")
        shutil.copy(template, target)
        return f"sqlite:///{target}"
    url = request.getfixturevalue("pg_url")
    counts = _PgCleaner.of(url).empty(config if with_staff else None)
    if counts is not None:
        request.node.stash[_staffed] = counts
    return url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db(request, tmp_path_factory, config) -> Iterator[Database]:
    """An empty, migrated database shared by the tests of one module, on each backend: for tests that only
    read what the module builds in it once (a demo is seconds to build; a test reading it is milliseconds)."""
    if request.param == "sqlite":
        target = tmp_path_factory.mktemp("module-db") / "desk.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        url = f"sqlite:///{target}"
    else:
        url = request.getfixturevalue("pg_url")
        _PgCleaner.of(url).empty()
    database = Database.connect(url)
    database.sync_catalog(config)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    target = tmp_path / "desk.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def db(db_url, config) -> Iterator[Database]:
    database = Database.connect(db_url)
    database.sync_catalog(config)
    yield database
    database.dispose()


def _actors(database: Database) -> dict[str, user_service.Actor]:
    with database.read_session() as session:
        return {login: user_service.resolve_actor(session, login) for login in STAFF}


@pytest.fixture
def staff(request, db) -> dict[str, user_service.Actor]:
    """The standard cast of users, as actors, by login.

    The test's database is made with the cast in it (``db_url``): a copy of ``staff_template`` on SQLite, on
    PostgreSQL the cast's rows written back as ``_add_staff`` made them once. So nothing may write to the
    cast's tables before this fixture: a fixture that writes to them comes after ``staff`` (checked here)."""
    expected = request.node.stash.get(_staffed, None)
    if expected is None:  # asked for at run time, after the database was made
        _add_staff(db)
        return _actors(db)
    # The tables the cast is written to (users, groups, memberships, their audit trail) hold the cast alone;
    # what another fixture wrote to other tables (a knowledge base, say) is nothing the cast depends on.
    written = _table_rows(db)
    tables = Base.metadata.sorted_tables
    changed = [
        table.name for table, n, cast in zip(tables, written, expected, strict=True) if cast and n != cast
    ]
    assert not changed, (
        f"{', '.join(changed)} written to before the staff fixture: ask for staff before the fixtures that "
        "write to these tables"
    )
    return _actors(db)


@pytest.fixture
def staff_sqlite(tmp_path, config, staff_template):
    """The standard cast on an SQLite database only (for console tests)."""
    target = tmp_path / "desk.db"
    shutil.copy(staff_template[0], target)
    database = Database.connect(f"sqlite:///{target}")
    database.sync_catalog(config)
    yield database, _actors(database)
    database.dispose()


DEMO_ANCHOR = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday noon: the end of the demo history
DEMO_LOGIN = "deskuser"  # the demo's console user (a shift lead; times in Europe/Berlin)


@pytest.fixture
def demo_anchor() -> datetime:
    """The instant the demo databases of the screen tests end (their fixed clock)."""
    return DEMO_ANCHOR


def _built_once(folder: Path, name: str, build: Callable[[Path], None]) -> Path:
    """``folder / name``, built by the first worker of the run that asks for it while the others wait."""
    path = folder / name
    with open(folder / f"{name}.lock", "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes
        if not path.exists():
            partial = folder / f"{name}.partial"
            build(partial)
            partial.replace(path)  # there whole, or not at all
    return path


@pytest.fixture(scope="session")
def demo_templates(tmp_path_factory, sqlite_template, config):
    """Demo databases built once per (tickets, seed) for the whole run, shared by its xdist workers (each
    worker's temporary folder is inside the run's); copy before use."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") and fcntl is not None else base
    built: dict[tuple[int, int], Path] = {}

    def build(path: Path, tickets: int, seed: int) -> None:
        shutil.copy(sqlite_template, path)
        db = Database.connect(f"sqlite:///{path}")
        db.sync_catalog(config)
        patch = pytest.MonkeyPatch()
        patch.setattr("itsm_tui.services.users.os_login", lambda: DEMO_LOGIN)
        try:
            build_demo(db, config, tickets=tickets, seed=seed, anchor=DEMO_ANCHOR)
        finally:
            patch.undo()
            db.dispose()

    def template(tickets: int, seed: int) -> Path:
        if (tickets, seed) not in built:
            built[(tickets, seed)] = _built_once(
                shared, f"demo-{tickets}-{seed}.db", lambda path: build(path, tickets, seed)
            )
        return built[(tickets, seed)]

    return template


@pytest.fixture
def demo_copy(demo_templates, tmp_path):
    """A private copy of a demo database: ``demo_copy(tickets, seed)`` gives (Database, the demo user)."""
    opened: list[Database] = []

    def copy(tickets: int, seed: int):
        path = tmp_path / f"demo-{tickets}-{seed}.db"
        shutil.copy(demo_templates(tickets, seed), path)
        db = Database.connect(f"sqlite:///{path}")
        opened.append(db)
        with db.read_session() as session:
            return db, user_service.resolve_actor(session, DEMO_LOGIN)

    yield copy
    for db in opened:
        db.dispose()


@pytest.fixture
def conf_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A full copy of the shipped configuration to break, with any outside override cleared."""
    monkeypatch.delenv("ITSM_CONFIG_DIR", raising=False)
    target = tmp_path / "conf"
    target.mkdir()
    for name in CONFIG_FILES:
        shutil.copy(shipped_config_dir() / name, target / name)
    return target


@pytest.fixture(scope="session")
def desk_python() -> Path:
    """The Python other operating-system users run ``itsm`` with (``os_user_helpers.system_venv``)."""
    from os_user_helpers import system_venv

    return system_venv()
