"""Views of one's own in the queue: save the filter and sort shown under a name on a key, apply one with its
key, list, edit and delete them (the rules are :mod:`itsm_tui.services.views`).

:class:`SavedViewsScreen` is the queue screen's base: it holds the ``S`` (save) and ``V`` (manage) keys and
binds each view's key on the screen once the person's views are read, as a binding the footer's key
dispatch, the help (``?``) and the command palette see (:meth:`SavedViewsScreen.extra_bindings`). A view's
key is never one the queue has in force (:func:`queue_keys`, which reads the user's key file as applied):
saving one is refused naming the binding, and a view saved before the key file took that key stays
unbound (the manager says so) and is applied from the manager or with ``:view NAME``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Unpack

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Input, OptionList, Select, Static
from textual.widgets.option_list import Option

from itsm_tui.keymap import NO_KEYS, Keys, declared_bindings
from itsm_tui.screens.common import DeskScreen, WorkerErrorsToApp
from itsm_tui.screens.formscreen import FormArgs, FormScreen
from itsm_tui.services.errors import ServiceError, ValidationError
from itsm_tui.services.queue import SORTS, VIEWS
from itsm_tui.services.views import ViewInfo, available_actions, key_assignments
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from textual import getters

    from itsm_tui.app import ItsmApp
    from itsm_tui.screens.queue import QueueTable
    from itsm_tui.services.queue import Filter, QueueQuery

VIEWS_STYLES = Path(__file__).resolve().with_name("views.tcss")
SAVED_VIEW_ID = "queue.saved_view"  # + "." + the key: the binding of one saved view's key


def queue_keys(keys: Keys, nodes: Iterable[type[DOMNode]]) -> dict[str, str]:
    """The keys in force on the queue (the bindings of ``nodes``, the app's among them, as the user's key
    file leaves them), each with the binding holding it, as a refusal names it: ``queue.take (Take)``."""
    held: dict[str, str] = {}
    for node in nodes:
        for binding in declared_bindings(node):
            for key in keys.keys_of(binding):
                held.setdefault(key, f"{binding.id} ({binding.description or binding.action})")
    return held


def _one_line(text: str) -> str:
    return strip_control(text, single_line=True)


def describe(view: ViewInfo) -> str:
    """What a view shows, in one line: ``All open · p:1 group:net · SLA due desc``."""
    parts = [view.base_title, view.filter_text or "(no filter)", view.sort_text]
    return " · ".join(_one_line(part) for part in parts)


# --------------------------------------------------------------------------- the form


@dataclass(frozen=True)
class ViewValues:
    name: str
    key: str
    filter_text: str
    group: str | None  # a group code to share with; None: nobody


class ViewForm(FormScreen[ViewValues, ViewInfo]):
    """Save the queue's filter and sort as a view (or edit one): a name, a key, the filter, a group to
    share it with."""

    TITLE = "Save view"

    def __init__(
        self,
        *,
        values: ViewValues,
        groups: Sequence[str] = (),
        **options: Unpack[FormArgs[ViewValues, ViewInfo]],
    ) -> None:
        super().__init__(**options)
        self.initial, self.groups = values, list(groups)

    def compose_fields(self) -> ComposeResult:
        initial = self.initial
        yield from self.row("name", "Name", Input(initial.name, placeholder="e.g. network P1", compact=True))
        yield from self.row(
            "key",
            "Key",
            Input(initial.key, placeholder="a digit or letter, e.g. 8", max_length=1, compact=True),
        )
        yield from self.row("filter", "Filter", Input(initial.filter_text, compact=True))
        yield from self.row(
            "group",
            "Share with",
            Select(
                [(code, code) for code in self.groups],
                prompt="(nobody)",
                value=initial.group if initial.group in self.groups else Select.NULL,
                compact=True,
            ),
        )

    def first_field_to_fill(self) -> Widget | None:
        """The name: "(nobody)" is a choice of its own, not a field left empty."""
        return self.field("name")

    def collect(self) -> ViewValues:
        name = self.text_of("name").strip()
        if not name:
            raise ValidationError("name", "give the view a name")
        key = self.text_of("key").strip()
        if not key:
            raise ValidationError("key", "give the view a key: a digit or letter the queue has free")
        return ViewValues(name, key, self.text_of("filter").strip(), self.choice("group"))


# --------------------------------------------------------------------------- the manager


class ViewsManager(WorkerErrorsToApp, ModalScreen[ViewInfo | None]):
    """The person's views and those shared with them: Enter applies one, ``e`` edits, ``d`` deletes (twice,
    to be sure); someone else's shared view shows why it cannot be edited. Closes with the view to apply."""

    if TYPE_CHECKING:
        app = getters.app(ItsmApp)

    CSS_PATH = VIEWS_STYLES
    BINDINGS = [
        Binding("escape", "dismiss_none", "Close", id="views.close"),
        Binding("enter", "apply", "Apply", id="views.apply", show=False),
        Binding("e", "edit", "Edit", id="views.edit"),
        Binding("d", "delete", "Delete", id="views.delete"),
    ]

    def __init__(
        self,
        views: list[ViewInfo],
        bound: dict[str, ViewInfo],
        reserved: dict[str, str],
        edit: Callable[[ViewInfo, Callable[[ViewInfo | None], None]], None],
    ) -> None:
        super().__init__()
        self.views, self.bound, self.reserved = views, bound, reserved
        self._edit = edit
        self.deleting: int | None = None  # the view a first d asked about

    def compose(self) -> ComposeResult:
        with Vertical(id="views-box") as box:
            box.border_title = "Views"
            yield OptionList(id="views-list")
            yield Static("", id="views-detail")
            yield Static("enter apply · e edit · d delete · esc close", id="views-hint")

    def on_mount(self) -> None:
        self.show_views(self.views, self.bound)

    def show_views(self, views: list[ViewInfo], bound: dict[str, ViewInfo], keep: int | None = None) -> None:
        self.views, self.bound = views, bound
        options = self.query_one(OptionList)
        options.clear_options()
        if not views:
            options.add_option(
                Option(Text("No views yet: S in the queue saves the one shown."), disabled=True)
            )
        for view in views:
            line = Text()
            line.append(f"{view.key if self.bound.get(view.key) == view else '-'}  ", style="bold")
            line.append(_one_line(view.name))
            if not view.mine(self.app.actor):
                line.append(f"  ({_one_line(view.owner_login)})", style="dim")
            elif view.shared_group:
                line.append(f"  shared: {view.shared_group}", style="dim")
            options.add_option(Option(line, id=f"view-{view.id}"))
        index = next((i for i, v in enumerate(views) if v.id == keep), 0)
        if views:
            options.highlighted = index
        options.focus()
        self._show_detail()

    @property
    def current(self) -> ViewInfo | None:
        index = self.query_one(OptionList).highlighted
        return self.views[index] if index is not None and 0 <= index < len(self.views) else None

    @on(OptionList.OptionHighlighted)
    def _show_detail(self) -> None:
        self.deleting = None
        view = self.current
        detail = self.query_one("#views-detail", Static)
        if view is None:
            detail.update("")
            return
        line = Text(describe(view))
        if self.bound.get(view.key) != view:
            holder = self.reserved.get(view.key)
            other = self.bound.get(view.key)
            why = holder if holder else (f"view {_one_line(other.name)!r}" if other else "")
            line.append(f"\nkey {view.key} applies {why}: apply this one with enter", style="yellow")
        refusals = [
            (action, refusal.reason)
            for action, refusal in available_actions(self.app.actor, view).items()
            if refusal is not None and action != "apply"
        ]
        if refusals:
            line.append("\n" + "; ".join(f"{a}: {_one_line(r)}" for a, r in refusals), style="strike dim")
        detail.update(line)

    @on(OptionList.OptionSelected)
    def action_apply(self) -> None:
        view = self.current
        if view is not None:
            self.dismiss(view)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def _refused(self, action: str, view: ViewInfo) -> bool:
        refusal = available_actions(self.app.actor, view)[action]
        if refusal is not None:
            title = {"edit": "Not edited", "delete": "Not deleted"}.get(action, "Not done")
            self.app.notify(_one_line(str(refusal)), title=title, severity="error", markup=False)
        return refusal is not None

    def action_edit(self) -> None:
        view = self.current
        if view is None or self._refused("edit", view):
            return
        self._edit(view, lambda saved: self.reload(saved.id if saved else view.id))

    def action_delete(self) -> None:
        view = self.current
        if view is None or self._refused("delete", view):
            return
        if self.deleting != view.id:
            self.deleting = view.id
            detail = self.query_one("#views-detail", Static)
            detail.update(Text(f"Delete the view {_one_line(view.name)!r}? d again deletes it", style="bold"))
            return
        self.deleting = None
        self.delete(view)

    @work(thread=True, group="views", exit_on_error=False)
    def delete(self, view: ViewInfo) -> None:
        from itsm_tui.services import views

        try:
            with self.app.db.session() as session:
                views.delete_view(session, self.app.actor, view.id, self.app.clock())
        except ServiceError as exc:
            message = _one_line(str(exc))
            self.app.call_from_thread(
                self.app.notify, message, title="Not deleted", severity="error", markup=False
            )
        else:
            self.app.call_from_thread(
                self.app.notify, f"View {_one_line(view.name)!r} deleted.", markup=False
            )
        self.app.call_from_thread(self.reload)

    def reload(self, keep: int | None = None) -> None:
        self._read(keep)

    @work(thread=True, group="views", exit_on_error=False)
    def _read(self, keep: int | None) -> None:
        from itsm_tui.services import views

        with self.app.db.read_session() as session:
            found = views.list_views(session, self.app.actor)
        bound = key_assignments(self.app.actor, found, self.reserved)
        self.app.call_from_thread(self.show_views, found, bound, keep)


# --------------------------------------------------------------------------- the queue's part


class SavedViewsScreen(DeskScreen):
    """The queue screen's views of one's own (see the module's docstring)."""

    BINDINGS = [
        # Priority: the name typed straight after it goes into the form (typeahead.py).
        Binding("S", "save_view", "Save view", show=False, id="queue.save_view", priority=True),
        Binding("V", "manage_views", "My views", show=False, id="queue.manage_views"),
    ]

    if TYPE_CHECKING:  # what the queue screen has, which this part reads and sets
        view_key: str
        sort: str | None
        descending: bool | None
        filter: Filter
        filter_text: str
        query_state: QueueQuery | None
        generation: int

        @property
        def table(self) -> QueueTable: ...
        def reload(self, keep_cursor: bool = False) -> None: ...
        def filter_changed(self, event: Input.Changed) -> None: ...
        def _show_bar(self, total: int | None) -> None: ...

    def __init__(self) -> None:
        super().__init__()
        self.saved_views: list[ViewInfo] = []  # the person's views and those shared with them
        self.saved_keys: dict[str, ViewInfo] = {}  # the key each bound view is applied with

    # ------------------------------------------------------------------ reading and binding

    @on(events.Mount)
    def _read_views_at_start(self) -> None:
        self.read_views()

    @work(thread=True, exclusive=True, group="queue-views", exit_on_error=False)
    def read_views(self) -> None:
        from itsm_tui.services import views

        with self.app.db.read_session() as session:
            found = views.list_views(session, self.app.actor)
        self.app.call_from_thread(self.bind_views, found)

    def reserved_keys(self) -> dict[str, str]:
        """The keys the queue has in force, with what holds them (its own, its table's, the app's)."""
        keys = getattr(self.app, "keys", NO_KEYS)
        nodes = [type(self), type(self.table), type(self.app)]
        return queue_keys(keys if isinstance(keys, Keys) else NO_KEYS, nodes)

    def bind_views(self, views: list[ViewInfo]) -> None:
        """Bind the keys of the person's views on this screen (replacing those bound before)."""
        self.saved_views = views
        self.saved_keys = key_assignments(self.app.actor, views, self.reserved_keys())
        bindings = self._bindings
        kept = {
            key: [b for b in key_bindings if not (b.id or "").startswith(SAVED_VIEW_ID + ".")]
            for key, key_bindings in bindings.key_to_bindings.items()
        }
        for binding in self.extra_bindings():
            kept.setdefault(binding.key, []).append(binding)
        bindings.key_to_bindings = {key: found for key, found in kept.items() if found}
        self.refresh_bindings()
        window = self.table.window
        self._show_bar(window.total if window is not None else None)  # it names the saved view shown

    def extra_bindings(self) -> list[Binding]:
        """The bindings of the person's views' keys (for the help and the palette, which list a screen's
        declared bindings and then these)."""
        return [
            Binding(
                key,
                f"saved_view({view.id})",
                f"View: {_one_line(view.name)}",
                show=True,
                id=f"{SAVED_VIEW_ID}.{key}",
            )
            for key, view in sorted(self.saved_keys.items())
        ]

    def shown_view(self) -> ViewInfo | None:
        """The saved view the queue shows now: its view, filter and sort are those applied."""
        query = self.query_state
        if query is None:
            return None
        for view in self.saved_views:
            if (view.base_view, view.sort, view.descending) == (
                query.view,
                query.sort,
                query.descending,
            ) and (" ".join(view.filter_text.split()) == " ".join(self.filter_text.split())):
                return view
        return None

    # ------------------------------------------------------------------ applying

    def action_saved_view(self, view_id: int) -> None:
        view = next((v for v in self.saved_views if v.id == view_id), None)
        if view is not None:
            self.apply_saved_view(view)

    def apply_saved_view(self, view: ViewInfo) -> None:
        """Show a saved view: its built-in view, filter and sort (a filter the queue cannot apply now, say a
        login no longer a user, is refused beside the filter as if typed)."""
        if view.base_view not in VIEWS or view.sort not in SORTS:
            self.app.notify(f"The view {view.name!r} names what this console does not know.", markup=False)
            return
        self.view_key, self.sort, self.descending = view.base_view, view.sort, view.descending
        field = self.query_one("#queue-filter", Input)
        with field.prevent(Input.Changed):
            field.value = view.filter_text
        before = self.generation
        self.filter_changed(Input.Changed(field, view.filter_text))
        if self.generation == before:  # the filter refused, and the one kept is what was shown already
            self.reload()

    # ------------------------------------------------------------------ saving and managing

    def _groups(self) -> list[str]:
        return sorted(self.app.actor.group_codes)

    async def action_save_view(self) -> None:
        from itsm_tui.screens.typeahead import not_while_typing, until_shown

        not_while_typing(self)
        query = self.query_state
        if query is None:
            return
        initial = ViewValues("", "", self.filter_text, None)  # a view of one's own is changed with V, e
        base, sort, descending = query.view, query.sort, query.descending
        reserved = self.reserved_keys()
        app = self.app

        def save(values: ViewValues) -> ViewInfo:  # in the form's worker
            from itsm_tui.services import views

            with app.db.session() as session:
                return views.save_view(
                    session,
                    app.config,
                    app.actor,
                    name=values.name,
                    key=values.key,
                    filter_text=values.filter_text,
                    sort=sort,
                    descending=descending,
                    base_view=base,
                    share_with=values.group,
                    reserved=reserved,
                    now=app.clock(),
                )

        sort_text = SORTS[sort][0] + (" desc" if descending else "")
        note = f"The queue as shown: {VIEWS[base].title}, sorted by {sort_text}."
        self.app.push_screen(
            ViewForm(values=initial, groups=self._groups(), save=save, note=note), callback=self._saved
        )
        await until_shown(self.app)

    def _saved(self, view: ViewInfo | None) -> None:
        if view is None:
            return
        self.app.notify(f"View {_one_line(view.name)!r} saved on key {view.key}.", markup=False)
        self.read_views()

    def edit_view(self, view: ViewInfo, done: Callable[[ViewInfo | None], None]) -> None:
        """The form over a view of one's own: name, key, filter and sharing (its view and sort stay)."""
        reserved = self.reserved_keys()
        app = self.app

        def save(values: ViewValues) -> ViewInfo:  # in the form's worker
            from itsm_tui.services import views

            with app.db.session() as session:
                return views.update_view(
                    session,
                    app.config,
                    app.actor,
                    view.id,
                    name=values.name,
                    key=values.key,
                    filter_text=values.filter_text,
                    share_with=values.group,
                    reserved=reserved,
                    now=app.clock(),
                )

        def after(saved: ViewInfo | None) -> None:
            if saved is not None:
                self.read_views()
            done(saved)

        values = ViewValues(view.name, view.key, view.filter_text, view.shared_group)
        note = f"Over {view.base_title}, sorted by {view.sort_text}."
        form = ViewForm(values=values, groups=self._groups(), save=save, note=note, title="Edit view")
        self.app.push_screen(form, callback=after)

    def action_manage_views(self) -> None:
        reserved = self.reserved_keys()
        manager = ViewsManager(self.saved_views, self.saved_keys, reserved, self.edit_view)
        self.app.push_screen(manager, callback=self._managed)

    def _managed(self, view: ViewInfo | None) -> None:
        self.read_views()
        if view is not None:
            self.apply_saved_view(view)
