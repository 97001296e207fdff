"""The next free slots for a change: windows inside a maintenance window of each of its services, outside
every blackout that applies, and free of conflicts with the live changes on its CIs or services and of its
implementer.

The rules are the conflict check's (:mod:`itsm_tui.services.conflicts`): a slot ``[start, start + duration)``
lies inside one merged occurrence of every one of its services that has windows (a service without windows
is free at any time); it overlaps no blackout of all services or of one of its services (an emergency change
too: no override is proposed); and :func:`conflicts.find_conflicts` finds no overlap of severity "conflict"
with a live change (the same CI, or one of the two on the whole service; on different CIs of one service
``changes.toml`` [conflicts] ``same_service`` decides) nor a second booking of its implementer.

Candidate starts are each window occurrence's start and every ``[slots] step_minutes`` after it inside the
occurrence; when none of the services has windows, every step (aligned to the step, counted from midnight
UTC) from ``after`` on. The search is bounded: the live changes of the services and of the implementer (with
their targets), the blackouts and the windows of the horizon (``[slots] horizon_days``) are read once (three
queries), then swept in memory. One conflict check of the change spread over the whole horizon says which of
those changes it may never overlap (an overlap's severity depends on what two changes share, not on when);
their merged intervals and the blackouts' are then bisected at each candidate. The sweep stops after
``count`` slots, each starting at or after the end of the one before.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, or_, select
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Change, ChangeTarget
from itsm_tui.services import conflicts, jsondata
from itsm_tui.services.changes.helpers import _implementer, _instant, _minutes, _now, parse_targets
from itsm_tui.services.changes.reading import _planned_window, get_change
from itsm_tui.services.changes.rules import PRE_IMPLEMENTATION, TYPES
from itsm_tui.services.conflicts import Occurrence, Planned
from itsm_tui.services.errors import ServiceError, ValidationError

# The longest change window there is (helpers._window refuses longer ones): it also bounds how far back
# the changes that may still overlap the horizon are read.
MAX_DURATION = timedelta(days=14)
MAX_COUNT = 20
# How far ahead a search may begin (about ten years: a desk plans no further).
MAX_AHEAD = timedelta(days=3653)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SPAN = tuple[datetime, datetime]


@dataclass(frozen=True)
class Slot:
    """A free window for the change: ``[start, end)`` in UTC, and the maintenance-window occurrence(s) it
    lies in (their names, comma-separated; None when none of its services has windows)."""

    start: datetime
    end: datetime
    window: str | None = None

    def as_json(self) -> dict:
        return {
            "start": jsondata.instant(self.start),
            "end": jsondata.instant(self.end),
            "window": self.window,
        }


@dataclass(frozen=True)
class SlotQuery:
    """What a form looks for a slot for, as typed so far.

    ``targets`` as the form takes them (``network``, ``core-sw-01``, ``network:core-sw-01``); None: those of
    the change ``ref``. ``implementer`` a login ("": nobody); None: the change's own (without ``ref``:
    nobody). ``duration`` None: the length of the change ``ref``. ``ref`` names the change being moved or
    edited, which never conflicts with itself.
    """

    targets: tuple[str, ...] | None = None
    implementer: str | None = None
    duration: timedelta | None = None
    change_type: str = "normal"
    ref: str | None = None


def free_slots(
    session: Session,
    config: DeskConfig,
    *,
    services: Iterable[str],
    cis: Iterable[str] = (),
    implementer_id: int | None = None,
    duration: timedelta,
    after: datetime,
    count: int = 5,
    exclude_change_id: int | None = None,
    change_type: str = "normal",
    horizon_days: int | None = None,
) -> list[Slot]:
    """The next ``count`` free slots of ``duration`` from ``after`` on, for a change on ``services`` and
    ``cis`` (a service none of whose CIs is named is targeted whole) implemented by ``implementer_id``;
    ``exclude_change_id`` is the change itself. Fewer (or none) when the horizon holds no more."""
    wanted = sorted({s.strip().lower() for s in services if s and s.strip()})
    if not wanted:
        raise ValidationError("targets", "name at least one affected service to find a slot for")
    targets: set[tuple[str, str | None]] = set()
    for ci in {c.strip() for c in cis if c and c.strip()}:
        owner = config.service_for_ci(ci)
        if owner is not None and owner.code in wanted:
            targets.add((owner.code, ci))
        else:  # a CI the catalog no longer places: it counts for each of the services
            targets.update((service, ci) for service in wanted)
    targeted = {service for service, _ in targets}
    targets.update((service, None) for service in wanted if service not in targeted)
    _bounded_after(after, _now(None))
    return _find(
        session,
        config,
        targets=frozenset(targets),
        implementer_id=implementer_id,
        duration=duration,
        after=after,
        count=count,
        exclude_change_id=exclude_change_id,
        change_type=change_type,
        horizon_days=horizon_days,
    )


def slots_for(
    session: Session,
    config: DeskConfig,
    ref: str,
    *,
    count: int = 5,
    after: datetime | None = None,
    duration: timedelta | None = None,
    now: datetime | None = None,
) -> list[Slot]:
    """The next free slots of the change ``ref`` (its targets, implementer and length, unless ``duration``
    is given), from ``after`` or now, whichever is later; the change itself is left out of the check."""
    return find_slots(
        session, config, SlotQuery(ref=ref, duration=duration), count=count, after=after, now=now
    )


def find_slots(
    session: Session,
    config: DeskConfig,
    query: SlotQuery,
    *,
    count: int = 5,
    after: datetime | None = None,
    now: datetime | None = None,
) -> list[Slot]:
    """The next free slots for what a form holds (see :class:`SlotQuery`), from ``after`` or now, whichever
    is later. Targets and implementer are checked as saving would check them."""
    now = _now(now)
    start = max(now, _bounded_after(after, now) or now)
    change = get_change(session, query.ref) if query.ref else None
    if change is not None and change.state not in PRE_IMPLEMENTATION:
        raise ServiceError(f"{change.ref} is {change.state}: slots are found only for a change not yet begun")
    change_type = (query.change_type or "normal").strip().lower()
    if change is not None:
        change_type = change.change_type
    elif change_type not in TYPES:
        raise ValidationError("change_type", f"the type must be one of {', '.join(TYPES)}")
    if query.targets is None:
        if change is None:
            raise ValidationError("targets", "name the affected services or CIs to find a slot for")
        targets = frozenset((t.service, t.ci or None) for t in change.targets)
    else:
        targets = frozenset(parse_targets(config, query.targets))
    if query.implementer is None and change is not None:
        implementer_id = change.implementer_id
    else:
        user = _implementer(session, query.implementer)
        implementer_id = user.id if user else None
    duration = query.duration
    if duration is None:
        if change is None:
            raise ValidationError("duration", "give the change's start and end to find a slot of its length")
        begin, finish = _planned_window(change)
        duration = finish - begin
    return _find(
        session,
        config,
        targets=targets,
        implementer_id=implementer_id,
        duration=duration,
        after=start,
        count=count,
        exclude_change_id=change.id if change is not None else None,
        change_type=change_type,
        horizon_days=None,
    )


def _bounded_after(after: datetime | None, now: datetime) -> datetime | None:
    """``after`` in UTC, refused (a ValidationError) beyond :data:`MAX_AHEAD` from ``now``."""
    begin = _instant("after", after)
    if begin is not None and begin > now + MAX_AHEAD:
        latest = now + MAX_AHEAD
        raise ValidationError("after", f"look for slots from a date between now and {latest:%Y-%m-%d}")
    return begin


# --------------------------------------------------------------------------- the search


def _find(
    session: Session,
    config: DeskConfig,
    *,
    targets: frozenset[tuple[str, str | None]],
    implementer_id: int | None,
    duration: timedelta,
    after: datetime,
    count: int,
    exclude_change_id: int | None,
    change_type: str,
    horizon_days: int | None,
) -> list[Slot]:
    if not timedelta(0) < duration <= MAX_DURATION:
        raise ValidationError(
            "duration", "a change lasts more than 0 minutes and at most 14 days; give a length in that range"
        )
    if not 1 <= count <= MAX_COUNT:
        raise ValidationError("count", f"ask for 1 to {MAX_COUNT} slots, not {count}")
    days = config.changes.slot_horizon_days if horizon_days is None else horizon_days
    if not 1 <= days <= 366:
        raise ValidationError("horizon_days", f"look 1 to 366 days ahead, not {days}")
    begin = _instant("after", after)
    if begin is None:
        raise ValidationError("after", "give the instant to look for slots from")
    if begin < after:  # a start within a minute: the next whole minute
        begin += timedelta(minutes=1)
    step = timedelta(minutes=config.changes.slot_step_minutes)
    until = begin + timedelta(days=days)  # the last candidate starts before this
    reach = until + duration  # and ends before this
    services = frozenset(service for service, _ in targets)

    windows = conflicts.window_specs(session, services)
    occurrences = conflicts.expand(windows, begin, reach)
    windowed = sorted({w.service for w in windows})
    spans = {
        service: conflicts._merged((o.start, o.end) for o in occurrences if o.service == service)
        for service in windowed
    }
    freezes = conflicts._merged(
        (b.start, b.end)
        for b in conflicts.blackout_specs(session, begin, reach)
        if b.service is None or b.service in services
    )
    others = _live_changes(session, begin, reach, services, implementer_id, exclude_change_id)

    # The subject over the whole horizon overlaps every change read: the conflict check says which of them
    # it may not overlap at all (what they share decides an overlap's severity, never when it happens).
    subject = Planned(
        id=exclude_change_id if exclude_change_id is not None else -1,
        ref="(slot)",
        change_type=change_type,
        state="draft",
        start=begin,
        end=reach,
        services=services,
        cis=frozenset(ci for _, ci in targets if ci),
        implementer_id=implementer_id,
        targets=targets,
    )
    found_conflicts = conflicts.find_conflicts(
        [subject, *others], focus=[subject.id], same_service=config.changes.same_service_severity
    )
    blocking = {
        change_id
        for conflict in found_conflicts
        if conflict.severity in ("blocked", "conflict")
        for change_id in conflict.change_ids
    }
    busy = conflicts._merged((o.start, o.end) for o in others if o.id in blocking)

    candidates = (
        _window_starts([o for o in occurrences if o.service in spans], begin, until, step)
        if windowed
        else _steps(begin, until, step)
    )
    found: list[Slot] = []
    not_before = begin
    for start in candidates:
        if start < not_before:
            continue
        end = start + duration
        if not all(_inside(spans[service], start, end) for service in windowed):
            continue
        if _overlaps(freezes, start, end) or _overlaps(busy, start, end):
            continue
        found.append(Slot(start, end, _names(occurrences, spans, start, end) if windowed else None))
        if len(found) == count:
            break
        not_before = end
    return found


def _live_changes(
    session: Session,
    start: datetime,
    end: datetime,
    services: frozenset[str],
    implementer_id: int | None,
    exclude_id: int | None,
) -> list[Planned]:
    """The live changes overlapping [start, end) on ``services`` or of the implementer, with their targets
    (one query along ``ix_changes_window``, bounded below by the longest window a change may have)."""
    conditions = [
        Change.planned_start < end,
        Change.planned_start > start - MAX_DURATION,
        Change.planned_end > start,
        Change.state.in_(list(conflicts.LIVE_STATES)),
    ]
    if exclude_id is not None:
        conditions.append(Change.id != exclude_id)
    either: list[ColumnElement[bool]] = [
        Change.id.in_(select(ChangeTarget.change_id).where(ChangeTarget.service.in_(sorted(services))))
    ]
    if implementer_id is not None:
        either.append(Change.implementer_id == implementer_id)
    conditions.append(or_(*either))
    stmt = (
        conflicts.changes_select(
            ChangeTarget.service.label("target_service"), ChangeTarget.ci.label("target_ci")
        )
        .join(ChangeTarget, ChangeTarget.change_id == Change.id)
        .where(*conditions)
    )
    rows: dict[int, Row[Any]] = {}
    targets: dict[int, list[tuple[str, str | None]]] = {}
    for row in session.execute(stmt):
        rows.setdefault(row.id, row)
        targets.setdefault(row.id, []).append((row.target_service, row.target_ci))
    return [conflicts.planned_from(row, targets[change_id]) for change_id, row in rows.items()]


def _steps(begin: datetime, until: datetime, step: timedelta) -> Iterator[datetime]:
    """Every step from ``begin`` (rounded up to the step, counted from midnight UTC) until ``until``."""
    start = _EPOCH + -((_EPOCH - begin) // step) * step
    while start < until:
        yield start
        start += step


def _window_starts(
    occurrences: Sequence[Occurrence], begin: datetime, until: datetime, step: timedelta
) -> Iterator[datetime]:
    """Each occurrence's start and every step after it inside it, from ``begin`` until ``until``, in order
    and each once."""

    def of(occurrence: Occurrence) -> Iterator[datetime]:
        start = occurrence.start
        if start < begin:
            start += -((start - begin) // step) * step
        while start < occurrence.end and start < until:
            yield start
            start += step

    last = None
    for start in heapq.merge(*(of(o) for o in occurrences)):
        if start != last:
            yield start
            last = start


def _inside(spans: list[_SPAN], start: datetime, end: datetime) -> bool:
    """[start, end) lies inside one of the merged, sorted ``spans``."""
    index = bisect.bisect_right(spans, (start, datetime.max.replace(tzinfo=UTC))) - 1
    return index >= 0 and spans[index][0] <= start and spans[index][1] >= end


def _overlaps(spans: list[_SPAN], start: datetime, end: datetime) -> bool:
    """[start, end) overlaps one of the merged, sorted ``spans``: only the last one beginning before
    ``end`` can."""
    index = bisect.bisect_left(spans, (end,)) - 1
    return index >= 0 and spans[index][1] > start


def _names(occurrences: Sequence[Occurrence], spans: dict, start: datetime, end: datetime) -> str:
    """The names of the windows whose occurrences the slot lies in (of the services that have windows)."""
    names = sorted({o.name for o in occurrences if o.service in spans and o.start < end and o.end > start})
    return ", ".join(names)


def describe(duration: timedelta) -> str:
    """A change's length as the desk writes it (2 h 00 min, 45 min)."""
    return _minutes(duration)
