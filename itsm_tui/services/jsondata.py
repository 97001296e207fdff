"""How records are written as JSON, for ``--json`` and the records' ``as_json``: instants in UTC, in ISO 8601
with a ``Z`` (``2026-03-07T21:00:00Z``), every other value as it is."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its instants written as :func:`instant` writes them."""
    return {k: (instant(v) if isinstance(v, datetime) else v) for k, v in data.items()}
