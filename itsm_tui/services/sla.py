"""SLA rules: the business clock, and the response and resolution targets stored on each ticket.

A target runs from its start (the opening; for the resolution target a reopen may restart it) for the policy's
minutes of business time on the policy's calendar, and stands still while the ticket is paused (pending, or
resolved before a reopen). The due instant is the moment the running clock reaches the target: each pause
interval is measured on the calendar of the ticket's *current* priority, so a priority change onto another
calendar re-measures every pause, and a pause that starts after the due instant moves nothing (the target was
breached then). Once a target has stopped (responded; resolved; cancelled) its instants are frozen.

The instants are kept on the ticket itself, so that finding what became due is an indexed range query: the SLA
job (:mod:`itsm_tui.jobs.sla_scan`) does that. Nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Protocol

from itsm_tui.config import Calendar, DeskConfig
from itsm_tui.models import Ticket, TicketPause

_MAX_DAYS = 3 * 366  # a target further than this on a calendar means the calendar has (almost) no hours
_ZERO = timedelta()


def _delta(amount: timedelta | float) -> timedelta:
    return amount if isinstance(amount, timedelta) else timedelta(seconds=amount)


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

    def add(self, start: datetime, amount: timedelta | float) -> datetime:
        """The instant at which ``amount`` (timedelta or seconds) of business time has passed after ``start``.

        A target that is used up exactly at a closing time is due at that closing time.
        """
        remaining = _delta(amount)
        if self.calendar.always_open:
            return start + remaining
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
        return self.elapsed_delta(start, end).total_seconds()

    def elapsed_delta(self, start: datetime, end: datetime) -> timedelta:
        """Business time between two instants, exact to the microsecond (zero if ``end`` is not after)."""
        if end <= start:
            return _ZERO
        if self.calendar.always_open:
            return end - start
        total = timedelta()
        day = self._local_day(start) - timedelta(days=1)
        last = self._local_day(end) + timedelta(days=1)
        while day <= last:
            for begin, finish in self._intervals(day):
                lo, hi = max(begin, start), min(finish, end)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total


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


class Clock(Protocol):
    """What measuring a target needs of a clock (:class:`BusinessClock`, or a precomputed one)."""

    def add(self, start: datetime, amount: timedelta | float) -> datetime: ...

    def elapsed_delta(self, start: datetime, end: datetime) -> timedelta: ...


@dataclass(frozen=True)
class Pause:
    """A pause interval as the clock sees it (``end`` None: under way)."""

    start: datetime
    end: datetime | None
    reason: str = "pending"


@dataclass(frozen=True)
class MeasuredPause:
    """One pause as a target counted it: its business time on the calendar, and whether it moved the due.

    A pause that ended before the target's start, or began at or after the due instant, moves nothing.
    A pause under way counts nothing yet (the due instant is then the one it would be were it to end now).
    """

    start: datetime
    end: datetime | None
    reason: str
    business: timedelta
    counted: bool


@dataclass(frozen=True)
class Measure:
    start: datetime
    target: timedelta
    due: datetime
    pauses: tuple[MeasuredPause, ...]

    @property
    def paused(self) -> timedelta:
        """The business time of the pauses that moved the due instant."""
        return sum((p.business for p in self.pauses if p.counted), _ZERO)


def measure(clock: Clock, start: datetime, target: timedelta, pauses: Iterable[Pause]) -> Measure:
    """The due instant of a target of ``target`` business time from ``start`` that stands still in ``pauses``.

    The clock runs from ``start``; each pause that begins before the target is used up stops it for the
    pause's business time; the due instant is where the running time reaches the target.
    """
    at, remaining = start, target
    measured: list[MeasuredPause] = []
    due: datetime | None = None
    for pause in sorted(pauses, key=lambda p: p.start):
        if due is not None or (pause.end is not None and pause.end <= at):
            measured.append(MeasuredPause(pause.start, pause.end, pause.reason, _ZERO, False))
            continue
        begins = max(pause.start, at)
        running = clock.elapsed_delta(at, begins)
        if running >= remaining:
            due = clock.add(at, remaining)
            measured.append(MeasuredPause(pause.start, pause.end, pause.reason, _ZERO, False))
            continue
        remaining -= running
        at = begins
        if pause.end is None:
            measured.append(MeasuredPause(pause.start, None, pause.reason, _ZERO, True))
            continue
        business = clock.elapsed_delta(begins, pause.end)
        measured.append(MeasuredPause(pause.start, pause.end, pause.reason, business, True))
        at = pause.end
    if due is None:
        due = clock.add(at, remaining)
    return Measure(start, target, due, tuple(measured))


@dataclass(frozen=True)
class Targets:
    """The four instants of a ticket's two targets (None: that target has stopped and keeps its instants)."""

    response_warn: Measure | None
    response_due: Measure | None
    resolution_warn: Measure | None
    resolution_due: Measure | None


def ticket_pauses(ticket: Ticket) -> list[Pause]:
    return [Pause(p.started_at, p.ended_at, p.reason) for p in ticket.pauses]


def compute_targets(
    clock: Clock,
    *,
    response_minutes: int,
    resolution_minutes: int,
    warning_ratio: float,
    opened_at: datetime,
    resolution_start: datetime | None,
    pauses: Sequence[Pause],
    response_running: bool,
    resolution_running: bool,
) -> Targets:
    """The SLA instants of one ticket, from its policy's targets, its starts and its pauses (pure)."""
    response = timedelta(minutes=response_minutes)
    resolution = timedelta(minutes=resolution_minutes)
    start = resolution_start or opened_at

    def at(begin: datetime, target: timedelta) -> Measure:
        return measure(clock, begin, target, pauses)

    return Targets(
        response_warn=at(opened_at, response * warning_ratio) if response_running else None,
        response_due=at(opened_at, response) if response_running else None,
        resolution_warn=at(start, resolution * warning_ratio) if resolution_running else None,
        resolution_due=at(start, resolution) if resolution_running else None,
    )


def targets_for(ticket: Ticket, config: DeskConfig) -> Targets:
    """The instants the engine gives the ticket now, from its priority's policy, starts and pauses."""
    policy = config.policies[ticket.priority]
    running = ticket.cancelled_at is None
    return compute_targets(
        clock_for(config.calendars[policy.calendar]),
        response_minutes=policy.response_minutes,
        resolution_minutes=policy.resolution_minutes,
        warning_ratio=config.warning_ratio,
        opened_at=ticket.opened_at,
        resolution_start=ticket.resolution_started_at,
        pauses=ticket_pauses(ticket),
        response_running=running and ticket.responded_at is None,
        resolution_running=running and ticket.resolved_at is None,
    )


def retarget(ticket: Ticket, config: DeskConfig) -> None:
    """Set the instants of the ticket's running targets; a stopped target (met, resolved) keeps its own."""
    ticket.sla_calendar = config.policies[ticket.priority].calendar
    targets = targets_for(ticket, config)
    if targets.response_due is not None and targets.response_warn is not None:
        ticket.response_warn_at = targets.response_warn.due
        ticket.response_due_at = targets.response_due.due
    if targets.resolution_due is not None and targets.resolution_warn is not None:
        ticket.resolution_warn_at = targets.resolution_warn.due
        ticket.resolution_due_at = targets.resolution_due.due


def pause(ticket: Ticket, now: datetime, reason: str) -> None:
    """Stop the clocks (the ticket went to pending, or was resolved): a pause interval begins."""
    if ticket.paused_at is None:
        ticket.paused_at = now
        ticket.pauses.append(TicketPause(reason=reason, started_at=now))


def resume(ticket: Ticket, config: DeskConfig, now: datetime, *, restart: bool = False) -> None:
    """Start the clocks again: the pause under way ends, and the due instants move by its business time.

    ``restart`` starts the resolution target afresh at ``now`` (a reopen, when configured so).
    """
    for interval in ticket.pauses:
        if interval.ended_at is None:
            interval.ended_at = now
    ticket.paused_at = None
    if restart:
        ticket.resolution_started_at = now
    retarget(ticket, config)


def leave_status(ticket: Ticket, config: DeskConfig, current: str, now: datetime) -> None:
    """The clocks' part of leaving a status, before the move's own fields are set: a pending pause ends."""
    if current == "pending":
        resume(ticket, config, now)


def enter_status(
    ticket: Ticket, config: DeskConfig, current: str, to_status: str, now: datetime, reason: str | None = None
) -> None:
    """The clocks' part of entering a status, after the move's own fields (resolved_at, ...) are set.

    Pending and resolved begin a pause; a reopen ends the resolved pause, or restarts the resolution target
    when ``reopen_restarts_resolution`` says so. Every status move, and every preview of one, goes through
    :func:`leave_status` and this.
    """
    if to_status == "pending":
        pause(ticket, now, reason or "customer")
    elif to_status == "resolved":
        pause(ticket, now, "resolved")  # a reopen without a restart resumes the target from here
    elif current == "resolved" and to_status == "in_progress":
        resume(ticket, config, now, restart=config.reopen_restarts_resolution)


def time_left(ticket: Ticket, config: DeskConfig, now: datetime, target: str = "resolution") -> float | None:
    """Business seconds left until the target is due (negative when overdue), or None if it has stopped."""
    due = ticket.resolution_due_at if target == "resolution" else ticket.response_due_at
    if due is None:
        return None
    done = ticket.resolved_at if target == "resolution" else ticket.responded_at
    if done is not None:
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
        from bisect import bisect_left, bisect_right

        self._bisect = bisect_right
        self._bisect_left = bisect_left
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
        if seconds <= 0:  # nothing to add: the instant itself if open, else the next opening
            return self.clock.add(datetime.fromtimestamp(instant, UTC), 0).timestamp()
        base = self._position(instant)
        if base is not None:
            target = base + seconds
            # bisect_left: a target used up exactly at a closing time is due then, not at the next opening.
            j = max(0, self._bisect_left(self.cumulative, target) - 1)
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
