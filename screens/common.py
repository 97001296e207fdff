"""Pieces every screen shares: the status line, the base screen, the way worker failures reach the console's
handler, and safe rendering of user text."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static
from textual.widgets._footer import FooterKey
from textual.worker import Worker, WorkerState

from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from textual import getters

    from itsm_tui.app import ItsmApp


def literal(text: str | None, style: str = "") -> Text:
    """User-supplied text as a renderable that is never markup and carries no control characters."""
    return Text(strip_control(text, single_line=True), style=style, no_wrap=True, overflow="ellipsis")


def fit_hints(line: Text, width: int, separator: str = "  [", keep: int = 0) -> Text:
    """A one-line bar that ends in key hints ("  [/] filter"), fitted to ``width``: the hints that do not
    fit are left out, the last first (the keys are in the footer and help); what comes before them stays.
    ``separator`` is what begins each hint (" · " for hints as ``keymap.fill_keys`` joins them); the first
    ``keep`` characters are not hints (people's text, which may hold the separator)."""
    while line.cell_len > width:
        cut = line.plain.rfind(separator, keep)
        if cut <= 0:
            break
        line = line[:cut]
    return line


def database_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the database failed (unreachable, locked, broken), not that a rule refused or
    that a statement was wrong: a broken constraint or bad SQL is a fault of the program, to be logged."""
    from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, NotSupportedError, ProgrammingError

    statement_errors = IntegrityError | ProgrammingError | DataError | NotSupportedError
    return isinstance(exc, DBAPIError) and not isinstance(exc, statement_errors)


BUSY_MESSAGE = "The database is busy: another program holds it; try again in a moment. Your text is kept."
UNREACHABLE_MESSAGE = "The database cannot be reached; retrying."

# What the drivers say when another connection holds the lock a statement waits for (SQLite's busy
# timeout ran out; PostgreSQL's lock_timeout, or a deadlock broken by the server): the database is there.
_BUSY_WORDS = ("database is locked", "database table is locked", "lock timeout", "deadlock detected")
_BUSY_SQLSTATES = {"55P03", "40P01"}  # lock_not_available, deadlock_detected


def database_busy(exc: BaseException) -> bool:
    """Whether a :func:`database_failure` is only a lock another program holds (wait and retry), not a
    database that cannot be reached."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return False
    if getattr(exc.orig, "sqlstate", None) in _BUSY_SQLSTATES:
        return True
    detail = str(exc.orig).lower()
    return any(words in detail for words in _BUSY_WORDS)


def failure_message(exc: BaseException) -> str | None:
    """What to tell the agent about a database failure, in the desk's words (never the driver's text,
    which carries SQL and links); None if ``exc`` is no database failure. The one translation: the app's
    handler and the forms both show it, and the technical detail goes to the console log instead."""
    if not database_failure(exc):
        return None
    return BUSY_MESSAGE if database_busy(exc) else UNREACHABLE_MESSAGE


def local_time(instant: datetime | None, timezone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if instant is None:
        return "-"
    return instant.astimezone(ZoneInfo(timezone)).strftime(fmt)


class StatusLine(Static):
    """Top line: product, screen, user and role, database, unread notifications."""

    if TYPE_CHECKING:  # the console app, typed (at run time Textual's own property)
        app = getters.app(ItsmApp)

    def __init__(self, screen_title: str) -> None:
        super().__init__()
        self.screen_title = screen_title

    def on_mount(self) -> None:
        self.watch(self.app, "unread", lambda _: self.refresh_line(), init=False)
        self.watch(self.app, "connected", lambda _: self.refresh_line(), init=False)
        self.watch(self.app, "job_trouble", lambda _: self.refresh_line(), init=False)
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
        if app.job_trouble:
            line.append(f" | {app.job_trouble}", style="bold yellow")
        line.append(" | ")
        line.append(strip_control(actor.name, single_line=True))
        line.append(f" ({roles}) | {app.db.backend}")
        self.update(line, layout=False)  # always one line


class DeskFooter(Footer):
    """The footer, fitted to the terminal's width: the keys in the order of the bindings while they fit
    (closer together when that makes them fit), ``?`` for help always, and no key cut in half; the keys left
    out are in help and the command palette."""

    HELP_ACTION = "help"

    # What the keys were last made from (see :meth:`recompose`); None until the bindings are ready.
    _made_from: tuple[object, ...] | None = None

    def _keys_source(self) -> tuple[object, ...]:
        """Everything the footer's keys are made from: the width and each active binding (its key shown as
        the console's keys, fixed at start-up, show it)."""
        bindings = tuple(
            (binding.key, binding.action, binding.description, enabled, tooltip)
            for (_, binding, enabled, tooltip) in self.screen.active_bindings.values()
            if binding.show or binding.action == "command_palette"
        )
        return (self.size.width or self.app.size.width, self.show_command_palette, bindings)

    async def recompose(self) -> None:
        """Make the keys again only when what they are made from changed: a screen's start-up alone asks
        for it five times (each focus change and resize), and each time all its keys mount and restyle."""
        if self._made_from is not None and self.is_attached and self._keys_source() == self._made_from:
            return
        await super().recompose()

    def compose(self) -> ComposeResult:
        self._made_from = self._keys_source() if self._bindings_ready else None
        widgets = list(super().compose())
        keys = [w for w in widgets if isinstance(w, FooterKey) and not w.has_class("-command-palette")]
        # In the screen's own order of its bindings: a key the user's file remapped stays in its place, not
        # at the end (where Textual's keymap puts it) and so left out first.
        own = [b for bindings in self.screen._bindings.key_to_bindings.values() for b in bindings]
        order = {binding.action: index for index, binding in reversed(list(enumerate(own)))}
        keys.sort(key=lambda key: order.get(key.action, len(own)))
        if len(keys) != len(widgets) - sum(1 for w in widgets if w.has_class("-command-palette")):
            yield from widgets  # grouped keys: Textual's own layout
            return
        width = self.size.width or self.app.size.width
        palette = [w for w in widgets if w.has_class("-command-palette")]
        for compact in (self.compact, True):
            kept = self._fitting(keys, palette, width, compact)
            if len(kept) == len(keys):
                break
        if compact != self.compact:
            self.compact = compact
        # Keys born in their style: one made compact (FooterKey's own default) and then set to the footer's
        # width by its data binding restyles itself twice as it mounts. The palette's key is not bound: it
        # stays compact.
        for key in kept:
            key.set_reactive(FooterKey.compact, compact)
            key.set_class(compact, "-compact", update=False)
        for widget in palette:
            widget.set_class(True, "-compact", update=False)
        yield from [*kept, *palette]

    @staticmethod
    def _width(key: FooterKey, compact: bool) -> int:
        label = Text(key.key_display).cell_len + Text(key.description).cell_len
        if not key.description:
            return label + (1 if compact else 2)
        return label + (2 if compact else 3)

    def _fitting(
        self, keys: list[FooterKey], palette: list[Widget], width: int, compact: bool
    ) -> list[FooterKey]:
        room = width - sum(
            self._width(key, compact) + (1 if compact else 2) for key in palette if isinstance(key, FooterKey)
        )
        helps = [key for key in keys if key.action == self.HELP_ACTION]
        room -= sum(self._width(key, compact) for key in helps)
        kept: list[FooterKey] = []
        for key in keys:
            if key in helps:
                continue
            needed = self._width(key, compact)
            if needed > room:
                break
            kept.append(key)
            room -= needed
        return kept + helps if len(kept) + len(helps) < len(keys) else keys

    def on_resize(self) -> None:
        self.call_after_refresh(self.recompose)


class WorkerErrorsToApp:
    """Passes the failures of the workers a screen (or widget) starts on to the console's one handler,
    :meth:`ItsmApp.on_worker_state_changed <itsm_tui.app.ItsmApp.on_worker_state_changed>`, and, while the
    console shows the database as unreachable, their successes too (which clear that).

    Textual sends ``Worker.StateChanged`` only to the node that started the worker; the message does not
    bubble. A class that deals with some failure itself (shows it in place, retries) handles the message
    too and calls ``event.prevent_default()``: its handler runs first, and this one then no longer does, so
    the failure is not reported twice.
    """

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            event.worker.node.app.post_message(Worker.StateChanged(event.worker, event.state))
        elif event.state == WorkerState.SUCCESS:  # a screen's read or save went through: the database is back
            app = event.worker.node.app
            if not getattr(app, "connected", True):
                app.post_message(Worker.StateChanged(event.worker, event.state))


class DeskScreen(WorkerErrorsToApp, Screen[None]):
    """A top-level screen: status line on top, footer with the keys below."""

    if TYPE_CHECKING:  # the console app, typed (at run time Textual's own property)
        app = getters.app(ItsmApp)

    SCREEN_TITLE = ""

    def compose_status(self) -> ComposeResult:
        yield StatusLine(self.SCREEN_TITLE)

    def compose_footer(self) -> ComposeResult:
        yield DeskFooter()
