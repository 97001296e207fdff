"""Change conflicts: overlapping changes on a service or CI, one implementer booked twice, blackouts, and
changes outside every maintenance window of their services.

Maintenance windows recur by an RFC 5545 RRULE (at most daily) on local wall-clock time: each occurrence
starts at the window's local HH:MM in its time zone and ends ``duration_minutes`` of wall-clock time later,
each end resolved to UTC on its own, so a "Saturday 22:00-Sunday 04:00" window stays 22:00-04:00 local across
daylight-saving changes (five hours on the night the clocks go forward, seven when they go back). A local time
inside the spring-forward gap is taken with the offset before the gap (one hour later on the clock), one that
occurs twice in autumn as its first occurrence; :func:`occurrences` is the one expansion every consumer uses.

The pure functions here work on plain data (:class:`Planned`, :class:`WindowSpec`, :class:`BlackoutSpec`) so
that the whole check of thousands of changes is one sweep over sorted intervals; the ``load_*`` functions read
that data from the database.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr
from sqlalchemy import ColumnElement, Row, Select, or_, select
from sqlalchemy.orm import Session

from itsm_tui.models import Blackout, Change, ChangeTarget, MaintenanceWindow, User
from itsm_tui.services import jsondata
from itsm_tui.services.errors import ServiceError
from itsm_tui.text import strip_control

# States in which a change holds its slot on the calendar (drafts are tentative, the rest are over).
LIVE_STATES = ("submitted", "assessed", "approved", "scheduled", "implementing")

# Severity of each kind: "blocked" stops submit and scheduling; "conflict" is shown to the CAB and notified;
# "warning" is advice; "overridden" is a blackout an emergency change may enter with a recorded reason.
KINDS = ("overlap", "implementer", "blackout", "outside_window")
SEVERITY_ORDER = {"blocked": 0, "conflict": 1, "warning": 2, "overridden": 3}
# How a list of conflicts marks each severity (the change screen and the command line alike).
SEVERITY_LABEL = {
    "blocked": "BLOCKED",
    "conflict": "CONFLICT",
    "warning": "warning",
    "overridden": "override",
}


@dataclass(frozen=True)
class Planned:
    """A change as the conflict check sees it (``id`` None: one not saved yet)."""

    id: int | None
    ref: str
    change_type: str
    state: str
    start: datetime
    end: datetime
    services: frozenset[str]
    cis: frozenset[str] = frozenset()
    implementer_id: int | None = None
    implementer: str | None = None  # login
    override_reason: str | None = None
    # Each target as (service, CI or None: the whole service); None: only ``services`` and ``cis`` are known
    # (then a change without CIs targets its services whole, and its CIs count for each of its services).
    targets: frozenset[tuple[str, str | None]] | None = None

    def scope(self, service: str) -> tuple[bool, frozenset[str]]:
        """Whether the change targets ``service`` whole, and which of its CIs it targets."""
        if self.targets is None:
            return not self.cis, self.cis
        whole = (service, None) in self.targets
        return whole, frozenset(ci for s, ci in self.targets if s == service and ci)


@dataclass(frozen=True)
class WindowSpec:
    id: int
    name: str
    service: str
    timezone: str
    rrule: str
    start_local: str  # HH:MM
    duration_minutes: int
    valid_from: datetime
    valid_until: datetime | None = None


@dataclass(frozen=True)
class BlackoutSpec:
    id: int
    name: str
    service: str | None  # None: every service
    start: datetime
    end: datetime
    reason: str | None = None


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of a maintenance window, in UTC."""

    window_id: int
    name: str
    service: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Conflict:
    """One conflict: which changes, which resource, which interval, how bad, and a sentence saying it.

    ``detail`` holds what the sentence needs beyond that (a freeze's scope, window names, an override reason);
    the sentence itself is only written when asked for: a year's check finds tens of thousands.
    """

    kind: str
    severity: str
    refs: tuple[str, ...]
    resource: str
    start: datetime
    end: datetime
    detail: tuple[str, ...] = ()
    change_ids: tuple[int | None, ...] = field(default=(), compare=False)

    @property
    def message(self) -> str:
        refs, span = self.refs, _span(self.start, self.end)
        if self.kind == "overlap":
            apart = f" (different CIs: {', '.join(self.detail)})" if self.detail else ""
            return f"{refs[0]} and {refs[1]} both change {self.resource}{apart} during {span}"
        if self.kind == "implementer":
            who = self.resource.removeprefix("implementer ")
            return f"{who} implements both {refs[0]} and {refs[1]} during {span}"
        if self.kind == "blackout":
            name, scope, *override = self.detail
            head = f"{refs[0]} is inside the change freeze {quoted(name)} ({scope}, {span})"
            if self.severity == "overridden":
                return f"{head}; emergency override: {strip_control(override[0], single_line=True)}"
            if override == ["emergency"]:
                return (
                    f"{head}; an emergency change may go ahead only with an override reason recorded by a "
                    f"change manager"
                )
            return f"{head}; move it out of the freeze"
        service = self.resource.removeprefix("service ")
        names = strip_control(self.detail[0], single_line=True)
        return f"{refs[0]} ({span}) is outside every maintenance window of service {service} ({names})"

    @property
    def span(self) -> str:
        """Its interval as the messages write it (in UTC)."""
        return _span(self.start, self.end)

    def fitted(self, width: int) -> str:
        """The message in at most ``width`` characters when it fits; else a short form that keeps the whole
        interval and says less before it (``CHG1 & CHG2 network: 2026-03-07 22:00 to ... UTC``)."""
        message = self.message
        if len(message) <= width:
            return message
        span = self.span
        bare = self.resource.removeprefix("service ").removeprefix("CI ").removeprefix("implementer ")
        if self.kind == "blackout":
            what, bare = f"in freeze {quoted(self.detail[0])}", "in a freeze"
        elif self.kind == "outside_window":
            what, bare = f"outside the windows of {bare}", f"outside {bare}"
        elif self.kind == "overlap" and self.detail:
            what = f"{self.resource} (different CIs)"
        else:
            what = self.resource
        room = width - len(span) - 2
        short = " & ".join(_short_ref(ref) for ref in self.refs)  # CHG0000012 -> CHG12
        barest = bare.split(" (")[0] if self.kind == "overlap" else bare  # a CI without its service
        heads = (f"{' & '.join(self.refs)} {what}", f"{short} {what}", f"{short} {bare}", f"{short} {barest}")
        for head in heads:
            if len(head) <= room:
                return f"{head}: {span}"
        if room < 8:  # too narrow to say more than the interval
            return f"{head}: {span}"[:width]
        return f"{head[: room - 1]}…: {span}"

    @property
    def key(self) -> str:
        """A short stable identity (for notifying each conflict once); moving a change gives a new one."""
        detail = f"{self.resource}|{jsondata.instant(self.start)}|{jsondata.instant(self.end)}".encode()
        return f"{self.kind}:{','.join(self.refs)}:{hashlib.sha1(detail).hexdigest()[:12]}"

    def as_json(self) -> dict:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "changes": list(self.refs),
            "resource": self.resource,
            "start": jsondata.instant(self.start),
            "end": jsondata.instant(self.end),
            "message": self.message,
        }


def quoted(name: str) -> str:
    """A name of people's choosing in a sentence: in double quotes, one line, control characters shown
    (``^[``), never a Python repr, so that every screen and command prints the same literal text."""
    return f'"{strip_control(name, single_line=True)}"'


def _short_ref(ref: str) -> str:
    """A reference without its leading zeros (``CHG0000012`` -> ``CHG12``), for lines short of room."""
    digits = ref[3:]
    return f"{ref[:3]}{int(digits)}" if digits.isdigit() else ref


def _span(start: datetime, end: datetime) -> str:
    """An interval for messages, in UTC: 2026-03-28 21:00-23:00 UTC, or with both dates across days."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start.date() == end.date():
        return f"{_minute(start)}-{end.hour:02d}:{end.minute:02d} UTC"
    return f"{_minute(start)} to {_minute(end)} UTC"


def _minute(instant: datetime) -> str:
    return f"{instant.year:04d}-{instant.month:02d}-{instant.day:02d} {instant.hour:02d}:{instant.minute:02d}"


# --------------------------------------------------------------------------- maintenance windows


_UNTIL = re.compile(r"UNTIL=(\d{8})(T(\d{6}))?Z?", re.IGNORECASE)
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
# A window opens at most once a day, at its own start time: these frequencies and parts are refused.
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_WITHIN_A_DAY = ("SECONDLY", "MINUTELY", "HOURLY")
_TIME_PARTS = ("BYHOUR", "BYMINUTE", "BYSECOND")
# Parts that choose the days; without any of them dateutil takes the day from DTSTART.
_DAY_PARTS = ("BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY", "BYEASTER")
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# The most occurrences of one window that one query expands: more than ten years of a daily window.
MAX_OCCURRENCES = 4000


class TooManyOccurrences(ServiceError):
    """A query span holds more occurrences of one window than :data:`MAX_OCCURRENCES`."""

    def __init__(self, window: WindowSpec, start: datetime, end: datetime) -> None:
        super().__init__(
            f"window {quoted(window.name)} ({window.rrule}) has more than {MAX_OCCURRENCES} occurrences "
            f"between {_minute(start.astimezone(UTC))} and {_minute(end.astimezone(UTC))} UTC; ask for a "
            f"shorter span"
        )


def validate_rrule(text: str) -> str:
    """The rule normalised (upper case, no ``RRULE:`` prefix); ValueError saying what is wrong.

    A window recurs at most once a day, at its start time: FREQ is DAILY, WEEKLY, MONTHLY or YEARLY, and the
    rule has no BYHOUR, BYMINUTE or BYSECOND (nor DTSTART: the start is the window's local start time).
    """
    rule = (text or "").strip()
    if rule.upper().startswith("RRULE:"):
        rule = rule[6:]
    rule = rule.upper()
    if not rule.startswith("FREQ=") and ";FREQ=" not in rule:
        raise ValueError(f"{text!r} is not an RRULE; write e.g. FREQ=WEEKLY;BYDAY=SA")
    if "DTSTART" in rule:
        raise ValueError("give the start as the window's local start time, not DTSTART inside the rule")
    parts = _parts(rule)
    freq = parts.get("FREQ", "")
    allowed = "FREQ=DAILY, WEEKLY, MONTHLY or YEARLY"
    if freq in _WITHIN_A_DAY:
        raise ValueError(
            f"{rule} repeats within a day; a maintenance window recurs at most once a day, at its start "
            f"time: use {allowed}"
        )
    if freq not in FREQUENCIES:
        raise ValueError(f"{rule} is not a valid RRULE: use {allowed}")
    for name in ("INTERVAL", "COUNT"):
        if name in parts and not (parts[name].isdigit() and int(parts[name]) >= 1):
            raise ValueError(f"{rule} is not a valid RRULE: {name} is a whole number, 1 or more")
    for name in _TIME_PARTS:
        if name in parts:
            raise ValueError(
                f"{rule} sets {name}; a maintenance window opens once a day at its start time (HH:MM), so "
                f"the rule has no BYHOUR, BYMINUTE or BYSECOND"
            )
    try:
        rrulestr(_naive_until(rule, UTC), dtstart=datetime(2026, 1, 1))
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{text!r} is not a valid RRULE: {exc}") from None
    return rule


def validate_start_local(text: str) -> str:
    if not _HHMM.fullmatch(text or ""):
        raise ValueError(f"{text!r} is not a local time of day (HH:MM, e.g. 22:00)")
    return text


@lru_cache(maxsize=512)
def rule_refusal(rule_text: str) -> str | None:
    """Why a stored rule is not expanded (one accepted before these rules, e.g. FREQ=HOURLY); None: it is."""
    try:
        validate_rrule(rule_text)
    except ValueError as exc:
        return str(exc)
    return None


def check_occurs(window: WindowSpec) -> None:
    """ValueError if the window's rule never occurs from its first day (e.g. BYMONTH=2;BYMONTHDAY=30, or an
    UNTIL before the start)."""
    first = _first_local(window)
    if _never(_pinned(window.rrule, first), window.timezone, first):
        raise ValueError(
            f"{window.rrule} never occurs from {first:%Y-%m-%d}; check its UNTIL, BYMONTH, BYMONTHDAY, BYDAY "
            f"and BYSETPOS"
        )


def _parts(rule: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in rule.split(";"):
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"{rule} is not a valid RRULE: {item!r} is not NAME=VALUE")
        if name in parts:
            raise ValueError(f"{rule} is not a valid RRULE: {name} is given twice")
        parts[name] = value
    return parts


def _naive_until(rule: str, zone) -> str:
    """dateutil wants UNTIL as naive as DTSTART: an UNTIL in UTC becomes local wall-clock time."""

    def local(match: re.Match[str]) -> str:
        day, clock = match.group(1), match.group(3) or "235959"
        instant = datetime.strptime(day + clock, "%Y%m%d%H%M%S")
        if match.group(0).upper().endswith("Z"):
            instant = instant.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
        return f"UNTIL={instant:%Y%m%dT%H%M%S}"

    return _UNTIL.sub(local, rule)


def _first_local(window: WindowSpec) -> datetime:
    """The rule's DTSTART: the local day of ``valid_from`` at the window's start time (naive local)."""
    zone = ZoneInfo(window.timezone)
    hour, minute = (int(x) for x in window.start_local.split(":"))
    return window.valid_from.astimezone(zone).replace(
        hour=hour, minute=minute, second=0, microsecond=0, tzinfo=None
    )


def _pinned(rule_text: str, first: datetime) -> str:
    """The rule with what dateutil would otherwise take from DTSTART written out (the start time, and the
    weekday, day of month or date of the first day when no part chooses days), so that the rule can be
    expanded from any later period of it with the same result."""
    parts = _parts(rule_text)
    if not any(name in parts for name in _DAY_PARTS):
        if parts["FREQ"] == "WEEKLY":
            parts["BYDAY"] = _WEEKDAYS[first.weekday()]
        elif parts["FREQ"] == "MONTHLY":
            parts["BYMONTHDAY"] = str(first.day)
        elif parts["FREQ"] == "YEARLY":
            parts.setdefault("BYMONTH", str(first.month))
            parts["BYMONTHDAY"] = str(first.day)
    parts.update(BYHOUR=str(first.hour), BYMINUTE=str(first.minute), BYSECOND="0")
    return ";".join(f"{name}={value}" for name, value in parts.items())


def _period_start(rule_text: str, first: datetime, low: datetime) -> datetime:
    """Where to start expanding a (pinned) rule to reach ``low``: the start of its last period (a day, week,
    month or year, INTERVAL periods apart from the first) that begins on or before ``low``; ``first`` when
    that is the first period, or when the rule has a COUNT (which counts from the first occurrence on)."""
    parts = _parts(rule_text)
    if "COUNT" in parts or low <= first:
        return first
    interval = max(1, int(parts.get("INTERVAL", "1")))
    day, target = first.date(), low.date()
    freq = parts["FREQ"]
    if freq == "DAILY":
        periods = (target - day).days // interval * interval
        begin = day + timedelta(days=periods)
    elif freq == "WEEKLY":
        week = day - timedelta(days=(day.weekday() - _WEEKDAYS.index(parts.get("WKST", "MO"))) % 7)
        periods = (target - week).days // 7 // interval * interval
        begin = week + timedelta(weeks=periods)
    elif freq == "MONTHLY":
        periods = ((target.year - day.year) * 12 + target.month - day.month) // interval * interval
        years, month = divmod(day.month - 1 + periods, 12)
        begin = date(day.year + years, month + 1, 1)
    else:
        periods = (target.year - day.year) // interval * interval
        begin = date(day.year + periods, 1, 1)
    return first if periods <= 0 else datetime.combine(begin, datetime.min.time())


@lru_cache(maxsize=512)
def _rule(rule_text: str, timezone: str, dtstart: datetime) -> rrule:
    """The parsed rule (kept); each expansion iterates it afresh from ``dtstart``, which lies just before the
    span asked for, so no list of past occurrences is kept (nor shared between threads)."""
    return rrulestr(_naive_until(rule_text, ZoneInfo(timezone)), dtstart=dtstart)


@lru_cache(maxsize=512)
def _never(rule_text: str, timezone: str, first: datetime) -> bool:
    """The rule has no occurrence at all (dateutil looks as far as the year 9999 to say so, once)."""
    return next(iter(_rule(rule_text, timezone, first)), None) is None


def occurrences(window: WindowSpec, start: datetime, end: datetime) -> list[Occurrence]:
    """The window's occurrences that overlap [start, end), in UTC, oldest first: the one expansion that the
    conflict check, the calendar and the .ics export use.

    Each occurrence is a local wall-clock start and the wall-clock time ``duration_minutes`` later, both
    resolved to UTC as RFC 5545 resolves a local time: one inside the spring-forward gap with the offset
    before the gap (02:00 in Europe/Berlin on 2027-03-28 is 03:00 CEST, 01:00 UTC), one that occurs twice in
    autumn as its first occurrence (02:00 on 2027-10-31 is 02:00 CEST, 00:00 UTC). So a Sunday 02:00 window
    of 240 minutes ends at 06:00 local on both days: three real hours in spring, five in autumn. An
    occurrence that the gap leaves without time (its end resolves to no later than its start) is left out.

    Bounded: the rule is expanded only from the period holding the span (from its start when it has a COUNT)
    and only up to the span's end, and more than :data:`MAX_OCCURRENCES` in the span is refused
    (:class:`TooManyOccurrences`). A stored rule that today's rules refuse (:func:`rule_refusal`) or that
    never occurs gives no occurrences.
    """
    if rule_refusal(window.rrule) is not None:
        return []
    zone = ZoneInfo(window.timezone)
    duration = timedelta(minutes=window.duration_minutes)
    first = _first_local(window)
    pinned = _pinned(window.rrule, first)
    if _never(pinned, window.timezone, first):
        return []
    # Local search bounds, a day wider than needed on each side (offsets differ by at most a day).
    low = max(first, (start - duration - timedelta(days=1)).astimezone(zone).replace(tzinfo=None))
    high = (end + timedelta(days=1)).astimezone(zone).replace(tzinfo=None)
    rule = _rule(pinned, window.timezone, _period_start(pinned, first, low))
    result: list[Occurrence] = []
    for local_start in rule:
        if local_start > high:
            break
        if local_start < low:
            continue
        occ_start = local_start.replace(tzinfo=zone).astimezone(UTC)
        occ_end = (local_start + duration).replace(tzinfo=zone).astimezone(UTC)
        if occ_end <= occ_start:
            continue
        if occ_start < window.valid_from or (window.valid_until and occ_start >= window.valid_until):
            continue
        if occ_end > start and occ_start < end:
            if len(result) == MAX_OCCURRENCES:
                raise TooManyOccurrences(window, start, end)
            result.append(Occurrence(window.id, window.name, window.service, occ_start, occ_end))
    return result


def expand(windows: Iterable[WindowSpec], start: datetime, end: datetime) -> list[Occurrence]:
    """Every occurrence of every window overlapping [start, end), by start."""
    result = [o for w in windows for o in occurrences(w, start, end)]
    result.sort(key=lambda o: (o.start, o.service, o.window_id))
    return result


def _merged(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping or touching spans joined, sorted."""
    merged: list[list[datetime]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


# --------------------------------------------------------------------------- the check


def find_conflicts(
    changes: Sequence[Planned],
    windows: Iterable[WindowSpec] = (),
    blackouts: Iterable[BlackoutSpec] = (),
    *,
    focus: Iterable[int | None] | None = None,
    same_service: str = "warning",
) -> list[Conflict]:
    """Every conflict among ``changes`` (with ``focus``: only those involving these change ids).

    Two changes overlapping on one service conflict when they share a CI of it or either targets the whole
    service; on different CIs of it only, the overlap has the severity ``same_service`` ("warning", or
    "conflict" as ``changes.toml`` [conflicts] may say). Overlaps and double-booked implementers come from one
    sweep over the changes sorted by start, per resource; blackouts and windows from sorted, merged intervals
    and bisection.
    """
    focus_ids = set(focus) if focus is not None else None

    def wanted(*items: Planned) -> bool:
        return focus_ids is None or any(item.id in focus_ids for item in items)

    ordered = sorted((c for c in changes if c.end > c.start), key=lambda c: (c.start, c.ref))
    conflicts: list[Conflict] = []

    # Same service (or CI of it) in overlapping windows: the same CI or a whole service is a conflict,
    # different CIs of the service only ``same_service``.
    by_service: dict[str, list[Planned]] = defaultdict(list)
    for change in ordered:
        for service in change.services:
            by_service[service].append(change)
    for service in sorted(by_service):
        scopes = {id(change): change.scope(service) for change in by_service[service]}
        for a, b in _overlapping_pairs(by_service[service]):
            if not wanted(a, b):
                continue
            (a_whole, a_cis), (b_whole, b_cis) = scopes[id(a)], scopes[id(b)]
            shared = sorted(a_cis & b_cis)
            severity = "conflict"
            apart: tuple[str, ...] = ()
            if shared:
                resource = f"CI {', '.join(shared)} ({service})"
            else:
                resource = f"service {service}"
                if not (a_whole or b_whole):
                    severity, apart = same_service, tuple(sorted(a_cis | b_cis))
            start, end = max(a.start, b.start), min(a.end, b.end)
            conflicts.append(
                Conflict(
                    "overlap",
                    severity,
                    (a.ref, b.ref),
                    resource,
                    start,
                    end,
                    apart,
                    change_ids=(a.id, b.id),
                )
            )

    # One implementer on overlapping changes.
    by_implementer: dict[int, list[Planned]] = defaultdict(list)
    for change in ordered:
        if change.implementer_id is not None:
            by_implementer[change.implementer_id].append(change)
    for implementer_id in sorted(by_implementer):
        for a, b in _overlapping_pairs(by_implementer[implementer_id]):
            if not wanted(a, b):
                continue
            who = a.implementer or f"user #{implementer_id}"
            start, end = max(a.start, b.start), min(a.end, b.end)
            conflicts.append(
                Conflict(
                    "implementer",
                    "conflict",
                    (a.ref, b.ref),
                    f"implementer {who}",
                    start,
                    end,
                    change_ids=(a.id, b.id),
                )
            )

    # Blackouts (freeze periods).
    freezes = sorted(blackouts, key=lambda b: (b.start, b.id))
    for change in ordered:
        if not wanted(change):
            continue
        for freeze in freezes:
            if freeze.start >= change.end:
                break
            if freeze.end <= change.start:
                continue
            if freeze.service is not None and freeze.service not in change.services:
                continue
            scope = "every service" if freeze.service is None else f"service {freeze.service}"
            overridden = change.change_type == "emergency" and bool(change.override_reason)
            detail: tuple[str, ...]
            if overridden:
                detail = (freeze.name, scope, change.override_reason or "")
            else:
                detail = (freeze.name, scope) + (("emergency",) if change.change_type == "emergency" else ())
            conflicts.append(
                Conflict(
                    "blackout",
                    "overridden" if overridden else "blocked",
                    (change.ref,),
                    f"blackout {freeze.name}",
                    freeze.start,
                    freeze.end,
                    detail,
                    (change.id,),
                )
            )

    # Outside every maintenance window of a service (services without windows are not restricted).
    window_list = list(windows)
    if window_list and ordered:
        by_window_service: dict[str, list[WindowSpec]] = defaultdict(list)
        for window in window_list:
            by_window_service[window.service].append(window)
        low = min(c.start for c in ordered)
        high = max(c.end for c in ordered)
        spans: dict[str, list[tuple[datetime, datetime]]] = {}
        for service, service_windows in by_window_service.items():
            spans[service] = _merged(
                (o.start, o.end) for w in service_windows for o in occurrences(w, low, high)
            )
        starts = {service: [s for s, _ in merged] for service, merged in spans.items()}
        for change in ordered:
            if not wanted(change):
                continue
            for service in sorted(change.services):
                if service not in spans:
                    continue
                merged = spans[service]
                index = bisect.bisect_right(starts[service], change.start) - 1
                if index >= 0 and merged[index][1] >= change.end:
                    continue  # inside one (merged) occurrence
                names = ", ".join(sorted({w.name for w in by_window_service[service]}))
                conflicts.append(
                    Conflict(
                        "outside_window",
                        "warning",
                        (change.ref,),
                        f"service {service}",
                        change.start,
                        change.end,
                        (names,),
                        (change.id,),
                    )
                )

    conflicts.sort(
        key=lambda c: (c.start, SEVERITY_ORDER[c.severity], KINDS.index(c.kind), c.refs, c.resource)
    )
    return conflicts


def _overlapping_pairs(items: list[Planned]) -> Iterable[tuple[Planned, Planned]]:
    """Pairs whose half-open intervals overlap; ``items`` sorted by start."""
    active: list[Planned] = []
    for item in items:
        active = [a for a in active if a.end > item.start]
        for other in active:
            if other.id is not None and other.id == item.id:
                continue
            yield other, item
        active.append(item)


def blocking(conflicts: Iterable[Conflict]) -> list[Conflict]:
    return [c for c in conflicts if c.severity == "blocked"]


# --------------------------------------------------------------------------- reading the database


def window_specs(session: Session, services: Iterable[str] | None = None) -> list[WindowSpec]:
    stmt = select(MaintenanceWindow).order_by(MaintenanceWindow.id)
    if services is not None:
        stmt = stmt.where(MaintenanceWindow.service.in_(sorted(set(services))))
    return [
        WindowSpec(
            w.id,
            w.name,
            w.service,
            w.timezone,
            w.rrule,
            w.start_local,
            w.duration_minutes,
            w.valid_from,
            w.valid_until,
        )
        for w in session.scalars(stmt)
    ]


def blackout_specs(session: Session, start: datetime, end: datetime) -> list[BlackoutSpec]:
    stmt = (
        select(Blackout)
        .where(Blackout.starts_at < end, Blackout.ends_at > start)
        .order_by(Blackout.starts_at, Blackout.id)
    )
    return [
        BlackoutSpec(b.id, b.name, b.service, b.starts_at, b.ends_at, b.reason) for b in session.scalars(stmt)
    ]


def planned_changes(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    states: Sequence[str] | None = LIVE_STATES,
    services: Iterable[str] | None = None,
    implementer_id: int | None = None,
    exclude_id: int | None = None,
) -> list[Planned]:
    """Changes whose planned window overlaps [start, end) as :class:`Planned` (two queries however many)."""
    conditions = [Change.planned_start < end, Change.planned_end > start]
    if states is not None:
        conditions.append(Change.state.in_(list(states)))
    if exclude_id is not None:
        conditions.append(Change.id != exclude_id)
    if services is not None or implementer_id is not None:
        either: list[ColumnElement[bool]] = []
        if services is not None:
            either.append(
                Change.id.in_(
                    select(ChangeTarget.change_id).where(ChangeTarget.service.in_(sorted(set(services))))
                )
            )
        if implementer_id is not None:
            either.append(Change.implementer_id == implementer_id)
        conditions.append(or_(*either))
    rows = session.execute(changes_select().where(*conditions))
    targets = targets_where(session, conditions)
    result = []
    for row in rows:
        if row.planned_start is None or row.planned_end is None:  # never: the window conditions say so
            continue
        result.append(planned_from(row, targets.get(row.id, ())))
    return result


def changes_select(*columns: Any) -> Select[Any]:
    """Changes in planned order with what :func:`planned_from` reads (the implementer's login joined), and
    ``columns`` beside."""
    return (
        select(
            Change.id,
            Change.ref,
            Change.change_type,
            Change.state,
            Change.planned_start,
            Change.planned_end,
            Change.implementer_id,
            Change.override_reason,
            User.login,
            *columns,
        )
        .outerjoin(User, User.id == Change.implementer_id)
        .order_by(Change.planned_start, Change.id)
    )


def planned_from(row: Row[Any], targets: Sequence[tuple[str, str | None]]) -> Planned:
    """A change read by :func:`changes_select`, with its targets (service, CI or None), as checks see it."""
    return Planned(
        row.id,
        row.ref,
        row.change_type,
        row.state,
        row.planned_start,
        row.planned_end,
        frozenset(service for service, _ in targets),
        frozenset(ci for _, ci in targets if ci),
        row.implementer_id,
        row.login,
        row.override_reason,
        frozenset(targets),
    )


def targets_where(session: Session, conditions: list) -> dict[int, list[tuple[str, str | None]]]:
    """(service, CI or None) of every change meeting ``conditions``, in one query."""
    result: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
    stmt = (
        select(ChangeTarget.change_id, ChangeTarget.service, ChangeTarget.ci)
        .join(Change, Change.id == ChangeTarget.change_id)
        .where(*conditions)
    )
    for change_id, service, ci in session.execute(stmt).tuples():
        result[change_id].append((service, ci))
    return result


def check(session: Session, change: Planned, *, same_service: str = "warning") -> list[Conflict]:
    """Conflicts of one change (saved or not) with the live changes, windows and blackouts around it
    (``same_service``: the severity of an overlap on different CIs of one service, config.changes's
    ``same_service_severity``)."""
    others = planned_changes(
        session,
        change.start,
        change.end,
        services=change.services,
        implementer_id=change.implementer_id,
        exclude_id=change.id,
    )
    focus_id = change.id if change.id is not None else -1
    subject = change if change.id is not None else _with_id(change, -1)
    found = find_conflicts(
        [subject, *others],
        window_specs(session, change.services),
        blackout_specs(session, change.start, change.end),
        focus=[focus_id],
        same_service=same_service,
    )
    if change.id is None:  # give back the unsaved change's conflicts with its own (absent) id
        found = [
            Conflict(
                c.kind,
                c.severity,
                c.refs,
                c.resource,
                c.start,
                c.end,
                c.detail,
                tuple(None if i == -1 else i for i in c.change_ids),
            )
            for c in found
        ]
    return found


def _with_id(change: Planned, change_id: int) -> Planned:
    from dataclasses import replace

    return replace(change, id=change_id)


def between(
    session: Session, start: datetime, end: datetime, *, same_service: str = "warning"
) -> list[Conflict]:
    """Every conflict among the live changes overlapping [start, end)."""
    changes = planned_changes(session, start, end)
    services = {s for c in changes for s in c.services}
    return find_conflicts(
        changes,
        window_specs(session, services),
        blackout_specs(session, start, end),
        same_service=same_service,
    )
