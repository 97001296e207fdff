"""Driving the console with Textual's Pilot: wait on the app's work, not on time, and read what the terminal
shows as text.

The screens do their database work in thread workers and hand the results back with ``call_from_thread``;
a worker only finishes once the app has run those callbacks. So waiting for the workers, then for the
messages they posted and a frame, leaves the app in a state that can be looked at. What arrives from other
threads (the notification watcher) or other processes is waited for with ``wait_until``, which checks its
condition after each round of work and fails with what it waited for once a bound has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection
from time import monotonic

import pytest
from textual._context import visible_screen_stack
from textual.app import App
from textual.pilot import Pilot
from textual.worker import Worker, WorkerCancelled, WorkerError, WorkerFailed

WAIT_SECONDS = 30.0
"""How long any wait may take before the test fails (generous: test workers share the machine)."""


async def _finished(worker: Worker) -> None:
    with contextlib.suppress(WorkerCancelled, WorkerFailed, WorkerError):
        # Shielded: giving up the wait must not cancel the work. A failed worker is the app's to report.
        await asyncio.shield(worker.wait())


def _running(app: App, except_groups: Collection[str]) -> list[Worker]:
    return [w for w in app.workers if not w.is_finished and w.group not in except_groups]


async def settle(pilot: Pilot, timeout: float = WAIT_SECONDS, except_groups: Collection[str] = ()) -> None:
    """Wait until the app's workers have finished, with those their results started, then until the
    messages they posted are handled and the screen is laid out and painted.

    ``except_groups`` names worker groups not to wait for (work a test holds up on purpose)."""
    app = pilot.app
    deadline = monotonic() + timeout
    while running := _running(app, except_groups):
        remaining = deadline - monotonic()
        if remaining <= 0:
            names = ", ".join(sorted({f"{worker.group}/{worker.name}" for worker in running}))
            raise AssertionError(f"the app's work did not finish within {timeout:g} s: {names}")
        waits = [asyncio.ensure_future(_finished(worker)) for worker in running]
        _, late = await asyncio.wait(waits, timeout=remaining)
        for wait in late:
            wait.cancel()
        await pilot.pause()
    await pilot.pause()


async def wait_until(
    pilot: Pilot, predicate: Callable[[], object], what: str = "the condition", timeout: float = WAIT_SECONDS
) -> None:
    """Wait until ``predicate()`` holds, letting the app work (workers, messages, a frame) before each check.

    For results that come from a thread or another process, where there is no worker to wait for. Fails
    naming ``what`` once ``timeout`` seconds have passed."""
    deadline = monotonic() + timeout
    await settle(pilot, timeout)
    while not predicate():
        remaining = deadline - monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await settle(pilot, remaining)


def screen_lines(app: App) -> list[str]:
    """The terminal's lines as text, as the app paints them: the current screen with what shows of the
    screens beneath a modal one, and the notifications over it."""
    visible_screen_stack.set(app._background_screens)  # what a translucent screen lets through
    return [strip.text for strip in app.screen._compositor.render_strips()]


def screen_text(app: App) -> str:
    """What the terminal shows, as plain text: one line of text a line."""
    return "\n".join(screen_lines(app))


def squash(text: str) -> str:
    """Text without white space: it compares whatever the lines break or the columns pad."""
    return "".join(text.split())


def shows(app: App, text: str) -> bool:
    """Whether the terminal shows ``text`` (white space and line breaks ignored)."""
    return squash(text) in squash(screen_text(app))


async def wait_shown(pilot: Pilot, text: str, timeout: float = WAIT_SECONDS) -> None:
    """Wait until the terminal shows ``text`` (white space and line breaks ignored)."""
    await wait_until(pilot, lambda: shows(pilot.app, text), what=f"{text!r} on the screen", timeout=timeout)


async def type_text(pilot: Pilot, text: str) -> None:
    """Type ``text`` key by key (a newline is Enter)."""
    for char in text:
        await pilot.press("enter" if char == "\n" else char)


async def type_into(pilot: Pilot, text: str) -> None:
    """Type ``text`` into the field that has the focus as a fast typist (or a paste) does: the keys sent one
    after the other as the terminal driver delivers them, then one wait for the screen (Pilot.press waits
    for the whole process to go idle after each key). Only for text that stays in one field: a newline is
    Enter, which a text area takes as a line break."""
    from textual import events

    driver = pilot.app._driver
    assert driver is not None
    for char in text:
        key = "enter" if char == "\n" else ("space" if char == " " else char)
        event = events.Key(key, "\r" if char == "\n" else char)
        event.set_sender(pilot.app)
        driver.send_message(event)
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


class Toasts:
    """The app's notifications, as their messages, in order."""

    def __init__(self, app: App, monkeypatch: pytest.MonkeyPatch) -> None:
        self.shown: list[str] = []
        notify = app.notify

        def recording(message: str, **kwargs) -> None:
            self.shown.append(message)
            notify(message, **kwargs)

        monkeypatch.setattr(app, "notify", recording)
