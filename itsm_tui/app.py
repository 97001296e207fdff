"""The console application: wires the screens (as modes) to the database, configuration and user."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.command import Hit, Hits, Provider

from itsm_tui.config import DeskConfig
from itsm_tui.db import Database
from itsm_tui.services.users import Actor
from screens import MODE_TITLES, mode_screens
from screens.help import HelpScreen


class ScreenSwitcher(Provider):
    """Command-palette entries for switching screens and for the app's own actions."""

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        app = self.app
        assert isinstance(app, ItsmApp)
        commands: list[tuple[str, Callable[[], Any], str]] = [
            (f"Go to {title}", partial(app.switch_mode, mode), f"switch to the {title.lower()} screen")
            for mode, title in MODE_TITLES.items()
        ]
        commands.append(("Help: keys", app.action_help, "list every key"))
        for name, callback, help_text in commands:
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


class ItsmApp(App[None]):
    """The service-desk console."""

    TITLE = "itsm"
    CSS_PATH = "../screens/app.tcss"
    MODES = mode_screens()
    DEFAULT_MODE = "queue"
    COMMANDS = App.COMMANDS | {ScreenSwitcher}
    BINDINGS = [
        Binding("f2", "switch_mode('queue')", "Queue", id="go.queue"),
        Binding("f3", "switch_mode('calendar')", "Calendar", id="go.calendar"),
        Binding("f4", "switch_mode('kpi')", "KPI", id="go.kpi"),
        Binding("f5", "switch_mode('inbox')", "Inbox", id="go.inbox"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(self, db: Database, config: DeskConfig, actor: Actor) -> None:
        super().__init__()
        self.db = db
        self.config = config
        self.actor = actor

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.screen))
