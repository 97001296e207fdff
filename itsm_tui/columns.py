"""Columns of your own: which queue columns each view shows, in which order, from a TOML file in the user's
config directory (``columns.toml`` beside ``keys.toml``)::

    [columns]
    all_open = ["ref", "priority", "sla", "assignee", "group", "status"]
    my_work = ["ref", "sla", "status", "requester"]
    default = ["ref", "priority", "sla", "status", "group", "assignee"]   # every view not named

The queue shows a view's columns in the order given, as many as fit beside the title (which always comes
last and takes the rest of the line); a view the file does not name shows ``default``'s, or the shipped
choice. The file is checked whole when the console starts: an unknown table, view or column (naming the
nearest known one), a column twice, and anything but a list of column names each stop the console with one
line naming the file, the key and the problem (a :class:`~itsm_tui.config.ConfigError`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from itsm_tui.config import ConfigError, read_toml

COLUMNS_FILE_ENV = "ITSM_COLUMNS_FILE"
"""A column file to use instead of the one in the user's config directory (which then must exist)."""

# The queue's columns a file may name (screens/queue.py draws them); the title is always shown, last.
COLUMN_KEYS = (
    "ref",
    "priority",
    "sla",
    "status",
    "group",
    "assignee",
    "requester",
    "service",
    "opened",
    "resolved",
)
DEFAULT = "default"  # the columns of every view the file does not name


class ColumnFileError(ConfigError):
    """The column file breaks a rule; the message names the file, the key and the rule."""


@dataclass(frozen=True)
class ColumnChoice:
    """The columns the user chose: view key (or ``default``) -> column keys in order."""

    path: Path | None = None
    views: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def for_view(self, view: str) -> tuple[str, ...] | None:
        """The columns chosen for ``view`` (else those for every view); None: the shipped choice."""
        return self.views.get(view) or self.views.get(DEFAULT)


NO_CHOICE = ColumnChoice()


def default_columns_file() -> Path:
    from platformdirs import user_config_path

    return user_config_path("itsm") / "columns.toml"


def columns_file() -> tuple[Path, bool]:
    """The column file to read, and whether it must exist (``ITSM_COLUMNS_FILE`` names one that must)."""
    override = os.environ.get(COLUMNS_FILE_ENV)
    if override:
        return Path(override), True
    return default_columns_file(), False


def _nearest(word: str, known: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load(path: Path | None = None, *, must_exist: bool = True) -> ColumnChoice:
    """The columns of the file at ``path`` (by default :func:`columns_file`), checked; no file where the
    default one would be means the shipped columns."""
    if path is None:
        path, must_exist = columns_file()
    if not must_exist and not path.exists() and not path.is_symlink():
        return NO_CHOICE
    data = read_toml(path, ColumnFileError, f"file is missing (named by {COLUMNS_FILE_ENV})")
    for key in data:
        if key != "columns":
            raise ColumnFileError(
                path, str(key), f"unknown key; the file's top level knows columns{_nearest(key, ['columns'])}"
            )
    body = data.get("columns", {})
    if not isinstance(body, dict):
        raise ColumnFileError(
            path, "columns", 'must be a table: [columns] then lines like all_open = ["ref", "sla"]'
        )
    from itsm_tui.services.queue import VIEWS

    views: dict[str, tuple[str, ...]] = {}
    known_views = (*VIEWS, DEFAULT)
    for view, value in body.items():
        where = f"columns.{view}"
        if view not in known_views:
            raise ColumnFileError(
                path, where, f"no such view{_nearest(view, known_views)}; use {', '.join(known_views)}"
            )
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ColumnFileError(
                path, where, 'must be a list of column names, e.g. ["ref", "sla", "assignee"]'
            )
        seen: list[str] = []
        for name in value:
            column = name.strip().lower()
            if column == "title":
                raise ColumnFileError(
                    path, where, "the title is always shown, last, taking the rest: leave it out"
                )
            if column not in COLUMN_KEYS:
                raise ColumnFileError(
                    path,
                    where,
                    f"{name!r} is no column{_nearest(column, COLUMN_KEYS)}; use {', '.join(COLUMN_KEYS)}",
                )
            if column in seen:
                raise ColumnFileError(path, where, f"{name!r} is named twice")
            seen.append(column)
        views[view] = tuple(seen)
    return ColumnChoice(path, views)
