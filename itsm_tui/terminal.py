"""The console's terminal, and what the console does when it goes away.

A terminal that closes (its window shut, the tmux server killed, an SSH connection dropped) normally sends
the console SIGHUP, and the console ends at once: every piece of work it did was committed when it was done,
so nothing is lost. A console that SIGHUP does not reach (one started in another session than its terminal's,
as ``setsid`` and some ``su``/``runuser`` set-ups do, or one that inherited SIGHUP ignored) would live on
with a dead terminal: Textual's Linux driver reads end-of-file from it in a loop that never waits (most of a
core, for ever), and its writer thread dies on the first EIO, after which the next screen update blocks.

:class:`TerminalDriver` is that driver with two ways of noticing, so that such a console ends within about
a second instead, with :data:`EXIT_TERMINAL_GONE` and nothing printed anywhere:

- a watchdog thread asks the kernel every :attr:`TerminalDriver.CHECK_EVERY` seconds whether the console's
  input has hung up (``poll`` for no events at all: only hang-up and error conditions are reported, and
  nothing is read, so every key stays for Textual's own reader);
- the output goes through :class:`TerminalOutput`, which takes a failing write (EIO, EPIPE) as the same news
  instead of letting it kill the writer thread, and drops what is written after it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from textual.drivers.linux_driver import LinuxDriver

if TYPE_CHECKING:
    from textual.app import App

log = logging.getLogger("itsm.terminal")

# What a shell reports for a process ended by SIGHUP (128 + 1): the console ended as its terminal went away.
EXIT_TERMINAL_GONE = 129

_HUNG_UP = select.POLLHUP | select.POLLERR | select.POLLNVAL

_went_away = threading.Event()  # one terminal per process: set once the console's has gone


def went_away() -> bool:
    """Whether the console of this process ended because its terminal went away (whatever else the app's
    return code says: an exit asked for while the first screen was still being built can end in a panic)."""
    return _went_away.is_set()


class TerminalOutput:
    """The file the driver's writer thread writes the screen to: the terminal's, until a write fails.

    A write to a terminal that has gone fails (EIO from a hung-up terminal, EPIPE from a closed pipe);
    Textual's writer thread would die of it and leave the console blocked on its next update. Here the first
    failure calls ``on_gone`` and everything written after it is dropped, so the writer thread keeps
    draining and the console can shut down.
    """

    def __init__(self, file: IO[str] | None, on_gone: Callable[[str], None]) -> None:
        self._file = file
        self._on_gone = on_gone

    def _failed(self) -> None:
        self._file = None
        self._on_gone("its output cannot be written")

    def write(self, text: str) -> int:
        if self._file is None:
            self._on_gone("its output cannot be written")
        else:
            try:
                self._file.write(text)
            except (OSError, ValueError):  # ValueError: the file was closed
                self._failed()
        return len(text)

    def flush(self) -> None:
        if self._file is None:
            return
        try:
            self._file.flush()
        except (OSError, ValueError):
            self._failed()

    def fileno(self) -> int:
        if self._file is None:
            raise OSError("the terminal has gone")
        return self._file.fileno()

    def isatty(self) -> bool:
        return True


class TerminalDriver(LinuxDriver):
    """Textual's Linux driver, ending the console quietly once its terminal has gone (see the module)."""

    CHECK_EVERY = 0.25  # seconds between two looks at the input
    GRACE = 10.0  # seconds the console has to shut down once its terminal has gone, before it is ended

    def __init__(
        self, app: App[Any], *, debug: bool = False, mouse: bool = True, size: tuple[int, int] | None = None
    ) -> None:
        super().__init__(app, debug=debug, mouse=mouse, size=size)
        self._gone = threading.Event()
        self._ending = threading.Lock()
        self._closed = threading.Event()
        self._file = TerminalOutput(self._file, self.terminal_gone)  # type: ignore[assignment]  # file-like
        self._watchdog: threading.Thread | None = None

    def start_application_mode(self) -> None:
        super().start_application_mode()
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name="itsm-terminal-watchdog", daemon=True)
            self._watchdog.start()

    def _watch(self) -> None:
        poller = select.poll()
        poller.register(self.fileno, 0)  # no events asked for: hang-up and errors are always reported
        while not self._closed.wait(self.CHECK_EVERY):
            try:
                hung_up = any(mask & _HUNG_UP for _fd, mask in poller.poll(0))
            except OSError:
                hung_up = True
            if hung_up:
                self.terminal_gone("its input hung up")
                return

    def terminal_gone(self, why: str) -> None:
        """End the console: its input reader stops at once (it would otherwise spin on end-of-file), the app
        is asked to exit with :data:`EXIT_TERMINAL_GONE`, and if it has not ended :attr:`GRACE` seconds later
        the process is ended there (what it committed is in the database; what it had not is rolled back,
        as for any console whose terminal hangs up). Called from the watchdog or the writer thread."""
        with self._ending:  # the watchdog and the writer thread may both find out at once
            if self._gone.is_set():
                return
            self._gone.set()
        _went_away.set()
        log.warning("the terminal has gone (%s): the console ends", why)
        self.exit_event.set()  # the input thread's loop checks it on every turn
        with contextlib.suppress(RuntimeError):  # the loop has already closed: the console is ending anyway
            self._loop.call_soon_threadsafe(self._app.exit, None, EXIT_TERMINAL_GONE)
        timer = threading.Timer(self.GRACE, os._exit, (EXIT_TERMINAL_GONE,))
        timer.daemon = True
        timer.start()

    def close(self) -> None:
        """After the console has stopped: with the terminal gone, the standard descriptors are pointed at
        ``os.devnull``, so that nothing written on the way out (the interpreter's own flush at exit, a
        message) fails or reaches a terminal that is no longer there."""
        self._closed.set()
        super().close()
        if self._gone.is_set():
            _detach_standard_descriptors()


def _detach_standard_descriptors() -> None:
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
    except OSError:
        return
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            os.dup2(devnull, fd)
    os.close(devnull)
