"""Bad input on the command line gets one plain line on stderr and exit 2, never a traceback, and writes
nothing; a reader that goes away (``itsm ... | head``) ends a command quietly, after its write is saved.

Every command runs as a real process (``itsm_tui.cli.main`` with the desk user's login patched in, forked
from the test's own: see forked.py), so what is checked is what a person at a shell sees: the exit code,
stderr, and the database afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from forked import PIPE, Forked
from sqlalchemy import create_engine, text

from itsm_tui.cli import main

RUN_AS = (
    "import sys; import itsm_tui.services.users as u; login = sys.argv.pop(1); u.os_login = lambda: login; "
    "from itsm_tui.cli import main; sys.exit(main(sys.argv[1:]))"
)


class Ran(NamedTuple):
    code: int
    out: str
    err: str


def run(login: str, *argv: str, closed_stdout: bool = False, env: dict[str, str] | None = None) -> Ran:
    """``itsm ARGV`` in a new process acting as ``login`` (forked: see forked.py); ``closed_stdout``: its
    stdout a pipe nobody reads (the read end closed before it starts, as when ``head`` has already gone)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("ITSM_DB_URL", "ITSM_CONFIG_DIR")}
    environment |= env or {}
    if not closed_stdout:
        process = Forked(RUN_AS, login, *argv, stdout=PIPE, stderr=PIPE, env=environment)
        out, err = process.communicate(timeout=120)
        assert process.returncode is not None and out is not None and err is not None
        return Ran(process.returncode, out, err)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = Forked(RUN_AS, login, *argv, stdout=write_end, stderr=PIPE, env=environment)
    finally:
        os.close(write_end)
    _, err = process.communicate(timeout=120)
    assert process.returncode is not None and err is not None
    return Ran(process.returncode, "", err)


def assert_refused(ran: Ran, *words: str) -> None:
    """Exit 2, one line on stderr saying what to do (each of ``words`` in it), no traceback."""
    assert ran.code == 2, ran
    assert "Traceback" not in ran.err, ran.err
    lines = ran.err.splitlines()
    assert len(lines) == 1, ran.err
    assert lines[0].startswith("itsm: error: "), ran.err
    for word in words:
        assert word in lines[0], (word, lines[0])


def assert_quiet(ran: Ran) -> None:
    """A command whose reader went away: exit 0, nothing at all on stderr."""
    assert (ran.code, ran.err) == (0, ""), ran


def count(url: str, sql: str, **params: object) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql), params).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture
def desk(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    """An empty desk (SQLite and PostgreSQL) with a shift lead (its first user, so its admin) and an agent
    and a second agent of SD-L1."""
    monkeypatch.delenv("ITSM_DB_URL", raising=False)
    monkeypatch.delenv("ITSM_CONFIG_DIR", raising=False)
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "lead1")
    for argv in (
        ["user", "add", "lead1", "--role", "shift_lead", "--group", "SD-L1", "--name", "Lena Lead"],
        ["user", "add", "agent1", "--role", "agent", "--group", "SD-L1", "--name", "Ari Agent"],
        ["user", "add", "agent2", "--role", "agent", "--group", "SD-L1", "--name", "Bo Second"],
    ):
        assert main(["--db", db_url, *argv]) == 0, capsys.readouterr()
    capsys.readouterr()
    return db_url


def new_ticket(url: str, title: str = "Printer on floor 2 jams") -> str:
    ran = run("agent1", "--db", url, "ticket", "create", "--title", title, "--requester", "Ann Example")
    assert ran.code == 0, ran
    return ran.out.split()[0]  # "INC0000001 P3 new: ..."


# --------------------------------------------------------------------------- what --db names


def test_a_text_file_is_not_a_database(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping: milk, eggs\n")
    for argv in (["ticket", "list"], ["db", "status"], ["db", "upgrade"], ["user", "list"]):
        assert_refused(run("agent1", "--db", str(notes), *argv), str(notes), "is not an SQLite database")
    assert notes.read_text() == "shopping: milk, eggs\n"  # not migrated into, not truncated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # no -wal, no -shm beside it


def test_a_jpeg_is_not_a_database(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200))
    assert_refused(run("agent1", "--db", str(photo), "ticket", "list"), str(photo), "not an SQLite database")
    assert_refused(run("agent1", "--db", str(photo), "demo"), "not an SQLite database")
    assert photo.read_bytes()[:4] == b"\xff\xd8\xff\xe0"


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("mysql://root@localhost/itsm", "mysql://"),
        ("mysql+pymysql://root@localhost/itsm", "mysql+pymysql://"),
        ("foo://bar", "foo://"),
        ("oracle://scott:tiger@db/orcl", "oracle://"),
    ],
)
def test_an_unsupported_url_says_what_works(url: str, scheme: str) -> None:
    ran = run("agent1", "--db", url, "ticket", "list")
    assert_refused(ran, f"--db: {scheme} is not supported", "use an SQLite path or postgresql://")
    assert "tiger" not in ran.err or url.endswith("orcl")  # told back as typed, nothing more
    assert_refused(run("agent1", "--db", url, "db", "upgrade"), f"{scheme} is not supported")


def test_the_environment_is_named_when_it_holds_the_bad_url() -> None:
    ran = run("agent1", "ticket", "list", env={"ITSM_DB_URL": "mysql://root@localhost/itsm"})
    assert_refused(ran, "ITSM_DB_URL: mysql:// is not supported")


def test_a_folder_is_not_a_database(tmp_path: Path) -> None:
    assert_refused(run("agent1", "--db", str(tmp_path), "ticket", "list"), str(tmp_path), "is a folder")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- a path that does not exist


@pytest.mark.parametrize(
    "argv",
    [["ticket", "list"], ["db", "status"], ["user", "list"], ["user", "add", "me", "--role", "agent"]],
)
def test_a_misspelt_path_is_refused_and_nothing_is_made(tmp_path: Path, argv: list[str]) -> None:
    missing = tmp_path / "deks" / "sub" / "desk.db"
    ran = run("agent1", "--db", str(missing), *argv)
    assert_refused(ran, str(missing), "does not exist", f"itsm db upgrade --db '{missing}'", "itsm demo")
    assert list(tmp_path.iterdir()) == []  # neither the folders nor an empty desk


def test_a_misspelt_path_in_the_environment_is_refused_too(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    assert_refused(run("agent1", "ticket", "list", env={"ITSM_DB_URL": str(missing)}), "does not exist")
    assert not missing.exists()


def test_db_upgrade_creates_the_desk_it_is_told_to(tmp_path: Path) -> None:
    target = tmp_path / "new" / "desk.db"
    ran = run("agent1", "--db", str(target), "db", "upgrade")
    assert ran.code == 0, ran
    assert "upgraded from empty to revision 0015" in ran.out
    assert target.is_file()
    assert oct(target.parent.stat().st_mode & 0o777) == "0o700"
    # Now it exists, and other commands use it: an empty desk says how to get its first user.
    assert_refused(run("agent1", "--db", str(target), "ticket", "list"), "itsm user add")


def test_an_empty_existing_file_is_told_to_be_upgraded(tmp_path: Path) -> None:
    empty = tmp_path / "desk.db"
    empty.touch()
    assert_refused(run("agent1", "--db", str(empty), "ticket", "list"), "no itsm schema yet", "db upgrade")
    assert empty.stat().st_size == 0


def test_only_the_default_location_is_created_on_first_use(tmp_path: Path) -> None:
    ran = run("agent1", "ticket", "list", env={"XDG_DATA_HOME": str(tmp_path), "HOME": str(tmp_path)})
    assert_refused(ran, "itsm user add")  # a brand-new desk, created and migrated, has no users yet
    assert (tmp_path / "itsm-tui" / "itsm.db").is_file()


# --------------------------------------------------------------------------- refused updates and filters


def test_list_with_an_unknown_status_names_the_statuses(desk: str) -> None:
    ran = run("agent1", "--db", desk, "ticket", "list", "--status", "bogus")
    assert_refused(
        ran,
        "--status: 'bogus' is not a status; use one of "
        "new, assigned, in_progress, pending, resolved, closed, cancelled",
    )


@pytest.mark.parametrize("option", ["--note", "--reply"])
def test_a_stale_note_or_reply_is_refused_naming_who_changed_it(desk: str, option: str) -> None:
    ref = new_ticket(desk)  # version 1
    assert run("agent2", "--db", desk, "ticket", "update", ref, "--title", "Printer jams").code == 0
    ran = run(
        "agent1", "--db", desk, "ticket", "update", ref, option, "Looked at it", "--expected-version", "1"
    )
    assert_refused(ran, f"{ref} was changed by Bo Second (agent2)", "version 1, now 2", "reload it")
    assert "agent1" not in ran.err
    assert count(desk, "SELECT count(*) FROM ticket_entries") == 0


def test_a_current_version_lets_a_note_then_a_status_through(desk: str) -> None:
    """The note moves the ticket to version 2; the status change after it must build on that, not be
    refused as stale naming the caller's own note."""
    ref = new_ticket(desk)
    ran = run(
        "agent1", "--db", desk, "ticket", "update", ref,
        "--note", "Checked the tray", "--status", "in_progress", "--expected-version", "1",
    )  # fmt: skip
    assert ran.code == 0, ran
    assert f"{ref} P3 in_progress" in ran.out
    assert count(desk, "SELECT count(*) FROM ticket_entries WHERE kind = 'note'") == 1
    stale = run(
        "agent2", "--db", desk, "ticket", "update", ref, "--reply", "On it", "--expected-version", "1"
    )
    assert_refused(stale, "by Ari Agent (agent1)")
    assert count(desk, "SELECT count(*) FROM ticket_entries WHERE kind = 'reply'") == 0


# --------------------------------------------------------------------------- a reader that went away


Check = Callable[[str], None]


def _changes_titled(title: str) -> Check:
    def check(url: str) -> None:
        assert count(url, "SELECT count(*) FROM changes WHERE title = :t", t=title) == 1

    return check


# Every subcommand with a closed stdout: tests/test_cli_closed_stdout.py (walked from the parser).


def test_a_closed_stdout_with_a_refused_command_still_tells_why(desk: str) -> None:
    ran = run("agent1", "--db", desk, "ticket", "list", "--status", "bogus", closed_stdout=True)
    assert_refused(ran, "--status: 'bogus' is not a status")


def test_head_c1_keeps_the_change(desk: str) -> None:
    """The shell pipeline itself: ``itsm change create ... --json | head -c1``."""
    if shutil.which("head") is None:
        pytest.skip("no head(1) here")
    command = [sys.executable, "-c", RUN_AS, "lead1", "--db", desk, "change", "create", "--type", "normal",
               "--title", "Head change", "--service", "email", "--start", "2030-02-01T09:00:00Z",
               "--minutes", "30", "--json"]  # fmt: skip
    environment = {k: v for k, v in os.environ.items() if k not in ("ITSM_DB_URL", "ITSM_CONFIG_DIR")}
    writer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment)
    assert writer.stdout is not None and writer.stderr is not None
    head = subprocess.run(["head", "-c1"], stdin=writer.stdout, capture_output=True, timeout=120)
    writer.stdout.close()
    err = writer.stderr.read().decode()
    assert writer.wait(timeout=120) == 0, err
    assert head.stdout == b"{"
    assert "Traceback" not in err and err == ""
    _changes_titled("Head change")(desk)


def test_a_lifecycle_step_with_a_closed_stdout_is_kept(desk: str) -> None:
    created = run(
        "lead1", "--db", desk, "change", "create", "--type", "normal", "--title", "Step change",
        "--service", "email", "--start", "2030-03-01T09:00:00Z", "--minutes", "30",
        "--description", "Swap the mail relay", "--implementation-plan", "swap",
        "--backout-plan", "swap back",
        "--test-plan", "send a mail", "--risk", "low",
    )  # fmt: skip
    assert created.code == 0, created
    ref = created.out.split()[0]
    assert count(desk, "SELECT count(*) FROM changes WHERE state = 'draft'") == 1
    assert_quiet(run("lead1", "--db", desk, "change", "submit", ref, closed_stdout=True))
    assert count(desk, "SELECT count(*) FROM changes WHERE state = 'draft'") == 0
