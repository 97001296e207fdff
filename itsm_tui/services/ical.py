"""The change calendar as an RFC 5545 iCalendar file that calendar programs import.

One VEVENT per change (SUMMARY, DESCRIPTION, LOCATION = its services, STATUS, CATEGORIES = its type), one per
blackout and one per maintenance-window occurrence, all as UTC instants (so no VTIMEZONE is needed). A change
that ran is written at its actual start and end (the planned ones in X-ITSM-PLANNED-START/-END), and once it
is over its outcome leads its SUMMARY (``CHG0000012 [failed] ...``) and is X-ITSM-OUTCOME. Written
here rather than with a library: the format needs only escaping, line folding at 75 octets and CRLF line ends,
and the console gains no dependency.

A window is written occurrence by occurrence, over the exported span only (at most
``conflicts.MAX_OCCURRENCES`` per window), from the expansion the conflict check uses, not as one VEVENT with
an RRULE: RFC 5545 gives every instance of a recurring event the exact duration of the first (with DTEND, and
with DURATION:PT240M alike), so a client would show the Sunday 02:00 Europe/Berlin window of 240 minutes on
the spring-forward day as 01:00-05:00 UTC where it ends at 06:00 local, 04:00 UTC; and clients expand rules
in their own ways (khal through dateutil, Thunderbird through libical: WKST, BYSETPOS, a start inside the
gap). UTC instants read the same in every client and are the instants the conflict check judges by.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from itsm_tui.models import Change, User
from itsm_tui.services import changes
from itsm_tui.text import strip_control

PRODID = "-//itsm-tui//Change calendar//EN"
UID_DOMAIN = "itsm-tui"

# The RFC's event STATUS has three values; the exact state goes into X-ITSM-STATE.
STATUS = {
    "draft": "TENTATIVE",
    "submitted": "TENTATIVE",
    "assessed": "TENTATIVE",
    "rejected": "CANCELLED",
    "withdrawn": "CANCELLED",
    "cancelled": "CANCELLED",
}


@dataclass(frozen=True)
class ExportSummary:
    changes: int
    blackouts: int
    windows: int

    @property
    def events(self) -> int:
        return self.changes + self.blackouts + self.windows


def escape(text: str | None) -> str:
    """A TEXT value: backslash, semicolon, comma and newline escaped; control characters made visible (ESC as
    ``^[``) and tabs made spaces, so that no control character but the escaped newline is written."""
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n")  # a CR line end is no ^M
    value = strip_control(lines).replace("\t", " ")
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str) -> str:
    """A content line folded into lines of at most 75 octets (never splitting a UTF-8 character)."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        width = len(char.encode())
        limit = 75 if not out else 74  # continuation lines begin with a space
        if size + width > limit:
            out.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    out.append("".join(current))
    return "\r\n ".join(out)


def _stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _event(props: list[tuple[str, str]]) -> list[str]:
    return ["BEGIN:VEVENT", *(fold(f"{name}:{value}") for name, value in props), "END:VEVENT"]


def export(
    session: Session, start: datetime, end: datetime, *, now: datetime | None = None
) -> tuple[str, ExportSummary]:
    """The calendar for [start, end) as iCalendar text (CRLF line ends) and what it holds."""
    now = now or datetime.now(UTC)
    data = changes.calendar(session, start, end, limit=100_000)
    stamp = _stamp(now)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:Change calendar",
    ]
    details = _details(session, [row.id for row in data.changes])
    for row in data.changes:
        if row.planned_start is None or row.planned_end is None:
            continue
        start, end = row.shown_start or row.planned_start, row.shown_end or row.planned_end
        outcome = f"[{row.outcome}] " if row.outcome else ""
        lines += _event(
            [
                ("UID", f"{row.ref}@{UID_DOMAIN}"),
                ("DTSTAMP", stamp),
                ("DTSTART", _stamp(start)),
                ("DTEND", _stamp(end)),
                ("SEQUENCE", str(max(0, row.version - 1))),
                ("SUMMARY", escape(f"{row.ref} {outcome}{row.title}")),
                ("DESCRIPTION", escape(_description(row, details.get(row.id, {})))),
                ("LOCATION", escape(", ".join(row.services))),
                ("STATUS", STATUS.get(row.state, "CONFIRMED")),
                ("CATEGORIES", escape(row.change_type)),
                ("TRANSP", "OPAQUE"),
                ("X-ITSM-STATE", escape(row.state)),
                ("X-ITSM-RISK", escape(row.risk)),
                ("X-ITSM-PLANNED-START", _stamp(row.planned_start)),
                ("X-ITSM-PLANNED-END", _stamp(row.planned_end)),
                *([("X-ITSM-OUTCOME", escape(row.outcome))] if row.outcome else []),
            ]
        )
    for blackout in data.blackouts:
        scope = blackout.service or "all services"
        lines += _event(
            [
                ("UID", f"blackout-{blackout.id}@{UID_DOMAIN}"),
                ("DTSTAMP", stamp),
                ("DTSTART", _stamp(blackout.start)),
                ("DTEND", _stamp(blackout.end)),
                ("SUMMARY", escape(f"Change freeze: {blackout.name}")),
                ("DESCRIPTION", escape(f"No changes to {scope} except emergencies. {blackout.reason or ''}")),
                ("LOCATION", escape(scope)),
                ("STATUS", "CONFIRMED"),
                ("CATEGORIES", "blackout"),
                ("TRANSP", "OPAQUE"),
            ]
        )
    for occurrence in data.occurrences:
        lines += _event(
            [
                ("UID", f"window-{occurrence.window_id}-{_stamp(occurrence.start)}@{UID_DOMAIN}"),
                ("DTSTAMP", stamp),
                ("DTSTART", _stamp(occurrence.start)),
                ("DTEND", _stamp(occurrence.end)),
                ("SUMMARY", escape(f"Maintenance window: {occurrence.name}")),
                ("DESCRIPTION", escape(f"Changes to {occurrence.service} may be made in this window.")),
                ("LOCATION", escape(occurrence.service)),
                ("STATUS", "CONFIRMED"),
                ("CATEGORIES", "maintenance-window"),
                ("TRANSP", "TRANSPARENT"),
            ]
        )
    lines.append("END:VCALENDAR")
    summary = ExportSummary(
        changes=sum(1 for r in data.changes if r.planned_start and r.planned_end),
        blackouts=len(data.blackouts),
        windows=len(data.occurrences),
    )
    return "\r\n".join(lines) + "\r\n", summary


def _details(session: Session, ids: list[int]) -> dict[int, dict]:
    result: dict[int, dict] = {}
    for offset in range(0, len(ids), 900):
        stmt = (
            select(Change.id, Change.description, Change.implementation_plan, Change.backout_plan, User.login)
            .outerjoin(User, User.id == Change.requested_by_id)
            .where(Change.id.in_(ids[offset : offset + 900]))
        )
        for row in session.execute(stmt):
            result[row.id] = {
                "description": row.description,
                "implementation_plan": row.implementation_plan,
                "backout_plan": row.backout_plan,
                "requested_by": row.login,
            }
    return result


def _description(row: changes.ChangeRow, detail: dict) -> str:
    outcome = f" (outcome: {row.outcome.replace('_', ' ')})" if row.outcome else ""
    parts = [
        f"{row.change_type.capitalize()} change, {row.state.replace('_', ' ')}{outcome}, {row.risk} risk.",
        f"Services: {', '.join(row.services) or '-'}.",
        f"Implementer: {row.implementer or '-'}. Requested by: {detail.get('requested_by') or '-'}.",
    ]
    if detail.get("description"):
        parts.append(detail["description"])
    if detail.get("implementation_plan"):
        parts.append("Implementation plan:\n" + detail["implementation_plan"])
    if detail.get("backout_plan"):
        parts.append("Back-out plan:\n" + detail["backout_plan"])
    return "\n\n".join(parts)
