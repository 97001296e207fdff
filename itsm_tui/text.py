"""Showing user-supplied text literally: terminal control characters become visible, never acted on."""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, and the C1 controls (which some terminals also obey).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return "^" + chr(code + 0x40)  # caret notation: ESC -> ^[
    if code == 0x7F:
        return "^?"
    return f"<U+{code:04X}>"


def strip_control(text: str | None, *, single_line: bool = False) -> str:
    """``text`` with control characters shown in caret notation (ESC as ``^[``).

    With ``single_line`` line ends (CR LF, CR, LF) and tabs become spaces first, for table cells and titles.
    """
    if not text:
        return ""
    if single_line:
        text = text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub(_visible, text)
