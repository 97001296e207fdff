"""The key help (``?``): every key of the screen underneath and of the app, as they are in force (the
user's key file remaps and unbinds them: :mod:`itsm_tui.keymap`)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table
from rich.text import Text
from textual.actions import parse as parse_action
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from itsm_tui.keymap import NO_KEYS, Keys, declared_bindings, key_in_force
from itsm_tui.text import strip_control

HELP_STYLES = Path(__file__).resolve().with_name("help.tcss")  # absolute: found from subclasses too


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]
    CSS_PATH = HELP_STYLES

    def __init__(self, underneath: DOMNode | None = None) -> None:
        super().__init__()
        self.underneath = underneath

    @property
    def keys(self) -> Keys:
        keys = getattr(self.app, "keys", NO_KEYS)
        return keys if isinstance(keys, Keys) else NO_KEYS

    def rows(self) -> list[tuple[str, str]]:
        """(keys, action) for each binding of the screen underneath and of the widget focused there, then
        the app's; one with no key in force (unbound by the user) is left out, and so is one the screen
        does not offer (its ``check_action``: the user's role may never take it); one not open now says
        so. Over a modal screen (a form) only the app's keys that work there (quit) follow its own."""
        keys = self.keys
        rows: list[tuple[str, str]] = []
        underneath = self.underneath
        over_modal = isinstance(underneath, ModalScreen)
        # The widget focused there too (the queue's table: its moves), after the screen's own keys.
        focused = underneath.focused if isinstance(underneath, Screen) else None
        for source in (underneath, focused, self.app):
            if source is None:
                continue
            # What the screen binds itself comes after its declared keys (the queue's saved views).
            for binding in [*declared_bindings(type(source)), *getattr(source, "extra_bindings", list)()]:
                if source is self.app and over_modal and not binding.priority:
                    continue
                shown = keys.display(binding, self.app)
                offered = self._offered(source, binding)
                if not binding.description or not shown or offered is False:
                    continue
                description = binding.description + ("" if offered else " (not now)")
                if (shown, description) not in rows:
                    rows.append((shown, description))
        if not over_modal:
            rows.append(("ctrl+p", "Command palette: every action and screen"))
        return rows

    def _offered(self, source: DOMNode, binding: Binding) -> bool | None:
        """What the binding's node says of its action (True: offered, None: not now, False: never)."""
        destination, name, parameters = parse_action(binding.action)
        target = self.app if destination == "app" else source
        return target.check_action(name, parameters)

    def compose(self) -> ComposeResult:
        table = Table(show_header=True, header_style="bold", box=None, expand=True)
        table.add_column("Key", no_wrap=True)
        table.add_column("Action")
        for shown, description in self.rows():
            table.add_row(escape(shown), escape(description))
        with VerticalScroll():
            close = key_in_force(self, "help.close")
            yield Static(Text.assemble(("Keys", "bold"), f"  ({close} closes)" if close else ""))
            yield Static(table)
            path = self.keys.path
            if path is not None:
                yield Static(f"Your keys are read from {strip_control(str(path))}.", markup=False)
