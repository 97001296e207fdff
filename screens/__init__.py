"""Textual screens of the console. Screens call services and render their results; no SQL here."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.screen import Screen

ScreenFactory = Callable[[], "Screen[Any]"]

MODE_TITLES = {
    "queue": "Queue",
    "calendar": "Change calendar",
    "kpi": "KPI board",
    "inbox": "Inbox",
    "workload": "Workload",
    "problems": "Problems",
    "knowledge": "Knowledge",
}
_MODE_SCREENS = {
    "queue": ("itsm_tui.screens.queue", "QueueScreen"),
    "calendar": ("itsm_tui.screens.calendar", "CalendarScreen"),
    "kpi": ("itsm_tui.screens.kpi", "KpiScreen"),
    "inbox": ("itsm_tui.screens.inbox", "InboxScreen"),
    "workload": ("itsm_tui.screens.workload", "WorkloadScreen"),
    "problems": ("itsm_tui.screens.problems", "ProblemsScreen"),
    "knowledge": ("itsm_tui.screens.knowledge", "KnowledgeScreen"),
}


def mode_screens() -> dict[str, str | ScreenFactory]:
    """Factories for the app's top-level modes (typed as ``App.MODES``): each screen's module is imported
    when the screen is first shown, so start-up loads only the queue (the charts of the KPI board alone take
    a tenth of a second)."""

    def factory(module: str, name: str) -> ScreenFactory:
        return lambda: getattr(import_module(module), name)()

    return {mode: factory(module, name) for mode, (module, name) in _MODE_SCREENS.items()}
