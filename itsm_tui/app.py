"""The console application: wires the screens (as modes) to the database, configuration and user."""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Textual draws a changed screen at its next frame tick; at its default cap of 60 a second a keystroke's new
# rows wait up to 17 ms for it. Read when Textual is first imported; a value set by the user wins.
os.environ.setdefault("TEXTUAL_FPS", "120")

from textual import events, work
from textual.actions import parse as parse_action
from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.worker import Worker, WorkerState

from itsm_tui.columns import NO_CHOICE, ColumnChoice
from itsm_tui.config import DeskConfig
from itsm_tui.db import Database, ReadCancelled
from itsm_tui.keymap import NO_KEYS, BindingTable, Keys, declared_bindings, key_in_force
from itsm_tui.screens import MODE_TITLES, mode_screens
from itsm_tui.screens.common import UNREACHABLE_MESSAGE, database_busy, failure_message
from itsm_tui.services.access_log import RecordingDatabase
from itsm_tui.services.errors import ServiceError
from itsm_tui.services.notifications import NotificationRow
from itsm_tui.services.presence import new_console_id
from itsm_tui.services.users import Actor
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from textual.dom import DOMNode
    from textual.driver import Driver
    from textual.screen import Screen
    from textual.widget import Widget

    from itsm_tui.push import NotificationWatcher
    from itsm_tui.services.changes import ChangeView
    from itsm_tui.services.queue import FirstRows

log = logging.getLogger("itsm.app")

SEVERITIES: dict[str, SeverityLevel] = {
    "major_incident": "error",
    "sla_breach": "error",
    "sla_warning": "warning",
}
SEVERITY_ORDER = {"major_incident": 4, "sla_breach": 3, "escalated": 2, "sla_warning": 1}


class DeskCommands(Provider):
    """The command palette: the actions of the screen it was opened over first, with their keys in force,
    then the other screens and help, then Textual's own commands (theme, screenshot).

    A screen's action is offered only while the screen's ``check_action`` says it is available (the rule
    that also dims it in the footer: the ticket screen asks the ticket's guards); an unbound one still is,
    without a key. One provider, so that this order is the order shown when the palette opens."""

    def entries(self) -> list[tuple[str, Callable[[], object], str]]:
        app = self.app
        assert isinstance(app, ItsmApp)
        keys = app.keys
        screen = self.screen  # the screen the palette was opened over (app.screen is the palette now)

        def key_help(binding: Binding | None, what: str) -> str:
            shown = keys.display(binding, app) if binding is not None else ""
            return f"{what}; key {shown}" if shown else f"{what}; no key"

        entries: list[tuple[str, Callable[[], object], str]] = []
        # What the screen binds itself comes after its declared keys (the queue's saved views).
        for binding in [*declared_bindings(type(screen)), *getattr(screen, "extra_bindings", list)()]:
            if not binding.description:
                continue
            destination, name, parameters = parse_action(binding.action)
            target = app if destination == "app" else screen
            if not target.check_action(name, parameters):
                continue
            entries.append(
                (
                    binding.description,
                    partial(screen.run_action, binding.action),
                    key_help(binding, "this screen"),
                )
            )
        own = {binding.id: binding for binding in declared_bindings(ItsmApp)}
        for mode, title in MODE_TITLES.items():
            entries.append(
                (
                    f"Go to {title}",
                    partial(app.switch_mode, mode),
                    key_help(own.get(f"go.{mode}"), f"switch to the {title.lower()} screen"),
                )
            )
        entries.append(("Help: keys", app.action_help, key_help(own.get("app.help"), "list every key")))
        for command in app.get_system_commands(screen):
            entries.append((command.title, command.callback, command.help))
        return entries

    async def discover(self) -> Hits:
        for name, callback, help_text in self.entries():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        for hit in await self.ticket_hits(query):  # a reference typed (INC0000042, inc42, 42) comes first
            yield hit
        matcher = self.matcher(query)
        for name, callback, help_text in self.entries():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)

    async def ticket_hits(self, query: str) -> list[Hit]:
        """A hit "Open INC0000042 ..." for each ticket the query names by reference (read in a thread)."""
        import asyncio

        from textual.content import Content

        from itsm_tui.services import search

        app = self.app
        assert isinstance(app, ItsmApp)
        if not search.ref_candidates(query):
            return []

        def look_up() -> list[search.RefHit]:
            with app.db.read_session() as session:
                return search.find_refs(session, query)

        try:
            found = await asyncio.to_thread(look_up)
        except Exception:  # the palette goes on without it; the console's log has the failure
            log.exception("looking up a reference for the command palette")
            return []
        title = partial(strip_control, single_line=True)
        # Above any fuzzy match of the palette's (which can score over 1): a reference typed is what is meant.
        return [
            Hit(
                100.0,
                Content(f"Open {hit.ref} {title(hit.title)} ({hit.status})"),
                partial(app.open_ticket, hit.id),
                text=f"Open {hit.ref}",
                help="open the ticket of this reference",
            )
            for hit in found
        ]


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    Scrolling a long queue reads and drops thousands of rows in worker threads; the memory they used is
    free again but stays in the process until trimmed, so an idle console would keep the size of its
    busiest minute."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None  # glibc's malloc_trim once looked up; False where there is none


def binding_table() -> BindingTable:
    """Every binding of the console (the app's, and each screen's and widget's under ``screens/``), for
    checking a key file; it imports every screen module, which the console otherwise loads when shown."""
    import importlib
    import pkgutil

    from textual.dom import DOMNode

    from itsm_tui import screens

    for module in pkgutil.iter_modules(screens.__path__):
        importlib.import_module(f"{screens.__name__}.{module.name}")
    classes: list[type] = []
    pending: list[type] = [DOMNode]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith(f"{screens.__name__}.") and "BINDINGS" in vars(cls):
            classes.append(cls)
    return BindingTable.of(ItsmApp, classes)


class ItsmApp(App[None]):
    """The service-desk console."""

    TITLE = "itsm"
    # With the queue's own file (its path as the screen names it): a screen's file first read when the screen
    # shows makes Textual parse every style sheet again and restyle every node, in the first frame's way.
    CSS_PATH = [
        str(files("itsm_tui.screens") / "app.tcss"),
        str(Path(str(files("itsm_tui.screens") / "queue.tcss")).resolve()),
    ]
    MODES = mode_screens()
    DEFAULT_MODE = "queue"
    COMMANDS = {DeskCommands}  # Textual's own commands come last in it
    BINDINGS = [
        Binding("f2", "switch_mode('queue')", "Queue", id="go.queue"),
        Binding("f3", "switch_mode('calendar')", "Calendar", id="go.calendar"),
        Binding("f4", "switch_mode('kpi')", "KPI", id="go.kpi"),
        Binding("f5", "switch_mode('inbox')", "Inbox", id="go.inbox"),
        Binding("f6", "switch_mode('workload')", "Workload", id="go.workload"),
        Binding("f7", "switch_mode('problems')", "Problems", id="go.problems"),
        Binding("f8", "switch_mode('knowledge')", "Knowledge", id="go.knowledge"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    SCHEDULER_DELAY = 2.0  # seconds from start-up to the first SLA scan and change reminders
    # Seconds from start-up to setting the scheduler up: its modules (APScheduler, the jobs and the services
    # they use) take longer to import than the rest of the first frame's work, which comes first.
    SCHEDULER_SETUP = 1.0

    unread: reactive[int] = reactive(0)
    connected: reactive[bool] = reactive(True)
    job_trouble: reactive[str] = reactive("")  # the status line's word on scheduler jobs failing, if any

    def __init__(
        self,
        db: Database,
        config: DeskConfig,
        actor: Actor,
        *,
        run_scheduler: bool = True,
        clock: Callable[[], datetime] | None = None,
        keys: Keys = NO_KEYS,
        columns: ColumnChoice = NO_CHOICE,
        first_rows: FirstRows | None = None,
    ) -> None:
        super().__init__()
        # The queue's first page, read before the app started (``itsm``): shown in the queue's first frame.
        self.first_rows = first_rows
        # The user's keys (:mod:`itsm_tui.keymap`): remapped through Textual's keymap, unbound ones taken
        # out of every node as it is registered (here the app's own).
        self.keys = keys
        self.columns = columns  # the queue columns the user chose (:mod:`itsm_tui.columns`)
        if keys.remapped:
            self.set_keymap(keys.keymap)
        keys.drop_unbound([self])
        self.clock = clock or (lambda: datetime.now(UTC))  # fixed in snapshot tests
        # Every database action of the console goes through this handle: a permission refusal leaving one
        # of its sessions is recorded (its own transaction, in the worker) before the screen shows it.
        self.db: Database = RecordingDatabase.around(db, actor.login, actor.id)
        self.config = config
        self.actor = actor
        # This console, in the presence rows that tell others which tickets it has open (services/presence).
        self.console_id = new_console_id()
        self.run_scheduler = run_scheduler
        self.scheduler: AsyncIOScheduler | None = None
        self.watcher: NotificationWatcher | None = None
        self._failing_jobs: dict[str, str] = {}  # job name -> what the status line says of it
        self._lost_at = 0.0  # time.monotonic() when the database was last found failing

    def _register(self, parent: DOMNode, *widgets: Widget, **options: Any) -> list[Widget]:
        """Textual's registration of a screen or widget (and, through it, of their children) with the
        bindings the user unbound taken out first: the one place every node passes before it sees a key."""
        self.keys.drop_unbound(widgets)
        return super()._register(parent, *widgets, **options)

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver for the platform; on a Linux terminal, the one that ends the console quietly when
        its terminal goes away without a SIGHUP reaching it (:mod:`itsm_tui.terminal`)."""
        driver = super().get_driver_class()
        from textual.drivers.linux_driver import LinuxDriver

        if driver is LinuxDriver:
            from itsm_tui.terminal import TerminalDriver

            return TerminalDriver
        return driver

    def on_mount(self) -> None:
        if self.run_scheduler and self.config.jobs_in_consoles:
            self._mounted_at = time.monotonic()
            self.set_timer(min(self.SCHEDULER_SETUP, self.SCHEDULER_DELAY), self._start_scheduler)
        # The inbox's count and the notification watcher once the first frame (the queue's rows) is drawn.
        self.call_after_refresh(self._after_first_frame)

    def _after_first_frame(self) -> None:
        from itsm_tui.push import NotificationWatcher

        self.refresh_unread()
        self.watcher = NotificationWatcher(
            self.db,
            self.actor.id,
            on_new=lambda rows, unread: self.call_from_thread(self.show_notifications, rows, unread),
            # The watcher's own checks find a loss and the way back like any other database work: the
            # same toast once per loss, and the status line's flag set and cleared in one place.
            on_connection=lambda ok: self.call_from_thread(self.database_ok if ok else self.database_lost),
        )
        self.watcher.start()
        self._settle_memory()

    def _start_scheduler(self) -> None:
        from itsm_tui.scheduler import make_scheduler

        # On the app's own loop; the scan itself runs in a thread, catching up once the queue shows.
        waited = time.monotonic() - self._mounted_at
        self.scheduler = make_scheduler(
            self.db,
            self.config,
            first_run_after=max(0.0, self.SCHEDULER_DELAY - waited),
            on_outcome=self.job_outcome,
        )
        self.scheduler.start()

    # A full pass of Python's cyclic garbage collector stops the console for 30-80 ms: mid-scroll, a visible
    # stall. What exists once the first screen is up (modules, mappers, styles, widgets) lives as long as
    # the console and is kept out of those passes; the full passes themselves wait until the keyboard has
    # been quiet for a moment (or a minute has gone by). Young objects are still collected as usual.
    QUIET_BEFORE_COLLECT = 2.0
    COLLECT_AT_LEAST_EVERY = 60.0

    def _settle_memory(self) -> None:
        gc.freeze()
        self._gc_thresholds = gc.get_threshold()
        first, second, _ = self._gc_thresholds
        gc.set_threshold(first, second, 1_000_000)  # no full pass of its own accord
        self._last_key = self._last_collect = time.monotonic()
        self.set_interval(1.0, self._collect_when_quiet)

    def _collect_when_quiet(self) -> None:
        now = time.monotonic()
        typed_since = self._last_key > self._last_collect
        quiet_now = typed_since and now - self._last_key >= self.QUIET_BEFORE_COLLECT
        if quiet_now or now - self._last_collect >= self.COLLECT_AT_LEAST_EVERY:
            gc.collect()
            release_free_memory()
            self._last_collect = time.monotonic()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._last_key = time.monotonic()
        await super().on_event(event)

    def on_unmount(self) -> None:
        if hasattr(self, "_gc_thresholds"):
            gc.set_threshold(*self._gc_thresholds)
            gc.unfreeze()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if self.watcher is not None:
            self.watcher.stop()

    def show_notifications(self, rows: list[NotificationRow], unread: int) -> None:
        """Toast a new notification (user text shown literally) and update the unread count; several
        arriving at once (a job's run, a console catching up) are summed up in one toast."""
        if len(rows) == 1:
            row = rows[0]
            self.notify(
                strip_control(row.message),
                title=row.kind.replace("_", " "),
                severity=SEVERITIES.get(row.kind, "information"),
                markup=False,
                timeout=8,
            )
        elif rows:
            counts: dict[str, int] = {}
            for row in rows:
                counts[row.kind] = counts.get(row.kind, 0) + 1
            self.toast_summary(counts)
        self.unread = unread

    def toast_summary(self, counts: dict[str, int], word: str = "new", total: int | None = None) -> None:
        """One toast for many notifications: how many of each kind, and the key that opens the inbox."""
        from itsm_tui.services import notifications

        inbox = key_in_force(self.screen, "go.inbox")
        where = f" — {inbox} opens the inbox" if inbox else " — the inbox lists them"
        worst = max(counts, key=lambda kind: SEVERITY_ORDER.get(kind, 0))
        self.notify(
            notifications.summary(counts, word, total) + where,
            title="Notifications",
            severity=SEVERITIES.get(worst, "information"),
            markup=False,
            timeout=10,
        )

    # ------------------------------------------------------------------ failed workers

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker failure nobody dealt with ends here: the app's own workers' and, passed on by
        :class:`~itsm_tui.screens.common.WorkerErrorsToApp`, those of the screens. The console says what
        went wrong and goes on; nothing a worker raises quits it."""
        if event.state == WorkerState.SUCCESS:
            self.database_ok(since_lost=True)
            return
        if event.state != WorkerState.ERROR:
            return
        worker = event.worker
        error = worker.error
        if error is None or isinstance(error, ReadCancelled):  # stopped on purpose: no longer wanted
            return
        message = failure_message(error)
        if message is not None:
            log.warning(
                "worker %s of %s (group %s): database failure: %s",
                worker.name,
                type(worker.node).__name__,
                worker.group,
                error,
            )
            self.database_failed(error, message)
        elif isinstance(error, ServiceError):  # a refusal the screen did not show in place
            self.notify(strip_control(str(error)) or type(error).__name__, severity="warning", markup=False)
        else:
            log.exception(
                "worker %s of %s (group %s) failed",
                worker.name,
                type(worker.node).__name__,
                worker.group,
                exc_info=error,
            )
            self.notify(
                f"Something went wrong ({type(error).__name__}); the details were logged.",
                severity="error",
                markup=False,
                timeout=8,
            )

    def database_failed(self, error: BaseException, message: str | None = None) -> None:
        """Say what a database failure means for the agent, in the desk's words: a lock another program
        holds is a toast (the database is there; try again); anything else marks it unreachable."""
        message = message or failure_message(error) or UNREACHABLE_MESSAGE
        if database_busy(error):
            self.notify(message, title="Database busy", severity="warning", markup=False, timeout=8)
        else:
            self.database_lost()

    def database_lost(self) -> None:
        """A worker or the notification watcher found the database failing: the status line says so until
        some database work succeeds again (the notification watcher's next good check, a screen's read or
        save, a job's run). The toast comes once per loss, not for every poll that fails."""
        if self.watcher is not None:
            self.watcher.recheck()  # so that its next good check reports the way back
        self._lost_at = time.monotonic()
        if self.connected:
            self.connected = False
            self.notify(UNREACHABLE_MESSAGE, severity="error", markup=False)

    def database_ok(self, since_lost: bool = False) -> None:
        """Some database work succeeded: the database is reachable again. ``since_lost``: only if a
        session of the console's ended well after the loss was found (a worker that read no table, such
        as a form's preview, proves nothing; one that failed before the loss was found neither)."""
        if since_lost and self.db.last_success <= self._lost_at:
            return
        if not self.connected:
            self.connected = True
            self.notify("The database is reachable again.", markup=False, timeout=4)

    def job_outcome(self, what: str, error: Exception | None) -> None:
        """After each run of a scheduler job (on the app's loop): a failure shows in the status line until
        the job's next run goes through. A lost database is the status line's own warning; a lock another
        program holds, or a fault of the program (its details logged), is named with the job."""
        failing = dict(self._failing_jobs)
        if error is None:
            failing.pop(what, None)
            self.database_ok(since_lost=True)
        elif failure_message(error) is not None and not database_busy(error):
            failing.pop(what, None)
            self.database_lost()
        else:
            if database_busy(error):
                failing[what] = "database busy"
            else:
                log.error("%s failed", what, exc_info=error)
                failing[what] = "failing, see the log"
        self._failing_jobs = failing
        self.job_trouble = "; ".join(f"{job} {state}" for job, state in sorted(failing.items()))

    @work(thread=True, exclusive=True, group="unread", exit_on_error=False)
    def refresh_unread(self) -> None:
        from itsm_tui.services import notifications

        with self.db.read_session() as session:  # a failure: on_worker_state_changed
            count = notifications.unread_count(session, self.actor.id)
            kinds = notifications.unread_kinds(session, self.actor.id) if count else {}
        self.call_from_thread(self._unread_at_start, count, kinds)

    def _unread_at_start(self, count: int, kinds: dict[str, int]) -> None:
        """The unread count; what waits in the inbox at start-up is one toast, however many."""
        self.unread = count
        if kinds:
            self.toast_summary(kinds, "unread", count)

    def action_help(self) -> None:
        from itsm_tui.screens.help import HelpScreen  # loaded when first asked for, not for the first frame

        self.push_screen(HelpScreen(self.screen))

    def open_ticket(self, ticket_id: int, action: str | None = None) -> None:
        """Open a ticket's screen; ``action`` (e.g. "assign") starts one of its actions at once."""
        from itsm_tui.screens.ticket import TicketScreen

        screen = TicketScreen(ticket_id)
        self.push_screen(screen)
        if action:
            screen.call_after_refresh(screen.run_action, action)

    @work(thread=True, group="open-change", exit_on_error=False)
    def open_change(self, change_id: int) -> None:
        """Open a change's screen by its id (a notification knows the id, the screen the reference)."""
        from itsm_tui.services import changes

        with self.db.read_session() as session:  # a failure goes to on_worker_state_changed
            ref = changes.ref_of(session, change_id)
        self.call_from_thread(self._show_change, ref)

    def _show_change(self, ref: str | None) -> None:
        if ref is None:
            self.notify("That change no longer exists.", markup=False)
            return
        from itsm_tui.screens.change import ChangeScreen

        self.push_screen(ChangeScreen(ref))

    def change_step_form(self, action: str, view: ChangeView, reload: Callable[[], object]) -> Screen[Any]:
        """The form that edits, withdraws or cancels the change shown (``screens/change_edit.py``) for the
        change screen: that module builds on the change screen's own forms, so the screen asks here."""
        from itsm_tui.screens.change_edit import step_form

        return step_form(self, action, view, reload)

    def open_problem(self, ref: str) -> None:
        """Open a problem's screen by its reference."""
        from itsm_tui.screens.problems import ProblemScreen

        self.push_screen(ProblemScreen(ref))

    def open_article(self, ref: str) -> None:
        """Open a knowledge article's screen by its reference."""
        from itsm_tui.screens.knowledge import ArticleScreen

        self.push_screen(ArticleScreen(ref))

    @work(thread=True, group="open-record", exit_on_error=False)
    def open_record(self, entity_type: str, entity_id: int) -> None:
        """Open a problem or an article by its id (what a notification knows)."""
        from itsm_tui.services import audit

        with self.db.read_session() as session:  # a failure goes to on_worker_state_changed
            ref = audit.names(session, [(entity_type, entity_id)])[(entity_type, entity_id)]
        if ref == f"{entity_type} {entity_id}":  # no such record (any more)
            self.call_from_thread(self.notify, f"That {entity_type} no longer exists.", markup=False)
            return
        opener = self.open_problem if entity_type == "problem" else self.open_article
        self.call_from_thread(opener, ref)

    def open_queue(self, view: str, filter_text: str = "") -> None:
        """Switch to the queue showing a view with a filter (e.g. the tickets behind a KPI figure)."""
        self.switch_mode("queue")
        from itsm_tui.screens.queue import QueueScreen

        screen = self.screen
        if isinstance(screen, QueueScreen):
            screen.show_filtered(view, filter_text)

    def new_ticket(self) -> None:
        """The new-ticket form; the ticket it creates opens, for the agent to go on working it."""
        from itsm_tui.screens.forms import CreatedTicket, NewTicketForm

        def created(result: object) -> None:
            if isinstance(result, CreatedTicket):
                self.open_ticket(result.id)

        self.push_screen(NewTicketForm(), created)
