"""SLA rules: the business clock, and the response and resolution targets stored on each ticket.

The due and warning instants are kept on the ticket itself (already moved by paused time), so that finding
what became due is an indexed range query: the SLA job (:mod:`itsm_tui.jobs.sla_scan`) does that. Nothing here
touches the database; the clock only reads calendars and sets a ticket's instants.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from itsm_tui.config import Calendar, DeskConfig
from itsm_tui.models import Ticket

_MAX_DAYS = 3 * 366  # a target further than this on a calendar means the calendar has (almost) no hours


class BusinessClock:
    """Adds and measures business time on one calendar, correct across DST, weekends and holidays."""

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self._intervals = lru_cache(maxsize=4096)(self._compute_intervals)

    def _compute_intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working intervals of a local day, as UTC instants."""
        cal = self.calendar
        if cal.is_holiday(day):
            return ()
        spans = cal.hours.get(day.weekday(), ())
        midnight = datetime(day.year, day.month, day.day)
        result = []
        for start_min, end_min in spans:
            start = (midnight + timedelta(minutes=start_min)).replace(tzinfo=cal.zone).astimezone(UTC)
            end = (midnight + timedelta(minutes=end_min)).replace(tzinfo=cal.zone).astimezone(UTC)
            if end > start:
                result.append((start, end))
        return tuple(result)

    def _local_day(self, instant: datetime) -> date:
        return instant.astimezone(self.calendar.zone).date()

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant at which ``seconds`` of business time have passed since ``start``."""
        if self.calendar.always_open:
            return start + timedelta(seconds=seconds)
        remaining = timedelta(seconds=seconds)
        day = self._local_day(start) - timedelta(days=1)  # a DST shift can put the first interval a day early
        for _ in range(_MAX_DAYS):
            for begin, end in self._intervals(day):
                if end <= start:
                    continue
                begin = max(begin, start)
                available = end - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += timedelta(days=1)
        raise ValueError(f"calendar {self.calendar.name!r} has no working time within {_MAX_DAYS} days")

    def elapsed(self, start: datetime, end: datetime) -> float:
        """Business seconds between two instants (0 if ``end`` is not after ``start``)."""
        if end <= start:
            return 0.0
        if self.calendar.always_open:
            return (end - start).total_seconds()
        total = timedelta()
        day = self._local_day(start) - timedelta(days=1)
        last = self._local_day(end) + timedelta(days=1)
        while day <= last:
            for begin, finish in self._intervals(day):
                lo, hi = max(begin, start), min(finish, end)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total.total_seconds()


_CLOCKS: dict[int, BusinessClock] = {}


def clock_for(calendar: Calendar) -> BusinessClock:
    """A shared clock per calendar, so its day cache is reused."""
    key = id(calendar)
    clock = _CLOCKS.get(key)
    if clock is None or clock.calendar is not calendar:
        clock = _CLOCKS[key] = BusinessClock(calendar)
    return clock


def policy_clock(config: DeskConfig, priority: int) -> BusinessClock:
    return clock_for(config.calendars[config.policies[priority].calendar])


def retarget(ticket: Ticket, config: DeskConfig) -> None:
    """Set the ticket's SLA instants from its priority's policy, its original start and its paused time."""
    policy = config.policies[ticket.priority]
    clock = clock_for(config.calendars[policy.calendar])
    paused = ticket.paused_seconds or 0
    start = ticket.opened_at
    response = policy.response_minutes * 60
    resolution = policy.resolution_minutes * 60
    ticket.sla_calendar = policy.calendar
    ticket.response_warn_at = clock.add(start, response * config.warning_ratio + paused)
    ticket.response_due_at = clock.add(start, response + paused)
    ticket.resolution_warn_at = clock.add(start, resolution * config.warning_ratio + paused)
    ticket.resolution_due_at = clock.add(start, resolution + paused)


def pause(ticket: Ticket, now: datetime) -> None:
    """Stop the clocks (the ticket went to pending or was resolved)."""
    if ticket.paused_at is None:
        ticket.paused_at = now


def resume(ticket: Ticket, config: DeskConfig, now: datetime, *, restart: bool = False) -> None:
    """Start the clocks again; the business time spent paused moves the due instants.

    ``restart`` counts everything before ``now`` as paused, so the resolution target starts afresh.
    """
    clock = policy_clock(config, ticket.priority)
    if restart:
        ticket.paused_seconds = int(clock.elapsed(ticket.opened_at, now))
    elif ticket.paused_at is not None:
        ticket.paused_seconds = (ticket.paused_seconds or 0) + int(clock.elapsed(ticket.paused_at, now))
    ticket.paused_at = None
    retarget(ticket, config)


def time_left(ticket: Ticket, config: DeskConfig, now: datetime, target: str = "resolution") -> float | None:
    """Business seconds left until the target is due (negative when overdue), or None if it has stopped."""
    due = ticket.resolution_due_at if target == "resolution" else ticket.response_due_at
    if due is None:
        return None
    if target == "response" and ticket.responded_at is not None:
        return None
    if ticket.cancelled_at is not None and ticket.cancelled_at < due:
        return None  # cancelled in time: nothing is left to meet
    clock = policy_clock(config, ticket.priority)
    moment = ticket.cancelled_at or ticket.paused_at or now  # a cancelled ticket's clock stopped then
    if moment <= due:
        return clock.elapsed(moment, due)
    return -clock.elapsed(due, moment)


def sla_state(ticket: Ticket, now: datetime, target: str = "resolution") -> str:
    """``met``, ``stopped``, ``ok``, ``warning`` or ``breached`` for one target of a ticket."""
    if target == "response":
        warn, due, done = ticket.response_warn_at, ticket.response_due_at, ticket.responded_at
    else:
        warn, due, done = ticket.resolution_warn_at, ticket.resolution_due_at, ticket.resolved_at
    if due is None:
        return "stopped"
    if done is not None:
        return "met" if done <= due else "breached"
    if ticket.cancelled_at is not None:  # the clock stopped: breached if it ran out before the cancel
        return "breached" if ticket.cancelled_at >= due else "stopped"
    moment = ticket.paused_at or now
    if moment >= due:
        return "breached"
    if warn is not None and moment >= warn:
        return "warning"
    return "ok"


class SpanClock:
    """A business clock precomputed over a span of local days, working on epoch seconds.

    Adding and measuring cost a binary search instead of a walk over days, for bulk work (demo data,
    reports). Instants outside the span fall back to the day-walking :class:`BusinessClock`.
    """

    def __init__(self, clock: BusinessClock, first: date, last: date) -> None:
        from bisect import bisect_right

        self._bisect = bisect_right
        self.clock = clock
        self.always_open = clock.calendar.always_open
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.cumulative: list[float] = []
        total = 0.0
        day = first
        while day <= last and not self.always_open:
            for begin, end in clock._intervals(day):
                self.starts.append(begin.timestamp())
                self.ends.append(end.timestamp())
                self.cumulative.append(total)
                total += end.timestamp() - begin.timestamp()
            day += timedelta(days=1)
        self.total = total

    def _position(self, instant: float) -> float | None:
        """Business seconds from the span's start to ``instant`` (None outside the span)."""
        i = self._bisect(self.ends, instant)
        if i == len(self.ends) or instant < self.starts[0]:
            return None
        return self.cumulative[i] + max(0.0, instant - self.starts[i])

    def add(self, instant: float, seconds: float) -> float:
        if self.always_open:
            return instant + seconds
        base = self._position(instant)
        if base is not None:
            target = base + seconds
            j = self._bisect(self.cumulative, target) - 1
            offset = target - self.cumulative[j]
            if j < len(self.starts) - 1 or offset <= self.ends[j] - self.starts[j]:
                return self.starts[j] + offset
        start = datetime.fromtimestamp(instant, UTC)
        return self.clock.add(start, seconds).timestamp()

    def elapsed(self, start: float, end: float) -> float:
        if end <= start:
            return 0.0
        if self.always_open:
            return end - start
        a, b = self._position(start), self._position(end)
        if a is not None and b is not None:
            return b - a
        return self.clock.elapsed(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
