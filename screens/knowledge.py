"""The knowledge base: the articles list (a mode, F8) with its views and filter, one article's screen (its
text, fields, uses and history) with every step of its lifecycle as a form, and the new-article form, also
opened from a resolved ticket with the ticket's text and resolution in it.

The screens stay thin: ``itsm_tui.services.articles`` reads, decides and writes, in thread workers. What a
viewer is offered is the article's ``actions`` (the guards the steps enforce): a step not open now is struck
through on the actions line with why, dimmed in the footer, and its key says why. Every save carries the
version shown; a save over someone else's newer change is refused, the form keeps what was typed and says
so, and the article reloads underneath (a second save applies over it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack
from zoneinfo import ZoneInfo

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import events, work
from textual.actions import parse as parse_action
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Select, Static, TextArea

from itsm_tui.keymap import key_in_force
from itsm_tui.screens.bulk import ConfirmForm
from itsm_tui.screens.common import DeskScreen, StatusLine, fit_hints, literal, local_time
from itsm_tui.screens.formscreen import FORM_STYLES, FormArgs, FormScreen, ResultT, ValuesT, stale_summary
from itsm_tui.screens.recordlist import RecordListScreen, RecordPageScreen
from itsm_tui.screens.recordtable import Cell, RecordTable, TableColumn
from itsm_tui.screens.typeahead import not_while_typing, until_shown
from itsm_tui.services import articles
from itsm_tui.services.articles import ArticleDetail, ArticleList, ArticleRow, Prefill
from itsm_tui.services.audit import shown_value
from itsm_tui.services.errors import ServiceError, StaleEdit, ValidationError
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from itsm_tui.app import ItsmApp
    from itsm_tui.services.tickets import LinkedRecord, TicketDetail
    from itsm_tui.services.users import Actor

KNOWLEDGE_STYLES = Path(__file__).resolve().with_name("knowledge.tcss")
STATUS_STYLES = {"draft": "yellow", "in_review": "cyan", "published": "green", "retired": "dim"}
LIST_LIMIT = 200
# The ticket statuses an article is written from: the ticket has its resolution.

ARTICLE_COLUMNS = [
    TableColumn("ref", "Ref", 9, rank=0),
    TableColumn("status", "Status", 9, rank=1),
    TableColumn("title", "Title", 0),
    TableColumn("service", "Service", 10, rank=4),
    TableColumn("category", "Category", 12, rank=5),
    TableColumn("author", "Author", 10, rank=6),
    TableColumn("updated", "Updated", 10, rank=3),
    TableColumn("uses", "Uses", 4, rank=2, align="right"),
]


# --------------------------------------------------------------------------- the list (a mode)


class KnowledgeScreen(RecordListScreen):
    """The articles of a view (published, drafts, in review, retired, all), most recently updated first."""

    SCREEN_TITLE = "Knowledge"
    AUTO_FOCUS = "#kb-table"
    CSS_PATH = KNOWLEDGE_STYLES
    BINDINGS = [
        Binding("enter,o", "open", "Open", id="knowledge.open"),
        # Priority, like every key that opens a text field: the keys typed after it go there (typeahead.py).
        Binding("n", "new", "New article", id="knowledge.new", priority=True),
        Binding("slash", "filter", "Filter", id="knowledge.filter", priority=True),
        Binding("v", "next_view", "View", id="knowledge.next_view"),
        Binding("1", "view('published')", "Published", show=False, id="knowledge.view.published"),
        Binding("2", "view('drafts')", "My drafts", show=False, id="knowledge.view.drafts"),
        Binding("3", "view('review')", "Awaiting review", show=False, id="knowledge.view.review"),
        Binding("4", "view('retired')", "Retired", show=False, id="knowledge.view.retired"),
        Binding("5", "view('all')", "All articles", show=False, id="knowledge.view.all"),
        Binding("ctrl+r", "reload", "Reload", id="knowledge.reload"),
        Binding("escape", "leave_filter", "Back to the list", show=False, id="knowledge.leave_filter"),
    ]

    TABLE_ID, FILTER_ID, ERROR_ID = "kb-table", "kb-filter", "kb-error"

    def __init__(self) -> None:
        super().__init__("published")

    def view_keys(self) -> list[str]:
        return list(articles.VIEWS)

    def new_refusal(self) -> str | None:
        return articles.create_refusal(self.app.actor)

    def refuse_new(self) -> None:
        _refused_new(self.app)

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        yield Static("", id="kb-bar")
        yield Input(placeholder="/ filter: words, svc:email cat:NAME status:draft author:me", id="kb-filter")
        yield Static("", id="kb-error")
        yield RecordTable[ArticleRow](id="kb-table", empty="Loading ...")
        yield from self.compose_footer()

    @work(thread=True, exclusive=True, group="knowledge-list", exit_on_error=False)
    def load(self, generation: int, view: str, text: str) -> None:
        app = self.app
        with app.db.read_session() as session:
            listed = articles.list_articles(session, app.actor, view=view, text=text, limit=LIST_LIMIT)
        app.call_from_thread(self._show, generation, listed)

    def _show(self, generation: int, listed: ArticleList) -> None:
        if generation != self.generation:
            return
        self.shown_generation = generation
        self._show_error(listed.error)
        if listed.error is not None:  # the filter is refused: the list shown stays
            return
        empty = "No article matches the filter." if self.filter_text.strip() else "No articles in this view."
        self.table.show_rows(ARTICLE_COLUMNS, listed.rows, self._cell, keep=lambda row: row.ref, empty=empty)
        self._show_bar(len(listed.rows))

    def _show_bar(self, count: int) -> None:
        bar = Text()
        bar.append(articles.VIEWS[self.view_key], style="bold")
        bar.append(f" ({count}{'+' if count >= LIST_LIMIT else ''})")
        hints = []
        digits = [key for key in (key_in_force(self, f"knowledge.view.{v}") for v in articles.VIEWS) if key]
        next_view = key_in_force(self, "knowledge.next_view")
        if digits or next_view:
            run = f"{digits[0]}-{digits[-1]}" if len(digits) > 2 else ",".join(digits)
            hints.append(f"[{'/'.join(k for k in (run, next_view) if k)}] views")
        for binding_id, what in (("knowledge.filter", "filter"), ("knowledge.new", "new")):
            key = key_in_force(self, binding_id)
            if key:
                hints.append(f"[{key}] {what}")
        if hints:
            bar.append("  " + "  ".join(hints))
        self.query_one("#kb-bar", Static).update(fit_hints(bar, (self.size.width or 80) - 2))

    def _cell(self, row: ArticleRow, key: str) -> Cell:
        if key == "ref":
            return row.ref, "bold"
        if key == "status":
            return articles.STATUS_LABELS.get(row.status, row.status), STATUS_STYLES.get(row.status, "")
        if key == "title":
            return row.title, ""
        if key == "service":
            return row.service or "-", "" if row.service else "dim"
        if key == "category":
            return row.category or "-", "" if row.category else "dim"
        if key == "author":
            return row.author or "-", "" if row.author else "dim"
        if key == "updated":
            return local_time(row.updated_at, self.app.actor.timezone, "%Y-%m-%d"), "dim"
        if key == "uses":
            return str(row.uses), "" if row.uses else "dim"
        return "", ""

    def action_view(self, view: str) -> None:
        if view != self.view_key:
            self.view_key = view
            self.table.show_rows([], [], lambda row, key: ("", ""), empty="Loading ...")
        self.reload()

    def action_open(self) -> None:
        if self.query_one("#kb-filter", Input).has_focus:
            return
        row = self.table.current
        if row is None:
            self.app.notify("Nothing selected.", markup=False)
        else:
            self.app.push_screen(ArticleScreen(row.ref))

    async def action_new(self) -> None:
        not_while_typing(self)
        if _refused_new(self.app):
            return
        open_new_article(self.app)
        await until_shown(self.app)


def _refused_new(app: ItsmApp) -> bool:
    reason = articles.create_refusal(app.actor)
    if reason is not None:
        app.notify(reason, title="You cannot write an article", severity="warning", markup=False)
    return reason is not None


def open_new_article(
    app: ItsmApp, prefill: Prefill | None = None, after: Callable[[str], object] | None = None
) -> None:
    """The new-article form (prefilled from a ticket with ``prefill``); once saved, ``after(ref)`` runs and
    the article opens."""
    ticket_ref = prefill.ticket_ref if prefill is not None else None

    def save(values: ArticleValues) -> str:  # in the form's worker
        with app.db.session() as session:
            article = articles.create_article(
                session,
                app.config,
                app.actor,
                title=values.title,
                body=values.body,
                service=values.service or "",
                category=values.category or "",
                from_ticket=ticket_ref,
                now=app.clock(),
            )
            return article.ref

    def created(ref: str | None) -> None:
        if ref is None:
            return
        told = f"{ref} written from {ticket_ref} (linked)." if ticket_ref else f"{ref} written."
        app.notify(f"{told} Submit it for review when it is ready.", title="New article", markup=False)
        if after is not None:
            after(ref)
        app.push_screen(ArticleScreen(ref))

    title = f"New article from {ticket_ref}" if ticket_ref else "New article"
    note = (
        f"From {ticket_ref}'s description and resolution: edit what the next agent should read."
        if ticket_ref
        else None
    )
    app.push_screen(ArticleForm(prefill, save=save, title=title, note=note), created)


# --------------------------------------------------------------------------- from a ticket


def from_ticket_refusal(actor: Actor, detail: TicketDetail) -> str | None:
    """Why ``actor`` may not write an article from the ticket shown (None: they may), as the service says."""
    return articles.from_ticket_refusal(
        actor, detail.view.ref, detail.view.status, detail.actions.get("link")
    )


def write_from_ticket(
    screen: DeskScreen, ticket_ref: str, after: Callable[[str], object] | None = None
) -> None:
    """Open the new-article form prefilled from ``ticket_ref`` (read in a worker of ``screen``)."""
    app = screen.app

    def read() -> None:
        try:
            with app.db.read_session() as session:
                prefill = articles.prefill_from_ticket(session, app.config, ticket_ref)
        except ServiceError as exc:
            app.call_from_thread(app.notify, str(exc), severity="warning", markup=False)
            return
        app.call_from_thread(open_new_article, app, prefill, after)

    screen.run_worker(read, thread=True, exclusive=True, group="article-prefill", exit_on_error=False)


# --------------------------------------------------------------------------- one article

# action -> (binding id, label on the actions line), in lifecycle order
ACTION_KEYS: dict[str, tuple[str, str]] = {
    "edit": ("article.edit", "edit"),
    "submit": ("article.submit", "submit"),
    "publish": ("article.publish", "publish"),
    "send_back": ("article.send_back", "send back"),
    "retire": ("article.retire", "retire"),
}


# The status each lifecycle step moves an article to: a step the lifecycle has no way to from the status
# shown is listed on the actions line as "not while <status>" (its key still says the step's own refusal).
STEP_TARGETS: dict[str, str] = {
    "submit": "in_review",
    "publish": "published",
    "send_back": "draft",
    "retire": "retired",
}


class ArticleScreen(RecordPageScreen):
    """One article; Escape goes back to where it was opened from."""

    SCREEN_TITLE = "Article"
    CSS_PATH = KNOWLEDGE_STYLES
    BINDINGS = [
        Binding("e", "act('edit')", "Edit", id="article.edit"),
        Binding("s", "act('submit')", "Submit for review", id="article.submit"),
        Binding("p", "act('publish')", "Publish", id="article.publish"),
        Binding("b", "act('send_back')", "Send back", id="article.send_back"),
        Binding("x", "act('retire')", "Retire", id="article.retire"),
        Binding("f", "follow", "Follow link", id="article.follow"),
        Binding("y", "copy_ref", "Copy ref", show=False, id="article.copy_ref"),
        Binding("ctrl+r", "reload", "Reload", id="article.reload"),
        Binding("escape", "back", "Back", id="article.back"),
    ]

    PREFIX = "article"

    def __init__(self, ref: str) -> None:
        super().__init__(articles.normal_ref(ref))
        self.detail: ArticleDetail | None = None  # the one shown (tests wait for it)

    @work(thread=True, exclusive=True, group="article-load", exit_on_error=False)
    def load(self, stale: StaleEdit | None = None) -> None:
        app = self.app
        try:
            with app.db.read_session() as session:
                found = articles.article_detail(session, app.actor, self.ref)
        except ServiceError as exc:
            app.call_from_thread(self.query_one("#article-fields", Static).update, literal(str(exc)))
            return
        app.call_from_thread(self.show, found, stale)

    def show(self, detail: ArticleDetail, stale: StaleEdit | None = None) -> None:
        self.detail = detail
        self._form_version = detail.version  # a form opened now (or saved again after a refusal) goes on it
        status_line = self.query_one(StatusLine)
        status_line.screen_title = f"Article {detail.ref}"
        status_line.refresh_line()
        if stale is not None:
            summary = stale_summary(stale, self.app.actor.timezone)
            self.set_notice(literal(f"Not saved: {summary}; shown as it is now.", style="bold"))
        self.query_one("#article-fields", Static).update(self.render_fields(detail))
        self.query_one("#article-history", Static).update(self.render_history(detail))
        self.query_one("#article-actions", Static).update(self.render_actions(detail))
        self.refresh_bindings()

    # ----------------------------------------------------------------- rendering

    def render_fields(self, d: ArticleDetail) -> Group:
        head = Text(d.ref, style="bold")
        head.append("  ")
        head.append(d.status_label, style="bold " + STATUS_STYLES.get(d.status, ""))
        head.append(f"  used by {d.uses} ticket{'' if d.uses == 1 else 's'}")
        head.append(f"  v{d.version}", style="dim")
        parts: list[RenderableType] = []
        if d.history_warning:  # the article's audit chain is broken: said above everything else
            parts.append(Text(d.history_warning, style="bold red"))
        parts += [head, Text(strip_control(d.title, single_line=True), style="bold")]

        pairs = Table.grid(padding=(0, 1))
        pairs.add_column(style="bold", no_wrap=True, width=9)
        pairs.add_column(min_width=20, max_width=40)
        pairs.add_column(style="bold", no_wrap=True, width=9)
        pairs.add_column(min_width=16, max_width=40)
        author = d.author or "-"
        if d.author_name and d.author_name != d.author:
            author += f" ({d.author_name})"
        pairs.add_row("Author", literal(author), "Reviewer", literal(d.reviewer or "-"))
        pairs.add_row("Service", literal(d.service or "-"), "Category", literal(d.category or "-"))
        pairs.add_row("Written", self.when(d.created_at), "Updated", self.when(d.updated_at))
        if d.published_at or d.retired_at:
            pairs.add_row("Published", self.when(d.published_at), "Retired", self.when(d.retired_at))
        if d.source_ticket:
            pairs.add_row("From", literal(d.source_ticket), "", "")
        parts.append(pairs)
        if d.review_note and d.status != "published":
            note = Text("Sent back: ", style="bold yellow")
            note.append(strip_control(d.review_note))
            parts.append(note)
        if d.retire_reason:
            reason = Text("Retired: ", style="bold")
            reason.append(strip_control(d.retire_reason))
            parts.append(reason)

        parts.append(Text("\nText", style="bold underline"))
        body = strip_control(d.body).strip("\n")
        parts.append(Text(body) if body.strip() else Text("(no text yet)", style="dim"))

        parts.append(Text(f"\nUsed by ({d.uses})", style="bold underline"))
        if d.linked:
            linked = Table.grid(padding=(0, 1))
            linked.add_column(no_wrap=True)
            linked.add_column(no_wrap=True)
            linked.add_column(ratio=1, no_wrap=True)
            for record in d.linked:
                linked.add_row(Text(record.ref, style="bold"), record.kind_word, literal(record.title))
            parts.append(linked)
        else:
            parts.append(Text("no ticket links to it yet", style="dim"))
        return Group(*parts)

    def render_history(self, d: ArticleDetail) -> RenderableType:
        if not d.history:
            return Text("")
        zone = ZoneInfo(self.app.actor.timezone)
        history = Table(
            title="\nHistory (newest first)",
            title_justify="left",
            title_style="bold underline",
            box=None,
            show_header=False,
            expand=True,
            padding=(0, 1, 0, 0),
        )
        history.add_column(no_wrap=True)
        history.add_column(no_wrap=True, max_width=12)
        history.add_column(ratio=1, no_wrap=True)
        for item in d.history:
            if item.field == "body":
                what = f"{item.action}: the text"
            elif item.field:
                old, new = shown_value(item.old, zone), shown_value(item.new, zone)
                what = f"{item.field}: {old} -> {new}" if item.old else f"{item.field}: {new}"
                if item.action not in ("create", "update"):
                    what = f"{item.action} · {what}"
            else:
                what = item.action + (f" {item.new}" if item.new else "")
            history.add_row(
                self.when(item.at, "%m-%d %H:%M"),
                literal(item.by),
                Text(strip_control(what, single_line=True), overflow="ellipsis", no_wrap=True),
            )
        return history

    def render_actions(self, d: ArticleDetail) -> Text:
        """The action keys (those not open now struck through), then why those are not open."""
        width = max(20, self.query_one("#article-actions").content_size.width or 78)
        line = Text()
        column = 0
        refused: dict[str, list[str]] = {}
        for action, (binding_id, label) in ACTION_KEYS.items():
            key = key_in_force(self, binding_id) or "ctrl+p"
            reason = self.refusal(action)
            piece = Text()
            if reason:
                piece.append(f"{key} {label}", style="dim strike")
                target = STEP_TARGETS.get(action)
                if target is not None and target not in articles.TRANSITIONS.get(d.status, ()):
                    reason = f"not while {d.status_label}"
                refused.setdefault(reason, []).append(label)
            else:
                piece.append(key, style="bold")
                piece.append(f" {label}")
            if column and column + 2 + len(piece) > width:
                line.append("\n")
                column = 0
            elif column:
                line.append("  ")
                column += 2
            line.append_text(piece)
            column += len(piece)
        for index, (reason, labels) in enumerate(refused.items()):
            line.append("\n" if index == 0 else " · ", style="dim")
            line.append(", ".join(labels), style="bold dim")
            line.append(f": {strip_control(reason, single_line=True)}", style="dim")
        return line

    def on_resize(self) -> None:
        if self.detail is not None:
            self.query_one("#article-actions", Static).update(self.render_actions(self.detail))

    # ----------------------------------------------------------------- availability

    def refusal(self, action: str) -> str | None:
        if self.detail is None:
            return "the article is still loading"
        return next((offer.refusal for offer in self.detail.actions if offer.action == action), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A step not open now (the article's guards, as the actions line says) is dimmed in the footer,
        marked "not now" in the help and left out of the palette; its key says why (:meth:`on_key`)."""
        if action == "act" and parameters:
            return None if self.refusal(str(parameters[0])) is not None else True
        return True

    def on_key(self, event: events.Key) -> None:
        """A dimmed step's key says why instead of doing nothing."""
        active = self.active_bindings.get(event.key)
        if active is None or active.enabled or active.node is not self:
            return
        _, name, parameters = parse_action(active.binding.action)
        if name == "act" and parameters:
            event.stop()
            event.prevent_default()
            self.action_act(str(parameters[0]))

    # ----------------------------------------------------------------- following links

    def action_follow(self) -> None:
        """Open a ticket that uses the article: the only one at once, else the one picked from the list."""
        from itsm_tui.screens.links import LinkPicker, follow

        linked = list(self.detail.linked) if self.detail is not None else []
        if not linked:
            self.app.notify(f"No ticket links to {self.ref} yet.", markup=False)
        elif len(linked) == 1:
            follow(self.app, linked[0])
        else:

            def chosen(record: LinkedRecord | None) -> None:
                if record is not None:
                    follow(self.app, record)

            self.app.push_screen(LinkPicker(self.ref, linked), chosen)

    # ----------------------------------------------------------------- actions

    def action_act(self, action: str) -> None:
        detail = self.detail
        reason = self.refusal(action)
        if reason is not None or detail is None:
            self.app.notify(
                f"You cannot {ACTION_KEYS[action][1]} {self.ref}: {(reason or '').rstrip('.')}.",
                title="Not available",
                severity="warning",
                markup=False,
            )
            return
        self._form_version = detail.version
        self.app.push_screen(self._form(action, detail), self._done)

    def _form(self, action: str, d: ArticleDetail) -> FormScreen[Any, str]:
        """The form of ``action``, whose save runs the step in a session of its own (see :meth:`_saver`)."""
        ref, on_refused = d.ref, self._refused
        if action == "edit":
            return ArticleForm(d, save=self._saver(self._update), on_refused=on_refused, title=f"Edit {ref}")
        if action == "send_back":
            return NoteForm(
                save=self._saver(self._send_back),
                on_refused=on_refused,
                title=f"Send {ref} back to {d.author or 'its author'}",
                note="What should change before it is published (the author is told).",
            )
        if action == "retire":
            return NoteForm(
                save=self._saver(self._retire),
                on_refused=on_refused,
                title=f"Retire {ref}",
                note="Why agents should no longer use it (recorded in the history).",
            )
        if action == "submit":
            return ConfirmForm(
                save=self._saver(self._submit),
                on_refused=on_refused,
                title=f"Submit {ref}",
                question=f"Submit {ref} for review? Someone other than you publishes it.",
                detail=d.title,
            )
        return ConfirmForm(
            save=self._saver(self._publish),
            on_refused=on_refused,
            title=f"Publish {ref}",
            question=f"Publish {ref}? Agents find it from their tickets then.",
            detail=d.title,
        )

    # Each step: (session, values) -> what is said once it saved; run in the form's worker (the forms' save,
    # refusal and done are RecordPageScreen's).

    def _update(self, session: Session, changes: dict[str, object]) -> str:
        if not changes:
            return f"{self.ref}: nothing changed."
        app = self.app
        articles.update_article(session, app.config, app.actor, self.ref, changes, **self._common())
        return f"{self.ref} saved."

    def _submit(self, session: Session, _: bool) -> str:
        articles.submit(session, self.app.config, self.app.actor, self.ref, **self._common())
        return f"{self.ref} is in review."

    def _publish(self, session: Session, _: bool) -> str:
        articles.publish(session, self.app.config, self.app.actor, self.ref, **self._common())
        return f"{self.ref} published."

    def _send_back(self, session: Session, note: str) -> str:
        articles.send_back(session, self.app.config, self.app.actor, self.ref, note, **self._common())
        return f"{self.ref} sent back to its author."

    def _retire(self, session: Session, reason: str) -> str:
        articles.retire(session, self.app.config, self.app.actor, self.ref, reason, **self._common())
        return f"{self.ref} retired."


# --------------------------------------------------------------------------- forms


@dataclass(frozen=True)
class ArticleValues:
    title: str
    body: str
    service: str | None
    category: str | None


class KnowledgeForm(FormScreen[ValuesT, ResultT]):
    """A form of the knowledge screens: its rows packed close; Enter in a one-line field goes to the next;
    ctrl+e edits the text in $EDITOR."""

    CSS_PATH = [FORM_STYLES, KNOWLEDGE_STYLES]
    SUBMIT_ON_ENTER = False
    HINT = (
        "{form.save} save · tab next field · {form.editor} editor · {form.cancel} cancel · {form.help} keys"
    )


def _service_options(app: ItsmApp, current: str | None) -> list[tuple[str, str]]:
    options = [(f"{s.code} - {s.name}", s.code) for s in app.config.services.values()]
    if current and current not in app.config.services:
        options.append((current, current))
    return options


class ArticleForm(KnowledgeForm[Any]):
    """Title, service, category and text: a new article (empty, or prefilled from a ticket) collects
    :class:`ArticleValues`; an article shown collects the fields that differ from what was shown."""

    TITLE = "Article"

    def __init__(
        self, shown: ArticleDetail | Prefill | None = None, **options: Unpack[FormArgs[Any, str]]
    ) -> None:
        super().__init__(**options)
        self.shown = shown

    def compose_fields(self) -> ComposeResult:
        shown = self.shown
        title = shown.title if shown else ""
        service = shown.service if shown else None
        category = shown.category if shown else None
        body = shown.body if shown else ""
        options = _service_options(self.app, service)
        chosen = service if service in {code for _, code in options} else Select.NULL
        yield from self.row("title", "Title", _input(title, "the question it answers, in one line"))
        yield from self.row(
            "service", "Service", Select(options, compact=True, prompt="(any service)", value=chosen)
        )
        yield from self.row("category", "Category", _input(category, "e.g. how-to, known issue"))
        yield from self.row(
            "body",
            "Text",
            TextArea(body, compact=True, soft_wrap=True, show_line_numbers=False, tab_behavior="focus"),
        )

    def collect(self) -> Any:
        typed = ArticleValues(
            title=self.text_of("title").strip(),
            body=self.text_of("body"),
            service=self.choice("service"),
            category=self.text_of("category").strip() or None,
        )
        shown = self.shown
        if not isinstance(shown, ArticleDetail):
            return typed
        was = {
            "title": shown.title,
            "body": shown.body.strip("\n"),
            "service": shown.service or None,
            "category": shown.category or None,
        }
        now = {
            "title": typed.title,
            "body": typed.body.strip("\n"),
            "service": typed.service,
            "category": typed.category,
        }
        return {name: value for name, value in now.items() if value != was[name]}


class NoteForm(KnowledgeForm[str]):
    """One text the step records: a review note, a reason to retire."""

    FIELD_ALIASES = {"reason": "note"}

    def compose_fields(self) -> ComposeResult:
        yield from self.row(
            "note",
            "Why",
            TextArea("", compact=True, soft_wrap=True, show_line_numbers=False, tab_behavior="focus"),
        )

    def collect(self) -> str:
        text = self.text_of("note").strip()
        if not text:
            raise ValidationError("note", "say why (it is recorded in the history)")
        return text


def _input(value: str | None = "", placeholder: str = "") -> Input:
    return Input(value=value or "", placeholder=placeholder, compact=True)
