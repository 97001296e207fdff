"""Whatever a worker raises ends in the app's one handler: the console says so and keeps running.

Textual tells only the node that started a worker about its failure; the screens pass it on to the app
(``WorkerErrorsToApp``), modal ones included, and the app's own workers reach it directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from pilot_helpers import settle, wait_until
from sqlalchemy.exc import OperationalError
from textual.app import ComposeResult
from textual.screen import ModalScreen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from itsm_tui.app import ItsmApp
from itsm_tui.db import ReadCancelled
from itsm_tui.screens.common import DeskScreen, WorkerErrorsToApp
from itsm_tui.services.errors import ServiceError


class Dialog(WorkerErrorsToApp, ModalScreen[None]):
    """A modal screen of the kind the forms are."""

    def compose(self) -> ComposeResult:
        yield Static("dialog")


class ShowsItsOwn(DeskScreen):
    """A screen that shows one kind of failure itself, and keeps it from the console's handler."""

    def __init__(self) -> None:
        super().__init__()
        self.handled: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("own")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.group == "in-place":
            self.handled.append(str(event.worker.error))
            event.prevent_default()  # the base class then does not pass it on


class Toasts:
    """The app's notifications, recorded as (message, severity)."""

    def __init__(self, app: ItsmApp, monkeypatch: pytest.MonkeyPatch) -> None:
        self.shown: list[tuple[str, str]] = []
        notify = app.notify

        def recording(message: str, **kwargs) -> None:
            self.shown.append((message, kwargs.get("severity", "information")))
            notify(message, **kwargs)

        monkeypatch.setattr(app, "notify", recording)

    def saying(self, text: str) -> list[tuple[str, str]]:
        return [toast for toast in self.shown if text in toast[0]]


def raising(error: BaseException) -> Callable[[], None]:
    def work() -> None:
        raise error

    return work


@pytest.fixture
def console(staff_sqlite, config):
    db, actors = staff_sqlite
    return ItsmApp(db, config, actors["lead"], run_scheduler=False)


async def start(pilot) -> DeskScreen:
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, DeskScreen), "the queue")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, DeskScreen)
    return screen


async def test_a_programming_error_is_logged_and_shown_and_the_console_stays_up(console, monkeypatch, caplog):
    toasts = Toasts(console, monkeypatch)
    caplog.set_level(logging.ERROR, logger="itsm.app")
    async with console.run_test(size=(100, 30)) as pilot:
        screen = await start(pilot)
        failing = raising(KeyError("no-such-row"))
        screen.run_worker(failing, name="load_rows", thread=True, exit_on_error=False)
        await wait_until(pilot, lambda: toasts.saying("logged"), "the toast")
        message = "Something went wrong (KeyError); the details were logged."
        assert toasts.saying("KeyError") == [(message, "error")]
        [record] = [r for r in caplog.records if r.name == "itsm.app"]
        assert "load_rows" in record.getMessage() and "QueueScreen" in record.getMessage()
        assert record.exc_info is not None and isinstance(record.exc_info[1], KeyError)
        assert console.connected  # not a database failure
        await pilot.press("4")  # the console still takes keys
        await settle(pilot)
        assert console.is_running and console.return_code is None


async def test_failures_of_modal_screens_and_of_the_app_itself_reach_the_handler(console, monkeypatch):
    toasts = Toasts(console, monkeypatch)
    async with console.run_test(size=(100, 30)) as pilot:
        await start(pilot)
        dialog = Dialog()
        await console.push_screen(dialog)
        dialog.run_worker(raising(ServiceError("From the dialog.")), thread=True, exit_on_error=False)
        console.run_worker(raising(ServiceError("From the app.")), thread=True, exit_on_error=False)
        await wait_until(pilot, lambda: len(toasts.shown) >= 2, "both toasts")
        assert sorted(toasts.shown) == [("From the app.", "warning"), ("From the dialog.", "warning")]
        assert console.is_running


async def test_a_refusal_nobody_showed_is_a_warning_with_its_message(console, monkeypatch):
    toasts = Toasts(console, monkeypatch)
    async with console.run_test(size=(100, 30)) as pilot:
        screen = await start(pilot)
        refusal = ServiceError("INC0000001 is closed; reopen it first.\x1b[31m")
        screen.run_worker(raising(refusal), thread=True, exit_on_error=False)
        await wait_until(pilot, lambda: toasts.shown, "the toast")
        shown = "INC0000001 is closed; reopen it first.^[[31m"  # the escape shown, not obeyed
        assert toasts.shown == [(shown, "warning")]
        assert console.connected


async def test_a_lost_database_shows_in_the_status_line_until_the_watcher_reaches_it(console, monkeypatch):
    toasts = Toasts(console, monkeypatch)
    async with console.run_test(size=(100, 30)) as pilot:
        screen = await start(pilot)
        states: list[bool] = []
        screen.watch(console, "connected", lambda value: states.append(value), init=False)
        lost = OperationalError("SELECT 1", {}, Exception("unable to open database file"))
        screen.run_worker(raising(lost), thread=True, exit_on_error=False)
        await wait_until(pilot, lambda: states, "the connection state")
        assert states[0] is False
        assert toasts.saying("cannot be reached") == [("The database cannot be reached; retrying.", "error")]
        # The database is there all along: the watcher's next check says so, and the status line clears.
        await wait_until(pilot, lambda: console.connected, "the way back")
        screen.run_worker(raising(lost), thread=True, exit_on_error=False)
        await wait_until(pilot, lambda: len(toasts.saying("cannot be reached")) == 2, "the next loss's toast")


async def test_a_read_stopped_on_purpose_and_a_failure_shown_in_place_are_not_reported(console, monkeypatch):
    toasts = Toasts(console, monkeypatch)
    async with console.run_test(size=(100, 30)) as pilot:
        await start(pilot)
        screen = ShowsItsOwn()
        await console.push_screen(screen)
        screen.run_worker(raising(ReadCancelled()), thread=True, exit_on_error=False)
        refusal = raising(ServiceError("shown in place"))
        screen.run_worker(refusal, group="in-place", thread=True, exit_on_error=False)
        await wait_until(pilot, lambda: screen.handled, "the screen's own handler")
        await settle(pilot)
        assert screen.handled == ["shown in place"]
        assert toasts.shown == [] and console.connected
