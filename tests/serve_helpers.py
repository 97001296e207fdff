"""Running ``itsm serve`` as a real process for the tests, and talking to it as a browser would."""

from __future__ import annotations

import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from itsm_tui.config import load_config
from itsm_tui.db import Database
from itsm_tui.services import users as user_service

# The login every console of the server runs as: the real account of this process (tests run as root).
OS_LOGIN = pwd.getpwuid(os.getuid()).pw_name
TOKEN = "T0k3n-for-the-serve-tests_" + "x" * 20  # 47 URL-safe characters, written to a 0600 token file
_ESCAPES = re.compile(
    rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78cDEHMNOZ])"
)


DESK_NAME = "Desk Lead"  # that user's name, which the console's header shows


def make_desk_user(url: str, login: str = OS_LOGIN) -> None:
    """Make ``login`` (named :data:`DESK_NAME`) the first user, admin and shift lead, at ``url``."""
    db = Database.connect(url)
    try:
        db.sync_catalog(load_config())
        with db.session() as session:
            user_service.add_user(
                session,
                actor_login=login,
                login=login,
                roles=["shift_lead"],
                groups=["SD-L1"],
                name=DESK_NAME,
            )
    finally:
        db.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def token_file(folder: Path, token: str = TOKEN) -> Path:
    path = folder / "token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


def screen_text(data: bytes) -> str:
    """The text in a stream of terminal output, escape sequences taken out."""
    return _ESCAPES.sub(b"", data).decode("utf-8", "replace")


@dataclass
class Served:
    """A running ``itsm serve``: its process, port, and what it printed so far."""

    proc: subprocess.Popen[str]
    port: int
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def printed(self) -> str:
        return "".join(self.stdout)

    def logged(self) -> str:
        return "".join(self.stderr)

    def wait_logged(self, text: str, seconds: float = 10) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if text in self.logged():
                return True
            time.sleep(0.05)
        return False

    def descendants(self) -> list[int]:
        """The processes this server started, and theirs (read from /proc, as ``ps`` does)."""
        parents: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.proc.pid]
        while todo:
            children = parents.get(todo.pop(), [])
            found += children
            todo += children
        return found


def _drain(stream, into: list[str]) -> None:
    for line in stream:
        into.append(line)


@contextmanager
def serving(
    db_url: str | None, *options: str, env: dict[str, str] | None = None, seconds: float = 30
) -> Iterator[Served]:
    """``itsm serve`` on a free port until the block ends (then SIGINT, as Ctrl+C)."""
    served = None
    for _ in range(5):  # a free port can be taken by a test running in parallel before the server binds it
        port = free_port()
        served = _start(db_url, port, options, env)
        deadline = time.monotonic() + seconds
        while served.proc.poll() is None and "open http" not in served.printed():
            assert time.monotonic() < deadline, f"the server did not start:\n{served.logged()}"
            time.sleep(0.05)
        if served.proc.poll() is None:
            break
        _stop(served)
        if "address already in use" not in served.logged().lower():
            break
    assert served is not None and served.proc.poll() is None, (
        f"the server stopped:\n{served and served.logged()}"
    )
    try:
        yield served
    except BaseException as exc:  # what the server said (and its consoles' errors, which it prints) helps
        _stop(served)
        exc.add_note(f"itsm serve printed:\n{served.printed()}\nand logged:\n{served.logged()}")
        raise
    else:
        _stop(served)


def _start(db_url: str | None, port: int, options: Sequence[str], env: dict[str, str] | None) -> Served:
    command = [sys.executable, "-m", "itsm_tui.cli", "serve", "--port", str(port), *options]
    if db_url is not None:
        command[3:3] = ["--db", db_url]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env if env is not None else os.environ.copy(),
    )
    served = Served(proc, port)
    for stream, lines in ((proc.stdout, served.stdout), (proc.stderr, served.stderr)):
        threading.Thread(target=_drain, args=(stream, lines), daemon=True).start()
    return served


def _stop(served: Served) -> None:
    if served.proc.poll() is None:
        served.proc.send_signal(signal.SIGINT)
    try:
        served.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        served.proc.kill()
        served.proc.wait()
    time.sleep(0.1)  # the readers' last lines
