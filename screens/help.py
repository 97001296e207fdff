"""The key help screen (``?``): every key of the app and of the screen underneath."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_STYLES = Path(__file__).resolve().with_name("help.tcss")  # absolute: found from subclasses too


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]
    CSS_PATH = HELP_STYLES

    def __init__(self, underneath: DOMNode | None = None) -> None:
        super().__init__()
        self.underneath = underneath

    def compose(self) -> ComposeResult:
        table = Table(show_header=True, header_style="bold", box=None, expand=True)
        table.add_column("Key", no_wrap=True)
        table.add_column("Action")
        seen = set()
        for source in (self.underneath, self.app):
            if source is None:
                continue
            for binding in source.BINDINGS:
                if not isinstance(binding, Binding) or not binding.description:
                    continue
                key = binding.key_display or ",".join(
                    self.app.get_key_display(Binding(k.strip(), "")) for k in binding.key.split(",")
                )
                if (key, binding.description) in seen:
                    continue
                seen.add((key, binding.description))
                table.add_row(key, binding.description)
        table.add_row("ctrl+p", "Command palette: every action and screen")
        with VerticalScroll():
            yield Static("[b]Keys[/b]  (Esc closes)")
            yield Static(table)
