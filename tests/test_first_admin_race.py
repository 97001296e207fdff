"""Eight people add themselves to an empty desk at the same instant: exactly one becomes its first user and
admin, every other one is refused in the same one line (no traceback), on SQLite and on PostgreSQL.

Eight real processes, each adding its own login with ``itsm user add`` (the program's ``main``), are
released together through a start file once loaded, so that their transactions overlap; round after
round on a new empty database (the same processes: loading Python eight times a round would be most of
the test's time). Who wins is up to the race; what the others are told is worked out here from who won.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import time
from pathlib import Path

import pytest
from forked import PIPE, Forked
from sqlalchemy import text

from itsm_tui.db import Database
from itsm_tui.models import Base

PROCESSES = 8
ROUNDS = 3

# One racer: loads the program once, then for each round waits for that round's start file and runs
# `itsm user add LOGIN ...` on that round's database, leaving (exit code, stdout, stderr) in a result file.
# Eight such processes race every round; a traceback would be left as the result too.
RACER = """
import contextlib, io, json, os, sys, time, traceback
from itsm_tui.cli import main
folder, login, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
open(os.path.join(folder, "ready-" + login), "w").close()
for round_no in range(rounds):
    start = os.path.join(folder, f"start-{round_no}")
    while not os.path.exists(start):
        time.sleep(0.001)
    with open(start) as handle:
        url = handle.read()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["user", "add", login, "--role", "agent", "--group", "SD-L1", "--db", url])
        except BaseException:
            code, _ = None, traceback.print_exc()
    result = os.path.join(folder, f"result-{round_no}-{login}")
    with open(result + ".part", "w") as handle:
        json.dump([code, out.getvalue(), err.getvalue()], handle)
    os.replace(result + ".part", result)
"""


def _wait_for(paths: list[Path], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"no sign of {[p.name for p in paths if not p.exists()]}"
        time.sleep(0.01)


def _empty(url: str, config) -> None:
    """Every row gone but the support groups (synchronised from the catalog first, as a desk has them)."""
    db = Database.connect(url)
    try:
        with db.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                if table.name != "groups":
                    conn.execute(table.delete())
        db.sync_catalog(config)
    finally:
        db.dispose()


def _outcome(url: str) -> tuple[list[tuple[str, str]], list[tuple[str, str, str | None]]]:
    db = Database.connect(url)
    try:
        with db.engine.connect() as conn:
            roles = conn.execute(
                text(
                    "SELECT u.login, r.role FROM users u JOIN role_memberships r ON r.user_id = u.id "
                    "ORDER BY u.login, r.role"
                )
            ).all()
            refused = conn.execute(text("SELECT login, action, permission FROM access_refusals")).all()
    finally:
        db.dispose()
    return [tuple(r) for r in roles], [tuple(r) for r in refused]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_exactly_one_first_admin_among_concurrent_first_users(
    backend, request, tmp_path, config, sqlite_template
) -> None:
    me = pwd.getpwuid(os.getuid()).pw_name  # who the racers really are: this process's account
    logins = [f"racer{i}" for i in range(PROCESSES)]
    env = {k: v for k, v in os.environ.items() if k not in ("ITSM_DB_URL", "LOGNAME", "USER", "LNAME")}
    racers = [Forked(RACER, str(tmp_path), login, str(ROUNDS), stderr=PIPE, env=env) for login in logins]
    try:
        _wait_for([tmp_path / f"ready-{login}" for login in logins])
        for round_no in range(ROUNDS):
            if backend == "sqlite":
                path = tmp_path / f"race-{round_no}.db"
                shutil.copy(sqlite_template, path)
                url = f"sqlite:///{path}"
            else:
                url = request.getfixturevalue("pg_url")
            _empty(url, config)
            ready = tmp_path / f"start-{round_no}.part"
            ready.write_text(url)
            ready.replace(tmp_path / f"start-{round_no}")  # whole when it appears: a racer reads it at once
            files = [tmp_path / f"result-{round_no}-{login}" for login in logins]
            _wait_for(files)
            results = [tuple(json.loads(f.read_text())) for f in files]
            won = [(out, err) for code, out, err in results if code == 0]
            assert len(won) == 1, (round_no, results)
            winner = won[0][0].split()[1]
            assert won[0] == (f"added {winner} (admin, agent)\n", "")
            refusal = (
                "itsm: error: You may not add users and change roles: the login "
                f"{me!r} is not an active user of this service desk (it needs the role admin); "
                f"ask an admin to add you. Admins: {winner}.\n"
            )
            lost = sorted(tuple(r) for r in results if r[0] != 0)
            assert lost == [(2, "", refusal)] * (PROCESSES - 1), (round_no, results)
            roles, refused = _outcome(url)
            assert roles == [(winner, "admin"), (winner, "agent")], round_no
            assert refused == [(me, "user add", "user.admin")] * (PROCESSES - 1), round_no
    finally:
        for proc in racers:
            proc.kill()
            proc.communicate()
