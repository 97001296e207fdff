"""Processes of a test, started by forking the test's own process instead of a new interpreter.

``python -c SCRIPT`` spends the better part of a second importing the desk (SQLAlchemy, the models, the
services) before it does anything; a fork of the test process has all of that imported already. The child
is a process of its own all the same: its own pid, its own database connections, its own exit code and
pipes, which is what the tests of processes racing each other are about. :class:`Forked` is used as
``subprocess.Popen`` is (the subset the tests use).

The parent gives its database handles up first (``Database.dispose``): a connection must not be carried
across a fork, SQLite's least of all. A child ends with ``os._exit``: nothing of pytest's runs in it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import IO, Any

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL

# This process's ends of the pipes to its children (fd -> the pipe's inode): a child closes those it got
# with the fork, or another child would never see its stdin end (the job of Popen's close_fds).
_pipe_ends: dict[int, int] = {}


def exit_code_of(run: Callable[[], object]) -> int:
    """Call ``run`` and give its exit code as the interpreter would at its end: an exception's traceback
    on stderr and exit 1, ``sys.exit``'s code, stdout and stderr flushed at the end (a failed flush told on
    stderr, exit 120)."""
    code: object = 0
    try:
        code = run()
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        traceback.print_exc()
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):  # as the interpreter ends: a flush that fails is told, exit 120
        try:
            stream.flush()
        except Exception as exc:
            with contextlib.suppress(Exception):
                os.write(2, f"Exception ignored on flushing {stream.name}: {exc!r}\n".encode())
            code = 120
    return code


def _exit_code(script: str, argv: Sequence[str]) -> int:
    """Run ``script`` as ``python -c`` would with ``argv`` (:func:`exit_code_of`)."""
    sys.argv = ["-c", *argv]

    def run() -> None:
        exec(compile(script, "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})

    return exit_code_of(run)


class Forked:
    """``python -c SCRIPT *ARGV`` in a forked child; ``stdin``, ``stdout``, ``stderr``: ``PIPE``,
    ``DEVNULL``, a file descriptor, or None (this process's own)."""

    def __init__(
        self,
        script: str,
        *argv: str,
        stdin: int | None = None,
        stdout: int | None = None,
        stderr: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        ends: dict[int, tuple[int, int] | None] = {}  # child's fd -> (child's end, parent's end)
        for fd, how in ((0, stdin), (1, stdout), (2, stderr)):
            if how == PIPE:
                read, write = os.pipe()
                ends[fd] = (read, write) if fd == 0 else (write, read)
            elif how == DEVNULL:
                ends[fd] = (os.open(os.devnull, os.O_RDWR), -1)
            elif how is None:
                ends[fd] = None
            else:
                ends[fd] = (how, -1)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child
            code = 1
            try:
                for fd, end in ends.items():
                    if end is not None:
                        os.dup2(end[0], fd)
                for end in ends.values():
                    if end is not None:
                        for other in end:
                            if other > 2:
                                os.close(other)
                for fd, inode in _pipe_ends.items():
                    with contextlib.suppress(OSError):
                        if fd > 2 and os.fstat(fd).st_ino == inode:
                            os.close(fd)
                if env is not None:
                    os.environ.clear()
                    os.environ.update(env)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                # The streams a new interpreter would have: stdout buffered, stderr line by line.
                sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
                sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
                sys.stderr = open(2, "w", encoding="utf-8", closefd=False, buffering=1)  # noqa: SIM115
                code = _exit_code(script, argv)
            finally:
                os._exit(code)
        self.pid = pid
        self.returncode: int | None = None
        self.args = ["-c", script, *argv]
        streams: list[IO[Any] | None] = []
        for fd, how in ((0, stdin), (1, stdout), (2, stderr)):
            end = ends[fd]
            if end is not None and how == DEVNULL:
                os.close(end[0])
            if end is None or how != PIPE:
                streams.append(None)
                continue
            os.close(end[0])  # the child's end
            _pipe_ends[end[1]] = os.fstat(end[1]).st_ino
            streams.append(open(end[1], "w" if fd == 0 else "r", encoding="utf-8"))  # noqa: SIM115
        self.stdin, self.stdout, self.stderr = streams

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        assert self.returncode is not None
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str | None, str | None]:
        """Close stdin, read stdout and stderr to their ends (at once, each its own thread), wait."""
        import threading

        if self.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.stdin.close()
        read: dict[int, str] = {}
        readers = [
            threading.Thread(target=lambda n=n, s=s: read.__setitem__(n, s.read()), daemon=True)
            for n, s in ((1, self.stdout), (2, self.stderr))
            if s is not None
        ]
        for reader in readers:
            reader.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        for reader in readers:
            reader.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if reader.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()) + 5)
        for stream in (self.stdout, self.stderr):
            if stream is not None:
                stream.close()
        return read.get(1), read.get(2)

    def send_signal(self, number: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, number)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)
