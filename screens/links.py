"""Following a record's links: the list to pick one from, and the page of a problem, known error or knowledge
article (a ticket and a change open on their own screens). Every link shows on both records it joins."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from itsm_tui.screens.common import WorkerErrorsToApp
from itsm_tui.services import tickets
from itsm_tui.services.errors import ServiceError
from itsm_tui.services.tickets import LinkedRecord, RecordPage
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from textual import getters

    from itsm_tui.app import ItsmApp

LINKS_STYLES: list[str | PurePath] = [Path(__file__).resolve().with_name("links.tcss")]


def link_label(record: LinkedRecord) -> Text:
    """One link as a list shows it: its reference, what it is, which way it points, and its title."""
    line = Text(record.ref, style="bold")
    line.append(f"  {record.kind_word}")
    if not record.outgoing:
        line.append(" (links here)", style="italic")
    line.append("  ")
    line.append(strip_control(record.title, single_line=True))
    return line


def follow(app: ItsmApp, record: LinkedRecord) -> None:
    """Open a linked record: a ticket, change, problem or article on its screen, a known error on its page."""
    if record.kind == "ticket":
        app.open_ticket(record.id)
    elif record.kind == "change":
        app.open_change(record.id)
    elif record.kind == "problem":
        app.open_problem(record.ref)
    elif record.kind == "article":
        app.open_article(record.ref)
    else:
        app.push_screen(RecordScreen(record.ref), lambda chosen: follow(app, chosen) if chosen else None)


class _LinkList(OptionList):
    """The links of a record, one per line."""

    def __init__(self, records: list[LinkedRecord], **kwargs: object) -> None:
        super().__init__(*(Option(link_label(record)) for record in records), **kwargs)  # type: ignore[arg-type]


class LinkPicker(WorkerErrorsToApp, ModalScreen[LinkedRecord | None]):
    """Which of a record's links to follow: Enter opens the highlighted one, Esc closes."""

    if TYPE_CHECKING:
        app = getters.app(ItsmApp)

    CSS_PATH = LINKS_STYLES
    BINDINGS = [Binding("escape", "dismiss(None)", "Close", id="links.close")]

    def __init__(self, ref: str, records: list[LinkedRecord]) -> None:
        super().__init__()
        self.ref = ref
        self.records = records

    def compose(self) -> ComposeResult:
        with Vertical(id="links-box") as box:
            box.border_title = f"Links of {self.ref}"
            yield _LinkList(self.records, id="links-list")
            yield Static("up/down choose · enter open · esc close", id="links-hint", markup=False)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.records[event.option_index])


class RecordScreen(WorkerErrorsToApp, ModalScreen[LinkedRecord | None]):
    """A problem, known error or knowledge article opened from a link: its text, and its own links both
    ways (the tickets linked to it among them), which Enter follows in turn."""

    if TYPE_CHECKING:
        app = getters.app(ItsmApp)

    CSS_PATH = LINKS_STYLES
    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close", id="links.record_close")]

    def __init__(self, ref: str) -> None:
        super().__init__()
        self.ref = ref
        self.page: RecordPage | None = None  # the one shown (tests wait for it)

    def compose(self) -> ComposeResult:
        with Vertical(id="record-box") as box:
            box.border_title = self.ref
            with VerticalScroll(id="record-body"):
                yield Static("Loading ...", id="record-text")
            yield OptionList(id="links-list")
            yield Static("up/down choose a link · enter open it · esc close", id="links-hint", markup=False)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="record-page")
    def load(self) -> None:
        app = self.app
        try:
            with app.db.read_session() as session:
                page = tickets.record_page(session, self.ref)
        except ServiceError as exc:
            app.call_from_thread(self.query_one("#record-text", Static).update, Text(strip_control(str(exc))))
            return
        app.call_from_thread(self.show, page)

    def show(self, page: RecordPage) -> None:
        self.page = page
        head = Text(f"{page.ref}  ", style="bold")
        head.append(strip_control(page.title, single_line=True), style="bold")
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True, width=11)
        grid.add_column(ratio=1)
        for label, value in page.fields:
            grid.add_row(label, Text(strip_control(value)))
        grid.add_row("Links", Text(f"{len(page.linked)}" if page.linked else "none"))
        self.query_one("#record-text", Static).update(Group(head, grid))
        links = self.query_one(OptionList)
        links.clear_options()
        links.add_options([Option(link_label(record)) for record in page.linked])
        links.display = bool(page.linked)
        if page.linked:
            links.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if self.page is not None:
            self.dismiss(self.page.linked[event.option_index])
