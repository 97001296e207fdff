"""The ``:`` command line of the queue and the ticket screen: ``:assign mlopez``, ``:status pending
customer``, ``:note text``, ``:open INC0000042``, ``:view breaching``.

Its grammar is that of ``itsm ticket update``: :mod:`itsm_tui.services.tickets.commands` parses a line and
makes the change for both, so a refusal reads here as the command line prints it. The screen it is in
says what a change applies to (:class:`CommandHost`): the ticket shown, or in the queue the marked tickets
(each in its own transaction, after a confirmation naming how many) or else the one under the cursor.

Tab completes the word being typed (verbs, logins, groups, statuses, references, views), again to step
through the choices; Up and Down walk the lines run before (per console, and kept in the user's state
folder for the next one); Enter runs; Esc closes. A refusal shows in the line above the input, which keeps
what was typed.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable
from weakref import WeakKeyDictionary

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.actions import SkipAction
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Input, Static, TextArea
from textual.worker import Worker, WorkerState

from itsm_tui.screens.common import WorkerErrorsToApp
from itsm_tui.services.errors import ServiceError, StaleEdit
from itsm_tui.services.queue import VIEWS
from itsm_tui.services.tickets import bulk, commands
from itsm_tui.services.tickets.bulk import BulkResult, BulkStopped
from itsm_tui.services.tickets.commands import Command, Help, Open, ShowView, Update, Vocabulary
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from textual import getters

    from itsm_tui.app import ItsmApp
    from itsm_tui.services.views import ViewInfo

STYLES = Path(__file__).resolve().with_name("commandline.tcss")
HISTORY_LIMIT = 500
"""The most lines remembered (the file keeps up to twice as many before it is cut back)."""
_REF = re.compile(r"\b(?:INC|REQ|PRB|KE|KB|CHG)\d{7}\b")  # what :open and :link name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """What a change applies to: the ticket shown or under the cursor, or the marked ones."""

    refs: tuple[str, ...]
    version: int | None = None  # the version shown: a change made since is not overwritten
    # Marked tickets (confirmed first, each in its own transaction): told how it went (unmark, reload).
    marked_done: Callable[[BulkResult, BulkStopped | None], None] | None = None

    @property
    def marked(self) -> bool:
        return self.marked_done is not None


class CommandHost(Protocol):
    """What a screen with a command line tells it."""

    def command_target(self) -> Target:
        """The tickets a change applies to now (none: nothing selected)."""
        ...

    def command_refs(self) -> list[str]:
        """References to offer for completion: those the screen shows."""
        ...

    def command_done(self, stale: StaleEdit | None = None) -> None:
        """A change was made (or refused as stale, which says what changed): show the tickets anew."""
        ...


@runtime_checkable
class ViewHost(Protocol):
    """The screen ``:view`` shows a view on (the queue)."""

    def command_view(self, key: str, saved: ViewInfo | None) -> None:
        """Show the built-in view ``key``, or ``saved`` (a view of one's own or shared) when given."""
        ...


# --------------------------------------------------------------------------- history


def history_path() -> Path:
    """Where the lines run are kept: ``command_history`` in the user's state folder."""
    from platformdirs import user_state_path

    return user_state_path("itsm") / "command_history"


class History:
    """The lines run, oldest first: those of earlier consoles (read from ``path``) and this one's."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lines: list[str] = self._read() if path is not None else []

    def _read(self) -> list[str]:
        assert self.path is not None
        try:
            lines = [line for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError):
            return []
        if len(lines) > 2 * HISTORY_LIMIT:  # cut back, in one rename: another console may read it
            lines = lines[-HISTORY_LIMIT:]
            try:
                partial = self.path.with_name(f"{self.path.name}.{os.getpid()}")
                _write_private(partial, "".join(f"{line}\n" for line in lines), append=False)
                partial.replace(self.path)
            except OSError as exc:
                log.warning("command history %s not cut back: %s", self.path, exc)
        return lines[-HISTORY_LIMIT:]

    def add(self, line: str) -> None:
        if self.lines and self.lines[-1] == line:
            return
        self.lines.append(line)
        del self.lines[:-HISTORY_LIMIT]
        if self.path is not None:
            try:
                _write_private(self.path, f"{line}\n", append=True)
            except OSError as exc:  # a read-only home: remembered for this console only
                log.warning("command history %s not written: %s", self.path, exc)


def _write_private(path: Path, text: str, *, append: bool) -> None:
    """Write to a file only its owner may read (what was typed may name people), in a 0700 folder."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "a" if append else "w", encoding="utf-8") as file:
        file.write(text)


_HISTORIES: WeakKeyDictionary[App[None], History] = WeakKeyDictionary()


def history_of(app: App[None]) -> History:
    """The console's history (one per app, read from the state folder when first used)."""
    history = _HISTORIES.get(app)
    if history is None:
        history = _HISTORIES[app] = History(history_path())
    return history


# --------------------------------------------------------------------------- the widget


def help_text() -> Table:
    """The ``:help`` list, in two columns (a description too long for the terminal wraps in its own)."""
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True, style="bold")
    table.add_column(ratio=1)
    table.add_row("Commands", "Tab completes, Up/Down earlier ones, Esc closes", style="bold")
    for words, what in commands.HELP:
        table.add_row(words, what)
    return table


def builtin_view(name: str) -> str | None:
    """The built-in view ``name`` means: its key (``all_open``, ``all-open``) or its title, any case."""
    wanted = name.strip().casefold().replace("-", "_").replace(" ", "_")
    for key, view in VIEWS.items():
        if wanted in (key, view.title.casefold().replace(" ", "_")):
            return key
    return None


def _common_start(words: list[str]) -> str:
    """The longest start all ``words`` share."""
    first = min(words, key=len)
    for index, char in enumerate(first):
        if any(word[index] != char for word in words):
            return first[:index]
    return first


@dataclass
class _Cycle:
    """Tab pressed again on the same completion: the next choice goes where the word started."""

    start: int
    choices: list[str]
    index: int
    tail: str  # the text after the cursor
    shown: str  # the line as this completion left it


class CommandLine(WorkerErrorsToApp, Vertical):
    """The line itself: hidden until :meth:`open`; runs what is typed against :class:`CommandHost`."""

    if TYPE_CHECKING:  # the console app, typed (at run time Textual's own property)
        app = getters.app(ItsmApp)

    SCOPED_CSS = False
    DEFAULT_CSS = STYLES.read_text(encoding="utf-8")
    BINDINGS = [
        Binding("tab", "complete", "Complete", id="command.complete"),
        Binding("up", "history(-1)", "Earlier", show=False, id="command.history_back"),
        Binding("down", "history(1)", "Later", show=False, id="command.history_on"),
        Binding("escape", "close", "Close", id="command.close"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.vocabulary = Vocabulary()
        self._walk: int | None = None  # where Up/Down is in the history (None: at the line being typed)
        self._draft = ""  # the line being typed when Up was first pressed
        self._cycle: _Cycle | None = None
        self._confirm: str | None = None  # a line on marked tickets, shown its count: Enter again runs it
        # The marked tickets' versions when their count was shown: one changed since then is refused.
        self._confirm_versions: dict[str, int] | None = None
        self._previous: Widget | None = None
        self.running = False

    def compose(self) -> ComposeResult:
        yield Static("", id="command-message")
        with Horizontal(id="command-row"):
            yield Static(":", id="command-prompt")
            yield Input(id="command-input", select_on_focus=False)

    @property
    def input(self) -> Input:
        return self.query_one("#command-input", Input)

    @property
    def host(self) -> CommandHost:
        return cast(CommandHost, self.screen)

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def open(self) -> None:
        """Show the line, empty, with the keys in the input. From the ``:`` key, which is a priority
        binding (the keys typed after it go into the line, however fast they come), only where no text is
        being typed: there the ``:`` is typed in (:class:`SkipAction`)."""
        if isinstance(self.screen.focused, Input | TextArea):
            raise SkipAction
        if not self.is_open:
            self._previous = self.app.focused
        self.add_class("-open")
        self.say(None)
        self.input.value = ""
        self._walk, self._cycle, self._confirm = None, None, None
        self.screen.set_focus(self.input)  # at once: the keys after the ":" come to the line
        refs = list(dict.fromkeys([*self.host.command_refs(), *self._history_refs()]))
        self.load_vocabulary(refs)

    def action_close(self) -> None:
        self.close()

    def close(self) -> None:
        self.remove_class("-open")
        self.say(None)
        previous, self._previous = self._previous, None
        if previous is not None and previous.is_attached and previous.focusable:
            self.screen.set_focus(previous)
        else:
            self.screen.focus_next()

    def say(self, message: Text | Table | str | None, refused: bool = False) -> None:
        """The line over the input: a refusal, the choices, a question or :help (None: nothing)."""
        line = self.query_one("#command-message", Static)
        if isinstance(message, str):
            message = Text(strip_control(message, single_line=True))
        line.update(message or "")
        line.set_class(message is not None, "-shown")
        line.set_class(refused, "-refused")

    def refuse(self, error: ServiceError) -> None:
        self.say(commands.refusal_text(error), refused=True)

    # ----------------------------------------------------------------- the words it completes

    def _history_refs(self) -> list[str]:
        found = (ref for line in reversed(history_of(self.app).lines) for ref in _REF.findall(line.upper()))
        return list(dict.fromkeys(found))[:200]

    @work(thread=True, exclusive=True, group="command-words", exit_on_error=False)
    def load_vocabulary(self, refs: list[str]) -> None:
        """The desk's logins and the user's saved views (one bounded read each), with the configuration's
        groups, services and resolution codes."""
        from itsm_tui.services import views

        app = self.app
        with app.db.read_session() as session:
            logins = commands.logins(session)
            saved = [view.name for view in views.list_views(session, app.actor)]
        config = app.config
        vocabulary = Vocabulary(
            logins=logins,
            groups=list(config.groups),
            services=list(config.services),
            codes=config.resolution_codes,
            views=list(dict.fromkeys([*VIEWS, *saved])),
            refs=refs,
        )
        app.call_from_thread(setattr, self, "vocabulary", vocabulary)

    def action_complete(self) -> None:
        field = self.input
        value, cursor = field.value, field.cursor_position
        cycle = self._cycle
        if cycle is not None and value == cycle.shown:  # Tab again: the next choice
            cycle.index = (cycle.index + 1) % len(cycle.choices)
            self._put(cycle.start, cycle.choices[cycle.index], cycle.tail, cycle)
            return
        self._cycle = None
        start, choices = commands.candidates(value[:cursor], self.vocabulary)
        tail = value[cursor:]
        typed = value[start:cursor]
        if not choices:
            self.say(self._usage_hint(value[:cursor]) or "nothing to complete here")
            return
        if len(choices) == 1:
            self._put(start, choices[0] + " ", tail, None)
            self.say(None)
            return
        common = _common_start([choice.casefold() for choice in choices])
        if len(common) > len(typed):  # as far as they agree (in the first choice's case)
            self._put(start, choices[0][: len(common)], tail, None)
        else:  # nothing more in common: the first choice, Tab again for the next
            self._cycle = _Cycle(start, choices, 0, tail, "")
            self._put(start, choices[0], tail, self._cycle)
        shown = "  ".join(choices[:30]) + ("  ..." if len(choices) > 30 else "")
        self.say(Text(strip_control(shown, single_line=True), style="dim"))

    def _put(self, start: int, word: str, tail: str, cycle: _Cycle | None) -> None:
        field = self.input
        head = field.value[:start] + word
        field.value = head + tail
        field.cursor_position = len(head)
        if cycle is not None:
            cycle.shown = field.value

    @staticmethod
    def _usage_hint(text: str) -> str | None:
        verb = text.strip().removeprefix(":").split(" ")[0].lower()
        return f"use {commands.usage(verb)}" if verb in commands.VERBS else None

    # ----------------------------------------------------------------- history

    def action_history(self, step: int) -> None:
        lines = history_of(self.app).lines
        if not lines:
            return
        field = self.input
        if self._walk is None:
            if step > 0:
                return
            self._draft, self._walk = field.value, len(lines)
        self._walk = max(0, min(len(lines), self._walk + step))
        field.value = lines[self._walk] if self._walk < len(lines) else self._draft
        field.cursor_position = len(field.value)
        if self._walk == len(lines):
            self._walk = None

    @on(Input.Changed, "#command-input")
    def changed(self, event: Input.Changed) -> None:
        if self._cycle is not None and event.value != self._cycle.shown:
            self._cycle = None
        if self._confirm is not None and event.value.strip() != self._confirm:
            self._confirm = None
            self.say(None)

    # ----------------------------------------------------------------- running

    @on(Input.Submitted, "#command-input")
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        line = strip_control(event.value, single_line=True).strip()
        if not line:
            self.close()
            return
        if self.running:
            return
        if line != self._confirm:
            history_of(self.app).add(line)
        self._walk = None
        try:
            command = commands.parse(line)
        except ServiceError as exc:
            self.refuse(exc)
            return
        self.run(command, line)

    def run(self, command: Command, line: str) -> None:
        if isinstance(command, Help):
            self.input.value = ""
            self.say(help_text())
        elif isinstance(command, Open):
            self._start(self.open_ref, command.ref)
        elif isinstance(command, ShowView):
            key = builtin_view(command.name)
            if key is not None:
                self.show_view(key, None)
            else:
                self._start(self.find_view, command.name)
        elif isinstance(command, Update):
            target = self.host.command_target()
            if not target.refs:
                self.say("No ticket selected.", refused=True)
            elif target.marked and self._confirm != line:
                self._confirm = line
                count = len(target.refs)
                tickets = "the marked ticket" if count == 1 else f"the {count:,} marked tickets"
                question = (
                    f":{line.removeprefix(':')} on {tickets}? Enter again applies it to each, Esc closes."
                )
                self.say(Text(question, style="bold"))
                self._confirm_versions = None
                self.read_versions(target.refs)
            else:
                versions = self._confirm_versions if target.marked else None
                self._confirm, self._confirm_versions = None, None
                self._start(self.apply_update, command, target, versions)

    def _start(self, worker: Callable[..., object], *args: object) -> None:
        self.running = True
        self.say(Text("...", style="dim"))
        worker(*args)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "command-run" and event.state in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            self.running = False
            if event.state == WorkerState.ERROR and self.is_open:  # the console's handler says why
                self.say(None)
        super().on_worker_state_changed(event)

    @work(thread=True, exclusive=True, group="command-versions", exit_on_error=False)
    def read_versions(self, refs: tuple[str, ...]) -> None:
        """The versions of the marked tickets as the confirmation is asked (as the queue's own actions over
        marked tickets take them when they begin): a ticket someone changes before the change is confirmed
        (an agent taking it) is refused as stale, not overwritten."""
        app = self.app
        try:
            with app.db.read_session() as session:
                versions = bulk.versions_of(session, refs)
        except ServiceError:  # more than a bulk action takes: refused when it runs
            return
        app.call_from_thread(self._versions_read, refs, versions)

    def _versions_read(self, refs: tuple[str, ...], versions: dict[str, int]) -> None:
        if self._confirm is not None:
            self._confirm_versions = versions

    @work(thread=True, exclusive=True, group="command-run", exit_on_error=False)
    def apply_update(self, update: Update, target: Target, versions: dict[str, int] | None = None) -> None:
        """Make the change: on the one ticket (against the version shown), or on each marked one in a
        transaction of its own (a refusal of one leaves the others to go on), against the version it had
        when the change was confirmed (``versions``)."""
        app = self.app
        config, actor = app.config, app.actor
        if not target.marked:
            try:
                with app.db.session() as session:
                    view = commands.apply(
                        session, config, actor, target.refs[0], update, expected_version=target.version
                    )
                    done = commands.done_text(update, view)
            except StaleEdit as exc:
                app.call_from_thread(self._refused, exc, exc)
                return
            except ServiceError as exc:
                app.call_from_thread(self._refused, exc, None)
                return
            app.call_from_thread(self._done, done)
            return

        def each(session: Session, ref: str) -> None:
            version = versions.get(ref) if versions is not None else None
            commands.apply(session, config, actor, ref, update, expected_version=version)

        try:
            result = bulk.apply_each(app.db.session, list(target.refs), each)
        except BulkStopped as stopped:  # the database failed: what was done stays done, and is said
            app.call_from_thread(self._marked_done, target, stopped.result, stopped)
            raise (stopped.__cause__ or stopped) from None  # to the console's handler (logged, status line)
        except ServiceError as exc:  # more than a bulk action takes
            app.call_from_thread(self._refused, exc, None)
            return
        app.call_from_thread(self._marked_done, target, result, None)

    def _refused(self, error: ServiceError, stale: StaleEdit | None) -> None:
        self.running = False
        self.refuse(error)
        if stale is not None:
            self.host.command_done(stale)

    def _done(self, message: str) -> None:
        self.running = False
        self.close()
        self.app.notify(strip_control(message, single_line=True), markup=False)
        self.host.command_done(None)

    def _marked_done(self, target: Target, result: BulkResult, stopped: BulkStopped | None) -> None:
        """The screen is told (it unmarks the tickets done and says how it went); refusals stay in the line
        above what was typed."""
        self.running = False
        assert target.marked_done is not None
        target.marked_done(result, stopped)
        if result.refused or stopped is not None:
            self.say(result.summary if stopped is None else str(stopped), refused=True)
        else:
            self.close()

    @work(thread=True, exclusive=True, group="command-run", exit_on_error=False)
    def open_ref(self, text: str) -> None:
        """The ticket ``text`` names (``INC0000042``, ``inc42``, ``42``), opened."""
        from itsm_tui.services import search
        from itsm_tui.services.tickets import get_ticket

        app = self.app
        try:
            with app.db.read_session() as session:
                ticket_id = search.find_ticket_id(session, text)
                if ticket_id is None:  # no reference it knows: refused as `itsm ticket show` refuses it
                    ticket_id = get_ticket(session, text).id
        except ServiceError as exc:
            app.call_from_thread(self._refused, exc, None)
            return
        app.call_from_thread(self._open_ticket, ticket_id)

    def _open_ticket(self, ticket_id: int) -> None:
        self.running = False
        self.close()
        self.app.open_ticket(ticket_id)

    @work(thread=True, exclusive=True, group="command-run", exit_on_error=False)
    def find_view(self, name: str) -> None:
        """A view the user saved (or that is shared with their groups) by its name."""
        from itsm_tui.services import views

        app = self.app
        try:
            with app.db.read_session() as session:
                saved = views.find_view(session, app.actor, name)
        except ServiceError as exc:
            app.call_from_thread(self._refused, exc, None)
            return
        app.call_from_thread(self.show_view, saved.base_view, saved)

    def show_view(self, key: str, saved: ViewInfo | None) -> None:
        """The queue, showing a built-in view or a saved one (from the ticket screen: the queue under it)."""
        self.running = False
        self.close()
        app = self.app
        if app.current_mode != "queue":
            app.switch_mode("queue")
        else:
            while not isinstance(app.screen, ViewHost) and len(app.screen_stack) > 1:
                app.pop_screen()
        screen = app.screen
        if isinstance(screen, ViewHost):
            screen.command_view(key, saved)
