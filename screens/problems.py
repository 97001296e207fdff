"""Problem management: the problems list (a mode, F7) with its views, filter and the candidate problems
found in incident clusters; one problem's screen (header, analysis, linked records, history) with every
step of its lifecycle as a form.

The screens stay thin: the services (``itsm_tui.services.problems``) read, decide and write, in thread
workers. What a viewer is offered is the problem's ``actions`` (the guards the steps enforce): a step not
open now is struck through on the actions line with why, dimmed in the footer, and its key says why. Every
save carries the version shown; a save over someone else's newer change is refused, the form keeps what
was typed and says so, and the problem reloads underneath (a second save applies over it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
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

from itsm_tui.config import LEVELS
from itsm_tui.keymap import fill_keys, key_in_force
from itsm_tui.screens.common import StatusLine, fit_hints, literal, local_time
from itsm_tui.screens.formscreen import FORM_STYLES, FormArgs, FormScreen, ResultT, ValuesT, stale_summary
from itsm_tui.screens.recordlist import RecordListScreen, RecordPageScreen
from itsm_tui.screens.recordtable import Cell, RecordTable, TableColumn
from itsm_tui.screens.typeahead import not_while_typing, until_shown
from itsm_tui.services import problems
from itsm_tui.services.audit import shown_value
from itsm_tui.services.errors import ServiceError, StaleEdit, ValidationError
from itsm_tui.services.problems import ProblemDetail, ProblemList, ProblemRow
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from itsm_tui.services.problems.candidates import Candidate
    from itsm_tui.services.tickets import BulkResult, LinkedRecord

PROBLEM_STYLES = Path(__file__).resolve().with_name("problems.tcss")
PRIORITY_STYLES = {1: "bold red", 2: "red", 3: "yellow", 4: "", 5: "dim"}
STATUS_STYLES = {
    "new": "bold",
    "investigating": "yellow",
    "known_error": "magenta",
    "fix_in_progress": "cyan",
    "resolved": "green",
    "closed": "dim",
    "cancelled": "dim",
    "duplicate": "dim",
}
LIST_LIMIT = 200
CANDIDATE_TITLE_MIN = 30  # the suggested title is what a candidate is read by
LISTED_REFS = 12  # incident references a confirmation lists before "…"
WIDE = 140  # columns from which the problem screen shows its linked records beside its analysis

# The list's views: key -> title (the problem views of the service, then the candidates).
CANDIDATES = "candidates"
VIEW_TITLES = {**problems.VIEWS, CANDIDATES: "Candidate problems"}

PROBLEM_COLUMNS = [
    TableColumn("ref", "Ref", 10, rank=0),
    TableColumn("priority", "P", 2, rank=1),
    TableColumn("status", "Status", 15, rank=2),
    TableColumn("title", "Title", 0),
    TableColumn("where", "Service / CI", 24, rank=5),
    TableColumn("owner", "Owner", 10, rank=3),
    TableColumn("incidents", "Inc", 4, rank=4, align="right"),
    TableColumn("known_error", "Known err", 10, rank=6),
    TableColumn("opened", "Opened", 10, rank=7),
]


def problem_columns(view: str) -> list[TableColumn]:
    """The list's columns; the known-errors view keeps its known error's column before the others."""
    if view != "known_errors":
        return PROBLEM_COLUMNS
    return [
        TableColumn(c.key, c.title, c.width, 2, c.align) if c.key == "known_error" else c
        for c in PROBLEM_COLUMNS
    ]


CANDIDATE_COLUMNS = [
    TableColumn("count", "Inc", 4, rank=0, align="right"),
    TableColumn("where", "CI / service, category", 22, rank=1),
    TableColumn("last", "Last", 11, rank=2),
    TableColumn("first", "First", 11, rank=4),
    TableColumn("title", "Suggested title", 0),
    TableColumn("key", "Key", 26, rank=5),
]


def _where(service: str | None, ci: str | None, category: str | None = None) -> str:
    parts = [part for part in (service, category) if part]
    text = " / ".join(parts)
    if ci:
        text = f"{ci} ({text})" if text else ci
    return text or "-"


def parse_refs(text: str) -> list[str]:
    """References typed in one field, separated by spaces or commas (``inc12, INC0000013``)."""
    return [word for word in re.split(r"[\s,;]+", text or "") if word]


# --------------------------------------------------------------------------- the list (a mode)


class ProblemsScreen(RecordListScreen):
    """The problems of a view (mine, open by priority, known errors, all) or the candidate problems."""

    SCREEN_TITLE = "Problems"
    AUTO_FOCUS = "#problems-table"
    CSS_PATH = PROBLEM_STYLES
    BINDINGS = [
        Binding("enter,o", "open", "Open", id="problems.open"),
        # Priority, like every key that opens a text field: the keys typed after it go there (typeahead.py).
        Binding("n", "new", "New problem", id="problems.new", priority=True),
        Binding("slash", "filter", "Filter", id="problems.filter", priority=True),
        Binding("v", "next_view", "View", id="problems.next_view"),
        Binding("1", "view('mine')", "My problems", show=False, id="problems.view.mine"),
        Binding("2", "view('open')", "Open by priority", show=False, id="problems.view.open"),
        Binding("3", "view('known_errors')", "Known errors", show=False, id="problems.view.known_errors"),
        Binding("4", "view('all')", "All problems", show=False, id="problems.view.all"),
        Binding("5", "view('candidates')", "Candidate problems", show=False, id="problems.view.candidates"),
        Binding("ctrl+r", "reload", "Reload", id="problems.reload"),
        Binding("escape", "leave_filter", "Back to the list", show=False, id="problems.leave_filter"),
    ]

    TABLE_ID, FILTER_ID, ERROR_ID = "problems-table", "problems-filter", "problems-error"

    def __init__(self) -> None:
        super().__init__("open")
        self.problem_rows: list[ProblemRow] = []
        self.candidate_rows: list[Candidate] = []
        self.shown_view = ""  # the view whose rows the table holds

    def view_keys(self) -> list[str]:
        return list(VIEW_TITLES)

    def filters(self, view: str) -> bool:
        return view != CANDIDATES  # the candidates are not filtered

    def new_refusal(self) -> str | None:
        return problems.create_refusal(self.app.actor)

    def refuse_new(self) -> None:
        self._refused_new()

    def compose(self) -> ComposeResult:
        yield from self.compose_status()
        yield Static("", id="problems-bar")
        yield Input(
            placeholder="/ filter: words, p:1 status:investigating svc:email owner:LOGIN ci:NAME",
            id="problems-filter",
        )
        yield Static("", id="problems-error")
        yield RecordTable[Any](id="problems-table", empty="Loading ...")
        yield from self.compose_footer()

    @work(thread=True, exclusive=True, group="problems-list", exit_on_error=False)
    def load(self, generation: int, view: str, text: str) -> None:
        app = self.app
        with app.db.read_session() as session:
            if view == CANDIDATES:
                from itsm_tui.services.problems.candidates import candidates

                found = candidates(session, app.config, app.clock())
                app.call_from_thread(self._show_candidates, generation, found)
                return
            listed = problems.list_problems(session, app.actor, view=view, text=text, limit=LIST_LIMIT)
        app.call_from_thread(self._show_problems, generation, listed)

    def _show_problems(self, generation: int, listed: ProblemList) -> None:
        if generation != self.generation:
            return
        self.shown_generation = generation
        self._show_error(listed.error)
        if listed.error is not None:  # the filter is refused: the list shown stays, if it is this view's
            if self.shown_view != self.view_key:
                self.shown_view = self.view_key
                self.problem_rows = []
                self.table.show_rows(
                    problem_columns(self.view_key), [], self._problem_cell, empty="The filter is refused."
                )
                self._show_bar(0)
            return
        same_view, self.shown_view = self.shown_view == self.view_key, self.view_key
        self.problem_rows = listed.rows
        empty = "No problem matches the filter." if self.filter_text.strip() else "No problems in this view."
        self.table.show_rows(
            problem_columns(self.view_key),
            listed.rows,
            self._problem_cell,
            keep=(lambda row: row.ref) if same_view else None,  # a view read again keeps its row
            empty=empty,
        )
        self._show_bar(len(listed.rows))

    def _show_candidates(self, generation: int, found: list[Candidate]) -> None:
        if generation != self.generation:
            return
        self.shown_generation = generation
        same_view, self.shown_view = self.shown_view == CANDIDATES, CANDIDATES
        self._show_error(None)
        self.candidate_rows = found
        self.table.show_rows(
            CANDIDATE_COLUMNS,
            found,
            self._candidate_cell,
            keep=(lambda row: row.key) if same_view else None,
            empty="No incident clusters that no problem covers.",
            flex_min=CANDIDATE_TITLE_MIN,
        )
        self._show_bar(len(found))

    def _show_bar(self, count: int) -> None:
        bar = Text()
        bar.append(VIEW_TITLES[self.view_key], style="bold")
        more = "+" if self.view_key != CANDIDATES and count >= LIST_LIMIT else ""
        bar.append(f" ({count}{more})")
        if self.view_key == CANDIDATES:
            bar.append(
                f"  clusters of {self.app.config.problems.min_incidents}+ incidents in "
                f"{self.app.config.problems.window_days} days"
            )
        hints = []
        views = [key_in_force(self, f"problems.view.{key}") for key in VIEW_TITLES]
        digits = [key for key in views if key]
        next_view = key_in_force(self, "problems.next_view")
        if digits or next_view:
            run = f"{digits[0]}-{digits[-1]}" if len(digits) > 2 else ",".join(digits)
            hints.append(f"[{'/'.join(k for k in (run, next_view) if k)}] views")
        for binding_id, what in (("problems.filter", "filter"), ("problems.new", "new")):
            key = key_in_force(self, binding_id)
            if key:
                hints.append(f"[{key}] {what}")
        if hints:
            bar.append("  " + "  ".join(hints))
        self.query_one("#problems-bar", Static).update(fit_hints(bar, (self.size.width or 80) - 2))

    def _problem_cell(self, row: ProblemRow, key: str) -> Cell:
        if key == "ref":
            return row.ref, "bold"
        if key == "priority":
            return f"P{row.priority}", PRIORITY_STYLES.get(row.priority, "")
        if key == "status":
            return row.status_label, STATUS_STYLES.get(row.status, "")
        if key == "title":
            return row.title, ""
        if key == "where":
            return _where(row.service, row.ci), ""
        if key == "owner":
            return row.owner or "-", "" if row.owner else "dim"
        if key == "incidents":
            return str(row.incidents), ""
        if key == "known_error":
            return row.known_error or "", "magenta"
        if key == "opened":
            return local_time(row.opened_at, self.app.actor.timezone, "%Y-%m-%d"), "dim"
        return "", ""

    def _candidate_cell(self, row: Candidate, key: str) -> Cell:
        zone = self.app.actor.timezone
        if key == "count":
            return str(row.count), "bold"
        if key == "where":
            return _where(row.service, row.ci, row.category), ""
        if key == "first":
            return local_time(row.first_opened, zone, "%m-%d %H:%M"), "dim"
        if key == "last":
            return local_time(row.last_opened, zone, "%m-%d %H:%M"), ""
        if key == "title":
            return row.suggested_title, ""
        if key == "key":
            return row.key, "dim"
        return "", ""

    def _refused_new(self) -> bool:
        reason = problems.create_refusal(self.app.actor)
        if reason is not None:
            self.app.notify(reason, title="You cannot raise a problem", severity="warning", markup=False)
        return reason is not None

    def action_open(self) -> None:
        if self.query_one("#problems-filter", Input).has_focus:
            return
        row = self.table.current
        if row is None:
            self.app.notify("Nothing selected.", markup=False)
        elif isinstance(row, ProblemRow):
            self.app.push_screen(ProblemScreen(row.ref))
        else:
            self.raise_from_candidate(row)

    async def action_new(self) -> None:
        not_while_typing(self)
        row = self.table.current
        if self.view_key == CANDIDATES and row is not None and not isinstance(row, ProblemRow):
            self.raise_from_candidate(row)
            return
        if self._refused_new():
            return
        self.app.push_screen(NewProblemForm(save=self._create), self._created)
        await until_shown(self.app)

    def _create(self, values: NewProblemValues) -> str:  # in the form's worker
        app = self.app
        with app.db.session() as session:
            problem = problems.create_problem(
                session,
                app.config,
                app.actor,
                title=values.title,
                description=values.description,
                service=values.service,
                ci=values.ci,
                category=values.category,
                impact=values.impact,
                urgency=values.urgency,
                now=app.clock(),
            )
            return problem.ref

    def _created(self, ref: str | None) -> None:
        if ref is not None:
            self.app.notify(f"{ref} raised.", title="New problem", markup=False)
            self.app.push_screen(ProblemScreen(ref))

    def raise_from_candidate(self, candidate: Candidate) -> None:
        """Raise a problem from an incident cluster with all its incidents linked, once confirmed."""
        if self._refused_new():
            return
        app = self.app
        count = "1 incident" if candidate.count == 1 else f"{candidate.count} incidents"
        shown = candidate.incident_refs[:LISTED_REFS]
        listed = ", ".join(shown) + (", …" if candidate.count > len(shown) else "")
        where = _where(candidate.service, candidate.ci, candidate.category)

        def save(_: bool) -> str:  # in the form's worker
            from itsm_tui.services.problems.candidates import raise_problem

            with app.db.session() as session:
                problem, linked = raise_problem(
                    session, app.config, app.actor, candidate.key, now=app.clock()
                )
                return f"{problem.ref}:{linked}"

        def done(result: str | None) -> None:
            if result is None:
                return
            ref, _, linked = result.partition(":")
            self.app.notify(
                f"{ref} raised with {linked} incidents linked.", title="New problem", markup=False
            )
            self.app.push_screen(ProblemScreen(ref))

        form = StepForm(
            save=save,
            title="Raise a problem",
            question=f"Raise a problem from the {count} of {where} and link them all?",
            detail=f"{candidate.suggested_title}\n{listed}",
        )
        app.push_screen(form, done)


# --------------------------------------------------------------------------- one problem

# action -> (binding id, label on the actions line), in lifecycle order
ACTION_KEYS: dict[str, tuple[str, str]] = {
    "edit": ("problem.edit", "edit"),
    "analyse": ("problem.analyse", "analysis"),
    "assign": ("problem.assign", "owner"),
    "investigate": ("problem.investigate", "investigate"),
    "publish": ("problem.publish", "publish KE"),
    "start_fix": ("problem.start_fix", "start fix"),
    "resolve": ("problem.resolve", "resolve"),
    "close": ("problem.close", "close"),
    "reopen": ("problem.reopen", "reopen"),
    "cancel": ("problem.cancel", "cancel"),
    "duplicate": ("problem.duplicate", "duplicate"),
    "link_incident": ("problem.link_incident", "link incidents"),
    "link_change": ("problem.link_change", "link change"),
    "retire_known_error": ("problem.retire", "retire KE"),
}


# action -> what "You cannot ... PRB0000004" says when its key is pressed while it is not open
ACTION_VERBS = {
    "edit": "edit",
    "analyse": "record the analysis of",
    "assign": "set the owner of",
    "investigate": "investigate",
    "publish": "publish the known error of",
    "start_fix": "start the fix of",
    "resolve": "resolve",
    "close": "close",
    "reopen": "reopen",
    "cancel": "cancel",
    "duplicate": "mark as a duplicate",
    "link_incident": "link incidents to",
    "link_change": "link a change to",
    "retire_known_error": "retire the known error of",
}


@dataclass(frozen=True)
class ResolvedOffer:
    """What resolving left to offer: the open linked incidents and the version of each when offered."""

    ref: str
    versions: dict[str, int]


class ProblemScreen(RecordPageScreen):
    """One problem; Escape goes back to the list."""

    SCREEN_TITLE = "Problem"
    CSS_PATH = PROBLEM_STYLES
    BINDINGS = [
        Binding("e", "act('edit')", "Edit title and classification", show=False, id="problem.edit"),
        Binding("a", "act('analyse')", "Record the analysis", show=False, id="problem.analyse"),
        Binding("o", "act('assign')", "Set the owner", show=False, id="problem.assign"),
        Binding("i", "act('investigate')", "Investigate", show=False, id="problem.investigate"),
        Binding("p", "act('publish')", "Publish known error", show=False, id="problem.publish"),
        Binding("f", "act('start_fix')", "Start the fix", show=False, id="problem.start_fix"),
        Binding("r", "act('resolve')", "Resolve", show=False, id="problem.resolve"),
        Binding("c", "act('close')", "Close (verified)", show=False, id="problem.close"),
        Binding("R", "act('reopen')", "Reopen", show=False, id="problem.reopen"),
        Binding("x", "act('cancel')", "Cancel problem", show=False, id="problem.cancel"),
        Binding("d", "act('duplicate')", "Mark as a duplicate", show=False, id="problem.duplicate"),
        Binding("l", "act('link_incident')", "Link incidents", show=False, id="problem.link_incident"),
        Binding("C", "act('link_change')", "Link change", show=False, id="problem.link_change"),
        Binding("K", "act('retire_known_error')", "Retire known error", show=False, id="problem.retire"),
        Binding("enter", "follow", "Open linked", id="problem.follow"),
        Binding("y", "copy_ref", "Copy ref", show=False, id="problem.copy_ref"),
        Binding("ctrl+r", "reload", "Reload", id="problem.reload"),
        Binding("escape", "back", "Back", id="problem.back"),
    ]

    PREFIX = "problem"

    def __init__(self, ref: str) -> None:
        super().__init__(problems.normal_ref(ref))
        self.detail: ProblemDetail | None = None  # the one shown (tests wait for it)
        self.last_bulk_summary = ""

    @work(thread=True, exclusive=True, group="problem-load", exit_on_error=False)
    def load(self, stale: StaleEdit | None = None) -> None:
        app = self.app
        try:
            with app.db.read_session() as session:
                found = problems.detail(session, app.config, app.actor, self.ref, now=app.clock())
        except ServiceError as exc:
            app.call_from_thread(self.query_one("#problem-fields", Static).update, literal(str(exc)))
            return
        app.call_from_thread(self.show, found, stale)

    def show(self, detail: ProblemDetail, stale: StaleEdit | None = None) -> None:
        self.detail = detail
        self._form_version = detail.version  # a form opened now (or saved again after a refusal) goes on it
        status_line = self.query_one(StatusLine)
        status_line.screen_title = f"Problem {detail.ref}"
        status_line.refresh_line()
        if stale is not None:
            summary = stale_summary(stale, self.app.actor.timezone)
            self.set_notice(literal(f"Not saved: {summary}; shown as it is now.", style="bold"))
        self.render_body(detail)
        self.refresh_bindings()

    def render_body(self, detail: ProblemDetail) -> None:
        """One column at 80; on a wide terminal the linked records, refusals and history go to the right
        of the fields and analysis."""
        fields, links = self.render_fields(detail)
        rest = [self.render_refusals(detail), self.render_history(detail)]
        if (self.size.width or 80) >= WIDE:
            grid = Table.grid(padding=(0, 3), expand=True)
            grid.add_column(ratio=1)
            grid.add_column(ratio=1)
            grid.add_row(Group(*fields), Group(*links, *rest))
            self.query_one("#problem-fields", Static).update(grid)
            self.query_one("#problem-history", Static).update("")
        else:
            self.query_one("#problem-fields", Static).update(Group(*fields, *links))
            self.query_one("#problem-history", Static).update(Group(*rest))
        self.query_one("#problem-actions", Static).update(self.render_actions(detail))

    # ----------------------------------------------------------------- rendering

    def render_fields(self, d: ProblemDetail) -> tuple[list[RenderableType], list[RenderableType]]:
        """The header, fields and analysis; and the linked incidents, changes and known errors."""
        head = Text(d.ref, style="bold")
        head.append("  ")
        head.append(f"P{d.priority}", style="bold reverse" if d.priority <= 2 else "bold")
        head.append("  ")
        head.append(d.status_label, style="bold " + STATUS_STYLES.get(d.status, ""))
        if d.duplicate_of:
            head.append(f" of {d.duplicate_of}")
        head.append(f"  v{d.version}", style="dim")
        parts: list[RenderableType] = []
        if d.history_warning:  # the problem's audit chain is broken: said above everything else
            parts.append(Text(d.history_warning, style="bold red"))
        parts += [head, Text(strip_control(d.title, single_line=True), style="bold")]

        pairs = Table.grid(padding=(0, 1))
        pairs.add_column(style="bold", no_wrap=True, width=10)
        pairs.add_column(min_width=24, max_width=48)
        pairs.add_column(style="bold", no_wrap=True, width=9)
        pairs.add_column(min_width=16, max_width=48)
        owner = d.owner or "-"
        if d.owner_name and d.owner_name != d.owner:
            owner += f" ({d.owner_name})"
        pairs.add_row("Owner", literal(owner), "Opened", self.when(d.opened_at))
        pairs.add_row("Service", literal(d.service or "-"), "CI", literal(d.ci or "-"))
        pairs.add_row("Category", literal(d.category or "-"), "Impact", f"{d.impact} / urgency {d.urgency}")
        ended = d.closed_at or d.resolved_at
        if d.root_cause_at or ended:
            pairs.add_row(
                "Cause at",
                self.when(d.root_cause_at),
                "Closed" if d.closed_at else "Resolved",
                self.when(ended),
            )
        parts.append(pairs)
        if d.description:
            parts.append(Text(strip_control(d.description)))

        analysis = Table.grid(padding=(0, 1))
        analysis.add_column(style="bold", no_wrap=True, width=12)
        analysis.add_column(ratio=1)
        analysis.add_row("Root cause", _text_or_dash(d.root_cause))
        whys = Text()
        for number, why in enumerate(d.whys, 1):
            whys.append(("\n" if number > 1 else "") + f"{number}. ", style="bold")
            whys.append(strip_control(why, single_line=True))
        analysis.add_row("Five whys", whys if d.whys else Text("-", style="dim"))
        analysis.add_row("Categories", Text(", ".join(d.cause_categories) or "-"))
        analysis.add_row("Workaround", _text_or_dash(d.workaround))
        analysis.add_row("Fix", _text_or_dash(d.permanent_fix))
        verification = _text_or_dash(d.verification)
        if d.incidents_since_fix is not None:
            style = "bold red" if d.incidents_since_fix else "green"
            verification.append("   ")
            verification.append(f"incidents since the fix: {d.incidents_since_fix}", style=style)
        analysis.add_row("Verification", verification)
        if d.status_reason:
            analysis.add_row("Reason", Text(strip_control(d.status_reason)))
        parts += [Text("\nAnalysis", style="bold underline"), analysis]

        links: list[RenderableType] = []
        title = f"\nLinked incidents ({d.incidents_total}, {d.incidents_open} open)"
        links.append(Text(title, style="bold underline"))
        if d.incidents:
            incidents = Table.grid(padding=(0, 1))
            incidents.add_column(no_wrap=True)
            incidents.add_column(no_wrap=True)
            incidents.add_column(no_wrap=True, max_width=12)
            incidents.add_column(no_wrap=True)
            incidents.add_column(ratio=1, no_wrap=True)
            for incident in d.incidents:
                incidents.add_row(
                    Text(incident.ref, style="bold" if incident.is_open else "dim"),
                    Text(incident.status, style="" if incident.is_open else "dim"),
                    literal(incident.assignee or "-"),
                    self.when(incident.opened_at, "%m-%d %H:%M"),
                    literal(incident.title),
                )
            links.append(incidents)
            if d.incidents_total > len(d.incidents):
                links.append(Text(f"... and {d.incidents_total - len(d.incidents)} more", style="dim"))
        else:
            links.append(Text("none", style="dim"))
        links.append(Text("\nChanges", style="bold underline"))
        if d.changes:
            changes = Table.grid(padding=(0, 1))
            for change in d.changes:
                changes.add_row(Text(change.ref, style="bold"), change.state, literal(change.title))
            links.append(changes)
        else:
            links.append(Text("none", style="dim"))
        links.append(Text("\nKnown errors", style="bold underline"))
        if d.known_errors:
            known = Table.grid(padding=(0, 1))
            for ke in d.known_errors:
                known.add_row(
                    Text(ke.ref, style="bold magenta" if ke.status == "published" else "dim"),
                    ke.status,
                    self.when(ke.published_at, "%Y-%m-%d"),
                    f"used {ke.uses}",
                    literal(ke.title),
                )
            links.append(known)
        else:
            links.append(Text("none", style="dim"))
        return parts, links

    def render_history(self, d: ProblemDetail) -> RenderableType:
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
            if item.field:
                old, new = shown_value(item.old, zone), shown_value(item.new, zone)
                what = f"{item.field}: {old} -> {new}" if item.old else f"{item.field}: {new}"
            else:
                what = item.action + (f" {item.new}" if item.new else "")
            history.add_row(
                self.when(item.at, "%m-%d %H:%M"),
                literal(item.who),
                Text(strip_control(what, single_line=True), overflow="ellipsis", no_wrap=True),
            )
        return history

    def render_actions(self, d: ProblemDetail) -> Text:
        """The action keys, those not open now struck through (why: under the fields, and the key says)."""
        width = max(20, self.query_one("#problem-actions").content_size.width or 78)
        line = Text()
        column = 0
        for action, (binding_id, label) in ACTION_KEYS.items():
            key = key_in_force(self, binding_id) or "ctrl+p"
            piece = Text()
            if self.refusal(action):
                piece.append(f"{key} {label}", style="dim strike")
            else:
                piece.append(key, style="bold")
                piece.append(f" {label}")
            if column and column + 2 + len(piece) > width:  # wrap between actions, never inside one
                line.append("\n")
                column = 0
            elif column:
                line.append("  ")
                column += 2
            line.append_text(piece)
            column += len(piece)
        return line

    def render_refusals(self, d: ProblemDetail) -> RenderableType:
        """Why each step struck through on the actions line is not open now, the steps of one reason
        together."""
        refused: dict[str, list[str]] = {}
        for action, (_, label) in ACTION_KEYS.items():
            reason = self.refusal(action)
            if reason:
                refused.setdefault(strip_control(reason, single_line=True), []).append(label)
        if not refused:
            return Text("")
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold dim", no_wrap=True, max_width=28)
        grid.add_column(ratio=1, style="dim")
        for reason, labels in refused.items():
            grid.add_row(", ".join(labels), reason)
        return Group(Text("\nNot open now", style="bold underline"), grid)

    def on_resize(self) -> None:
        if self.detail is not None:
            self.render_body(self.detail)

    # ----------------------------------------------------------------- availability

    def refusal(self, action: str) -> str | None:
        if self.detail is None:
            return "the problem is still loading"
        return self.detail.refusal(action)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A step not open now (the problem's guards, as the actions line says) is dimmed in the footer,
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
        """Open a linked incident or change (on its screen) or known error (its page): the only one at
        once, else the one picked from the list."""
        if self.detail is not None:
            self.read_links(self.detail)

    @work(thread=True, exclusive=True, group="problem-links", exit_on_error=False)
    def read_links(self, detail: ProblemDetail) -> None:
        from itsm_tui.services import tickets
        from itsm_tui.services.tickets import LinkedRecord

        app = self.app
        with app.db.read_session() as session:
            page = tickets.record_page(session, detail.ref)
        known = [LinkedRecord(ke.ref, "known_error", 0, ke.title, True) for ke in detail.known_errors]
        app.call_from_thread(self._pick_link, [*page.linked, *known])

    def _pick_link(self, linked: list[LinkedRecord]) -> None:
        from itsm_tui.screens.links import LinkPicker, follow

        if not linked:
            hint = fill_keys(self, "{problem.link_incident} links incidents.")
            self.app.notify(f"{self.ref} has no links to follow. {hint}".strip(), markup=False)
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
            reason = (reason or "").rstrip(".")
            self.app.notify(
                f"You cannot {ACTION_VERBS[action]} {self.ref}: {reason}.",
                title="Not available",
                severity="warning",
                markup=False,
            )
            return
        self._form_version = detail.version
        ref, app = detail.ref, self.app
        if action == "resolve":
            resolve_form = StepForm[ResolvedOffer](
                save=self._resolve,
                on_refused=self._refused,
                title=f"Resolve {ref}",
                question=f"Resolve {ref}: the permanent fix is in?",
                detail=detail.permanent_fix or "",
            )
            app.push_screen(resolve_form, self._resolved)
            return
        app.push_screen(self._form(action, detail), self._done)

    def _form(self, action: str, d: ProblemDetail) -> FormScreen[Any, str]:
        """The form of ``action``, whose save runs the step in a session of its own (see :meth:`_saver`)."""
        ref, on_refused = d.ref, self._refused
        since = d.incidents_since_fix
        if action == "edit":
            return EditProblemForm(
                d, save=self._saver(self._update), on_refused=on_refused, title=f"Edit {ref}"
            )
        if action == "analyse":
            return AnalysisForm(
                d, save=self._saver(self._update), on_refused=on_refused, title=f"Analysis of {ref}"
            )
        if action == "assign":
            return OwnerForm(
                d, save=self._saver(self._assign), on_refused=on_refused, title=f"Owner of {ref}"
            )
        if action == "publish":
            return PublishForm(
                d,
                save=self._saver(self._publish),
                on_refused=on_refused,
                title=f"Publish the known error of {ref}",
                note="The root cause and workaround go to the known-error database; the assignees of the "
                "linked incidents are told of the workaround.",
            )
        if action == "close":
            note = f"Incidents since the fix: {since if since is not None else '-'}"
            if since:
                note += " (the fix may not hold: reopen instead?)"
            return CloseForm(
                save=self._saver(self._close), on_refused=on_refused, title=f"Close {ref}", note=note
            )
        if action in ("reopen", "cancel"):
            step, word = (self._reopen, "Reopen") if action == "reopen" else (self._cancel, "Cancel")
            return ReasonForm(save=self._saver(step), on_refused=on_refused, title=f"{word} {ref}")
        if action == "duplicate":
            return DuplicateForm(
                save=self._saver(self._duplicate), on_refused=on_refused, title=f"{ref} is a duplicate"
            )
        if action == "link_incident":
            return RefsForm(
                save=self._saver(self._link_incidents),
                on_refused=on_refused,
                title=f"Link incidents to {ref}",
            )
        if action == "link_change":
            return ChangeRefForm(
                save=self._saver(self._link_change), on_refused=on_refused, title=f"Link a change to {ref}"
            )
        questions: dict[str, tuple[Callable[[Session, Any], str], str, str]] = {
            "investigate": (self._investigate, f"Start the investigation of {ref}?", ""),
            "start_fix": (self._start_fix, f"Start the permanent fix of {ref}?", d.permanent_fix or ""),
            "retire_known_error": (
                self._retire,
                f"Retire the known error of {ref}? Agents no longer find its workaround.",
                "",
            ),
        }
        ask, question, detail = questions[action]
        title = ACTION_KEYS[action][1].capitalize() + f" {ref}"
        return StepForm(
            save=self._saver(ask), on_refused=on_refused, title=title, question=question, detail=detail
        )

    # Each step: (session, values) -> what is said once it saved; run in the form's worker (the forms' save,
    # refusal and done are RecordPageScreen's).

    def _update(self, session: Session, changes: dict[str, object]) -> str:
        app = self.app
        if not changes:
            return f"{self.ref}: nothing changed."
        problems.update_problem(session, app.config, app.actor, self.ref, changes, **self._common())
        return f"{self.ref} saved."

    def _assign(self, session: Session, login: str) -> str:
        self._update(session, {"owner": login or None})
        return f"{self.ref}: owner {login}." if login else f"{self.ref} has no owner now."

    def _investigate(self, session: Session, _: bool) -> str:
        problems.start_investigation(session, self.app.config, self.app.actor, self.ref, **self._common())
        return f"{self.ref} is being investigated."

    def _start_fix(self, session: Session, _: bool) -> str:
        problems.start_fix(session, self.app.config, self.app.actor, self.ref, **self._common())
        return f"{self.ref}: the permanent fix is in progress."

    def _publish(self, session: Session, values: PublishValues) -> str:
        app = self.app
        known = problems.publish_known_error(
            session,
            app.config,
            app.actor,
            self.ref,
            symptom=values.symptom,
            title=values.title,
            **self._common(),
        )
        return f"{known.ref} published: agents find its workaround now."

    def _retire(self, session: Session, _: bool) -> str:
        detail = self.detail
        published = [ke.ref for ke in detail.known_errors if ke.status == "published"] if detail else []
        if not published:
            raise ServiceError(f"{self.ref} has no known error in force to retire")
        known = problems.retire_known_error(
            session, self.app.config, self.app.actor, published[-1], now=self.app.clock()
        )
        return f"{known.ref} retired."

    def _close(self, session: Session, verification: str) -> str:
        app = self.app
        problems.close(session, app.config, app.actor, self.ref, verification=verification, **self._common())
        return f"{self.ref} closed."

    def _reopen(self, session: Session, reason: str) -> str:
        problems.reopen(session, self.app.config, self.app.actor, self.ref, reason=reason, **self._common())
        return f"{self.ref} reopened."

    def _cancel(self, session: Session, reason: str) -> str:
        problems.cancel(session, self.app.config, self.app.actor, self.ref, reason=reason, **self._common())
        return f"{self.ref} cancelled."

    def _duplicate(self, session: Session, values: DuplicateValues) -> str:
        app = self.app
        problems.mark_duplicate(
            session, app.config, app.actor, self.ref, of=values.of, reason=values.reason, **self._common()
        )
        return f"{self.ref} is a duplicate of {problems.normal_ref(values.of)}."

    def _link_incidents(self, session: Session, refs: list[str]) -> str:
        app = self.app
        linked = problems.link_incidents(session, app.config, app.actor, self.ref, refs, now=app.clock())
        if not linked:
            return f"Nothing new: {', '.join(refs)} linked to {self.ref} already."
        return f"{len(linked)} linked to {self.ref}: {', '.join(linked)}."

    def _link_change(self, session: Session, change_ref: str) -> str:
        app = self.app
        problems.link_change(session, app.config, app.actor, self.ref, change_ref, now=app.clock())
        return f"{change_ref.strip().upper()} linked to {self.ref}."

    # ----------------------------------------------------------------- resolving, then the incidents

    def _resolve(self, _: bool) -> ResolvedOffer:  # in the form's worker
        from itsm_tui.services import tickets

        app = self.app
        with app.db.session() as session:
            problems.resolve(session, app.config, app.actor, self.ref, **self._common())
            refs = problems.open_linked_incidents(session, self.ref)
            versions = {ref: tickets.get_ticket(session, ref).version for ref in refs}
        return ResolvedOffer(self.ref, versions)

    def _resolved(self, offer: ResolvedOffer | None) -> None:
        if offer is None:
            return
        self.set_notice(None)
        self.app.notify(f"{self.ref} resolved.", markup=False)
        self.load()
        refs = list(offer.versions)
        if not refs:
            return
        count = "1 open linked incident" if len(refs) == 1 else f"{len(refs)} open linked incidents"
        listed = ", ".join(refs[:LISTED_REFS]) + (", …" if len(refs) > LISTED_REFS else "")

        def answered(answer: str | None) -> None:
            if answer is not None:
                self.app.notify(f"Resolving {count} ...", markup=False)
                self.resolve_incidents(offer)

        form = StepForm(
            save=lambda _: "yes",
            title=f"Resolved {self.ref}",
            question=f"Resolve the {count} too, with the permanent fix as their resolution?",
            detail=listed,
        )
        self.app.push_screen(form, answered)

    @work(thread=True, group="problem-bulk", exit_on_error=False)
    def resolve_incidents(self, offer: ResolvedOffer) -> None:
        """Each open linked incident resolved in a transaction of its own; one line says how it went."""
        from itsm_tui.services.tickets import BulkStopped

        app = self.app
        try:
            result = problems.resolve_linked_incidents(
                app.db.session,
                app.config,
                app.actor,
                offer.ref,
                versions_seen=offer.versions,
                now=app.clock(),
            )
        except BulkStopped as stopped:  # the database failed: what was done stays done, and is said
            app.call_from_thread(self._bulk_done, stopped.result, stopped.ref)
            raise (stopped.__cause__ or stopped) from None  # to the console's handler (logged, status line)
        app.call_from_thread(self._bulk_done, result, None)

    def _bulk_done(self, result: BulkResult, stopped_at: str | None) -> None:
        line = f"Linked incidents: {result.summary}"
        if stopped_at is not None:
            line += f"; stopped at {stopped_at}"
        self.last_bulk_summary = line
        failed = bool(result.refused) or stopped_at is not None
        self.set_notice(literal(line, style="bold" if failed else ""))
        self.app.notify(line, severity="warning" if failed else "information", markup=False, timeout=10)
        self.load()


def _text_or_dash(text: str | None) -> Text:
    clean = strip_control(text or "").strip()
    return Text(clean) if clean else Text("-", style="dim")


# --------------------------------------------------------------------------- forms


@dataclass(frozen=True)
class NewProblemValues:
    title: str
    description: str
    service: str | None
    ci: str | None
    category: str | None
    impact: str
    urgency: str


@dataclass(frozen=True)
class PublishValues:
    title: str | None
    symptom: str | None


@dataclass(frozen=True)
class DuplicateValues:
    of: str
    reason: str


def _input(value: str | None = "", placeholder: str = "") -> Input:
    return Input(value=value or "", placeholder=placeholder, compact=True)


def _area(text: str | None = "") -> TextArea:
    return TextArea(text or "", compact=True, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")


def _select(
    options: Sequence[tuple[str, str]], value: str | None, prompt: str, blank: bool = True
) -> Select[str]:
    legal = {v for _, v in options}
    chosen = value if value in legal else Select.NULL
    return Select(options, compact=True, prompt=prompt, allow_blank=blank, value=chosen)


class ProblemForm(FormScreen[ValuesT, ResultT]):
    """A form of the problem screen: its rows packed close; Enter in a one-line field goes to the next."""

    CSS_PATH = [FORM_STYLES, PROBLEM_STYLES]
    SUBMIT_ON_ENTER = False
    HINT = (
        "{form.save} save · tab next field · {form.editor} editor · {form.cancel} cancel · {form.help} keys"
    )


class StepForm(ProblemForm[bool, ResultT]):
    """A yes-or-no question before a step that takes no input (or before acting on many): Enter or ``y``
    is yes, Esc is no; a refused step keeps the question open and says why."""

    TITLE = "Confirm"
    HINT = "enter or y: yes · esc: no"
    BINDINGS = [Binding("enter,y", "save", "Yes", id="form.confirm")]

    def __init__(
        self, *, question: str, detail: str = "", **options: Unpack[FormArgs[bool, ResultT]]
    ) -> None:
        super().__init__(**options)
        self.question, self.detail = question, detail

    def compose_fields(self) -> ComposeResult:
        yield Static(Text(strip_control(self.question), style="bold"), id="confirm-question")
        if self.detail:
            yield Static(Text(strip_control(self.detail)), id="confirm-detail")

    def collect(self) -> bool:
        return True


class NewProblemForm(ProblemForm[NewProblemValues]):
    TITLE = "New problem"

    def compose_fields(self) -> ComposeResult:
        config = self.app.config
        levels = [(level, level) for level in LEVELS]
        services = [(f"{s.code} - {s.name}", s.code) for s in config.services.values()]
        categories = [(c, c) for c in config.categories.get("incident", ())]
        yield from self.row("title", "Title", _input(placeholder="what keeps going wrong"))
        yield from self.row("service", "Service", _select(services, None, "(service)"))
        yield from self.row("ci", "CI", _input(placeholder="configuration item (optional)"))
        yield from self.row("category", "Category", _select(categories, None, "(category)"))
        yield from self.row("impact", "Impact", _select(levels, "medium", "", blank=False))
        yield from self.row("urgency", "Urgency", _select(levels, "medium", "", blank=False))
        yield from self.row("description", "Description", _area())

    def collect(self) -> NewProblemValues:
        return NewProblemValues(
            title=self.text_of("title").strip(),
            description=self.text_of("description"),
            service=self.choice("service"),
            ci=self.text_of("ci").strip() or None,
            category=self.choice("category"),
            impact=self.choice("impact") or "medium",
            urgency=self.choice("urgency") or "medium",
        )


class EditProblemForm(ProblemForm[dict[str, object]]):
    """Title, description and classification; it saves the fields that differ from what was shown."""

    TITLE = "Edit problem"

    def __init__(self, shown: ProblemDetail, **options: Unpack[FormArgs[dict[str, object]]]) -> None:
        super().__init__(**options)
        self.shown = shown

    def compose_fields(self) -> ComposeResult:
        config, d = self.app.config, self.shown
        levels = [(level, level) for level in LEVELS]
        services = [(f"{s.code} - {s.name}", s.code) for s in config.services.values()]
        if d.service and d.service not in config.services:
            services.append((d.service, d.service))
        categories = [(c, c) for c in config.categories.get("incident", ())]
        if d.category and (d.category, d.category) not in categories:
            categories.append((d.category, d.category))
        yield from self.row("title", "Title", _input(d.title))
        yield from self.row("service", "Service", _select(services, d.service, "(service)"))
        yield from self.row("ci", "CI", _input(d.ci, "configuration item"))
        yield from self.row("category", "Category", _select(categories, d.category, "(category)"))
        yield from self.row("impact", "Impact", _select(levels, d.impact, "", blank=False))
        yield from self.row("urgency", "Urgency", _select(levels, d.urgency, "", blank=False))
        yield from self.row("description", "Description", _area(d.description))

    def collect(self) -> dict[str, object]:
        d = self.shown
        typed: dict[str, object] = {
            "title": self.text_of("title").strip(),
            "service": self.choice("service"),
            "ci": self.text_of("ci").strip() or None,
            "category": self.choice("category"),
            "impact": self.choice("impact") or d.impact,
            "urgency": self.choice("urgency") or d.urgency,
            "description": self.text_of("description"),
        }
        shown: dict[str, object] = {
            "title": d.title,
            "service": d.service or None,
            "ci": d.ci or None,
            "category": d.category or None,
            "impact": d.impact,
            "urgency": d.urgency,
            "description": d.description,
        }
        return {key: value for key, value in typed.items() if value != shown[key]}


class AnalysisForm(ProblemForm[dict[str, object]]):
    """The root cause, the five whys (one a line), the cause categories, the workaround and the fix;
    ctrl+e edits the text area in focus in $EDITOR. It saves what differs from what was shown."""

    TITLE = "Analysis"

    def __init__(self, shown: ProblemDetail, **options: Unpack[FormArgs[dict[str, object]]]) -> None:
        super().__init__(**options)
        self.shown = shown

    def compose_fields(self) -> ComposeResult:
        d = self.shown
        yield from self.row("root_cause", "Root cause", _area(d.root_cause))
        yield from self.row("five_whys", "Five whys", _area("\n".join(d.whys)))
        yield from self.row(
            "cause_categories",
            "Categories",
            _input(", ".join(d.cause_categories), ", ".join(problems.CAUSE_CATEGORIES)),
        )
        yield from self.row("workaround", "Workaround", _area(d.workaround))
        yield from self.row("permanent_fix", "Fix", _area(d.permanent_fix))

    def collect(self) -> dict[str, object]:
        d = self.shown
        whys = [line.strip() for line in self.text_of("five_whys").splitlines() if line.strip()]
        categories = [word.lower() for word in parse_refs(self.text_of("cause_categories"))]
        changes: dict[str, object] = {}
        for name, was in (
            ("root_cause", d.root_cause),
            ("workaround", d.workaround),
            ("permanent_fix", d.permanent_fix),
        ):
            text = self.text_of(name).strip()
            if text != (was or "").strip():
                changes[name] = text
        if tuple(whys) != d.whys:
            changes["five_whys"] = whys
        if tuple(categories) != d.cause_categories:
            changes["cause_categories"] = categories
        return changes


class OwnerForm(ProblemForm[str]):
    TITLE = "Owner"
    SUBMIT_ON_ENTER = True

    def __init__(self, shown: ProblemDetail, **options: Unpack[FormArgs[str]]) -> None:
        super().__init__(**options)
        self.shown = shown

    def compose_fields(self) -> ComposeResult:
        yield from self.row("owner", "Owner", _input(self.shown.owner, "login (empty: nobody)"))

    def collect(self) -> str:
        return self.text_of("owner").strip()


class PublishForm(ProblemForm[PublishValues]):
    """The known error's title and symptom (what agents match an incident against), prefilled."""

    TITLE = "Publish known error"

    def __init__(self, shown: ProblemDetail, **options: Unpack[FormArgs[PublishValues]]) -> None:
        super().__init__(**options)
        self.shown = shown

    def compose_fields(self) -> ComposeResult:
        d = self.shown
        yield from self.row("title", "Title", _input(d.title))
        yield from self.row("symptom", "Symptom", _area(d.description or d.title))

    def collect(self) -> PublishValues:
        return PublishValues(self.text_of("title").strip() or None, self.text_of("symptom").strip() or None)


class CloseForm(ProblemForm[str]):
    """The verification note that closes a resolved problem, with the incidents opened since the fix."""

    TITLE = "Close"

    def compose_fields(self) -> ComposeResult:
        yield from self.row("verification", "Verification", _area())

    def collect(self) -> str:
        text = self.text_of("verification").strip()
        if not text:
            raise ValidationError("verification", "say how the fix was verified (it is recorded)")
        return text


class ReasonForm(ProblemForm[str]):
    SUBMIT_ON_ENTER = True

    def compose_fields(self) -> ComposeResult:
        yield from self.row("reason", "Reason", _input(placeholder="why (recorded in the history)"))

    def collect(self) -> str:
        text = self.text_of("reason").strip()
        if not text:
            raise ValidationError("reason", "say why (it is recorded in the history)")
        return text


class DuplicateForm(ProblemForm[DuplicateValues]):
    FIELD_ALIASES = {"duplicate_of": "of"}
    NOT_FOUND_FIELD = "of"

    def compose_fields(self) -> ComposeResult:
        yield from self.row("of", "Duplicate of", _input(placeholder="PRB0000004"))
        yield from self.row("reason", "Reason", _input(placeholder="why (recorded in the history)"))

    def collect(self) -> DuplicateValues:
        of, reason = self.text_of("of").strip(), self.text_of("reason").strip()
        if not of:
            raise ValidationError("of", "name the problem this one duplicates, e.g. PRB0000004")
        if not reason:
            raise ValidationError("reason", "say why (it is recorded in the history)")
        return DuplicateValues(of, reason)


class RefsForm(ProblemForm[list[str]]):
    """Incident references, separated by spaces or commas."""

    SUBMIT_ON_ENTER = True
    FIELD_ALIASES = {"incident_refs": "refs", "incidents": "refs", "ref": "refs"}
    NOT_FOUND_FIELD = "refs"

    def compose_fields(self) -> ComposeResult:
        yield from self.row("refs", "Incidents", _input(placeholder="INC0000012 INC0000031, inc77"))

    def collect(self) -> list[str]:
        refs = parse_refs(self.text_of("refs"))
        if not refs:
            raise ValidationError("refs", "type incident references, separated by spaces or commas")
        return refs


class ChangeRefForm(ProblemForm[str]):
    SUBMIT_ON_ENTER = True
    FIELD_ALIASES = {"change_ref": "change", "change": "change", "ref": "change"}
    NOT_FOUND_FIELD = "change"

    def compose_fields(self) -> ComposeResult:
        yield from self.row("change", "Change", _input(placeholder="CHG0000012"))

    def collect(self) -> str:
        ref = self.text_of("change").strip()
        if not ref:
            raise ValidationError("change", "type the change's reference, e.g. CHG0000012")
        return ref
