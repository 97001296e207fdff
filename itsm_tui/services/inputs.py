"""Checks of the inputs that tickets, changes, windows and users share: a title, a service, a time zone and a
user named by login. Each refusal is a :class:`ValidationError` naming the field, with the same words
wherever the input is given."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from itsm_tui.models import User
from itsm_tui.services.errors import ValidationError
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from itsm_tui.config import DeskConfig


def required_title(title: str | None, hint: str, limit: int) -> str:
    """The title without its surrounding spaces; ``hint`` says what the one line should say."""
    title = (title or "").strip()
    if not title:
        raise ValidationError("title", f"a title is required ({hint})")
    if len(title) > limit:
        raise ValidationError("title", f"the title is {len(title)} characters; keep it within {limit}")
    return title


def one_line(value: str, field: str, what: str) -> str:
    """``value`` unless it holds a line break, a tab or another control character: ``what`` ("the title", "a
    window's name") is one line of printable characters, shown as typed wherever it appears."""
    if strip_control(value, single_line=True) != value:
        raise ValidationError(
            field, f"{what} is one line of printable characters: no line break, tab or control character"
        )
    return value


def known_service(config: DeskConfig, service: str, field: str = "service") -> str:
    """The code of a service of the configuration (case and surrounding spaces forgiven)."""
    service = service.strip().lower()
    if service not in config.services:
        raise ValidationError(field, f"unknown service {service!r}; use one of {', '.join(config.services)}")
    return service


def known_timezone(timezone: str) -> None:
    """Refuse a time zone the zone database does not know."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("timezone", f"unknown time zone {timezone!r} (e.g. Europe/Berlin)") from None


def active_user(session: Session, login: str, field: str) -> User:
    """The active user with this login, for the input ``field`` that names them."""
    user = session.scalar(select(User).where(User.login == login.strip()))
    if user is None or not user.active:
        raise ValidationError(field, f"no active user {login!r}; `itsm user list` shows the users")
    return user
