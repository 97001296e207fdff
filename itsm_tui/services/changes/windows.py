"""Maintenance windows and blackouts (change freezes), added by change managers and audited."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Blackout, MaintenanceWindow
from itsm_tui.services import audit, conflicts
from itsm_tui.services.access import require
from itsm_tui.services.changes.helpers import _instant, _now
from itsm_tui.services.errors import ValidationError
from itsm_tui.services.users import Actor


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
    """Add a recurring maintenance window to a service (change managers)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    require(actor.roles, "change.manage")
    now = _now(now)
    name = (name or "").strip()
    if not name:
        raise ValidationError("name", "give the window a name (e.g. Network weekly window)")
    service = (service or "").strip().lower()
    if service not in config.services:
        raise ValidationError(
            "service", f"unknown service {service!r}; use one of {', '.join(config.services)}"
        )
    try:
        rule = conflicts.validate_rrule(rrule)
        conflicts.validate_start_local(start_local)
    except ValueError as exc:
        raise ValidationError("rrule" if "RULE" in str(exc).upper() else "start_local", str(exc)) from None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("timezone", f"unknown time zone {timezone!r} (e.g. Europe/Berlin)") from None
    if not 1 <= int(duration_minutes) <= 7 * 1440:
        raise ValidationError("duration_minutes", "the duration is between 1 minute and 7 days")
    window = MaintenanceWindow(
        name=name,
        service=service,
        timezone=timezone,
        rrule=rule,
        start_local=start_local,
        duration_minutes=int(duration_minutes),
        valid_from=_instant("valid_from", valid_from) or now,
        valid_until=_instant("valid_until", valid_until),
    )
    session.add(window)
    session.flush()
    audit.record(
        session,
        entity_type="window",
        entity_id=window.id,
        actor_id=actor.id,
        at=now,
        action="create",
        field="rule",
        new=f"{service}: {rule} at {start_local} {timezone} for {duration_minutes} min",
    )
    return window


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
        service = service.strip().lower()
        if service not in config.services:
            raise ValidationError(
                "service", f"unknown service {service!r}; use one of {', '.join(config.services)}"
            )
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
    session.add(blackout)
    session.flush()
    audit.record(
        session,
        entity_type="blackout",
        entity_id=blackout.id,
        actor_id=actor.id,
        at=now,
        action="create",
        field="period",
        new=f"{service or 'all services'}: {begin.isoformat()} to {finish.isoformat()}",
    )
    return blackout
