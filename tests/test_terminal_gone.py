"""A console whose terminal goes away ends by itself, quietly and at once; a closed stderr changes nothing.

The console runs as a real process on a pseudo-terminal. Closing the terminal's master side is what a killed
tmux server or a dropped SSH connection does to it: the terminal hangs up (reads give end-of-file, writes
EIO). A console in the terminal's session as its leader is sent SIGHUP and dies of it; one that SIGHUP does
not reach (in a session of its own, as ``setsid`` and some ``runuser``/``su`` set-ups start it, or with
SIGHUP ignored) used to live on, spinning on end-of-file; it must end with exit 129 within seconds, using
little CPU meanwhile. A console whose screen cannot be written (its stderr, where Textual draws, is a pipe
nobody reads) ends the same way.

The commands run with descriptor 2 closed (``2>&-``) or with stderr a pipe whose reader has gone: the exit
code stays what it would be (2 for bad input, 0 on success), no traceback, and no error line on stdout.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from sqlalchemy import create_engine, text

from itsm_tui.cli import main
from itsm_tui.terminal import EXIT_TERMINAL_GONE, TerminalOutput

RUN_AS = (
    "import sys; import itsm_tui.services.users as u; login = sys.argv.pop(1); u.os_login = lambda: login; "
    "from itsm_tui.cli import main; sys.exit(main(sys.argv[1:]))"
)
STARTED_WITHIN = 90.0  # seconds for the console to draw its first screen (a busy test machine is slow)
ENDED_WITHIN = 8.0  # seconds from the terminal going away to the process having exited
CPU_AT_MOST = 3.0  # CPU seconds it may use meanwhile (shutting down); a spinning console uses one a second
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@pytest.fixture
def desk(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    """A desk with an agent (its first user, so its admin too) and one ticket (new, in no one's work)."""
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "agent1")
    assert main(["--db", sqlite_url, "user", "add", "agent1", "--role", "agent", "--group", "SD-L1"]) == 0
    created = ["ticket", "create", "--title", "Printer on floor 2 jams", "--requester", "Ann Example"]
    assert main(["--db", sqlite_url, *created]) == 0
    capsys.readouterr()
    return sqlite_url


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a live process, from /proc (fields 14 and 15 of its stat line)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Ended(NamedTuple):
    status: int  # as os.waitstatus_to_exitcode gives it: the exit code, or minus the signal
    seconds: float
    cpu: float


def wait_for_end(pid: int, within: float = ENDED_WITHIN) -> Ended:
    """Wait for the process to exit, noting the CPU it used until then; a process still there after
    ``within`` seconds is killed and the test fails."""
    start, used_before = time.monotonic(), cpu_seconds(pid)
    used = used_before
    while time.monotonic() - start < within:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return Ended(os.waitstatus_to_exitcode(status), time.monotonic() - start, used - used_before)
        used = cpu_seconds(pid)  # zombie-safe: read before the next wait reaps it
        time.sleep(0.05)
    burnt = cpu_seconds(pid) - used_before
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"still running {within:.0f} s after its terminal went away, {burnt:.1f} s of CPU meanwhile")


CONTROL_SEQUENCE = re.compile(rb"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


def read_until(fd: int, marker: bytes, within: float = STARTED_WITHIN) -> None:
    """Read what the console draws on the terminal until ``marker`` shows in its text (control sequences
    taken out: styles may change within a line)."""
    seen = b""
    deadline = time.monotonic() + within
    while marker not in CONTROL_SEQUENCE.sub(b"", seen):
        assert time.monotonic() < deadline, f"no {marker!r} drawn within {within:.0f} s: {seen[-400:]!r}"
        if select.select([fd], [], [], 0.2)[0]:
            seen += os.read(fd, 65536)


def console_environment(state: Path) -> dict[str, str]:
    """The test run's environment, with a terminal type and the console's log in ``state``."""
    environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return environment | {"TERM": "xterm-256color", "XDG_STATE_HOME": str(state)}


def start_console(
    url: str, state: Path, *, own_session: bool, ignore_sighup: bool, stderr_fd: int | None = None
) -> tuple[int, int]:
    """A console on a new pseudo-terminal, as agent1: (its pid, the terminal's master side).

    ``own_session``: the console is in a session of its own (the terminal is not its controlling one), so
    the kernel sends it no SIGHUP when the terminal hangs up; otherwise it leads the terminal's session.
    ``stderr_fd``: its stderr (where Textual draws) instead of the terminal."""
    master, slave = os.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # rows, columns
    argv = [sys.executable, "-c", RUN_AS, "agent1", "--db", url]
    environment = console_environment(state)
    pid = os.fork()
    if pid == 0:  # the child: only system calls from here to exec, and never back into pytest
        try:
            os.close(master)
            os.setsid()
            if not own_session:
                fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            # As a login shell starts it: SIGHUP at its default and not blocked, whatever the test process
            # (its threads, an earlier test in this worker) left behind; both are inherited through exec.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
            signal.signal(signal.SIGHUP, signal.SIG_IGN if ignore_sighup else signal.SIG_DFL)
            os.dup2(slave, 0)
            os.dup2(slave, 1)
            os.dup2(stderr_fd if stderr_fd is not None else slave, 2)
            os.close(slave)
            os.execve(argv[0], argv, environment)
        finally:
            os._exit(127)
    os.close(slave)
    return pid, master


def console_log(state: Path) -> str:
    logs = list(state.rglob("console.log"))
    return logs[0].read_text() if logs else ""


def count(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- the terminal goes away


@pytest.mark.parametrize(
    ("own_session", "ignore_sighup"),
    [(True, False), (False, True)],
    ids=["in-its-own-session", "with-sighup-ignored"],
)
def test_a_console_that_no_sighup_reaches_ends_when_its_terminal_goes(
    desk: str, tmp_path: Path, own_session: bool, ignore_sighup: bool
) -> None:
    pid, master = start_console(desk, tmp_path, own_session=own_session, ignore_sighup=ignore_sighup)
    read_until(master, b"Queue | agent1")
    os.close(master)  # the terminal hangs up: nobody holds its master side any more

    ended = wait_for_end(pid)
    assert ended.status == EXIT_TERMINAL_GONE, ended
    assert ended.cpu <= CPU_AT_MOST, ended
    log = console_log(tmp_path)
    assert "the terminal has gone" in log, log
    assert "Traceback" not in log, log
    # What was committed before stays: the desk still opens and holds its ticket.
    assert count(desk, "SELECT count(*) FROM tickets") == 1


def test_a_console_leading_its_terminals_session_dies_of_sighup(desk: str, tmp_path: Path) -> None:
    """The ordinary case is left to the kernel: SIGHUP ends the console at once."""
    pid, master = start_console(desk, tmp_path, own_session=False, ignore_sighup=False)
    read_until(master, b"Queue | agent1")
    os.close(master)

    ended = wait_for_end(pid)
    assert ended.status == -signal.SIGHUP, ended
    assert "the terminal has gone" not in console_log(tmp_path)


def test_a_console_whose_screen_cannot_be_written_ends(desk: str, tmp_path: Path) -> None:
    """Textual draws on stderr; a pipe nobody reads there is a terminal gone too (EPIPE on the first
    frame), rather than a writer thread dead of it and a console blocked on its next update."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        pid, master = start_console(
            desk, tmp_path, own_session=True, ignore_sighup=False, stderr_fd=write_end
        )
    finally:
        os.close(write_end)
    try:
        ended = wait_for_end(pid, within=STARTED_WITHIN)
    finally:
        os.close(master)
    assert ended.status == EXIT_TERMINAL_GONE, ended
    log = console_log(tmp_path)
    assert "the terminal has gone (its output cannot be written)" in log, log
    assert "Traceback" not in log, log


def test_the_output_file_reports_the_first_failure_once_and_drops_the_rest() -> None:
    class Dead:
        def __init__(self) -> None:
            self.writes = 0

        def write(self, text: str) -> int:
            self.writes += 1
            raise OSError(errno.EIO, "Input/output error")

        def flush(self) -> None:
            raise AssertionError("not flushed after a failed write")

        def fileno(self) -> int:
            return 2

    dead = Dead()
    reasons: list[str] = []
    output = TerminalOutput(dead, reasons.append)  # type: ignore[arg-type]  # file-like
    assert output.write("\x1b[?1049h") == 8
    assert output.write("more") == 4
    output.flush()
    assert dead.writes == 1  # the second write never reached the dead file
    assert reasons[0] == "its output cannot be written"
    with pytest.raises(OSError):
        output.fileno()


# --------------------------------------------------------------------------- a closed stderr


class Ran(NamedTuple):
    code: int
    out: str
    err: str


def closed_stderr(*argv: str) -> Ran:
    """``itsm ARGV 2>&-`` as agent1: the command starts with no descriptor 2 at all."""
    command = [sys.executable, "-c", RUN_AS, "agent1", *argv]
    done = subprocess.run(
        ["/bin/sh", "-c", 'exec "$@" 2>&-', "sh", *command], capture_output=True, text=True, timeout=120
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def unread_stderr(*argv: str, unread_stdout: bool = False) -> Ran:
    """``itsm ARGV`` as agent1 with stderr (and, with ``unread_stdout``, stdout too) a pipe whose reader
    has gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-c", RUN_AS, "agent1", *argv],
            stdout=write_end if unread_stdout else subprocess.PIPE,
            stderr=write_end,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    return Ran(done.returncode, done.stdout or "", "")


Runner = Callable[..., Ran]
STDERR_GONE: list[Runner] = [closed_stderr, unread_stderr]
IDS = ["closed", "unread-pipe"]


@pytest.mark.parametrize("run", STDERR_GONE, ids=IDS)
def test_a_listing_succeeds_without_stderr(desk: str, run: Runner) -> None:
    ran = run("--db", desk, "ticket", "list")
    assert ran.code == 0, ran
    assert "Printer on floor 2 jams" in ran.out, ran
    assert "itsm: error" not in ran.out and "Traceback" not in ran.out, ran


@pytest.mark.parametrize("run", STDERR_GONE, ids=IDS)
def test_a_write_succeeds_without_stderr(desk: str, run: Runner) -> None:
    ran = run("--db", desk, "ticket", "create", "--title", "Mouse gone", "--requester", "Bo Example")
    assert ran.code == 0, ran
    assert count(desk, "SELECT count(*) FROM tickets WHERE title = 'Mouse gone'") == 1


@pytest.mark.parametrize("run", STDERR_GONE, ids=IDS)
@pytest.mark.parametrize(
    "argv",
    [
        ["--db", "/nonexistent", "ticket", "list"],  # a desk that is not there
        ["ticket", "list", "--status", "bogus"],  # a refusal of the command itself ({desk} prepended)
        ["ticket", "list", "--bogus"],  # argparse's own error
    ],
    ids=["missing-desk", "bad-status", "unknown-option"],
)
def test_bad_input_without_stderr_still_exits_2_and_leaves_stdout_alone(
    desk: str, run: Runner, argv: list[str]
) -> None:
    args = argv if argv[0] == "--db" else ["--db", desk, *argv]
    ran = run(*args)
    assert ran.code == 2, ran
    assert ran.out == "", ran  # the error line is not sent to stdout instead


def test_a_refusal_with_both_outputs_unread_still_exits_2(desk: str) -> None:
    ran = unread_stderr("--db", desk, "ticket", "list", "--status", "bogus", unread_stdout=True)
    assert ran.code == 2, ran


def test_a_closed_stderr_does_not_hand_descriptor_2_to_the_next_file(tmp_path: Path) -> None:
    """With no descriptor 2, the next file opened would get it and take what is meant for stderr; main
    puts ``os.devnull`` there first (a refusal that opens no database shows it: SQLite alone would)."""
    probe = tmp_path / "probe.txt"
    code = (
        "import os, sys; from itsm_tui.cli import main; rc = main(sys.argv[1:]); "
        f"fd = os.open({str(probe)!r}, os.O_WRONLY | os.O_CREAT); os.write(fd, str(fd).encode()); "
        "sys.exit(rc)"
    )
    command = [sys.executable, "-c", code, "--db", "/nonexistent", "ticket", "list"]
    done = subprocess.run(
        ["/bin/sh", "-c", 'exec "$@" 2>&-', "sh", *command], capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stdout) == (2, ""), done
    assert int(probe.read_text()) > 2
