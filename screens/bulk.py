"""The queue's actions over its marked tickets: the action's own form once (the ticket screen's forms), a
confirmation naming the count, then the action applied to each ticket in a transaction of its own (by
:func:`itsm_tui.services.tickets.apply_each`, through the single action's service function, its guards, the
version each ticket had when the action began, and its audit), and one line saying what was done and what
was refused, in the services' words.

Nothing here reads or writes the database: the queue reads the marked tickets (:func:`start` is given
them) and runs the returned action in its worker.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar, Unpack

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from itsm_tui.screens.forms import (
    AssignForm,
    AssignValues,
    EscalateForm,
    EscalateValues,
    LinkForm,
    LinkValues,
    TextForm,
    TextValues,
    TransitionForm,
    TransitionValues,
)
from itsm_tui.screens.formscreen import FormArgs, FormScreen
from itsm_tui.services import tickets
from itsm_tui.services.tickets.bulk import BulkAction, MarkedTicket, common_targets
from itsm_tui.text import strip_control

if TYPE_CHECKING:
    from itsm_tui.app import ItsmApp

V = TypeVar("V")
Runner = Callable[[list[str], BulkAction, str], None]  # refs, the action, what is being done ("Assigning")

# queue action -> (its guard's action in tickets.ACTIONS, the words of "you cannot ... any of them")
RULES: dict[str, tuple[str, str]] = {
    "take": ("take", "take"),
    "assign": ("assign", "assign"),
    "escalate": ("escalate", "escalate"),
    "status": ("transition", "change the status of"),
    "reply": ("reply", "reply on"),
    "note": ("note", "write a work note on"),
    "link": ("link", "link"),
}
LISTED_REFS = 24  # the confirmation names this many of the tickets (four lines at 80 columns)


def count_text(count: int) -> str:
    return "1 ticket" if count == 1 else f"{count:,} tickets"


class ConfirmForm(FormScreen[bool]):
    """A yes-or-no question before an action over many tickets: Enter or ``y`` is yes, Esc is no."""

    TITLE = "Confirm"
    HINT = "enter or y: yes · esc: no"
    BINDINGS = [Binding("enter,y", "save", "Yes", id="form.confirm")]

    def __init__(self, *, question: str, detail: str = "", **options: Unpack[FormArgs[bool]]) -> None:
        super().__init__(**options)
        self.question, self.detail = question, detail

    def compose_fields(self) -> ComposeResult:
        yield Static(Text(strip_control(self.question), style="bold"), id="confirm-question")
        if self.detail:
            yield Static(Text(strip_control(self.detail)), id="confirm-detail")

    def collect(self) -> bool:
        return True


def start(app: ItsmApp, action: str, marked: Sequence[MarkedTicket], run: Runner) -> None:
    """Begin ``action`` over the ``marked`` tickets (in the queue's order): say so at once if the guards
    refuse it on every one of them; else open its form (none for a take), then the confirmation, then
    ``run`` the action over all of them (those the guards refuse are refused again, each in its words)."""
    rule, words = RULES[action]
    if not marked:
        app.notify("The marked tickets are gone.", markup=False)
        return
    reasons = {m.ref: tickets.available_actions(app.actor, m.facts)[rule] for m in marked}
    allowed = [m for m in marked if reasons[m.ref] is None]
    count = count_text(len(marked))
    if not allowed:
        reason = strip_control(next(r for r in reasons.values() if r), single_line=True)
        app.notify(
            f"You cannot {words} any of the {count} marked: {reason}.",
            title="Not available",
            severity="warning",
            markup=False,
        )
        return
    refs = [m.ref for m in marked]
    versions = {m.ref: m.version for m in marked}
    listed = ", ".join(refs[:LISTED_REFS]) + (", …" if len(refs) > LISTED_REFS else "")
    refused = len(marked) - len(allowed)
    if refused:
        first = next(r for r in reasons.values() if r)
        listed += f"\n{refused} of them will be refused ({strip_control(first, single_line=True)})."
    config, actor = app.config, app.actor

    def confirm(question: str, apply: BulkAction, doing: str) -> None:
        def answered(answer: str | None) -> None:
            if answer is not None:
                run(refs, apply, doing)

        form = ConfirmForm(save=lambda _: "yes", title=f"{count} marked", question=question, detail=listed)
        app.push_screen(form, answered)

    def form_then(form_of: Callable[[Callable[[V], str]], FormScreen[V]], then: Callable[[V], None]) -> None:
        """The action's form, its values collected (nothing is written before the confirmation)."""
        chosen: list[V] = []

        def collect(values: V) -> str:
            chosen.append(values)
            return ""

        def closed(result: str | None) -> None:
            if result is not None:
                then(chosen[-1])

        app.push_screen(form_of(collect), closed)

    if action == "take":
        confirm(f"Take {count}?", lambda session, ref: tickets.take(session, config, actor, ref), "Taking")
    elif action == "assign":

        def assign(v: AssignValues) -> None:
            where = f" in {v.group}" if v.group else ""
            confirm(
                f"Assign {count} to {v.login}{where}?",
                lambda session, ref: tickets.assign(
                    session,
                    config,
                    actor,
                    ref,
                    assignee=v.login,
                    group=v.group,
                    expected_version=versions[ref],
                ),
                "Assigning",
            )

        groups = {m.group for m in marked}
        shared = next(iter(groups)) if len(groups) == 1 else None  # its members are listed

        def assign_form(save: Callable[[AssignValues], str]) -> AssignForm:
            return AssignForm(
                save=save, title=f"Assign {count}", groups=list(config.groups), ticket_group=shared
            )

        form_then(assign_form, assign)
    elif action == "escalate":

        def escalate(v: EscalateValues) -> None:
            confirm(
                f"Escalate {count} to " + (v.group or "the support group of each one's service") + "?",
                lambda session, ref: tickets.escalate(
                    session,
                    config,
                    actor,
                    ref,
                    group=v.group,
                    reason=v.reason,
                    expected_version=versions[ref],
                ),
                "Escalating",
            )

        form_then(
            lambda save: EscalateForm(save=save, title=f"Escalate {count}", groups=list(config.groups)),
            escalate,
        )
    elif action == "status":
        statuses = Counter(m.facts.status for m in marked)
        now = ", ".join(f"{status} ({n})" for status, n in statuses.most_common())

        def move(v: TransitionValues) -> None:
            confirm(
                f"Move {count} to {v.to_status}?",
                lambda session, ref: tickets.transition(
                    session,
                    config,
                    actor,
                    ref,
                    v.to_status,
                    reason=v.reason,
                    code=v.code,
                    note=v.note,
                    expected_version=versions[ref],
                ),
                "Moving",
            )

        form_then(
            lambda save: TransitionForm(
                save=save,
                title=f"Status of {count}",
                current=now,
                targets=common_targets(allowed),
                resolution_codes=config.resolution_codes,
            ),
            move,
        )
    elif action in ("reply", "note"):
        public = action == "reply"

        def write(v: TextValues) -> None:
            confirm(
                f"Send this reply on {count}?" if public else f"Add this work note to {count}?",
                lambda session, ref: tickets.add_entry(
                    session, config, actor, ref, body=v.text, public=public, expected_version=versions[ref]
                ),
                "Replying" if public else "Writing notes",
            )

        title = f"Reply on {count} (each requester sees it)" if public else f"Work note on {count}"
        form_then(lambda save: TextForm(save=save, public=public, title=title), write)
    elif action == "link":

        def link(v: LinkValues) -> None:
            confirm(
                f"Link {count} to {v.target}?",
                lambda session, ref: tickets.link(session, actor, ref, v.target),
                "Linking",
            )

        form_then(lambda save: LinkForm(save=save, title=f"Link {count} to"), link)
    else:
        raise ValueError(f"no bulk action {action!r}")
