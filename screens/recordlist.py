"""What the lists of problems and of knowledge articles share: views on number keys, the filter read as you
type, a read per change (the newest one shown; ``up_to_date`` once it is), a reload when the screen comes
back, and the new-record key dimmed (and saying why) for whom the service refuses it.

A list screen names its widgets (``TABLE_ID``, ``FILTER_ID``, ``ERROR_ID``), its views (``view_keys``), how
it reads (``load``, a thread worker that ends by setting ``shown_generation``), its bar (``_show_bar``) and
who may not create (``new_refusal``, the service's words; ``refuse_new`` tells them).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Input, Static

from itsm_tui.screens.common import DeskFooter, DeskScreen, local_time
from itsm_tui.screens.recordtable import RecordTable
from itsm_tui.screens.typeahead import focus_now, not_while_typing, typing
from itsm_tui.services.errors import ServiceError, StaleEdit
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class RecordListScreen(DeskScreen):
    TABLE_ID = ""
    FILTER_ID = ""
    ERROR_ID = ""

    def __init__(self, view_key: str) -> None:
        super().__init__()
        self.view_key = view_key
        self.filter_text = ""
        self.generation = 0
        self.shown_generation = -1  # the generation whose rows are shown (tests wait for it)
        self.filter_error: str | None = None
        self.suspended = False

    # ------------------------------------------------------------------ what a list says of itself

    def view_keys(self) -> list[str]:
        raise NotImplementedError

    def load(self, *args: Any, **kwargs: Any) -> Any:
        """Read ``(generation, view, text)``'s rows (a thread worker), then set ``shown_generation``."""
        raise NotImplementedError

    def _show_bar(self, count: int) -> None:
        raise NotImplementedError

    def new_refusal(self) -> str | None:
        """Why the viewer may not create a record here (None: they may)."""
        return None

    def refuse_new(self) -> None:
        """Say why the new-record key does nothing."""

    def filters(self, view: str) -> bool:
        """Whether the filter applies to ``view`` (a change of it reads the list again)."""
        return True

    # ------------------------------------------------------------------ reading

    @property
    def table(self) -> RecordTable[Any]:
        return self.query_one(f"#{self.TABLE_ID}", RecordTable)

    @property
    def up_to_date(self) -> bool:
        return self.shown_generation == self.generation

    def on_mount(self) -> None:
        self.reload()

    def on_screen_suspend(self) -> None:
        self.suspended = True

    def on_screen_resume(self) -> None:
        if self.suspended:  # back from a record: what changed meanwhile
            self.suspended = False
            self.reload()

    def reload(self) -> None:
        self.generation += 1
        self.load(self.generation, self.view_key, self.filter_text)

    def action_reload(self) -> None:
        self.reload()

    def on_resize(self) -> None:
        if self.up_to_date:
            self._show_bar(len(self.table.rows))

    def _show_error(self, error: str | None) -> None:
        self.filter_error = error
        line = self.query_one(f"#{self.ERROR_ID}", Static)
        line.update(Text(strip_control(error or "", single_line=True)))
        line.set_class(error is not None, "shown")

    # ------------------------------------------------------------------ views and the filter

    def action_view(self, view: str) -> None:
        self.view_key = view
        self.reload()

    def action_next_view(self) -> None:
        keys = self.view_keys()
        self.action_view(keys[(keys.index(self.view_key) + 1) % len(keys)])

    def action_filter(self) -> None:
        not_while_typing(self)
        focus_now(self, self.query_one(f"#{self.FILTER_ID}", Input))

    @on(Input.Changed)
    def filter_changed(self, event: Input.Changed) -> None:
        if event.input.id != self.FILTER_ID:
            return
        self.filter_text = event.value
        if self.filters(self.view_key):
            self.reload()

    @on(Input.Submitted)
    def filter_done(self, event: Input.Submitted) -> None:
        if event.input.id == self.FILTER_ID:
            self.table.focus()

    def action_leave_filter(self) -> None:
        if self.query_one(f"#{self.FILTER_ID}", Input).has_focus:
            focus_now(self, self.table)

    # ------------------------------------------------------------------ the new-record key

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.is_active and typing(self) and action in ("new", "filter"):
            return False  # typed into the filter (typeahead.py): not in the footer then
        if action == "new" and self.new_refusal() is not None:
            return None  # dimmed; its key says why
        return True

    def on_key(self, event: events.Key) -> None:
        """A dimmed key says why instead of doing nothing."""
        if isinstance(self.focused, Input):
            return
        active = self.active_bindings.get(event.key)
        if active is None or active.enabled or active.node is not self:
            return
        if active.binding.action == "new":
            event.stop()
            event.prevent_default()
            self.refuse_new()


class RecordPageScreen(DeskScreen):
    """One record's page (a problem, an article): a notice line, its fields and history in a scrolling
    body, its actions line above the footer; reload, back, copy the reference. The page names its widgets'
    prefix (``PREFIX``: ``#PREFIX-notice``, ``-body``, ``-fields``, ``-history``, ``-actions``) and reads
    itself (``load``, a thread worker)."""

    PREFIX = ""

    def __init__(self, ref: str) -> None:
        super().__init__()
        self.ref = ref
        self._form_version: int | None = None  # the version a form's save goes against

    def load(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        yield Static("", id=f"{self.PREFIX}-notice")
        with VerticalScroll(id=f"{self.PREFIX}-body"):
            yield Static("Loading ...", id=f"{self.PREFIX}-fields")
            yield Static("", id=f"{self.PREFIX}-history")
        yield Static("", id=f"{self.PREFIX}-actions")
        yield DeskFooter(compact=True)

    def on_mount(self) -> None:
        self.query_one(f"#{self.PREFIX}-body").focus()
        self.load()

    def action_reload(self) -> None:
        self.load()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_copy_ref(self) -> None:
        self.app.copy_to_clipboard(self.ref)
        self.app.notify(f"Copied {self.ref}", markup=False)

    def set_notice(self, text: Text | None) -> None:
        notice = self.query_one(f"#{self.PREFIX}-notice", Static)
        notice.update(text or "")
        notice.set_class(text is not None, "-shown")

    def when(self, instant: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return local_time(instant, self.app.actor.timezone, fmt)

    # ----------------------------------------------------------------- the forms of the page's steps

    def _saver(self, step: Callable[[Session, Any], str]) -> Callable[[Any], str]:
        """A form's save (run in its worker): ``step(session, values)`` in a session of its own."""

        def save(values: Any) -> str:
            with self.app.db.session() as session:
                return step(session, values)

        return save

    def _refused(self, exc: ServiceError) -> None:
        """A stale save: the record is reloaded underneath the form, which keeps what was typed; a second
        save goes against what is shown then."""
        if isinstance(exc, StaleEdit):
            self.load(exc)

    def _done(self, message: str | None) -> None:
        if message is not None:
            self.set_notice(None)
            self.app.notify(strip_control(message), markup=False)
            self.load()

    def _common(self) -> dict[str, Any]:
        """What every step's service call is given: the version the form was opened on, the app's clock."""
        return {"expected_version": self._form_version, "now": self.app.clock()}
