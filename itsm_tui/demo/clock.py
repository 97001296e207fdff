"""The business clock of the demo's bulk work: :class:`~itsm_tui.services.sla.SpanClock` behind the engine's
:class:`~itsm_tui.services.sla.Clock` protocol.

The demo measures its targets with the engine's own :func:`~itsm_tui.services.sla.compute_targets`; only the
clock under it is the precomputed one, which answers by binary search instead of walking days. Every demo
instant is a whole second, so the epoch arithmetic of the span clock is exact (whole numbers well within a
float's 53 bits) and its answers equal the day-walking :class:`~itsm_tui.services.sla.BusinessClock`'s to
the microsecond.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from itsm_tui.config import Calendar, DeskConfig
from itsm_tui.services.sla import BusinessClock, SpanClock, clock_for

_ZERO = timedelta()


class EpochClock:
    """A :class:`SpanClock` as an ``sla.Clock``: datetimes in and out, epoch seconds inside.

    Outside its span (or for a calendar that never opens there) the span clock itself falls back to the
    day-walking clock. Adding nothing is asked of the day-walking clock, whose answer for an instant in
    closed time is the next opening (the engine never adds nothing: every target is at least a minute).
    """

    def __init__(self, calendar: Calendar, first: date, last: date) -> None:
        self.business: BusinessClock = clock_for(calendar)
        self.span = SpanClock(self.business, first, last)
        self.always_open = calendar.always_open

    def add(self, start: datetime, amount: timedelta | float) -> datetime:
        seconds = amount.total_seconds() if isinstance(amount, timedelta) else float(amount)
        if self.always_open:
            return start + timedelta(seconds=seconds)
        if seconds <= 0:
            return self.business.add(start, seconds)
        return datetime.fromtimestamp(self.span.add(start.timestamp(), seconds), UTC)

    def elapsed_delta(self, start: datetime, end: datetime) -> timedelta:
        if end <= start:
            return _ZERO
        if self.always_open:
            return end - start
        return timedelta(seconds=self.span.elapsed(start.timestamp(), end.timestamp()))

    # Epoch-second forms, for the demo's own arithmetic on whole seconds.

    def add_seconds(self, start: int, seconds: float) -> int:
        """``start`` plus ``seconds`` of business time, as whole epoch seconds (``seconds`` > 0)."""
        return round(self.span.add(float(start), seconds))

    def elapsed_seconds(self, start: int, end: int) -> float:
        return self.span.elapsed(float(start), float(end))


def epoch_clocks(config: DeskConfig, first: date, last: date) -> dict[str, EpochClock]:
    """One :class:`EpochClock` per configured calendar over the local days ``first`` to ``last``."""
    return {name: EpochClock(calendar, first, last) for name, calendar in config.calendars.items()}
