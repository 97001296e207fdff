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
    """Rows in aligned columns. Every cell is made one line with no control characters, whatever it holds:
    the commands pass stored text through :func:`plain` themselves, and this keeps a cell that was missed
    from acting on the terminal or breaking the table."""
    if not rows:
        print("(none)")
        return
    from itsm_tui.text import strip_control

    cells = [[strip_control(str(cell), single_line=True) for cell in row] for row in [headers, *rows]]
    widths = [max(len(x) for x in column) for column in zip(*cells, strict=False)]
    for row in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())
