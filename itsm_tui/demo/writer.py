"""Bulk inserts through the driver, and instants in the form the driver stores.

The demo bypasses the ORM: rows are plain tuples inserted with the driver's executemany (on PostgreSQL with
psycopg 3, COPY) in one transaction, so a million tickets take minutes, not hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast, overload

from sqlalchemy import Connection

if TYPE_CHECKING:
    import psycopg

EPOCH = datetime(1970, 1, 1)

Row = Sequence[object]
"""One row's values in the order of the columns it is inserted with."""

AuditFields = tuple[str, int, int | None, datetime | str, str, str | None, str | None, str | None]
"""One audit event as :func:`itsm_tui.services.audit.table_rows` takes it: the fields of ``record``."""


class Instants:
    """Epoch seconds as the driver stores instants: naive UTC, and on SQLite SQLAlchemy's text format.

    Has no connection, so the ticket factory makes its own in a worker process.
    """

    def __init__(self, sqlite: bool) -> None:
        self.sqlite = sqlite
        # SQLite stores instants as SQLAlchemy's text form; building it from cached day and time-of-day
        # strings is many times faster than formatting a datetime per value.
        self._days: dict[int, str] = {}
        self._iso_days: dict[int, str] = {}
        self._times = [
            f"{h:02d}:{m:02d}:{s:02d}.000000" for h in range(24) for m in range(60) for s in range(60)
        ]

    @overload
    def instant(self, seconds: float) -> datetime | str: ...
    @overload
    def instant(self, seconds: float | None) -> datetime | str | None: ...

    def instant(self, seconds: float | None) -> datetime | str | None:
        """An epoch instant in the form the driver stores (naive UTC, SQLAlchemy's SQLite text format)."""
        if seconds is None:
            return None
        whole = int(seconds)
        if not self.sqlite:
            return EPOCH + timedelta(seconds=whole)
        day, rest = divmod(whole, 86400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d ")
        return prefix + self._times[rest]

    def iso(self, seconds: int) -> str:
        """An epoch instant as the audit trail writes an instant's value (``datetime.isoformat`` in UTC)."""
        day, rest = divmod(int(seconds), 86400)
        prefix = self._iso_days.get(day)
        if prefix is None:
            prefix = self._iso_days[day] = (EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
        return prefix + self._times[rest][:8] + "+00:00"


class Writer(Instants):
    """Bulk inserts through the driver, in the transaction of one connection."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn.dialect.name == "sqlite")
        self.conn = conn
        self.mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        # COPY where the driver has it (psycopg 3); any other driver inserts with executemany
        self.copies = conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"
        self.counts: dict[str, int] = {}

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Row]) -> None:
        batch = list(rows)
        if not batch:
            return
        if self.copies:
            self._copy(table, columns, batch)
        else:
            marks = ", ".join([self.mark] * len(columns))
            self.conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", batch)
        self.counts[table] = self.counts.get(table, 0) + len(batch)

    def _copy(self, table: str, columns: Sequence[str], batch: list[Row]) -> None:
        """PostgreSQL: the rows in one COPY (psycopg 3), some ten times faster than an INSERT per row; in the
        connection's transaction, each value as the server reads it from text (an instant as naive UTC)."""
        raw = self.conn.connection.dbapi_connection
        if raw is None:  # only once the connection was invalidated
            raise RuntimeError("the database connection was lost during the demo build")
        cursor = cast("psycopg.Cursor", raw.cursor())
        try:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
        finally:
            cursor.close()
