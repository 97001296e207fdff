"""Bulk inserts through the driver, and instants in the form the driver stores.

The demo bypasses the ORM: rows are plain tuples inserted with the driver's executemany (on PostgreSQL with
psycopg 3, COPY) in one transaction, so a million tickets take minutes, not hours.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast, overload

from sqlalchemy import Connection

from itsm_tui.services.audit import copy_field

if TYPE_CHECKING:
    import psycopg

EPOCH = datetime(1970, 1, 1)
NULL, BACKSLASH = "\\N", "\\"

Row = Sequence[object]
"""One row's values in the order of the columns it is inserted with."""

AuditFields = tuple[str, int, int | None, datetime | str, str, str | None, str | None, str | None]
"""One audit event as :func:`itsm_tui.services.audit.table_rows` takes it: the fields of ``record``."""


class Instants:
    """Epoch seconds as the bulk load stores instants: naive UTC, as datetimes or as SQLAlchemy's text form.

    The text form (``YYYY-MM-DD HH:MM:SS.ffffff``) is what SQLite stores, and PostgreSQL reads it as a
    timestamp too, so the ticket factory makes every instant as text whichever the database. Has no
    connection, so the ticket factory makes its own in a worker process.
    """

    def __init__(self, text: bool) -> None:
        self.text = text
        # Building the text form from cached day and time-of-day strings is many times faster than
        # formatting a datetime per value.
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
        """An epoch instant in the form stored (naive UTC: a datetime, or SQLAlchemy's SQLite text format)."""
        if seconds is None:
            return None
        whole = int(seconds)
        if not self.text:
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
        self.sqlite = conn.dialect.name == "sqlite"
        super().__init__(self.sqlite)
        self.conn = conn
        self.mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        # COPY where the driver has it (psycopg 3); any other driver inserts with executemany
        self.copies = conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"
        self.freeze = False  # COPY ... FREEZE: every table was truncated in this transaction (store.wipe)
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

    def load(self, table: str, columns: Sequence[str], data: str | Sequence[Row], count: int) -> None:
        """Insert rows made elsewhere: a list of rows, or (where :attr:`copies`) the rows as COPY text
        (:func:`copy_text`), which is streamed to the server as it stands."""
        if isinstance(data, str):
            if count:
                with self._cursor() as cursor, cursor.copy(self._copy_sql(table, columns)) as copy:
                    copy.write(data)
                self.counts[table] = self.counts.get(table, 0) + count
        else:
            self.insert(table, columns, data)

    def _copy_sql(self, table: str, columns: Sequence[str]) -> str:
        return f"COPY {table} ({', '.join(columns)}) FROM STDIN" + (" WITH (FREEZE)" if self.freeze else "")

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor]:
        raw = self.conn.connection.dbapi_connection
        if raw is None:  # only once the connection was invalidated
            raise RuntimeError("the database connection was lost during the demo build")
        cursor = cast("psycopg.Cursor", raw.cursor())
        try:
            yield cursor
        finally:
            cursor.close()

    def _copy(self, table: str, columns: Sequence[str], batch: list[Row]) -> None:
        """PostgreSQL: the rows in one COPY (psycopg 3), some ten times faster than an INSERT per row; in the
        connection's transaction, each value as the server reads it from text (an instant as naive UTC)."""
        with self._cursor() as cursor, cursor.copy(self._copy_sql(table, columns)) as copy:
            for row in batch:
                copy.write_row(row)


def copy_text(rows: Iterable[Row]) -> str:
    """Rows as PostgreSQL's COPY text format reads them: values tab-separated, a line each, ``\\N`` for null,
    text escaped (:func:`~itsm_tui.services.audit.copy_field`), numbers in decimal, booleans as ``True`` and
    ``False`` (which the server reads as booleans). For rows of text, numbers, booleans and nulls only."""
    lines = [
        "\t".join(
            [
                NULL
                if v is None
                else (v if v.isprintable() and BACKSLASH not in v else copy_field(v))
                if type(v) is str
                else str(v)
                for v in row
            ]
        )
        for row in rows
    ]
    return "\n".join(lines) + "\n" if lines else ""
