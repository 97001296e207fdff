"""Maintenance windows and blackouts (change freezes), added by change managers and audited."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Blackout, MaintenanceWindow
from itsm_tui.services import audit, conflicts
from itsm_tui.services.access import require
from itsm_tui.services.changes.helpers import _instant, _now
from itsm_tui.services.errors import ValidationError
from itsm_tui.services.inputs import known_service, known_timezone
from itsm_tui.services.users import Actor

Added = TypeVar("Added", MaintenanceWindow, Blackout)


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
    require(actor.roles, "change.manage")
    now = _now(now)
    name = (name or "").strip()
    if not name:
        raise ValidationError("name", "give the window a name (e.g. Network weekly window)")
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
    begins = _instant("valid_from", valid_from) or now
    ends = _instant("valid_until", valid_until)
    spec = conflicts.WindowSpec(
        0, name, service, timezone, rule, start_local, int(duration_minutes), begins, ends
    )
    try:
        conflicts.check_occurs(spec)
    except ValueError as exc:
        raise ValidationError("rrule", str(exc)) from None
    window = MaintenanceWindow(
        name=name,
        service=service,
        timezone=timezone,
        rrule=rule,
        start_local=start_local,
        duration_minutes=int(duration_minutes),
        valid_from=begins,
        valid_until=ends,
    )
    rule_text = f"{service}: {rule} at {start_local} {timezone} for {duration_minutes} min"
    return _added(session, window, "window", actor, now, "rule", rule_text)


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
    """Add a change freeze for every service or one (change managers)."""
    require(actor.roles, "change.manage")
    now = _now(now)
    name = (name or "").strip()
    if not name:
        raise ValidationError("name", "give the freeze a name (e.g. Year-end change freeze)")
    if service:
        service = known_service(config, service)
    begin, finish = _instant("start", start), _instant("end", end)
    if begin is None or finish is None or finish <= begin:
        raise ValidationError("end", "a blackout needs a start and a later end")
    blackout = Blackout(
        name=name,
        reason=(reason or "").strip() or None,
        service=service or None,
        starts_at=begin,
        ends_at=finish,
    )
    period = f"{service or 'all services'}: {begin.isoformat()} to {finish.isoformat()}"
    return _added(session, blackout, "blackout", actor, now, "period", period)


def _added(
    session: Session, row: Added, entity_type: str, actor: Actor, now: datetime, field: str, text: str
) -> Added:
    """A new window or blackout written (so that it has its id) and its creation audited."""
    session.add(row)
    session.flush()
    audit.record_for(session, entity_type, row, actor.id, now, "create", field, text)
    return row
