"""How commands print: user text made safe for the terminal, local times, JSON values and plain tables."""

from __future__ import annotations

from datetime import datetime


def plain(text: str) -> str:
    """User text with terminal control characters made visible instead of acted on."""
    from itsm_tui.text import strip_control

    return strip_control(text)


def local(instant: datetime | None, tz: str) -> str:
    if instant is None:
        return "-"
    from zoneinfo import ZoneInfo

    return instant.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    if not rows:
        print("(none)")
        return
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())
