"""Pieces every screen shares: the status line, the base screen and safe rendering of user text."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from textual import getters

    from itsm_tui.app import ItsmApp


def literal(text: str | None, style: str = "") -> Text:
    """User-supplied text as a renderable that is never markup and carries no control characters."""
    return Text(strip_control(text, single_line=True), style=style, no_wrap=True, overflow="ellipsis")


def database_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the database failed (unreachable, locked, broken), not that a rule refused."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    return isinstance(exc, OperationalError | DBAPIError)


def local_time(instant: datetime | None, timezone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if instant is None:
        return "-"
    return instant.astimezone(ZoneInfo(timezone)).strftime(fmt)


class StatusLine(Static):
    """Top line: product, screen, user and role, database, unread notifications."""

    if TYPE_CHECKING:  # the console app, typed (at run time Textual's own property)
        app = getters.app(ItsmApp)

    DEFAULT_CSS = """
    StatusLine { dock: top; height: 1; background: $primary; color: $text; padding: 0 1; }
    """

    def __init__(self, screen_title: str) -> None:
        super().__init__()
        self.screen_title = screen_title

    def on_mount(self) -> None:
        self.watch(self.app, "unread", lambda _: self.refresh_line(), init=False)
        self.watch(self.app, "connected", lambda _: self.refresh_line(), init=False)
        self.refresh_line()

    @property
    def unread(self) -> int:
        return self.app.unread

    def refresh_line(self) -> None:
        app = self.app
        actor = app.actor
        roles = ",".join(sorted(actor.roles))
        # Most important first, so that an 80-column terminal cuts only the least useful part.
        line = Text()
        line.append(self.screen_title, style="bold")
        if not app.connected:
            line.append(" | DATABASE UNREACHABLE - retrying", style="bold red")
        elif self.unread:
            line.append(f" | {self.unread} unread", style="bold")
        line.append(" | ")
        line.append(strip_control(actor.name, single_line=True))
        line.append(f" ({roles}) | {app.db.backend}")
        self.update(line, layout=False)  # always one line


class DeskScreen(Screen[None]):
    """A top-level screen: status line on top, footer with the keys below."""

    if TYPE_CHECKING:  # the console app, typed (at run time Textual's own property)
        app = getters.app(ItsmApp)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed database read is shown, and the status line says the database is unreachable."""
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            from sqlalchemy.exc import OperationalError

            from itsm_tui.db import ReadCancelled

            if isinstance(error, ReadCancelled):  # stopped on purpose: its result was no longer wanted
                return
            if isinstance(error, OperationalError):
                self.app.connected = False  # the status line says so; the watcher notices the way back
                return
            self.app.notify(f"Could not load: {error}", severity="error", markup=False, timeout=6)

    SCREEN_TITLE = ""

    def compose_status(self) -> ComposeResult:
        yield StatusLine(self.SCREEN_TITLE)

    def compose_footer(self) -> ComposeResult:
        yield Footer()
