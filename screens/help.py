"""The key help (``?``): every key of the screen underneath and of the app, as they are in force (the
user's key file remaps and unbinds them: :mod:`itsm_tui.keymap`)."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Static

from itsm_tui.keymap import NO_KEYS, Keys, declared_bindings
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
        """(keys, action) for each binding of the screen underneath, then the app's; one with no key in
        force (unbound by the user) is left out."""
        keys = self.keys
        rows: list[tuple[str, str]] = []
        for source in (self.underneath, self.app):
            if source is None:
                continue
            for binding in declared_bindings(type(source)):
                shown = keys.display(binding, self.app)
                if binding.description and shown and (shown, binding.description) not in rows:
                    rows.append((shown, binding.description))
        rows.append(("ctrl+p", "Command palette: every action and screen"))
        return rows

    def compose(self) -> ComposeResult:
        table = Table(show_header=True, header_style="bold", box=None, expand=True)
        table.add_column("Key", no_wrap=True)
        table.add_column("Action")
        for shown, description in self.rows():
            table.add_row(escape(shown), escape(description))
        with VerticalScroll():
            yield Static("[b]Keys[/b]  (Esc closes)")
            yield Static(table)
            path = self.keys.path
            if path is not None:
                yield Static(f"Your keys are read from {strip_control(str(path))}.", markup=False)
