"""What every step of a change shares: instants, versions and locking, audited field changes and state
moves, and the validation of titles, targets, implementers and windows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Change, User, utc_or_now
from itsm_tui.services import audit, versions
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.changes.reading import _login_of, _logins, _planned_window, get_change
from itsm_tui.services.changes.rules import TITLE_MAX, TRANSITIONS
from itsm_tui.services.errors import InvalidTransition, ValidationError
from itsm_tui.services.inputs import active_user, known_service, one_line, required_title
from itsm_tui.services.users import Actor


def _now(now: datetime | None) -> datetime:
    return utc_or_now(now)


def _instant(field_name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValidationError(field_name, f"{field_name} needs a time zone (e.g. 2026-11-21T22:00Z)")
    try:
        return value.astimezone(UTC).replace(second=0, microsecond=0)
    except OverflowError:  # e.g. 0001-01-01 00:30 east of UTC: before the first instant there is
        raise ValidationError(field_name, f"{field_name} is out of range; give a date in this era") from None


def _check_version(session: Session, change: Change, expected_version: int | None) -> None:
    versions.check_version(session, "change", change, expected_version)


def _flush(session: Session, change: Change, expected_version: int | None) -> None:
    """Write now; a concurrent save that won the race turns into :class:`StaleEdit`."""
    versions.flush(session, "change", change, expected_version)


def _load(session: Session, ref: str, expected_version: int | None) -> Change:
    """The change, row-locked on PostgreSQL: two approvers' decisions are counted one after the other."""
    change = get_change(session, ref, for_update=True)
    _check_version(session, change, expected_version)
    return change


def _finish(session: Session, change: Change, expected_version: int | None, now: datetime) -> Change:
    """The end of every lifecycle step: the change was updated at ``now``, and the step is written."""
    change.updated_at = now
    _flush(session, change, expected_version)
    return change


def _set(
    session: Session,
    change: Change,
    name: str,
    value: object,
    actor: Actor | None,
    now: datetime,
    action: str = "update",
) -> bool:
    actor_id = actor.id if actor else None
    if name != "implementer_id":
        return audit.set_field(session, change, "change", name, value, actor_id, now, action)
    if value != change.implementer_id and value is not None and not isinstance(value, int):
        raise TypeError(f"implementer_id is a user id, not {value!r}")

    def logins(old: int | None, new: int | None) -> tuple[str | None, str | None]:
        names = _logins(session, [old, new])
        return _login_of(names, old), _login_of(names, new)

    return audit.set_field(session, change, "change", name, value, actor_id, now, action, logins)


def _move(
    session: Session, change: Change, to: str, actor: Actor | None, now: datetime, action: str = "transition"
) -> None:
    allowed = TRANSITIONS[change.state]
    if to not in allowed:
        raise InvalidTransition(change.ref, change.state, to, allowed)
    _set(session, change, "state", to, actor, now, action)


def _note(
    session: Session, change: Change, actor: Actor | None, now: datetime, action: str, name: str, text: object
) -> None:
    audit.record_for(session, "change", change, actor.id if actor else None, now, action, name, text)


def _require_state(change: Change, wanted: str, *states: str) -> None:
    if change.state not in states:
        allowed = TRANSITIONS[change.state]
        raise InvalidTransition(change.ref, change.state, wanted, allowed)


def _is_requester(actor: Actor, change: Change) -> bool:
    return change.requested_by_id == actor.id


def _denied(permission: str, actor: Actor, detail: str) -> PermissionDenied:
    return PermissionDenied(permission, actor.roles, detail)


def a_kind(change_type: str) -> str:
    """A change type with its article: "a normal", "a standard", "an emergency"."""
    return ("an " if change_type[:1] in "aeiou" else "a ") + change_type


def _validate_title(title: str | None) -> str:
    return one_line(required_title(title, "one line saying what changes", TITLE_MAX), "title", "the title")


def parse_targets(config: DeskConfig, items: Iterable[str]) -> list[tuple[str, str | None]]:
    """Affected services and CIs from text: ``network``, ``core-sw-01`` (a CI: its service is found) or
    ``network:core-sw-01``; commas separate several."""
    result: list[tuple[str, str | None]] = []
    for item in items:
        for part in str(item).replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            head, _, tail = part.partition(":")
            service, ci = head.strip(), tail.strip() or None
            if ci is None and service.lower() not in config.services:
                owner = config.service_for_ci(service)
                if owner is None:
                    raise ValidationError(
                        "targets",
                        f"{service!r} is neither a service ({', '.join(config.services)}) nor a known "
                        f"configuration item",
                    )
                service, ci = owner.code, service
            service = known_service(config, service, "targets")
            if ci is not None and ci not in config.services[service].cis:
                owner = config.service_for_ci(ci)
                where = f"it belongs to {owner.code}" if owner else "it is not a known configuration item"
                raise ValidationError(
                    "targets", f"configuration item {ci!r} is not part of {service} ({where})"
                )
            if (service, ci) not in result:
                result.append((service, ci))
    if not result:
        raise ValidationError("targets", "name at least one affected service or configuration item")
    # A whole service covers its CIs.
    whole = {s for s, ci in result if ci is None}
    return [(s, ci) for s, ci in result if ci is None or s not in whole]


def _implementer(session: Session, login: str | None) -> User | None:
    if not login or not login.strip():
        return None
    return active_user(session, login, "implementer")


def _window(
    config: DeskConfig,
    change_type: str,
    template: str | None,
    start: datetime | None,
    end: datetime | None,
) -> tuple[datetime, datetime]:
    start = _instant("start", start)
    end = _instant("end", end)
    if start is None:
        raise ValidationError("start", "give the planned start")
    if change_type == "standard" and template in config.changes.templates:
        longest = timedelta(minutes=config.changes.templates[template].duration_minutes)
        if end is None:
            end = start + longest
        elif end - start > longest:
            raise ValidationError(
                "end",
                f"template {template} is pre-approved for at most {_minutes(longest)}; "
                f"shorten the window or raise a normal change",
            )
    if end is None:
        raise ValidationError("end", "give the planned end")
    if end <= start:
        raise ValidationError("end", "the planned end must be after the planned start")
    if end - start > timedelta(days=14):
        raise ValidationError("end", "a change window is at most 14 days; split longer work into changes")
    return start, end


def _new_window(
    config: DeskConfig, change: Change, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime]:
    """The validated window of a move: a missing start keeps the current one, a missing end the length."""
    if start is None:
        start = change.planned_start
    if end is None and start is not None and change.planned_start and change.planned_end:
        end = start + (change.planned_end - change.planned_start)
    return _window(config, change.change_type, change.template, start, end)


def outside_window(config: DeskConfig, change: Change, now: datetime) -> str | None:
    """Why ``change`` may not begin at ``now``, or None inside its window: from ``early_start_minutes``
    (changes.toml ``[implementation]``) before its planned start until its planned end."""
    start, end = _planned_window(change)
    early = timedelta(minutes=config.changes.early_start_minutes)
    window = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    if now < start - early:
        lead = f" ({_minutes(early)} early at most)" if early else ""
        return (
            f"{change.ref} is planned for {window}: it may begin from {start - early:%Y-%m-%d %H:%M} UTC"
            f"{lead}, not at {now:%Y-%m-%d %H:%M} UTC"
        )
    if now >= end:
        return f"{change.ref} was planned for {window}, which is over: move it to a new window"
    return None


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
