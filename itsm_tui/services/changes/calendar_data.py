"""What the change calendar draws for a range, and a cheap fingerprint for its live refresh."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itsm_tui.models import Blackout, Change, MaintenanceWindow
from itsm_tui.services import conflicts
from itsm_tui.services.changes.reading import ROW_COLUMNS, ChangeRow, _change_row
from itsm_tui.services.conflicts import Conflict, Planned


@dataclass
class CalendarData:
    """What the calendar shows for [start, end): changes, window occurrences, blackouts, conflicts."""

    start: datetime
    end: datetime
    changes: list[ChangeRow]
    occurrences: list[conflicts.Occurrence]
    blackouts: list[conflicts.BlackoutSpec]
    conflicts: list[Conflict]
    truncated: bool = False

    @property
    def conflicted(self) -> dict[str, str]:
        """ref -> the worst severity of its conflicts."""
        worst: dict[str, str] = {}
        for c in self.conflicts:
            for ref in c.refs:
                if (
                    ref not in worst
                    or conflicts.SEVERITY_ORDER[c.severity] < conflicts.SEVERITY_ORDER[worst[ref]]
                ):
                    worst[ref] = c.severity
        return worst


def calendar(
    session: Session, start: datetime, end: datetime, *, limit: int = 5000, same_service: str = "warning"
) -> CalendarData:
    """Everything the calendar draws for a range: each change read once (two queries) serves both the rows
    and the conflict check among the live ones; the window occurrences come from the expansion the conflict
    check and the .ics export use (:func:`conflicts.occurrences`), over the range only. ``same_service`` is
    the severity of an overlap on different CIs of one service (config.changes.same_service_severity)."""
    in_range = [Change.planned_start < end, Change.planned_end > start]
    rows = session.execute(conflicts.changes_select(*ROW_COLUMNS).where(*in_range).limit(limit + 1)).all()
    truncated = len(rows) > limit
    targets = conflicts.targets_where(session, in_range)
    change_rows: list[ChangeRow] = []
    planned: list[Planned] = []
    for row in rows[:limit]:
        mine = targets.get(row.id, ())
        change_rows.append(_change_row(row, {service for service, _ in mine}))
        if row.state in conflicts.LIVE_STATES:
            planned.append(conflicts.planned_from(row, mine))
    windows = conflicts.window_specs(session)
    blackouts = conflicts.blackout_specs(session, start, end)
    return CalendarData(
        start=start,
        end=end,
        changes=change_rows,
        occurrences=conflicts.expand(windows, start, end),
        blackouts=blackouts,
        conflicts=conflicts.find_conflicts(planned, windows, blackouts, same_service=same_service),
        truncated=truncated,
    )


def fingerprint(session: Session) -> tuple:
    """A cheap summary that changes whenever a change, window or blackout does (for live refresh)."""
    changes_now = session.execute(select(func.count(), func.max(Change.updated_at), func.sum(Change.version)))
    blackouts_now = session.execute(select(func.count(), func.max(Blackout.id), func.max(Blackout.ends_at)))
    return (
        tuple(changes_now.one()),
        session.scalar(select(func.count()).select_from(MaintenanceWindow)),
        tuple(blackouts_now.one()),
    )
