"""Engine, sessions and migrations for the shared database (SQLite by default, PostgreSQL for many hosts).

One :class:`Database` per process: it owns the engine and the session factories. Callers open a session
per user action (``with db.session() as s:`` commits on success) and pass it to the services.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

    from itsm_tui.models import Base

# The newest migration in itsm_tui/migrations/versions (a test keeps the two in step).
SCHEMA_REVISION = "0015"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class DatabaseError(Exception):
    """The database cannot be used as it is; the message says what to do."""


class ReadCancelled(Exception):
    """A read was stopped by :meth:`ReadCancel.cancel` because its result is no longer wanted."""


class ReadCancel:
    """Lets another thread stop a read session's running statement, e.g. a count made stale by the next
    keystroke, so that it stops using the CPU and the database at once (SQLite: ``interrupt()``; PostgreSQL:
    a cancel request). The session then raises :class:`ReadCancelled`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: DBAPIConnection | None = None  # the driver's while a read session holds it
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        with self._lock:
            connection = self._connection
            if connection is None:
                return
            if hasattr(connection, "interrupt"):  # sqlite3: instant, from any thread
                with contextlib.suppress(Exception):
                    connection.interrupt()
                return
        # PostgreSQL: the cancel request is a round trip to the server; the caller (the UI) does not wait.
        threading.Thread(target=self._cancel_on_server, daemon=True).start()

    def _cancel_on_server(self) -> None:
        with self._lock:  # held while sending, so the connection cannot go back to the pool meanwhile
            connection = self._connection
            if connection is None:
                return
            with contextlib.suppress(Exception):  # the statement may just have finished
                if hasattr(connection, "cancel_safe"):
                    connection.cancel_safe(timeout=2)
                else:
                    connection.cancel()

    def check(self) -> None:
        """Raise :class:`ReadCancelled` if cancelled (between statements)."""
        if self.cancelled:
            raise ReadCancelled()

    @contextlib.contextmanager
    def _holding(self, session: Session) -> Iterator[None]:
        connection = session.connection().connection.dbapi_connection
        with self._lock:
            self._connection = connection
        try:
            self.check()  # a cancel that came before the connection was published found nothing to stop
            yield
        finally:
            # Let go before the connection returns to the pool: a later cancel must not reach its next user.
            with self._lock:
                self._connection = None


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


# libpq settings a PostgreSQL URL may set itself: a server that does not answer is given up after 10 s,
# and a connection the network dropped without a word (no reset) is found dead in about a minute by TCP
# keepalives, instead of a console waiting on it for the kernel's two hours.
PG_KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
_PG_CONNECT = {"connect_timeout": 10, **PG_KEEPALIVES}
# A console's PostgreSQL pool keeps one connection between actions (the queue's poll uses it every second);
# what two workers need at once is opened for the moment and closed when given back, so that an idle
# console holds this one and its LISTEN connection (push.py), not the five SQLAlchemy keeps by default
# (N consoles must fit the server's max_connections: bench/many_consoles.py).
PG_POOL: dict[str, Any] = {"pool_size": 1, "max_overflow": 8}
# An SQLite file's pool keeps two connections between actions (each holds its own page cache, some MB once
# a long queue has been scrolled); what more workers need at once is opened for the moment.
SQLITE_POOL: dict[str, Any] = {"pool_size": 2, "max_overflow": 8}


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys, a busy timeout and explicit transactions."""
    if not is_sqlite(url):
        given = make_url(url).query
        connect_args = {key: value for key, value in _PG_CONNECT.items() if key not in given}
        pooling = {} if "poolclass" in kwargs else PG_POOL
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **{**pooling, **kwargs})
    _ensure_sqlite_directory(url)  # before SQLite makes the file, readable by all
    pooling = SQLITE_POOL if _sqlite_path(url) is not None and "poolclass" not in kwargs else {}
    engine = create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, **{**pooling, **kwargs}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy emit BEGIN itself (the driver's implicit transactions defer locks badly).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    path = _sqlite_path(url)
    if path is not None:
        _follow_file(engine, path)  # after the pragmas above: the WAL file exists once they have run

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        # Writers take the write lock up front so that two writers queue on the busy timeout instead of
        # failing when one upgrades a read snapshot that went stale.
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


_FILE_KEY = "itsm.sqlite_file"  # connection record info: (st_dev, st_ino) of the file it opened


def _file_identity(path: Path) -> tuple[int, int] | None:
    """Which file ``path`` names now (device and inode), or None if it names none."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino)


def _follow_file(engine: Engine, path: Path) -> None:
    """Keep the engine's connections on the file that ``path`` names *now*.

    An SQLite connection stays on the file it opened: once an admin deletes the desk's file and puts a
    backup in its place, every pooled connection goes on with the deleted one (whose writes SQLite refuses,
    "disk I/O error" or "readonly database") while a new process sees the restored desk. So each
    connection remembers the file it opened, and taking one from the pool checks that the path still names
    it (one ``stat``); if not, the pool closes it and opens the path afresh. New connections open the file
    read-write but never create it (``mode=rw``): while the file is missing they fail, and the console says
    the database cannot be reached, instead of starting an empty desk where the restore is to come. Only
    :func:`_ensure_sqlite_directory` (a new desk, or ``db upgrade``) makes the file.

    A file put in place while the old one's ``-wal`` file is still there is not opened at all: SQLite would
    take the old desk's unwritten pages from that log as the new file's (a mixture of the two desks), and
    closing the connection would write them into it. The log is known by its header (SQLite draws new
    random salts for each log it starts), read when the replacement is first seen. The restore must remove
    ``-wal`` and ``-shm`` with the file (README, "Backup and restore"), or be done with
    ``itsm db restore``, which writes into the open desk and needs no reopening.
    """
    from urllib.parse import quote

    from sqlalchemy.exc import DisconnectionError
    from sqlalchemy.exc import OperationalError as WrappedOperationalError

    path = path.absolute()
    wal = path.with_name(path.name + "-wal")
    uri = f"file:{quote(str(path))}?mode=rw"
    # Once a connection's file is seen replaced or gone: the old log's header, if it had one.
    replaced: dict[str, bytes | None] = {}

    @event.listens_for(engine, "do_connect")
    def _open_existing(_dialect, _record, cargs, cparams) -> None:
        old_log = replaced.get("log")
        if old_log is not None and path.exists() and _log_header(wal) == old_log:
            import sqlite3

            detail = (
                f"{path} was replaced but {wal.name} of the file it replaced is still there; remove "
                f"{wal.name} and {path.name}-shm (the restore must remove them with the old file), or "
                "restore with `itsm db restore`"
            )
            raise WrappedOperationalError(None, None, sqlite3.OperationalError(detail))
        cargs[:] = [uri]
        cparams["uri"] = True

    @event.listens_for(engine, "connect")
    def _remember(_dbapi_connection, record) -> None:
        record.info[_FILE_KEY] = _file_identity(path)

    @event.listens_for(engine, "checkout")
    def _still_there(_dbapi_connection, record, _proxy) -> None:
        # An open connection keeps its file's inode in use, so the same (device, inode) is the same file.
        if record.info.get(_FILE_KEY) == _file_identity(path):
            replaced.clear()
            return
        if not replaced:
            replaced["log"] = _log_header(wal)
        raise DisconnectionError(f"{path} is no longer the file this connection opened")


_WAL_HEADER = 32  # bytes: magic, version, page size, checkpoint sequence, salts, checksums


def _log_header(wal: Path) -> bytes | None:
    """The header of an SQLite write-ahead log with frames in it, or None (no log, or an empty one)."""
    try:
        with wal.open("rb") as file:
            header = file.read(_WAL_HEADER)
            more = file.read(1)
    except OSError:
        return None
    return header if len(header) == _WAL_HEADER and more else None


def conflict_insert(session: Session, entity: type[Base]) -> PostgresInsert | SqliteInsert:
    """An INSERT into ``entity``'s table that can say ON CONFLICT DO NOTHING / DO UPDATE: both databases
    spell the clause alike, but each through its own dialect's construct (imported only when used)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgres_insert

        return postgres_insert(entity)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(entity)


@dataclass(frozen=True)
class VersionedWrite:
    """A versioned row (one with a ``version_id_col``) that a flush set out to update: the record a lost
    race's refusal names. ``version`` is the one the transaction read; ``ref`` its reference, if any."""

    model: type
    id: Any
    version: int
    ref: str | None


_WRITES = "itsm.versioned_writes"  # Session.info key: what the session's flushes set out to update

RaceRefusal = Callable[[Session, BaseException, "list[VersionedWrite]"], Exception | None]
"""Given a write session, what the database raised in it and the versioned rows it was writing: the
refusal to raise instead, or None if the error is no lost race."""

_race_refusal: RaceRefusal | None = None


def refuse_lost_races(refusal: RaceRefusal) -> None:
    """Say how :meth:`Database.session` refuses a transaction that lost a race. The services own the
    refusal (``services.versions`` sets it when imported); this layer only knows when to ask."""
    global _race_refusal
    _race_refusal = refusal


def _note_versioned_writes(session: Session, _context: object, _instances: object) -> None:
    """Before a flush of a write session: note the versioned rows it updates, read from what is loaded
    (nothing is fetched), so that if the database refuses the flush, or the transaction later, the refusal
    can say which record. A flush that updates none keeps the previous note."""
    writes = []
    for obj in session.dirty:
        state = inspect(obj)
        version_column = state.mapper.version_id_col
        if version_column is None or state.identity is None:
            continue
        loaded = state.dict
        version = loaded.get(state.mapper.get_property_by_column(version_column).key)
        if isinstance(version, int):
            writes.append(VersionedWrite(type(obj), state.identity[0], version, loaded.get("ref")))
    if writes:
        session.info[_WRITES] = writes


def versioned_writes(session: Session) -> list[VersionedWrite]:
    """The versioned rows that the session's latest flush updating any set out to update."""
    return list(session.info.get(_WRITES, ()))


_SQLITE_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine -> {table: exists}


def sqlite_has_table(session: Session, name: str) -> bool:
    """Whether the session's SQLite database has the table ``name`` (an FTS5 table a migration makes only
    where SQLite was built with the trigram tokenizer), asked once per engine."""
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    known = _SQLITE_TABLES.setdefault(engine, {})
    if name not in known:
        found = session.execute(text("SELECT 1 FROM sqlite_master WHERE name = :name"), {"name": name})
        known[name] = found.first() is not None
    return known[name]


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run through a session changed: ``Session.execute`` is typed as
    giving a plain result, but for these statements it is a cursor result, which counts them."""
    return cast("CursorResult[Any]", result).rowcount or 0


@dataclass
class Database:
    """The process's handle on the shared database."""

    url: str
    engine: Engine
    _writer: sessionmaker[Session]
    _reader: sessionmaker[Session]
    # When a session of this handle last ended well (time.monotonic(); 0.0: never): a console asks it before
    # taking a worker's success for the database's being back (a worker that read no table proves nothing).
    last_success: float = 0.0

    @classmethod
    def connect(cls, url: str) -> Database:
        engine = make_engine(url)
        writer_bind = engine.execution_options(sqlite_begin="IMMEDIATE") if is_sqlite(url) else engine
        writer = sessionmaker(writer_bind, expire_on_commit=False)
        event.listen(writer, "before_flush", _note_versioned_writes)  # what a lost race's refusal names
        return cls(url, engine, writer, sessionmaker(engine, expire_on_commit=False))

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A read-write session for one action: committed when the block ends, rolled back on error.

        A transaction that lost a race to another one, wherever in the block or at the commit the database
        refused it (a row gone to a newer version, a unique row already there, a PostgreSQL serialization
        failure or deadlock), is refused as :func:`refuse_lost_races` says (the services' one message for
        it, ``services.versions.lost_race``): the person is told who won and to try again, never shown a
        traceback. Anything else goes on as it was raised.
        """
        with self._writer() as session:
            try:
                with session.begin():
                    yield session
                self.last_success = time.monotonic()
            except (StaleDataError, DBAPIError) as error:
                refuse = _race_refusal
                refusal = refuse(session, error, versioned_writes(session)) if refuse else None
                if refusal is None:
                    raise
                raise refusal from None

    @contextlib.contextmanager
    def read_session(self, cancel: ReadCancel | None = None) -> Iterator[Session]:
        """A read-only session that takes no write lock; ``cancel`` lets another thread stop it."""
        with self._reader() as session:
            try:
                if cancel is None:
                    yield session
                else:
                    cancel.check()
                    with cancel._holding(session):
                        try:
                            yield session
                        except Exception as exc:
                            if cancel.cancelled:
                                raise ReadCancelled() from exc
                            raise
            finally:
                session.rollback()
            self.last_success = time.monotonic()

    def dispose(self) -> None:
        self.engine.dispose()

    # ----------------------------------------------------------------- schema

    def current_revision(self) -> str | None:
        """The schema revision stored in the database, or None if it has no schema yet."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def upgrade(self) -> None:
        """Run every pending migration."""
        from alembic import command

        if is_sqlite(self.url):
            _ensure_sqlite_directory(self.url)
        command.upgrade(alembic_config(self.url), "head")

    def check_schema(self, auto_create_sqlite: bool = True) -> None:
        """Refuse a database whose schema is missing or older than this version of the program.

        A brand-new SQLite file (no tables at all) is created and migrated on the spot.
        """
        try:
            revision = self.current_revision()
        except OperationalError as exc:
            raise DatabaseError(f"cannot open the database {safe_url(self.url)}: {exc.orig}") from None
        if revision == SCHEMA_REVISION:
            return
        if revision is None:
            if auto_create_sqlite and is_sqlite(self.url) and not self._has_tables():
                self.upgrade()
                return
            raise DatabaseError(
                f"the database {safe_url(self.url)} has no itsm schema yet; create it with: "
                f"itsm db upgrade --db '{safe_url(self.url)}'"
            )
        if revision > SCHEMA_REVISION:
            raise DatabaseError(
                f"the database {safe_url(self.url)} is at schema revision {revision}, newer than this "
                f"program ({SCHEMA_REVISION}); install the newer itsm-tui"
            )
        raise DatabaseError(
            f"the database {safe_url(self.url)} is at schema revision {revision} but this program needs "
            f"{SCHEMA_REVISION}; upgrade it with: itsm db upgrade --db '{safe_url(self.url)}'"
        )

    def _has_tables(self) -> bool:
        with self.engine.connect() as conn:
            return bool(inspect(conn).get_table_names())

    def sync_catalog(self, config) -> None:
        """Make the groups table hold every group of catalog.toml (added or renamed, never deleted)."""
        from itsm_tui.models import Group

        with self.read_session() as session:  # usually nothing to do: no write lock to wait for
            known = {g.code: (g.name, g.level) for g in session.scalars(select(Group))}
        if all(known.get(code) == (g.name, g.level) for code, g in config.groups.items()):
            return
        with self.session() as session:
            existing = {g.code: g for g in session.scalars(select(Group))}
            for code, group in config.groups.items():
                row = existing.get(code)
                if row is None:
                    session.add(Group(code=code, name=group.name, level=group.level))
                elif (row.name, row.level) != (group.name, group.level):
                    row.name, row.level = group.name, group.level


def _ensure_sqlite_directory(url: str) -> None:
    """Create an SQLite database's folder and file, private to their owner, where they do not exist yet.

    A new folder is made 0700 and a new (empty) file 0600 whatever the umask, before SQLite opens the file:
    SQLite would make it 0644, readable by every local user, and it gives its ``-wal`` and ``-shm`` files
    the mode of the database file, so they are private too. An existing folder or file keeps its mode: a
    desk shared by a group sets its modes on purpose (README, "Shared host"). A folder or file that cannot
    be made is left for SQLite to report when it opens the database.
    """
    parsed = make_url(url)
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:") or "uri" in parsed.query:
        return
    path = Path(database)
    missing: list[Path] = []
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    try:
        for folder in reversed(missing):
            try:
                folder.mkdir(mode=0o700)
            except FileExistsError:  # made meanwhile by another process: its mode is its maker's
                continue
            os.chmod(folder, 0o700)  # the umask may have taken bits from mkdir's mode, never added any
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:  # exists already (kept as it is), or cannot be made: SQLite says so when it opens it
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


# The databases the desk runs on, as SQLAlchemy names them once ``config.resolve_database_url`` has spelt
# them (``postgresql://`` becomes ``postgresql+psycopg://``).
SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file (an empty file is a database SQLite has yet to write)."""


def check_url(url: str, source: str = "--db") -> None:
    """Refuse, in one line naming ``source``, a URL no supported database answers at, and an SQLite path
    that is a folder or a file of another kind: else the driver's import error or "file is not a database"
    would come out of the first query, far from the mistake that caused it."""
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(
            f"{source}: {url!r} is not a database URL; use an SQLite path or postgresql://USER@HOST/DB"
        ) from None
    if parsed.drivername not in SUPPORTED_DRIVERS:
        scheme = url.split("://", 1)[0]
        raise DatabaseError(
            f"{source}: {scheme}:// is not supported; use an SQLite path or postgresql://USER@HOST/DB"
        )
    path = _sqlite_path(url)
    if path is None or not path.exists():
        return
    if path.is_dir():
        raise DatabaseError(f"{source}: {path} is a folder; name the desk's database file in it")
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError:  # unreadable: SQLite says why when it opens it
        return
    if header and header != SQLITE_HEADER:
        raise DatabaseError(
            f"{source}: {path} is not an SQLite database; name the desk's database file "
            f"(a new desk: itsm db upgrade --db NEW_FILE)"
        )


def require_existing_sqlite(url: str, source: str = "--db") -> None:
    """Refuse an SQLite file that does not exist: a misspelt path must not become a new, empty desk in
    folders made on the way. Only the commands that create a desk (``db upgrade``, ``demo``) and the
    default location, on first use, make one."""
    path = _sqlite_path(url)
    if path is not None and not path.exists():
        raise DatabaseError(
            f"{source}: {path} does not exist; check the path, or create a desk there with "
            f"`itsm db upgrade --db '{path}'` (or `itsm demo --db '{path}'` for demonstration data)"
        )


def _sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None: not SQLite, in memory, or a ``file:`` URI)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:") or "uri" in parsed.query:
        return None
    return Path(database)


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def open_database(url: str, config=None, *, create: bool = True, source: str = "the database") -> Database:
    """Connect, check (or create) the schema, and synchronise the catalog's groups.

    ``create``: a missing SQLite file (and its folders) is made and migrated; without it a missing file
    is refused (:func:`require_existing_sqlite`) and an empty one is told to be upgraded. ``source``
    names where the URL was given (``--db``), in those refusals.
    """
    check_url(url, source)
    if not create:
        require_existing_sqlite(url, source)
        path = _sqlite_path(url)
        if path is not None and path.is_file() and path.stat().st_size == 0:  # before SQLite writes to it
            raise DatabaseError(
                f"the database {safe_url(url)} has no itsm schema yet; create it with: "
                f"itsm db upgrade --db '{safe_url(url)}'"
            )
    elif is_sqlite(url):
        _ensure_sqlite_directory(url)
    db = Database.connect(url)
    try:
        db.check_schema(auto_create_sqlite=create)
        if config is not None:
            db.sync_catalog(config)
    except Exception:
        db.dispose()
        raise
    return db
