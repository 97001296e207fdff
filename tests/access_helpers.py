"""Helpers of the access tests: run ``itsm`` as a login, photograph a database, read the refusals."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text

from itsm_tui.cli import main
from itsm_tui.db import Database
from itsm_tui.models import Base

# The standard cast (conftest.STAFF), restated: login -> (roles, groups); admin1 comes first and is admin.
CAST = {
    "admin1": (["admin"], []),
    "lead": (["shift_lead"], ["SD-L1"]),
    "agent1": (["agent"], ["SD-L1"]),
    "agent2": (["agent"], ["SD-L1"]),
    "net1": (["support_l2"], ["NET-L2"]),
    "eng1": (["support_l3"], ["ENG-L3"]),
    "analyst1": (["analyst"], []),
    "cab1": (["cab_member"], []),
    "chm": (["change_manager"], []),
    "procman": (["process_manager"], []),
    "prm": (["problem_manager"], []),
}


def run_as(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], login: str, *argv: str
) -> tuple[int, str, str]:
    """``itsm ARGV`` in this process as the OS login ``login``: (exit code, stdout, stderr)."""
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: login)
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in key order: what a refused command must leave as it was.

    Left out is what a refused attempt writes on purpose: the record of the refusal (``access_refusals``)
    and the time the person was last seen (``users.last_seen_at``).
    """
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name == "access_refusals":
                continue
            columns = [c for c in table.columns if (table.name, c.name) != ("users", "last_seen_at")]
            order = list(table.primary_key.columns) or columns
            rows[table.name] = [tuple(r) for r in conn.execute(select(*columns).order_by(*order))]
        rows["alembic_version"] = [tuple(r) for r in conn.execute(text("SELECT * FROM alembic_version"))]
    return rows


def refusals(db: Database) -> list[tuple[Any, ...]]:
    """The recorded refusals, oldest first: (login, user_id, action, permission, detail)."""
    with db.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT login, user_id, action, permission, detail FROM access_refusals ORDER BY id")
            )
        ]


def user_id(db: Database, login: str) -> int | None:
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT id FROM users WHERE login = :l"), {"l": login}).scalar()
