"""Textual screens of the console. Screens call services and render their results; no SQL here."""

from __future__ import annotations

MODE_TITLES = {"queue": "Queue", "calendar": "Change calendar", "kpi": "KPI board", "inbox": "Inbox"}


def mode_screens() -> dict[str, str | object]:
    """Factories for the app's top-level modes (imported lazily, so start-up loads only the first)."""
    from screens.calendar import CalendarScreen
    from screens.inbox import InboxScreen
    from screens.kpi import KpiScreen
    from screens.queue import QueueScreen

    return {"queue": QueueScreen, "calendar": CalendarScreen, "kpi": KpiScreen, "inbox": InboxScreen}
