"""Go to a ticket by its reference: ``g`` on the queue and the ticket screen asks for one (``INC0000042``,
``inc42`` or ``42``) and opens the ticket; a reference no ticket has is refused beside the field."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.widgets import Input

from itsm_tui.screens.formscreen import FormScreen
from itsm_tui.services.errors import NotFound, ValidationError

if TYPE_CHECKING:
    from itsm_tui.app import ItsmApp

EXAMPLES = "INC0000042, inc42 or 42"


class GotoForm(FormScreen[str, int]):
    """One field, the reference; saving looks it up (in the form's worker) and closes with the ticket's id."""

    TITLE = "Go to a ticket"
    HINT = "enter: open · esc: cancel"
    NOT_FOUND_FIELD = "ref"

    def compose_fields(self) -> ComposeResult:
        yield from self.row("ref", "Reference", Input(placeholder=EXAMPLES))

    def collect(self) -> str:
        text = self.text_of("ref").strip()
        if not text:
            raise ValidationError("ref", f"type a ticket's reference: {EXAMPLES}")
        return text


def ask_and_open(app: ItsmApp) -> None:
    """Ask for a reference and open that ticket."""

    def look_up(text: str) -> int:  # in the form's worker
        from itsm_tui.services import search

        with app.db.read_session() as session:
            found = search.find_ticket_id(session, text)
        if found is None:
            raise NotFound(f"no ticket {text!r}; type {EXAMPLES}")
        return found

    def opened(ticket_id: int | None) -> None:
        if ticket_id is not None:
            app.open_ticket(ticket_id)

    app.push_screen(GotoForm(save=look_up), opened)
