"""Ticket detail screen: every field, both SLA clocks, the timeline, and the actions as keys and forms.

Actions the user may not do are shown disabled (footer and the actions line, with the reason naming the role
that may) and refuse with that reason when their key is pressed. Saves carry the version shown, so a save
over someone else's newer change is refused; the form keeps what was typed and this screen reloads and marks
what changed. Presence: a heartbeat every 10 s says who else has the ticket open.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from itsm_tui.keymap import fill_keys
from itsm_tui.screens.commandline import CommandLine, Target
from itsm_tui.screens.common import DeskFooter, DeskScreen, StatusLine, literal, local_time
from itsm_tui.screens.forms import (
    AssignForm,
    AssignValues,
    EditTicketForm,
    EscalateForm,
    EscalateValues,
    FormScreen,
    ImpactUrgencyForm,
    ImpactUrgencyValues,
    KedbChoice,
    KedbForm,
    LinkForm,
    LinkValues,
    RateForm,
    RateValues,
    ResolveForm,
    ResolveValues,
    TextForm,
    TextValues,
    TicketEdits,
    TransitionForm,
    TransitionValues,
    stale_summary,
)
from itsm_tui.screens.links import LinkPicker, follow
from itsm_tui.screens.sla_explain import SlaExplainScreen
from itsm_tui.screens.typeahead import not_while_typing, typing, until_shown
from itsm_tui.services import knowledge, presence, replies, sla_explain, tickets
from itsm_tui.services.errors import ServiceError, StaleEdit
from itsm_tui.services.sla_explain import Preview, ProposedChange
from itsm_tui.services.tickets import LinkedRecord, TicketDetail, TimelineItem
from itsm_tui.services.tickets.presenter import other_zones
from itsm_tui.services.tickets.reading import CONVERSATION
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from itsm_tui.services.knowledge import KnownErrorMatch

ValuesT = TypeVar("ValuesT")

SLA_STYLE = {
    "ok": "green",
    "met": "green",
    "warning": "bold yellow",
    "breached": "bold red",
    "stopped": "dim",
}
ENTRY_STYLE = {"reply": "cyan", "note": "magenta", "rating": "green", "audit": "dim"}
# The priority keys (typeahead.py): in the : line they are typed in, and the line's Esc closes it.
TYPED_IN = frozenset({"reply", "note", "goto", "back"})

# action method -> (rule of tickets.available_actions or None for always, label for the actions line)
ACTIONS: dict[str, tuple[str | None, str]] = {
    "take": ("take", "take"),
    "assign": ("assign", "assign"),
    "escalate": ("escalate", "escalate"),
    "status": ("transition", "status"),
    "reply": ("reply", "reply"),
    "note": ("note", "note"),
    "edit_details": ("edit", "edit"),
    "impact": ("edit", "impact"),
    "link": ("link", "link"),
    "kedb": (None, "KEDB"),
    "resolve": ("resolve", "resolve"),
    "reopen": ("reopen", "reopen"),
    "cancel_ticket": ("cancel", "cancel"),
    "rate": ("rate", "rate"),
}
# Guarded like those, but left off the actions line (the footer and the palette offer them).
GUARDED: dict[str, tuple[str | None, str]] = {
    **ACTIONS,
    "escalate_lead": ("escalate_lead", "tell the shift lead about"),
    "article": (None, "write an article from"),  # its guard: screens/knowledge.py from_ticket_refusal
}


def format_duration(seconds: float) -> str:
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    return f"{hours}h{mins:02d}m" if hours else f"{mins}m"


ItemKey = tuple[datetime, str, str, str]


def _item_key(item: TimelineItem) -> ItemKey:
    return (item.at, item.kind, item.by, item.text)


class TicketScreen(DeskScreen):
    """One ticket. Escape goes back to where it was opened from."""

    CSS_PATH = [Path(__file__).resolve().with_name("ticket.tcss")]
    SCREEN_TITLE = "Ticket"
    HEARTBEAT_SECONDS = 10.0
    BINDINGS = [
        Binding("t", "take", "Take", id="ticket.take"),
        Binding("a", "assign", "Assign", id="ticket.assign"),
        Binding("e", "escalate", "Escalate", id="ticket.escalate"),
        Binding("h", "escalate_lead", "Tell shift lead", id="ticket.escalate_lead"),
        Binding("s", "status", "Status", id="ticket.status"),
        # Priority: the text typed straight after them goes into the form (typeahead.py).
        Binding("r", "reply", "Reply", id="ticket.reply", priority=True),
        Binding("n", "note", "Note", id="ticket.note", priority=True),
        Binding("d", "edit_details", "Edit", id="ticket.edit"),
        Binding("i", "impact", "Impact/urgency", id="ticket.impact"),
        Binding("l", "link", "Link", id="ticket.link"),
        Binding("k", "kedb", "KEDB search", id="ticket.kedb"),
        Binding("w", "why", "Why SLA times", id="ticket.why"),
        Binding("x", "resolve", "Resolve", id="ticket.resolve"),
        Binding("o", "reopen", "Reopen", id="ticket.reopen"),
        Binding("c", "cancel_ticket", "Cancel ticket", id="ticket.cancel"),
        Binding("asterisk", "rate", "Rate", id="ticket.rate", key_display="*"),
        Binding("y", "copy_ref", "Copy ref", id="ticket.copy_ref"),
        # Priority: the reference typed straight after it goes into its field (typeahead.py).
        Binding("g", "goto", "Go to ref", show=False, id="ticket.goto", priority=True),
        Binding("f", "follow", "Follow link", id="ticket.follow"),
        Binding("v", "conversation", "Conversation only", id="ticket.conversation"),
        Binding("ctrl+r", "reload", "Reload", id="ticket.reload"),
        Binding("A", "article", "Article from resolution", id="ticket.article"),
        Binding(  # priority: the keys typed after it go into the line, however fast they come
            "colon",
            "command",
            "Command line",
            show=False,
            id="ticket.command",
            key_display=":",
            priority=True,
        ),
        # Priority too: a key typed straight after it (a priority one, g or :) must not overtake it and
        # be closed by it.
        Binding("escape", "back", "Back", id="ticket.back", priority=True),
    ]

    def __init__(self, ticket_id: int) -> None:
        super().__init__()
        self.ticket_id = ticket_id
        self.detail: TicketDetail | None = None
        self.known_error_matches: list[KnownErrorMatch] = []  # shown above the fields while triaging
        self.console_id = ""  # set on mount: the app's console id, or one per process
        self.others: list[str] = []
        self._form_version: int | None = None  # the version shown when the open form started
        self._pending_action: str | None = None
        self._seen: set[ItemKey] | None = None
        self._fresh: set[ItemKey] = set()
        self._catching_up = False
        self.conversation_only = False  # the timeline without the audit events (v)

    # ----------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        yield Static("", id="ticket-presence")
        yield Static("", id="ticket-notice")
        yield Static("", id="ticket-kedb")
        with VerticalScroll(id="ticket-body"):
            yield Static("Loading ...", id="ticket-fields")
            yield Static("", id="ticket-timeline")
        yield Static("", id="ticket-actions")
        yield CommandLine()
        yield DeskFooter(compact=True)

    def on_mount(self) -> None:
        self.console_id = getattr(self.app, "console_id", None) or _process_console_id(
            presence.new_console_id
        )
        self.query_one("#ticket-body").focus()
        self.load()
        self.beat()
        self.set_interval(self.HEARTBEAT_SECONDS, self.beat)

    def on_unmount(self) -> None:
        db, console_id, ticket_id = self.app.db, self.console_id, self.ticket_id

        def leave() -> None:  # a failure goes to the console's handler; the row goes stale by itself
            with db.session() as session:
                presence.leave(session, console_id, "ticket", ticket_id)

        self.app.run_worker(leave, thread=True, exit_on_error=False, group="presence-leave")

    # ----------------------------------------------------------------- loading

    def _now(self) -> datetime:
        """The app's clock (fixed in snapshot tests)."""
        return self.app.clock()

    @property
    def ref(self) -> str:
        return self.detail.view.ref if self.detail else "?"

    def action_reload(self) -> None:
        self.load()
        self.beat()

    def action_back(self) -> None:
        not_while_typing(self)  # Esc in the : line closes the line
        self.app.pop_screen()

    def action_conversation(self) -> None:
        """The timeline as the conversation only (replies, notes, the rating), or everything again."""
        self.conversation_only = not self.conversation_only
        if self.detail is not None:
            self.query_one("#ticket-timeline", Static).update(self.render_timeline(self.detail))

    def action_follow(self) -> None:
        """Open a linked record (either way): the only one at once, else the one picked from the list."""
        if self.detail is None:
            return
        linked = list(self.detail.linked)
        if not linked:
            hint = fill_keys(self, "{ticket.link} links it.")
            self.app.notify(f"{self.ref} has no links to follow. {hint}".strip(), markup=False)
        elif len(linked) == 1:
            follow(self.app, linked[0])
        else:

            def chosen(record: LinkedRecord | None) -> None:
                if record is not None:
                    follow(self.app, record)

            self.app.push_screen(LinkPicker(self.ref, linked), chosen)

    async def action_goto(self) -> None:
        """Ask for another ticket's reference and open it (over this one: Escape comes back here)."""
        from itsm_tui.screens.goto import ask_and_open

        not_while_typing(self)
        ask_and_open(self.app)
        await until_shown(self.app)

    def action_command(self) -> None:
        self.query_one(CommandLine).open()

    def command_target(self) -> Target:
        """The ticket shown, at the version shown (a change made since is refused, and this reloads)."""
        if self.detail is None:
            return Target(())
        return Target((self.ref,), version=self.detail.view.version)

    def command_refs(self) -> list[str]:
        return [self.ref, *self.detail.links] if self.detail is not None else []

    def command_done(self, stale: StaleEdit | None = None) -> None:
        self.load(stale)

    def action_copy_ref(self) -> None:
        """The ticket's reference to the clipboard, through the terminal (an OSC 52 sequence: it reaches the
        clipboard of the machine the terminal runs on, over SSH too, where the terminal allows it)."""
        if self.detail is None:
            return
        self.app.copy_to_clipboard(self.ref)
        self.app.notify(f"Copied {self.ref}", markup=False)

    @work(thread=True, exclusive=True, exit_on_error=False, group="ticket-load")
    def load(self, stale: StaleEdit | None = None, changed: bool = False) -> None:
        app = self.app
        with app.db.read_session() as session:
            detail = tickets.detail(
                session,
                app.config,
                app.actor,
                self.ticket_id,
                now=self._now(),
                zone=ZoneInfo(app.actor.timezone),
            )
            matches = knowledge.matching_known_errors(session, self.ticket_id)
        app.call_from_thread(self.show_known_errors, matches)
        app.call_from_thread(self.show, detail, stale, changed)

    def show_known_errors(self, matches: list[KnownErrorMatch]) -> None:
        """While an open incident is triaged: the known errors in force that match its CI or service and
        words (the first, and how many more), and the key that searches and applies them."""
        line = self.query_one("#ticket-kedb", Static)
        self.known_error_matches = matches
        if not matches:
            line.update("")
            line.set_class(False, "-shown")
            return
        first = matches[0]
        text = Text("Possible known error: ", style="bold")
        text.append(first.ref, style="bold")
        text.append(" - ")
        text.append_text(literal(strip_control(first.title, single_line=True)))
        text.append(f" ({first.reason})", style="dim")
        if len(matches) > 1:
            text.append(f"; also {', '.join(m.ref for m in matches[1:])}")
        verb = "apply its workaround" if first.workaround else "link it"
        text.append_text(Text(fill_keys(self, f" - {verb} with {{ticket.kedb}}")))
        line.update(text)
        line.set_class(True, "-shown")

    @work(thread=True, exclusive=True, exit_on_error=False, group="ticket-presence")
    def beat(self) -> None:
        app = self.app
        now = self._now()
        with app.db.session() as session:
            presence.heartbeat(session, app.actor.id, self.console_id, "ticket", self.ticket_id, now)
            seen = presence.viewers(session, "ticket", [self.ticket_id], self.console_id, now)
            version = tickets.find_ticket_by_id(session, self.ticket_id).version
        viewers = seen.get(self.ticket_id, ())
        others = [viewer.name for viewer in viewers]
        writing = [viewer.name for viewer in viewers if viewer.writing]
        app.call_from_thread(self.show_presence, others, version, writing)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed load lets the next heartbeat try again, and says so in place of a ticket never shown;
        the console's handler reports the failure as well."""
        if event.state != WorkerState.ERROR or event.worker.group != "ticket-load":
            return
        self._catching_up = False
        if self.detail is None:
            error = strip_control(str(event.worker.error))
            self.query_one("#ticket-fields", Static).update(
                Text(
                    f"Could not load this ticket: {error}. "
                    + fill_keys(self, "{ticket.reload} tries again, {ticket.back} goes back.", ", ")
                )
            )

    def show_presence(self, others: list[str], version: int, writing: list[str] | None = None) -> None:
        line = self.query_one("#ticket-presence", Static)
        if others:
            names = [f"{name} (writing)" if name in (writing or ()) else name for name in others]
            line.update(literal("Also open by: " + ", ".join(names), style="bold"))
        line.set_class(bool(others), "-shown")
        self.others = others
        if self.detail is None or version == self.detail.view.version or self._catching_up:
            return
        if self.app.screen is self:
            self._catching_up = True  # one reload per change, however many heartbeats see it
            self.load(changed=True)
        else:
            self.set_notice(
                Text(
                    f"{self.ref} was changed by someone else (version {version}, you see "
                    f"{self.detail.view.version}); a save now is refused. "
                    + fill_keys(self, "{ticket.reload} reloads."),
                )
            )

    def set_notice(self, text: Text | None) -> None:
        notice = self.query_one("#ticket-notice", Static)
        notice.update(text or "")
        notice.set_class(text is not None, "-shown")

    # ----------------------------------------------------------------- rendering

    def show(self, detail: TicketDetail, stale: StaleEdit | None = None, changed: bool = False) -> None:
        self._catching_up = False
        keys = {_item_key(item) for item in detail.timeline}
        new = keys - self._seen if self._seen is not None else set()
        self._seen = keys
        keep_notice = False
        if stale is None and changed:
            if not new:
                keep_notice = True  # a second reload for the same change: keep what is marked
            elif all(item.by == self.app.actor.login for item in detail.timeline if _item_key(item) in new):
                changed, self._fresh = False, set()  # this user's own save, seen by the heartbeat first
            else:
                self._fresh = new
        elif stale is not None:
            self._fresh = new or self._fresh
        else:
            self._fresh = set()
        self.detail = detail
        status_line = self.query_one(StatusLine)
        status_line.screen_title = f"Ticket {detail.view.ref}"
        status_line.refresh_line()
        if stale is not None:
            # The user has now been shown the newer version: a second save applies over it.
            self._form_version = detail.view.version
            summary = stale_summary(stale, self.app.actor.timezone)
            self.set_notice(literal(f"Not saved: {summary}; what changed is marked >.", style="bold"))
            if self.app.screen is self:  # else the open form says it
                self.app.notify(f"Not saved: {summary}.", title="Not saved", severity="warning", markup=False)
        elif changed and not keep_notice:
            last = next((item for item in detail.timeline if _item_key(item) in self._fresh), None)
            who = f" by {last.by}" if last else ""
            self.set_notice(literal(f"Updated{who} while you were here; changes are marked > below."))
        elif not changed:
            self.set_notice(None)
        self.query_one("#ticket-fields", Static).update(self.render_fields(detail))
        self.query_one("#ticket-timeline", Static).update(self.render_timeline(detail))
        self.query_one("#ticket-actions", Static).update(self.render_actions(detail))
        self.refresh_bindings()
        if self._pending_action is not None:
            action, self._pending_action = self._pending_action, None
            self.invoke(action)

    def other_zones(self, detail: TicketDetail) -> list[tuple[str, str]]:
        """The zones the ticket is worked in that are not the viewer's: while there is one, every time on
        the page carries its zone's abbreviation (as the command line prints times)."""
        return other_zones(detail.zones, self.app.actor.timezone)

    def when(self, instant: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """An instant in the viewer's zone, labelled with the zone where the ticket's zones mix."""
        mixed = self.detail is not None and bool(self.other_zones(self.detail))
        return local_time(instant, self.app.actor.timezone, f"{fmt} %Z" if mixed else fmt)

    def render_fields(self, detail: TicketDetail) -> Group:
        view = detail.view
        when = self.when
        head = Text(view.ref, style="bold")
        head.append(f"  {view.kind}  ")
        head.append(f"P{view.priority}", style="bold reverse" if view.priority <= 2 else "bold")
        head.append(f"  {view.status}", style="bold")
        if view.pending_reason:
            head.append(f" (waiting for {view.pending_reason})")
        head.append(f"  v{view.version}", style="dim")
        if view.reopen_count or view.escalation_count:
            head.append(f"  reopened {view.reopen_count}x, escalated {view.escalation_count}x", style="dim")

        full = Table.grid(padding=(0, 1))
        full.add_column(style="bold", no_wrap=True, width=11)
        full.add_column(ratio=1)
        full.add_row("Title", Text(strip_control(view.title)))

        # Two label/value pairs per row, kept close together on wide terminals.
        pairs = Table.grid(padding=(0, 1))
        pairs.add_column(style="bold", no_wrap=True, width=11)
        pairs.add_column(min_width=26, max_width=48)
        pairs.add_column(style="bold", no_wrap=True, width=9)
        pairs.add_column(min_width=16, max_width=48)
        pairs.add_row("Requester", literal(view.requester), "Opened", when(view.opened_at))
        pairs.add_row("Group", literal(view.group or "-"), "Assignee", literal(view.assignee or "-"))
        pairs.add_row("Impact", view.impact, "Urgency", view.urgency)
        service = (view.service or "-") + (f" / {view.ci}" if view.ci else "")
        pairs.add_row("Category", literal(view.category or "-"), "Service", literal(service))
        if view.resolved_at or view.closed_at or view.cancelled_at:
            done = view.closed_at or view.cancelled_at or view.resolved_at
            label = "Closed" if view.closed_at else "Cancelled" if view.cancelled_at else "Resolved"
            pairs.add_row(label, when(done), "Rating", str(view.rating or "-"))

        clocks = Table.grid(padding=(0, 1))
        clocks.add_column(style="bold", no_wrap=True, width=11)
        clocks.add_column(ratio=1)
        for target, state, due, done in (
            ("response", view.response_state, view.response_due_at, view.responded_at),
            ("resolution", view.resolution_state, view.resolution_due_at, view.resolved_at),
        ):
            line = Text(state, style=SLA_STYLE.get(state, ""))
            line.append(f"  due {when(due, '%m-%d %H:%M')}")
            left = detail.left.get(target)
            if done is not None:
                line.append(f"  done {when(done, '%m-%d %H:%M')}")
            elif left is not None and view.status == "pending":
                word = "left" if left >= 0 else "overdue"
                line.append(f"  paused, {format_duration(left)} business {word}", style="dim")
            elif left is not None and left >= 0:
                line.append(f"  {format_duration(left)} business left", style=SLA_STYLE.get(state, ""))
            elif left is not None:
                line.append(f"  {format_duration(left)} business overdue", style="bold red")
            clocks.add_row("Respond" if target == "response" else "Resolve", line)

        extra = Table.grid(padding=(0, 1))
        extra.add_column(style="bold", no_wrap=True, width=11)
        extra.add_column(ratio=1)
        if detail.linked:
            links = Text()
            for index, record in enumerate(detail.linked):
                links.append(", " if index else "")
                links.append(record.ref)
                links.append("" if record.outgoing else " (links here)", style="italic")
            extra.add_row("Links", links)
        others = self.other_zones(detail)
        if others:
            zones = Text(f"yours {self.app.actor.timezone}; ")
            zones.append("; ".join(f"{what} {zone}" for what, zone in others))
            extra.add_row("Zones", zones)
        if view.resolution_code:
            resolution = Text(f"{view.resolution_code}: ", style="bold")
            resolution.append(strip_control(view.resolution_note))
            extra.add_row("Resolution", resolution)
        extra.add_row("Description", Text(strip_control(view.description) or "-"))
        warning = [Text(detail.history_warning, style="bold red")] if detail.history_warning else []
        return Group(*warning, head, full, pairs, clocks, extra, Text(""))  # a broken audit chain said first

    def render_timeline(self, detail: TicketDetail) -> Table:
        shown = detail.timeline
        title = f"Timeline, newest first ({len(shown)})"
        if self.conversation_only:
            shown = [item for item in detail.timeline if item.kind in CONVERSATION]
            title = f"Conversation only, newest first ({len(shown)} of {len(detail.timeline)})"
            if not shown:  # an empty list would read as a fault
                key = fill_keys(self, "{ticket.conversation}")
                title = "Conversation only: no replies or notes yet" + (
                    f" ({key}: all {len(detail.timeline)})" if key else ""
                )
        table = Table(
            title=title,
            title_justify="left",
            title_style="bold",
            box=None,
            expand=True,
            show_header=False,
            padding=(0, 1, 0, 0),
        )
        table.add_column("", no_wrap=True, width=1)
        table.add_column("When", no_wrap=True)
        table.add_column("What", no_wrap=True)
        table.add_column("Who", no_wrap=True, max_width=12)
        table.add_column("Text", ratio=1)
        for item in shown:
            fresh = _item_key(item) in self._fresh
            table.add_row(
                Text(">", style="bold yellow") if fresh else "",
                self.when(item.at, "%m-%d %H:%M"),
                Text(item.kind, style=ENTRY_STYLE.get(item.kind, "")),
                literal(item.by),
                Text(strip_control(item.text)),
                style="bold" if fresh else None,
            )
        return table

    def render_actions(self, detail: TicketDetail) -> Text:
        """The action keys (disabled ones struck through), then why the disabled ones are not available."""
        keys = {b.action: (b.key_display or b.key) for b in self.BINDINGS if isinstance(b, Binding)}
        width = max(20, self.query_one("#ticket-actions").content_size.width or 78)
        line = Text()
        column = 0
        refused: dict[str, list[str]] = {}
        for action, (_rule, label) in ACTIONS.items():
            reason = self.refusal(action)
            piece = Text()
            if reason:
                piece.append(f"{keys[action]} {label}", style="dim strike")
                refused.setdefault(reason, []).append(label)
            else:
                piece.append(keys[action], style="bold")
                piece.append(f" {label}")
            # Wrap between actions, never between a key and its label.
            if column and column + 2 + len(piece) > width:
                line.append("\n")
                column = 0
            elif column:
                line.append("  ")
                column += 2
            line.append_text(piece)
            column += len(piece)
        if refused:
            line.append("\n")
        for index, (reason, labels) in enumerate(refused.items()):
            if index:
                line.append(" · ", style="dim")
            line.append(", ".join(labels), style="bold")
            line.append(f": {reason}")
        return line

    def on_resize(self) -> None:
        if self.detail is not None:
            self.query_one("#ticket-actions", Static).update(self.render_actions(self.detail))

    # ----------------------------------------------------------------- availability

    def refusal(self, action: str) -> str | None:
        """Why ``action`` is not available now (None: it is, or it is not a ticket action)."""
        if action not in GUARDED or self.detail is None:
            return None
        if action == "article":  # the knowledge base's guard and the ticket's link guard
            from itsm_tui.screens.knowledge import from_ticket_refusal

            return from_ticket_refusal(self.app.actor, self.detail)
        rule = GUARDED[action][0]
        return self.detail.actions.get(rule) if rule else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in TYPED_IN and self.is_active and typing(self):
            return False  # a priority key typed into the : line (typeahead.py): not in the footer then
        if action in GUARDED and self.detail is not None and self.refusal(action):
            return None  # shown disabled in the footer
        return True

    def on_key(self, event: events.Key) -> None:
        """A disabled action's key says why instead of doing nothing."""
        active = self.active_bindings.get(event.key)
        if active is None or active.enabled or active.node is not self:
            return
        action = active.binding.action
        if action in GUARDED:
            event.stop()
            event.prevent_default()
            self.invoke(action)

    def invoke(self, action: str) -> None:
        """Run an action, or say why it is not available (a disabled key, an action started by the queue)."""
        reason = self.refusal(action)
        if reason:
            label = GUARDED[action][1]
            self.app.notify(
                f"You cannot {label} {self.ref}: {reason}.",
                title="Not available",
                severity="warning",
                markup=False,
            )
            return
        method = getattr(self, f"action_{action}")
        if inspect.iscoroutinefunction(method):  # reply, note: they wait for their form (typeahead.py)
            self.call_later(self.run_action, action)
        else:
            method()

    def _ready(self, action: str) -> TicketDetail | None:
        """The ticket shown, when the action may run now; before the ticket is loaded it runs once it is."""
        if self.detail is None:
            self._pending_action = action
            return None
        if self.refusal(action):
            self.invoke(action)
            return None
        return self.detail

    # ----------------------------------------------------------------- forms

    def _open_form(self, form: FormScreen[ValuesT]) -> None:
        """Open a form whose save (a service call) goes against the version shown now; its message is shown
        and the ticket reloaded once it saved."""
        self._form_version = self.detail.view.version if self.detail else None

        def done(message: str | None) -> None:
            if message is not None:
                self.app.notify(strip_control(message), markup=False)
                self.load()

        self.app.push_screen(form, done)

    def _refused(self, exc: ServiceError) -> None:
        if isinstance(exc, StaleEdit):
            self.load(stale=exc)

    def _session(self) -> AbstractContextManager[Session]:
        return self.app.db.session()

    def _sla_preview(self, ref: str) -> Callable[[ProposedChange], Preview]:
        """What a form's change would do to the SLA times (run in the form's worker; nothing is written)."""
        app = self.app

        def preview(change: ProposedChange) -> Preview:
            with app.db.read_session() as session:
                return sla_explain.preview(session, app.config, app.actor, ref, change, self._now())

        return preview

    def action_why(self) -> None:
        """Why these SLA times: each target's policy, calendar, pauses, re-targets and verdict."""
        detail = self._ready("why")
        if detail is not None:
            self.app.push_screen(SlaExplainScreen(detail.view.ref))

    def action_take(self) -> None:
        detail = self._ready("take")
        if detail is not None:
            self.take(detail.view.ref)

    @work(thread=True, exclusive=True, exit_on_error=False, group="ticket-action")
    def take(self, ref: str) -> None:
        """Take the ticket if nobody has it yet (whatever else changed since it was shown: a take needs no
        version). Too late, it says who has it and the ticket is reloaded with what changed marked."""
        app = self.app
        try:
            with self._session() as session:
                tickets.take(session, app.config, app.actor, ref)
        except StaleEdit as exc:  # lost to changes made at the same moment: reloaded, the notice says so
            app.call_from_thread(self.load, exc)
            return
        except ServiceError as exc:
            app.call_from_thread(
                app.notify, strip_control(str(exc)), title="Not taken", severity="error", markup=False
            )
            app.call_from_thread(self.load, None, True)
            return
        app.call_from_thread(app.notify, f"{ref} is yours.", markup=False)
        app.call_from_thread(self.load)

    def action_assign(self) -> None:
        detail = self._ready("assign")
        if detail is None:
            return
        app, ref = self.app, detail.view.ref

        def save(values: AssignValues) -> str:
            with self._session() as session:
                tickets.assign(
                    session,
                    app.config,
                    app.actor,
                    ref,
                    assignee=values.login,
                    group=values.group,
                    expected_version=self._form_version,
                )
            return f"{ref} assigned to {values.login}."

        groups = list(app.config.groups)
        self._open_form(
            AssignForm(
                save=save,
                on_refused=self._refused,
                title=f"Assign {ref}",
                groups=groups,
                ticket_group=detail.view.group,
            )
        )

    def action_escalate(self) -> None:
        detail = self._ready("escalate")
        if detail is None:
            return
        app, ref = self.app, detail.view.ref

        def save(values: EscalateValues) -> str:
            with self._session() as session:
                ticket = tickets.escalate(
                    session,
                    app.config,
                    app.actor,
                    ref,
                    group=values.group,
                    reason=values.reason,
                    expected_version=self._form_version,
                )
                group = ticket.group.code if ticket.group else "?"
            return f"{ref} escalated to {group}."

        self._open_form(
            EscalateForm(
                save=save,
                on_refused=self._refused,
                title=f"Escalate {ref}",
                groups=list(app.config.groups),
                current_group=detail.view.group,
            )
        )

    def action_status(self, target: str | None = None) -> None:
        detail = self._ready("status")
        if detail is None:
            return
        app, ref = self.app, detail.view.ref

        def save(values: TransitionValues) -> str:
            with self._session() as session:
                tickets.transition(
                    session,
                    app.config,
                    app.actor,
                    ref,
                    values.to_status,
                    reason=values.reason,
                    code=values.code,
                    note=values.note,
                    expected_version=self._form_version,
                )
            return f"{ref} is now {values.to_status}."

        self._open_form(
            TransitionForm(
                save=save,
                on_refused=self._refused,
                title=f"Status of {ref}",
                current=detail.view.status,
                targets=detail.transitions,
                resolution_codes=app.config.resolution_codes,
                target=target,
                sla_preview=self._sla_preview(ref),
            )
        )

    def _entry(self, detail: TicketDetail, public: bool) -> None:
        app, ref = self.app, detail.view.ref

        def save(values: TextValues) -> str:
            # Against the version shown, like every other form: a reply or note written while a colleague
            # answered, resolved or reassigned the ticket is refused until the agent has seen that.
            with self._session() as session:
                tickets.add_entry(
                    session,
                    app.config,
                    app.actor,
                    ref,
                    body=values.text,
                    public=values.public,
                    expected_version=self._form_version,
                )
            return "Reply sent." if values.public else "Work note added."

        title = ("Reply on " if public else "Work note on ") + ref
        # Filled from the ticket as shown: the form's text is the agent's to check before saving.
        offered = [
            (template.name, replies.render(template, detail.view, app.actor, app.config))
            for template in replies.offered(app.config, public)
        ]
        self._open_form(
            TextForm(
                save=save,
                on_refused=self._refused,
                public=public,
                title=title,
                templates=offered,
                writing=("ticket", self.ticket_id),
            )
        )

    def action_escalate_lead(self) -> None:
        """Hierarchical escalation: a reason, sent to the shift lead as a notification and kept as a note."""
        detail = self._ready("escalate_lead")
        if detail is None:
            return
        app, ref = self.app, detail.view.ref

        def save(values: TextValues) -> str:
            with self._session() as session:
                told = tickets.escalate_to_lead(session, app.config, app.actor, ref, reason=values.text)
            return (
                f"{ref}: the shift lead was told ({told})."
                if told
                else f"{ref}: noted; no shift lead to tell."
            )

        title = f"Tell the shift lead why {ref} needs them"
        self._open_form(TextForm(save=save, on_refused=self._refused, public=False, title=title))

    async def action_reply(self) -> None:
        not_while_typing(self)
        detail = self._ready("reply")
        if detail is not None:
            self._entry(detail, True)
            await until_shown(self.app)

    async def action_note(self) -> None:
        not_while_typing(self)
        detail = self._ready("note")
        if detail is not None:
            self._entry(detail, False)
            await until_shown(self.app)

    def action_impact(self) -> None:
        detail = self._ready("impact")
        if detail is None:
            return
        app, view = self.app, detail.view
        ref = view.ref

        def save(values: ImpactUrgencyValues) -> str:
            with self._session() as session:
                ticket = tickets.update_fields(
                    session,
                    app.config,
                    app.actor,
                    ref,
                    impact=values.impact,
                    urgency=values.urgency,
                    expected_version=self._form_version,
                )
                priority = ticket.priority
            return f"{ref}: impact {values.impact}, urgency {values.urgency}, priority P{priority}."

        self._open_form(
            ImpactUrgencyForm(
                save=save,
                on_refused=self._refused,
                title=f"Impact and urgency of {ref}",
                impact=view.impact,
                urgency=view.urgency,
                config=app.config,
                sla_preview=self._sla_preview(ref),
            )
        )

    def action_edit_details(self) -> None:
        detail = self._ready("edit_details")
        if detail is None:
            return
        app, view = self.app, detail.view
        ref = view.ref

        def save(edits: TicketEdits) -> str:
            changes = edits.as_changes()
            if not changes:
                return f"{ref}: nothing changed."
            with self._session() as session:
                tickets.update_fields(
                    session,
                    app.config,
                    app.actor,
                    ref,
                    expected_version=self._form_version,
                    title=edits.title,
                    requester=edits.requester,
                    category=edits.category,
                    service=edits.service,
                    ci=edits.ci,
                    description=edits.description,
                )
            return f"{ref}: {', '.join(changes)} saved."

        shown = TicketEdits(
            title=view.title,
            requester=view.requester,
            category=view.category,
            service=view.service,
            ci=view.ci,
            description=view.description,
        )
        self._open_form(
            EditTicketForm(
                save=save,
                on_refused=self._refused,
                title=f"Edit {ref}",
                shown=shown,
                kind=view.kind,
                config=app.config,
            )
        )

    def action_link(self) -> None:
        detail = self._ready("link")
        if detail is None:
            return
        app, ref = self.app, detail.view.ref

        def save(values: LinkValues) -> str:
            with self._session() as session:
                tickets.link(session, app.actor, ref, values.target)
            return f"{ref} linked to {values.target}."

        self._open_form(LinkForm(save=save, on_refused=self._refused, title=f"Link {ref} to"))

    def action_kedb(self) -> None:
        detail = self._ready("kedb")
        if detail is None:
            return
        app, ref = self.app, detail.view.ref
        refusal = detail.actions.get("apply_workaround")

        def save(choice: KedbChoice) -> str:
            with self._session() as session:
                if choice.kind == "known_error" and choice.has_workaround:
                    knowledge.apply_workaround(session, app.config, app.actor, ref, choice.ref)
                    return f"Workaround of {choice.ref} noted on {ref}, and linked."
                tickets.link(session, app.actor, ref, choice.ref)
            return f"{ref} linked to {choice.ref}."

        title = f"KEDB and knowledge for {ref}"
        if refusal:
            title += f" (read only: {refusal})"
        words = _search_words(detail.view.title)
        ticket_id = self.ticket_id

        def search(typed: str) -> list[knowledge.KnowledgeHit]:  # the ticket's own known errors first
            with app.db.read_session() as session:
                return knowledge.search_for_ticket(session, ticket_id, typed)

        kedb = KedbForm(save=save, on_refused=self._refused, title=title, words=words, search=search)
        self._open_form(kedb)

    def action_article(self) -> None:
        """A knowledge article from the ticket's description and resolution (the new-article form, filled in);
        once written it is linked from the ticket and opens."""
        detail = self._ready("article")
        if detail is None:
            return
        from itsm_tui.screens.knowledge import write_from_ticket

        write_from_ticket(self, detail.view.ref, after=lambda _: self.load())

    def action_resolve(self) -> None:
        detail = self._ready("resolve")
        if detail is None:
            return
        app, ref = self.app, detail.view.ref

        def save(values: ResolveValues) -> str:
            with self._session() as session:
                tickets.resolve(
                    session,
                    app.config,
                    app.actor,
                    ref,
                    code=values.code or "",
                    note=values.note,
                    expected_version=self._form_version,
                )
            return f"{ref} resolved ({values.code})."

        codes = app.config.resolution_codes
        self._open_form(
            ResolveForm(save=save, on_refused=self._refused, title=f"Resolve {ref}", resolution_codes=codes)
        )

    def action_reopen(self) -> None:
        if self._ready("reopen") is not None:
            self.action_status("in_progress")

    def action_cancel_ticket(self) -> None:
        detail = self._ready("cancel_ticket")
        if detail is None:
            return
        app, ref = self.app, detail.view.ref

        def save(values: TransitionValues) -> str:
            with self._session() as session:
                tickets.cancel(
                    session,
                    app.config,
                    app.actor,
                    ref,
                    reason=values.reason or "",
                    expected_version=self._form_version,
                )
            return f"{ref} cancelled."

        self._open_form(
            TransitionForm(
                save=save,
                on_refused=self._refused,
                title=f"Cancel {ref}",
                current=detail.view.status,
                targets=("cancelled",),
                target="cancelled",
            )
        )

    def action_rate(self) -> None:
        detail = self._ready("rate")
        if detail is None:
            return
        app, ref = self.app, detail.view.ref

        def save(values: RateValues) -> str:
            with self._session() as session:
                tickets.rate(session, app.actor, ref, score=values.score, comment=values.comment)
            return f"Rating {values.score} recorded on {ref}."

        self._open_form(RateForm(save=save, on_refused=self._refused, title=f"Rate {ref}"))


def _search_words(title: str, count: int = 3) -> str:
    """A few long words of the title, as a first KEDB search."""
    words = [w.strip(".,:;!?()[]\"'").lower() for w in strip_control(title, single_line=True).split()]
    longest = sorted({w for w in words if len(w) >= 4 and w.isalnum()}, key=lambda w: (-len(w), w))
    return " ".join(longest[:count])


_CONSOLE_ID: list[str] = []


def _process_console_id(make: Callable[[], str]) -> str:
    """One console id per process when the app does not provide one."""
    if not _CONSOLE_ID:
        _CONSOLE_ID.append(make())
    return _CONSOLE_ID[0]
