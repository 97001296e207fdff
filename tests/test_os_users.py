"""Real operating-system users on one shared desk: the identity is the process's account, whatever the
environment claims, and an agent who claims to be the admin is refused all the same.

Three OS users are made for the test (an admin, an agent, and one who is no desk user), all in a group
that owns the desk's folder, as the README's shared-host recipe sets it up (folder 2770, database file
0660). They run ``itsm`` from a virtual environment of the system's Python (the test's own is private to
root), with this checkout's code first on its path. As the agent, with ``LOGNAME``, ``USER`` and ``LNAME``
naming the admin, every privileged command is refused in one line with exit code 2, the users and the
audit trail stay as they were, and each refusal is recorded under the agent's real login.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from os_user_helpers import SYSTEM_PYTHON, copy_source
from sqlalchemy import text

from itsm_tui.db import Database

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("useradd", "userdel", "groupadd", "groupdel", "runuser")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="making OS users needs root"),
    pytest.mark.skipif(any(shutil.which(tool) is None for tool in TOOLS), reason=f"needs {', '.join(TOOLS)}"),
    pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason=f"needs {SYSTEM_PYTHON} for the other users"),
]


@dataclass
class Host:
    """The shared desk host of the test: its users, their group, the desk's database."""

    base: Path
    python: Path
    source: Path
    group: str
    admin: str
    agent: str
    outsider: str
    database: Path

    def run(
        self, login: str, *argv: str, claim: str | None = None, extra: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        """``itsm ARGV`` as the OS user ``login``; ``claim``: the login the environment names instead;
        ``extra``: more of the environment."""
        home = self.base / "home" / login
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(self.source),
            "PYTHONDONTWRITEBYTECODE": "1",
            "LOGNAME": claim or login,
            "USER": claim or login,
            "LNAME": claim or login,
            **(extra or {}),
        }
        command = ["runuser", "-u", login, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items())]
        command += [str(self.python), "-m", "itsm_tui.cli", *argv, "--db", str(self.database)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout, done.stderr


@pytest.fixture
def host(desk_python: Path) -> Iterator[Host]:
    suffix = secrets.token_hex(3)
    group, admin, agent, outsider = (f"itsm{role}{suffix}" for role in ("desk", "adm", "agt", "out"))
    base = Path(tempfile.mkdtemp(prefix="itsm-os-users-"))
    os.chmod(base, 0o755)
    made: list[str] = []
    try:
        subprocess.run(["groupadd", group], check=True)
        for login in (admin, agent, outsider):
            subprocess.run(["useradd", "-M", "-N", "-g", group, "-s", "/usr/sbin/nologin", login], check=True)
            made.append(login)
            home = base / "home" / login
            home.mkdir(parents=True)
            os.chmod(base / "home", 0o755)
            shutil.chown(home, login, group)
            os.chmod(home, 0o700)
        # The shared-host recipe: the group's folder 2770, the database file 0660 made before first use.
        desk = base / "desk"
        desk.mkdir()
        shutil.chown(desk, "root", group)
        os.chmod(desk, 0o2770)
        database = desk / "desk.db"
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o660))
        shutil.chown(database, "root", group)
        os.chmod(database, 0o660)
        source = copy_source(base / "src")
        yield Host(base, desk_python, source, group, admin, agent, outsider, database)
    finally:
        for login in made:
            subprocess.run(["userdel", login], check=False)
        subprocess.run(["groupdel", group], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _state(database: Path) -> dict[str, list[tuple]]:
    """The users, their roles and the whole audit trail, as root reads them."""
    db = Database.connect(f"sqlite:///{database}")
    try:
        with db.engine.connect() as conn:
            return {
                "users": [tuple(r) for r in conn.execute(text("SELECT id, login, name, active FROM users"))],
                "roles": [
                    tuple(r) for r in conn.execute(text("SELECT * FROM role_memberships ORDER BY 1, 2"))
                ],
                "audit": [tuple(r) for r in conn.execute(text("SELECT * FROM audit_events ORDER BY id"))],
            }
    finally:
        db.dispose()


def _refusals(database: Path) -> list[tuple]:
    db = Database.connect(f"sqlite:///{database}")
    try:
        with db.engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(text("SELECT login, user_id, action FROM access_refusals ORDER BY id"))
            ]
    finally:
        db.dispose()


def test_an_agent_claiming_to_be_the_admin_is_refused_and_recorded(host: Host) -> None:
    admin, agent = host.admin, host.agent
    # The admin sets the desk up: the schema of a database without users, then the first user (admin).
    for argv, said in (
        (("db", "upgrade"), "upgraded from empty"),
        (
            ("user", "add", admin, "--role", "shift_lead", "--group", "SD-L1"),
            f"added {admin} (admin, shift_lead)",
        ),
        (("user", "add", agent, "--role", "agent", "--group", "SD-L1"), f"added {agent} (agent)"),
    ):
        code, out, err = host.run(admin, *argv)
        assert code == 0, (argv, err)
        assert said in out
    before = _state(host.database)
    agent_id = next(uid for uid, login, *_ in before["users"] if login == agent)
    attempts = [
        (("user", "add", "evil", "--role", "admin"), "You may not add users and change roles"),
        (("demo", "--force", "--tickets", "50"), "You may not replace the records of this service desk"),
        (("user", "role", agent, "--add", "admin"), "You may not add users and change roles"),
        (("db", "upgrade"), "You may not upgrade the schema of a service desk that has users"),
    ]
    for argv, refusal in attempts:
        code, out, err = host.run(agent, *argv, claim=admin)
        assert (code, out) == (2, ""), (argv, err)
        assert err.startswith(f"itsm: error: {refusal}") and err.count("\n") == 1, err
        assert f"(you have agent). Admins: {admin}." in err
        assert _state(host.database) == before, argv
    recorded = _refusals(host.database)
    assert recorded == [
        (agent, agent_id, "user add"),
        (agent, agent_id, "demo --force"),
        (agent, agent_id, "user role"),
        (agent, agent_id, "db upgrade"),
    ]

    # One who is in the group (so may open the file) but no user of the desk, claiming to be the admin.
    outsider = host.outsider
    code, out, err = host.run(outsider, "user", "add", "evil", "--role", "admin", claim=admin)
    assert (code, out) == (2, "")
    assert err == (
        f"itsm: error: You may not add users and change roles: the login {outsider!r} is not an active user "
        f"of this service desk (it needs the role admin); ask an admin to add you. Admins: {admin}.\n"
    )
    code, out, err = host.run(outsider, "ticket", "list", claim=admin)
    assert (code, out) == (2, "")
    assert f"The login {outsider!r} is not a user of this service desk" in err and err.count("\n") == 1
    assert _state(host.database) == before
    assert _refusals(host.database)[len(recorded) :] == [
        (outsider, None, "user add"),
        (outsider, None, "ticket list"),
    ]

    # The file kept the group's mode the recipe gave it; its journals, where they are, follow it.
    for path in (host.database, *(host.database.with_name(host.database.name + s) for s in ("-wal", "-shm"))):
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o660, path


def test_a_user_cannot_bring_rules_of_their_own(host: Host) -> None:
    """The desk's rules are the desk's: an agent pointing ITSM_CONFIG_DIR at a copy they own (one that lets
    a single CAB member approve a high-risk change) is refused before anything is read; the same files put
    in place by root are read."""
    admin, agent = host.admin, host.agent
    for argv in (
        ("db", "upgrade"),
        ("user", "add", admin, "--role", "change_manager", "--group", "SD-L1"),
        ("user", "add", agent, "--role", "agent", "--group", "SD-L1"),
    ):
        code, _out, err = host.run(admin, *argv)
        assert code == 0, (argv, err)
    rules = (
        (host.source / "data" / "changes.toml")
        .read_text()
        .replace("high = { rule = 'all' }", "high = { rule = 'quorum', quorum = 1 }")
    )
    own = host.base / "home" / agent / "rules"
    own.mkdir()
    (own / "changes.toml").write_text(rules)
    shutil.chown(own, agent)
    shutil.chown(own / "changes.toml", agent)
    code, out, err = host.run(agent, "change", "list", extra={"ITSM_CONFIG_DIR": str(own)})
    assert (code, out) == (2, "")
    assert f"ITSM_CONFIG_DIR: belongs to {agent}: the desk's rules are read only from files of root" in err
    assert err.count("\n") == 1

    # A root-owned folder holding an agent's file: the file is refused too.
    placed = host.base / "rules"
    placed.mkdir(mode=0o755)
    shutil.copy(own / "changes.toml", placed / "changes.toml")
    shutil.chown(placed / "changes.toml", agent)
    code, out, err = host.run(agent, "change", "list", extra={"ITSM_CONFIG_DIR": str(placed)})
    assert code == 2 and f"changes.toml: key ITSM_CONFIG_DIR: belongs to {agent}" in err, err

    # Put in place by root (mode 0644), the same rules are the desk's.
    shutil.chown(placed / "changes.toml", "root")
    os.chmod(placed / "changes.toml", 0o644)
    code, out, err = host.run(agent, "change", "list", extra={"ITSM_CONFIG_DIR": str(placed)})
    assert (code, err) == (0, ""), err
