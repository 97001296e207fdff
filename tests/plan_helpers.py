"""Query plans of what a piece of code runs (SQLite), for the tests that assert them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import Session

from itsm_tui.db import Database


@contextmanager
def captured_statements(db: Database, matching: str) -> Iterator[list[tuple[str, object]]]:
    """The statements containing ``matching`` (and their parameters) executed on ``db`` inside the block;
    EXPLAINs of them left out."""
    captured: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if matching in statement and not statement.startswith("EXPLAIN"):
            captured.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        yield captured
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)


def sqlite_plans(db: Database, run: Callable[[Session], object], matching: str) -> list[str]:
    """``EXPLAIN QUERY PLAN`` of each statement containing ``matching`` that ``run(session)`` executes, its
    lines joined by " / "."""
    with db.read_session() as session:
        with captured_statements(db, matching) as captured:
            run(session)
        return [
            " / ".join(
                str(r[-1]) for r in session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
            )
            for sql, params in captured
        ]
