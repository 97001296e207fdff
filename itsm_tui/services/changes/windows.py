"""Maintenance windows and blackouts (change freezes): added, edited and deleted by change managers, audited.

Conflicts are computed live from these rows (:mod:`itsm_tui.services.conflicts`), so an edit or a delete
changes what every check finds at once. A freeze laid over live changes blocks them: before it is saved,
:func:`blocked_by_blackout` lists them (the form's preview, the command line's ``--dry-run``); once it is
saved (added, or its period or service edited), :func:`add_blackout` and :func:`edit_blackout` tell who
raised and who implements each blocked change, and the change managers once for the freeze
(:func:`notify_blocked`), each once per version of the freeze.

:func:`window_refusal` is the one rule of who may write them: every function here enforces it, and the
console asks it before it offers the keys that write.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Blackout, Change, ChangeTarget, MaintenanceWindow
from itsm_tui.services import audit, conflicts, notifications, versions
from itsm_tui.services.access import require
from itsm_tui.services.changes.helpers import _instant, _now
from itsm_tui.services.errors import NotFound, ServiceError, ValidationError
from itsm_tui.services.inputs import known_service, known_timezone, one_line
from itsm_tui.services.users import Actor

Added = TypeVar("Added", MaintenanceWindow, Blackout)

# The most live changes one freeze lists (the count of all of them is given beside).
BLOCKED_LIMIT = 200
# A change's planned window is at most this long (helpers._window), so a change overlapping a freeze starts
# at most this long before it: the lower bound that keeps the read of ix_changes_window a bounded range.
LONGEST_CHANGE = timedelta(days=14)
# A freeze longer than this is refused (a typo in the year, most often).
LONGEST_FREEZE = timedelta(days=366)


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP  # edit_window(valid_until=KEEP): leave it as it is (None: no end)


# --------------------------------------------------------------------------- who may


def guard_windows(actor: Actor) -> None:
    """Adding, editing and deleting maintenance windows and blackouts: change managers."""
    require(actor.roles, "change.manage", action="add, edit or delete maintenance windows and change freezes")


def window_refusal(actor: Actor) -> str | None:
    """Why ``actor`` may not add, edit or delete windows and blackouts (None: they may), as
    :func:`guard_windows` refuses."""
    try:
        guard_windows(actor)
    except ServiceError as exc:
        return str(exc)
    return None


# --------------------------------------------------------------------------- maintenance windows


@dataclass(frozen=True)
class _WindowValues:
    name: str
    service: str
    rrule: str
    start_local: str
    duration_minutes: int
    timezone: str
    valid_from: datetime
    valid_until: datetime | None


def _window_values(
    config: DeskConfig,
    *,
    name: str,
    service: str,
    rrule: str,
    start_local: str,
    duration_minutes: int,
    timezone: str,
    valid_from: datetime,
    valid_until: datetime | None,
    kept_name: str | None = None,
) -> _WindowValues:
    """The checked values of a window (added or edited alike; ``kept_name`` the name it has)."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("name", "give the window a name (e.g. Network weekly window)")
    if name != kept_name:  # a name kept as stored before names were checked is no new input
        one_line(name, "name", "a window's name")
    service = known_service(config, service or "")
    try:
        rule = conflicts.validate_rrule(rrule)
    except ValueError as exc:
        raise ValidationError("rrule", str(exc)) from None
    try:
        conflicts.validate_start_local(start_local)
    except ValueError as exc:
        raise ValidationError("start_local", str(exc)) from None
    known_timezone(timezone)
    if not 1 <= int(duration_minutes) <= 7 * 1440:
        raise ValidationError("duration_minutes", "the duration is between 1 minute and 7 days")
    begins = _instant("valid_from", valid_from)
    ends = _instant("valid_until", valid_until)
    assert begins is not None  # given by the caller
    if ends is not None and ends <= begins:
        raise ValidationError("valid_until", "the window must end after it begins (valid_from)")
    spec = conflicts.WindowSpec(
        0, name, service, timezone, rule, start_local, int(duration_minutes), begins, ends
    )
    try:
        conflicts.check_occurs(spec)
    except ValueError as exc:
        raise ValidationError("rrule", str(exc)) from None
    return _WindowValues(name, service, rule, start_local, int(duration_minutes), timezone, begins, ends)


def _rule_text(window: MaintenanceWindow | _WindowValues) -> str:
    return (
        f"{window.service}: {window.rrule} at {window.start_local} {window.timezone} "
        f"for {window.duration_minutes} min"
    )


def add_window(
    session: Session,
    actor: Actor,
    *,
    name: str,
    service: str,
    rrule: str,
    start_local: str,
    duration_minutes: int,
    timezone: str,
    config: DeskConfig,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    now: datetime | None = None,
) -> MaintenanceWindow:
    """Add a recurring maintenance window to a service (change managers).

    The rule recurs at most daily (FREQ=DAILY, WEEKLY, MONTHLY or YEARLY, no BYHOUR/BYMINUTE/BYSECOND: the
    window opens at ``start_local``) and must occur at least once; each occurrence runs from ``start_local``
    to the wall-clock time ``duration_minutes`` later (see :func:`conflicts.occurrences`).
    """
    guard_windows(actor)
    now = _now(now)
    values = _window_values(
        config,
        name=name,
        service=service,
        rrule=rrule,
        start_local=start_local,
        duration_minutes=duration_minutes,
        timezone=timezone,
        valid_from=valid_from or now,
        valid_until=valid_until,
    )
    window = MaintenanceWindow(
        name=values.name,
        service=values.service,
        timezone=values.timezone,
        rrule=values.rrule,
        start_local=values.start_local,
        duration_minutes=values.duration_minutes,
        valid_from=values.valid_from,
        valid_until=values.valid_until,
        created_by_id=actor.id,
    )
    return _added(session, window, "window", actor, now, "rule", _rule_text(values))


def _load_window(session: Session, window_id: int) -> MaintenanceWindow:
    window = session.scalar(
        select(MaintenanceWindow).where(MaintenanceWindow.id == window_id).with_for_update()
    )
    if window is None:
        raise NotFound(f"no maintenance window {window_id}; `itsm change windows` lists them with their ids")
    return window


def edit_window(
    session: Session,
    actor: Actor,
    window_id: int,
    *,
    config: DeskConfig,
    name: str | None = None,
    service: str | None = None,
    rrule: str | None = None,
    start_local: str | None = None,
    duration_minutes: int | None = None,
    timezone: str | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | _Keep | None = KEEP,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> MaintenanceWindow:
    """Edit a maintenance window (change managers): what is given (None: kept; ``valid_until`` None: no
    end, :data:`KEEP`: kept), checked as :func:`add_window` checks, each changed field audited."""
    guard_windows(actor)
    now = _now(now)
    window = _load_window(session, window_id)
    versions.check_version(session, "window", window, expected_version)
    values = _window_values(
        config,
        name=window.name if name is None else name,
        service=window.service if service is None else service,
        rrule=window.rrule if rrule is None else rrule,
        start_local=window.start_local if start_local is None else start_local,
        duration_minutes=window.duration_minutes if duration_minutes is None else duration_minutes,
        timezone=window.timezone if timezone is None else timezone,
        valid_from=window.valid_from if valid_from is None else valid_from,
        valid_until=window.valid_until if isinstance(valid_until, _Keep) else valid_until,
        kept_name=window.name,
    )
    for field in (
        "name",
        "service",
        "rrule",
        "start_local",
        "duration_minutes",
        "timezone",
        "valid_from",
        "valid_until",
    ):
        audit.set_field(session, window, "window", field, getattr(values, field), actor.id, now)
    versions.flush(session, "window", window, expected_version)
    return window


def delete_window(
    session: Session,
    actor: Actor,
    window_id: int,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> str:
    """Delete a maintenance window (change managers); the audit trail keeps what it was. Returns that."""
    guard_windows(actor)
    now = _now(now)
    window = _load_window(session, window_id)
    versions.check_version(session, "window", window, expected_version)
    said = f"{window.name}: {_rule_text(window)}"
    return _deleted(session, window, "window", actor, now, expected_version, said)


# --------------------------------------------------------------------------- blackouts


def _blackout_values(
    config: DeskConfig,
    name: str,
    service: str | None,
    start: datetime | None,
    end: datetime | None,
    kept_name: str | None = None,
) -> tuple[str, str | None, datetime, datetime]:
    name = (name or "").strip()
    if not name:
        raise ValidationError("name", "give the freeze a name (e.g. Year-end change freeze)")
    if name != kept_name:  # a name kept as stored before names were checked is no new input
        one_line(name, "name", "a freeze's name")
    code = known_service(config, service) if service and service.strip() else None
    begin, finish = _instant("start", start), _instant("end", end)
    if begin is None or finish is None or finish <= begin:
        raise ValidationError("end", "a blackout needs a start and a later end")
    if finish - begin > LONGEST_FREEZE:
        raise ValidationError("end", "a blackout lasts at most a year; check the dates")
    return name, code, begin, finish


def _period_text(service: str | None, start: datetime, end: datetime) -> str:
    return f"{service or 'all services'}: {start.isoformat()} to {end.isoformat()}"


def add_blackout(
    session: Session,
    actor: Actor,
    *,
    name: str,
    start: datetime,
    end: datetime,
    config: DeskConfig,
    service: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> Blackout:
    """Add a change freeze for every service or one (change managers); who raised or implements each live
    change it blocks is told (:func:`notify_blocked`)."""
    guard_windows(actor)
    now = _now(now)
    name, code, begin, finish = _blackout_values(config, name, service, start, end)
    blackout = Blackout(
        name=name,
        reason=(reason or "").strip() or None,
        service=code,
        starts_at=begin,
        ends_at=finish,
        created_by_id=actor.id,
    )
    _added(session, blackout, "blackout", actor, now, "period", _period_text(code, begin, finish))
    notify_blocked(session, config, blackout, actor, now)
    return blackout


def _load_blackout(session: Session, blackout_id: int) -> Blackout:
    blackout = session.scalar(select(Blackout).where(Blackout.id == blackout_id).with_for_update())
    if blackout is None:
        raise NotFound(f"no blackout {blackout_id}; `itsm change windows` lists them with their ids")
    return blackout


def edit_blackout(
    session: Session,
    actor: Actor,
    blackout_id: int,
    *,
    config: DeskConfig,
    name: str | None = None,
    reason: str | None = None,
    service: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Blackout:
    """Edit a change freeze (change managers): what is given (None: kept; ``service`` "": every service,
    ``reason`` "": none), checked as :func:`add_blackout` checks, each changed field audited. When its
    period or service changed, who owns each live change it now blocks is told."""
    guard_windows(actor)
    now = _now(now)
    blackout = _load_blackout(session, blackout_id)
    versions.check_version(session, "blackout", blackout, expected_version)
    name_, code, begin, finish = _blackout_values(
        config,
        blackout.name if name is None else name,
        blackout.service if service is None else service,
        blackout.starts_at if start is None else start,
        blackout.ends_at if end is None else end,
        kept_name=blackout.name,
    )
    new_reason = blackout.reason if reason is None else (reason.strip() or None)
    changed = {
        field: audit.set_field(session, blackout, "blackout", field, value, actor.id, now)
        for field, value in (
            ("name", name_),
            ("reason", new_reason),
            ("service", code),
            ("starts_at", begin),
            ("ends_at", finish),
        )
    }
    versions.flush(session, "blackout", blackout, expected_version)
    if changed["service"] or changed["starts_at"] or changed["ends_at"]:
        notify_blocked(session, config, blackout, actor, now)
    return blackout


def delete_blackout(
    session: Session,
    actor: Actor,
    blackout_id: int,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> str:
    """Delete a change freeze (change managers); the audit trail keeps what it was. Returns that."""
    guard_windows(actor)
    now = _now(now)
    blackout = _load_blackout(session, blackout_id)
    versions.check_version(session, "blackout", blackout, expected_version)
    said = f"{blackout.name}: {_period_text(blackout.service, blackout.starts_at, blackout.ends_at)}"
    return _deleted(session, blackout, "blackout", actor, now, expected_version, said)


def _deleted(
    session: Session,
    row: Added,
    entity_type: str,
    actor: Actor,
    now: datetime,
    expected_version: int | None,
    said: str,
) -> str:
    """A window or blackout deleted, what it was (``said``) written to its audit trail first; ``said``."""
    audit.record_for(session, entity_type, row, actor.id, now, "delete", entity_type, said)
    session.delete(row)
    versions.flush(session, entity_type, row, expected_version)
    return said


def _added(
    session: Session, row: Added, entity_type: str, actor: Actor, now: datetime, field: str, text: str
) -> Added:
    """A new window or blackout written (so that it has its id) and its creation audited."""
    session.add(row)
    session.flush()
    audit.record_for(session, entity_type, row, actor.id, now, "create", field, text)
    return row


# --------------------------------------------------------------------------- the lists


@dataclass(frozen=True)
class WindowRow:
    id: int
    version: int
    name: str
    service: str
    rrule: str
    start_local: str
    duration_minutes: int
    timezone: str
    valid_from: datetime
    valid_until: datetime | None


@dataclass(frozen=True)
class BlackoutRow:
    id: int
    version: int
    name: str
    service: str | None  # None: every service
    start: datetime
    end: datetime
    reason: str | None


@dataclass(frozen=True)
class WindowLists:
    """The maintenance windows (by service and name) and the blackouts (the latest first), at most
    ``LIST_LIMIT`` of each."""

    windows: tuple[WindowRow, ...]
    blackouts: tuple[BlackoutRow, ...]


LIST_LIMIT = 500


def window_lists(session: Session, limit: int = LIST_LIMIT) -> WindowLists:
    """What the windows screen lists: two bounded reads (the blackouts along ``ix_blackouts_window``)."""
    windows = session.scalars(
        select(MaintenanceWindow)
        .order_by(MaintenanceWindow.service, MaintenanceWindow.name, MaintenanceWindow.id)
        .limit(limit)
    )
    blackouts = session.scalars(
        select(Blackout).order_by(Blackout.starts_at.desc(), Blackout.id.desc()).limit(limit)
    )
    return WindowLists(tuple(_window_row(w) for w in windows), tuple(_blackout_row(b) for b in blackouts))


def _window_row(w: MaintenanceWindow) -> WindowRow:
    return WindowRow(
        w.id,
        w.version,
        w.name,
        w.service,
        w.rrule,
        w.start_local,
        w.duration_minutes,
        w.timezone,
        w.valid_from,
        w.valid_until,
    )


def _blackout_row(b: Blackout) -> BlackoutRow:
    return BlackoutRow(b.id, b.version, b.name, b.service, b.starts_at, b.ends_at, b.reason)


def window_row(session: Session, window_id: int) -> WindowRow | None:
    """One maintenance window as it is now, by its id (None: deleted), as the lists show it: what a form
    takes after a stale save."""
    window = session.get(MaintenanceWindow, window_id, populate_existing=True)
    return _window_row(window) if window is not None else None


def blackout_row(session: Session, blackout_id: int) -> BlackoutRow | None:
    """One blackout as it is now, by its id (None: deleted), as the lists show it."""
    blackout = session.get(Blackout, blackout_id, populate_existing=True)
    return _blackout_row(blackout) if blackout is not None else None


# --------------------------------------------------------------------------- what a freeze blocks


@dataclass(frozen=True)
class BlockedChange:
    """A live change inside a freeze: blocked, or (an emergency change with an override reason) let in."""

    id: int
    ref: str
    title: str
    change_type: str
    state: str
    start: datetime
    end: datetime
    services: tuple[str, ...]
    overridden: bool
    message: str  # the conflict's sentence, as the change screen and `itsm change conflicts` say it
    requested_by_id: int | None = None
    implementer_id: int | None = None


@dataclass(frozen=True)
class Blocked:
    """The live changes a freeze would hold (at most :data:`BLOCKED_LIMIT`, by planned start), and how
    many there are in all (``total``: blocked and overridden)."""

    changes: tuple[BlockedChange, ...]
    total: int

    @property
    def blocked(self) -> list[BlockedChange]:
        return [c for c in self.changes if not c.overridden]

    @property
    def overridden(self) -> list[BlockedChange]:
        return [c for c in self.changes if c.overridden]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.changes)

    def __iter__(self) -> Iterator[BlockedChange]:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def summary(self) -> str:
        """One line: "It blocks 3 live changes: CHG... (scheduled, 2026-12-20 22:00-23:00 UTC), ..."."""
        if not self.total:
            return "It blocks no live change."
        blocked, overridden = self.blocked, self.overridden
        count = len(blocked) + (self.total - len(self.changes))
        parts = [f"It blocks {count} live change{'s' if count != 1 else ''}"]
        if blocked:
            parts[0] += ": " + ", ".join(_item(c) for c in blocked)
        if self.truncated:
            parts[0] += f" (the first {len(self.changes)} listed)"
        if overridden:
            parts.append(
                f"{len(overridden)} emergency change{'s' if len(overridden) != 1 else ''} may go ahead "
                f"with an override reason: " + ", ".join(_item(c) for c in overridden)
            )
        return "; ".join(parts) + "."


def _item(change: BlockedChange) -> str:
    return f"{change.ref} ({change.state}, {conflicts._span(change.start, change.end)})"


def blocked_by_blackout(
    session: Session,
    config: DeskConfig,
    *,
    start: datetime,
    end: datetime,
    service: str | None = None,
    exclude_id: int | None = None,
    name: str = "the new freeze",
    limit: int = BLOCKED_LIMIT,
) -> Blocked:
    """The live changes (``conflicts.LIVE_STATES``) whose planned window overlaps [start, end), on
    ``service`` (None or "": every service), that a freeze there would block, with the emergency changes
    it would let in (an override reason recorded) apart; ``exclude_id``: the freeze being edited (named
    in the sentences). The same rule as every conflict check (:func:`conflicts.find_conflicts`).

    Bounded: at most ``limit`` changes by planned start (``total`` counts them all), read along
    ``ix_changes_window`` from ``LONGEST_CHANGE`` before ``start`` (no change is longer).
    """
    code = known_service(config, service) if service and service.strip() else None
    begin, finish = _instant("start", start), _instant("end", end)
    if begin is None or finish is None or finish <= begin:
        raise ValidationError("end", "a blackout needs a start and a later end")
    conditions = [
        Change.planned_start > begin - LONGEST_CHANGE,
        Change.planned_start < finish,
        Change.planned_end > begin,
        # Tested on a copy of the state: the window's range is the index to read (SQLite would otherwise
        # read every live change of any date along ix_changes_state).
        func.coalesce(Change.state, Change.state).in_(conflicts.LIVE_STATES),
    ]
    if code is not None:
        # Correlated, so that the window's range drives and each change is probed on
        # ix_change_targets_service (service, change_id), not every change the service ever had.
        conditions.append(
            select(ChangeTarget.id)
            .where(ChangeTarget.service == code, ChangeTarget.change_id == Change.id)
            .exists()
        )
    total = session.scalar(select(func.count()).select_from(Change).where(*conditions)) or 0
    if not total:
        return Blocked((), 0)
    rows = session.execute(
        conflicts.changes_select(Change.title, Change.requested_by_id).where(*conditions).limit(limit)
    ).all()
    targets = _targets(session, config, [row.id for row in rows])
    freeze = conflicts.BlackoutSpec(exclude_id or 0, name, code, begin, finish)
    found: list[BlockedChange] = []
    for row in rows:
        planned = conflicts.planned_from(row, targets.get(row.id, ()))
        hits = [c for c in conflicts.find_conflicts([planned], (), [freeze]) if c.kind == "blackout"]
        if not hits:  # a change without targets, say: nothing a freeze of a service holds
            continue
        found.append(
            BlockedChange(
                row.id,
                row.ref,
                row.title,
                row.change_type,
                row.state,
                planned.start,
                planned.end,
                tuple(sorted(planned.services)),
                hits[0].severity == "overridden",
                hits[0].message,
                row.requested_by_id,
                row.implementer_id,
            )
        )
    return Blocked(tuple(found), total - (len(rows) - len(found)))


def _targets(session: Session, config: DeskConfig, ids: list[int]) -> dict[int, list[tuple[str, str | None]]]:
    """(service, CI or None) of the changes ``ids``, along ``ix_change_targets_service`` (service, change_id):
    the catalog's services are few, and change_targets has no index of its change ids alone."""
    found: dict[int, list[tuple[str, str | None]]] = {change_id: [] for change_id in ids}
    stmt = select(ChangeTarget.change_id, ChangeTarget.service, ChangeTarget.ci).where(
        ChangeTarget.service.in_(sorted(config.services)), ChangeTarget.change_id.in_(ids)
    )
    for change_id, service, ci in session.execute(stmt).tuples():
        found[change_id].append((service, ci))
    return found


def blocked_by_saved(session: Session, config: DeskConfig, blackout: Blackout) -> Blocked:
    """The live changes a saved ``blackout`` blocks (:func:`blocked_by_blackout` for its period, service
    and name, itself left out)."""
    return blocked_by_blackout(
        session,
        config,
        start=blackout.starts_at,
        end=blackout.ends_at,
        service=blackout.service,
        exclude_id=blackout.id,
        name=blackout.name,
    )


def notify_blocked(
    session: Session, config: DeskConfig, blackout: Blackout, actor: Actor | None, now: datetime
) -> int:
    """Tell who raised and who implements each live change ``blackout`` blocks, and the change managers
    once for the freeze (not ``actor``, who saved it), each once per version of the freeze."""
    found = blocked_by_saved(session, config, blackout)
    blocked = found.blocked
    if not blocked:
        return 0
    exclude = actor.id if actor else None
    key = f"blackout:{blackout.id}:v{blackout.version}"
    sent = 0
    for change in blocked:
        sent += notifications.notify(
            session,
            [u for u in (change.requested_by_id, change.implementer_id) if u],
            kind="change_conflict",
            event_key=f"{key}:change:{change.id}",
            entity=("change", change.id),
            message=change.message,
            now=now,
            exclude=exclude,
        )
    scope = f"service {blackout.service}" if blackout.service else "every service"
    span = conflicts._span(blackout.starts_at, blackout.ends_at)
    sent += notifications.notify(
        session,
        notifications.users_with_roles(session, ["change_manager"]),
        kind="change_conflict",
        event_key=key,
        entity=None,
        message=f"The change freeze {conflicts.quoted(blackout.name)} ({scope}, {span}) holds changes. "
        f"{found.summary()}",
        now=now,
        exclude=exclude,
    )
    return sent
