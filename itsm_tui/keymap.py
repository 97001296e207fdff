"""Keys of your own: a TOML file in the user's config directory that remaps or unbinds the console's keys.

Every binding of the console has an id (``queue.take``, ``go.kpi``); the file names ids, never actions::

    [keys]
    "queue.take" = "T"          # Take is T now, and t does nothing
    "ticket.note" = ""          # no key at all (the command palette still offers it)
    "go.kpi" = "f4,ctrl+k"      # two keys

Remapping is Textual's own keymap (``App.set_keymap``): the footer, the key dispatch and :class:`Keys` (for
help and the palette) all read the keys in force from it. Textual's keymap cannot take a key away, so an
unbound id is dropped from the bindings of every node the console registers (:meth:`Keys.drop_unbound`).

The file is checked whole at start-up, like the desk's configuration (:mod:`itsm_tui.config`): an unknown
id (naming the nearest known one), a key name Textual does not know, and two ids left on one key of one
screen each stop the console with one line naming the file, the id and the problem.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.binding import Binding
from textual.keys import Keys as TextualKeys
from textual.keys import _character_to_key, key_to_character

from itsm_tui.config import read_toml

if TYPE_CHECKING:
    from textual.app import App
    from textual.dom import DOMNode

KEYS_FILE_ENV = "ITSM_KEYS_FILE"
"""A key file to use instead of the one in the user's config directory (which then must exist)."""

MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
# The keys Textual names (escape, f5, pageup, ...), besides characters and their names (slash, question_mark).
NAMED_KEYS = frozenset(
    key.value for key in TextualKeys if "+" not in key.value and not key.value.startswith("<")
)
KEY_HINT = "a character (T, ?), a name (f6, escape, pageup, slash) or one with modifiers (ctrl+t, alt+x)"


class KeyFileError(Exception):
    """The key file breaks a rule; the message names the file, the binding id (or what else) and the rule."""

    def __init__(self, path: Path | str, key: str, rule: str) -> None:
        self.path, self.key, self.rule = str(path), key, rule
        super().__init__(f"{path}: {key}: {rule}")


def default_keys_file() -> Path:
    """Where the console looks for the user's keys: ``keys.toml`` in the user's config directory."""
    from platformdirs import user_config_path

    return user_config_path("itsm") / "keys.toml"


def keys_file() -> tuple[Path, bool]:
    """The key file to read, and whether it must exist (``ITSM_KEYS_FILE`` names one that must)."""
    override = os.environ.get(KEYS_FILE_ENV)
    if override:
        return Path(override), True
    return default_keys_file(), False


@dataclass(frozen=True)
class BindingTable:
    """Every binding of the console with an id, by where it is in force.

    ``screens`` and ``modals`` are grouped by the id's first word (``queue`` holds the queue screen's keys
    and its table's): the app's own keys (``app``) are in force beside a screen's, but not beside a modal
    one's (Textual stops looking for a key at a modal screen)."""

    app: tuple[Binding, ...]
    screens: Mapping[str, tuple[Binding, ...]]
    modals: Mapping[str, tuple[Binding, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, app_class: type, node_classes: Iterable[type]) -> BindingTable:
        """The table of an app class and the screen and widget classes it shows."""
        from textual.screen import ModalScreen, Screen

        groups: dict[str, dict[str, Binding]] = {}
        beside_app: set[str] = set()
        for node_class in node_classes:
            for binding in declared_bindings(node_class):
                assert binding.id is not None
                group = binding.id.partition(".")[0]
                groups.setdefault(group, {}).setdefault(binding.id, binding)
                if issubclass(node_class, Screen) and not issubclass(node_class, ModalScreen):
                    beside_app.add(group)
        return cls(
            app=tuple(declared_bindings(app_class)),
            screens={name: tuple(found.values()) for name, found in groups.items() if name in beside_app},
            modals={name: tuple(found.values()) for name, found in groups.items() if name not in beside_app},
        )

    def ids(self) -> dict[str, Binding]:
        every = [*self.app, *(b for group in (*self.screens.values(), *self.modals.values()) for b in group)]
        return {binding.id: binding for binding in every if binding.id}


@dataclass(frozen=True)
class Keys:
    """The user's keys: the ids given other keys (Textual's normalised key lists) and the ids unbound."""

    path: Path | None = None
    remapped: Mapping[str, str] = field(default_factory=dict)
    unbound: frozenset[str] = frozenset()

    def keys_of(self, binding: Binding) -> list[str]:
        """The keys that run ``binding`` now ([] for an unbound one)."""
        if binding.id in self.unbound:
            return []
        if binding.id is not None and binding.id in self.remapped:
            return self.remapped[binding.id].split(",")
        return [_normal_key(key.strip()) or key.strip() for key in binding.key.split(",")]

    def display(self, binding: Binding, app: App[Any]) -> str:
        """The keys of ``binding`` as help and the palette show them ("" for an unbound one). A binding's
        own ``key_display`` describes its own keys, so it is dropped once they are remapped."""
        keys = self.keys_of(binding)
        if not keys:
            return ""
        if binding.key_display and binding.id not in self.remapped:
            return binding.key_display
        return ",".join(app.get_key_display(Binding(key, "")) for key in keys)

    def drop_unbound(self, nodes: Iterable[DOMNode]) -> None:
        """Take the unbound bindings out of each node's own bindings (Textual's keymap cannot unbind).

        Each node holds its bindings in ``_bindings``, a copy of its class's made when it is created, and
        the key dispatch and the footer read only those (with the keymap laid over them). The lists in that
        copy are still the class's, so they are replaced, never changed in place."""
        if not self.unbound:
            return
        for node in nodes:
            bindings = node._bindings
            if not any(b.id in self.unbound for bs in bindings.key_to_bindings.values() for b in bs):
                continue
            kept = {
                key: [b for b in key_bindings if b.id not in self.unbound]
                for key, key_bindings in bindings.key_to_bindings.items()
            }
            bindings.key_to_bindings = {
                key: key_bindings for key, key_bindings in kept.items() if key_bindings
            }

    @property
    def keymap(self) -> dict[str, str]:
        """What ``App.set_keymap`` takes: binding id -> keys."""
        return dict(self.remapped)


NO_KEYS = Keys()


def declared_bindings(node_class: type) -> list[Binding]:
    """The bindings with an id that ``node_class`` and the classes it inherits from declare, a subclass's
    before its bases' (those of Textual's own classes have none)."""
    found: dict[str, Binding] = {}
    for cls in node_class.__mro__:
        for binding in cls.__dict__.get("BINDINGS", ()):
            if isinstance(binding, Binding) and binding.id and binding.id not in found:
                found[binding.id] = binding
    return list(found.values())


def _binding_of(node_class: type, binding_id: str) -> Binding | None:
    return next((b for b in declared_bindings(node_class) if b.id == binding_id), None)


def key_in_force(node: DOMNode, binding_id: str) -> str:
    """The key of the binding ``binding_id`` of ``node`` (or of its app) in force (``F5``, ``ctrl+r``,
    ``esc``: the first, where several run it; help lists them all); "" when the user unbound it. For the
    key hints written in a screen's text ("F5 reloads"), which would otherwise name a key the user's file
    moved."""
    app = node.app
    binding = _binding_of(type(node), binding_id) or _binding_of(type(app), binding_id)
    if binding is None:
        raise KeyError(f"{type(node).__name__} has no binding {binding_id!r}")
    found = getattr(app, "keys", NO_KEYS)
    keys = found if isinstance(found, Keys) else NO_KEYS
    in_force = keys.keys_of(binding)
    if in_force and binding.key_display and binding.id not in keys.remapped:
        return binding.key_display
    return _hint_key(in_force[0], app) if in_force else ""


# Keys a sentence spells out where Textual's display draws a symbol.
_SPELLED = {"enter": "enter", "escape": "esc", "space": "space", "tab": "tab", "backspace": "backspace"}


def _hint_key(key: str, app: App[Any]) -> str:
    """A key as a sentence names it: ``ctrl+s`` (Textual's own display would say ``^s``), ``esc``, ``?``."""
    *modifiers, base = key.split("+")
    if not modifiers:
        return _SPELLED.get(key) or app.get_key_display(Binding(key, ""))
    character = key_to_character(base)
    return "+".join([*modifiers, character if character and character.isprintable() else base])


def _offered_key(node: DOMNode, binding_id: str) -> str:
    """:func:`key_in_force`, or "" when ``node`` does not offer the binding's action at all."""
    from textual.actions import parse

    binding = _binding_of(type(node), binding_id)
    if binding is not None:
        destination, name, parameters = parse(binding.action)
        if not destination and node.check_action(name, parameters) is False:
            return ""
    return key_in_force(node, binding_id)


def fill_keys(node: DOMNode, text: str, sep: str = " · ") -> str:
    """``text`` with each ``{binding.id}`` in it replaced by the key in force ("{form.save} save · tab next
    field" reads "ctrl+s save · tab next field"); a part (between ``sep``) naming a key the user unbound, or
    an action the screen does not offer (its ``check_action`` says False: the user's role never may), is
    left out. Text without such a name comes back as it is."""
    if "{" not in text:
        return text
    kept = []
    for part in text.split(sep):
        keys = {name: _offered_key(node, name) for name in _KEY_NAME.findall(part)}
        if all(keys.values()):
            for name, key in keys.items():
                part = part.replace("{" + name + "}", key)
            kept.append(part)
    return sep.join(kept)


_KEY_NAME = re.compile(r"\{([a-z_]+(?:\.[a-z_0-9]+)+)\}")


# --------------------------------------------------------------------------- reading the file


def load(table_of: Callable[[], BindingTable], path: Path | None = None, *, must_exist: bool = True) -> Keys:
    """The keys of the file at ``path`` (by default :func:`keys_file`), checked against the console's
    bindings, which ``table_of`` collects only when there is a file (it imports every screen).

    No file where the default one would be means no keys of one's own; a file named by ``ITSM_KEYS_FILE``
    (or ``path``) must be there."""
    if path is None:
        path, must_exist = keys_file()
    data = _read(path, must_exist)
    if data is None:
        return NO_KEYS
    for key in data:
        if key != "keys":
            close = difflib.get_close_matches(str(key), ["keys"], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise KeyFileError(path, str(key), f"unknown key; the file's top level knows keys{hint}")
    body = data.get("keys", {})
    if not isinstance(body, dict):
        raise KeyFileError(path, "keys", 'must be a table: [keys] then lines like "queue.take" = "T"')
    table = table_of()
    known = table.ids()
    remapped: dict[str, str] = {}
    unbound: set[str] = set()
    for binding_id, value in _flatten(body):
        if binding_id not in known:
            close = difflib.get_close_matches(binding_id, list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise KeyFileError(path, binding_id, f"no key binding has this id{hint}; README lists them")
        if not isinstance(value, str):
            raise KeyFileError(
                path, binding_id, 'must be a string of keys ("T", "ctrl+t,f6"), or "" to unbind the key'
            )
        if not value.strip():
            unbound.add(binding_id)
            continue
        remapped[binding_id] = _key_list(path, binding_id, value)
    keys = Keys(path, remapped, frozenset(unbound))
    _check_clashes(path, table, keys)
    return keys


def _read(path: Path, must_exist: bool) -> dict | None:
    """The key file's table; None when the default file is not there (no keys of one's own)."""
    if not must_exist and not path.exists() and not path.is_symlink():
        return None
    return read_toml(path, KeyFileError, f"file is missing (named by {KEYS_FILE_ENV})")


def _flatten(body: dict, prefix: str = "") -> Iterable[tuple[str, object]]:
    """The file's ids and values: ``"queue.take" = "T"`` and ``queue.take = "T"`` (which TOML reads as a
    table ``queue`` holding ``take``) name the same binding."""
    for key, value in body.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def _key_list(path: Path, binding_id: str, value: str) -> str:
    """The keys of ``value`` normalised as Textual names them (``?`` is ``question_mark``), each checked."""
    keys: list[str] = []
    for typed in value.split(","):
        key = typed.strip()
        if not key:
            raise KeyFileError(path, binding_id, f"{value!r} has an empty key between commas")
        normal = _normal_key(key)
        if normal is None:
            raise KeyFileError(path, binding_id, f"{key!r} is no key name; use {KEY_HINT}")
        if normal not in keys:
            keys.append(normal)
    return ",".join(keys)


def _normal_key(key: str) -> str | None:
    if len(key) == 1:
        return _character_to_key(key) if key.isprintable() and not key.isspace() else None
    *modifiers, base = key.split("+")
    if any(modifier not in MODIFIERS for modifier in modifiers) or len(set(modifiers)) != len(modifiers):
        return None
    if len(base) == 1:
        base = _character_to_key(base) if base.isprintable() and not base.isspace() else ""
    elif base not in NAMED_KEYS and key_to_character(base) is None:
        return None
    return "+".join([*modifiers, base]) if base else None


def _check_clashes(path: Path, table: BindingTable, keys: Keys) -> None:
    """Refuse a key the file leaves on two ids where both are in force (one screen's, or one screen's and
    the app's): only one of them would run. Clashes of the shipped keys (a modal screen's ``?`` closing it,
    the app's opening help) are by design, so only those with an id of the file count."""
    changed = set(keys.remapped)
    groups = [(table.app, ())] + [(table.app, group) for group in table.screens.values()]
    groups += [((), group) for group in table.modals.values()]
    for app_bindings, group in groups:
        owner: dict[str, Binding] = {}
        for binding in (*group, *app_bindings):
            for key in keys.keys_of(binding):
                other = owner.setdefault(key, binding)
                if other.id == binding.id or not {other.id, binding.id} & changed:
                    continue
                mine, theirs = (binding, other) if binding.id in changed else (other, binding)
                assert mine.id is not None
                raise KeyFileError(
                    path,
                    mine.id,
                    f"{key} is also the key of {theirs.id} ({theirs.description or theirs.action}) where "
                    f"{mine.id} is in force; give one of them another key",
                )
