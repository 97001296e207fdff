"""Editing a change before its approval, and the forms that withdraw it (who raised it) or cancel it (a change
manager), opened from the change screen (``change.edit``, ``change.withdraw``, ``change.cancel``).

The edit form shows every field it may change, filled in as the change is now; only what is changed is sent,
so an untouched field never overwrites what someone else saved meanwhile. The conflicts the change would have
once saved show while the fields are edited, as in the new-change and schedule forms. A save carries the
version shown: one refused as stale keeps what was typed, reloads the change underneath and takes the newer
version (the fields left untouched show its values), so saving again applies the typed changes over it. Once
a change is assessed its risk is the assessment's: the risk field shows it and takes no other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.widgets import Input, Select

from itsm_tui.screens.change import TIME_FORMAT, ChangeForm, ReasonForm, _saver, parse_when
from itsm_tui.screens.common import local_time
from itsm_tui.services import changes
from itsm_tui.services.changes import ChangeView
from itsm_tui.services.changes.editing import assessed_risk
from itsm_tui.services.changes.slots import SlotQuery
from itsm_tui.services.errors import ServiceError, StaleEdit, ValidationError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from itsm_tui.app import ItsmApp
    from itsm_tui.services.conflicts import Conflict

# The text fields of the form: (field, label, the service's name for it, placeholder)
TEXT_FIELDS = (
    ("title", "Title", "title", "what changes"),
    ("targets", "Targets", "targets", "services or CIs: network, core-sw-01"),
    ("start", "Start", "start", "YYYY-MM-DD HH:MM"),
    ("end", "End", "end", "YYYY-MM-DD HH:MM"),
    ("implementer", "Implementer", "implementer", "login (empty: nobody yet)"),
    ("plan", "Plan", "implementation_plan", "implementation plan"),
    ("backout", "Back-out", "backout_plan", "back-out plan"),
    ("test", "Test", "test_plan", "test plan (optional)"),
    ("description", "Description", "description", "what and why"),
)
# What a standard change takes from its template, and may not change here.
TEMPLATE_FIELDS = ("plan", "backout", "test")


@dataclass(frozen=True)
class EditValues:
    """What the edit changes (None: left as it is), in the service's names."""

    title: str | None = None
    description: str | None = None
    implementation_plan: str | None = None
    backout_plan: str | None = None
    test_plan: str | None = None
    targets: tuple[str, ...] | None = None
    implementer: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    risk: str | None = None

    def given(self) -> dict[str, object]:
        """The fields to send to the service (those changed)."""
        return {name: value for name, value in asdict(self).items() if value is not None}


class EditChangeForm(ChangeForm[EditValues]):
    """Edit a change not yet approved; its conflicts show before saving. The fields ``start`` and ``end`` are
    those of the schedule form."""

    SHOW_CONFLICTS = True
    FIELD_ALIASES = {service: field for field, _, service, _ in TEXT_FIELDS if service != field}

    def __init__(self, view: ChangeView, timezone: str, reload: Callable[[], object] | None = None) -> None:
        self.view, self.ref, self.version = view, view.ref, view.version
        self.change_type, self.state = view.change_type, view.state
        self.start, self.end = view.planned_start, view.planned_end
        self.reload = reload
        self.shown: dict[str, str] = {}  # each text field as it was filled in (what counts as unchanged)
        self.newer_shown: int | None = None  # the version a stale save took in (tests wait for it)
        within = f" within template {view.template}" if self.change_type == "standard" else ""
        note = f"Times in {timezone}. Only what you change is saved{within}."
        if self.change_type == "normal" and self.state == "assessed":
            note += " Saving sends it back to be assessed again: the CAB's decisions so far are cleared."
        super().__init__(self._store, title=f"Edit {view.ref}", note=note)
        self._on_refused = self._refused_here  # the form's hook for a refused save (FormScreen)

    @property
    def standard(self) -> bool:
        return self.change_type == "standard"

    def filled(self, view: ChangeView) -> dict[str, str]:
        """Each text field as ``view`` fills it in."""
        tz = self.app.actor.timezone
        return {
            "title": view.title,
            "targets": ", ".join(view.targets),
            "start": local_time(view.planned_start, tz, TIME_FORMAT) if view.planned_start else "",
            "end": local_time(view.planned_end, tz, TIME_FORMAT) if view.planned_end else "",
            "implementer": view.implementer or "",
            "plan": view.implementation_plan,
            "backout": view.backout_plan,
            "test": view.test_plan,
            "description": view.description,
        }

    def compose_fields(self) -> ComposeResult:
        view = self.view
        filled = self.filled(view)
        for name, label, _, placeholder in TEXT_FIELDS:
            if name == "end":
                yield from self.row(name, label, Input(filled[name], id=name, placeholder=placeholder))
                risks = [(r, r) for r in changes.RISKS]
                risk = Select(risks, value=view.risk, allow_blank=False, id="risk")
                risk.disabled = assessed_risk(view)  # the assessment's: assessing again changes it
                yield from self.row("risk", "Risk", risk, hidden=self.standard)
                continue
            hidden = self.standard and name in TEMPLATE_FIELDS
            yield from self.row(
                name, label, Input(filled[name], id=name, placeholder=placeholder), hidden=hidden
            )

    def on_mount(self) -> None:
        # What the fields hold as filled in, read back: a text the field keeps otherwise counts as unchanged.
        self.shown = {name: self.text_of(name) for name, *_ in TEXT_FIELDS}
        self.field("title").focus()
        super().on_mount()

    def changed(self, name: str) -> bool:
        return self.text_of(name) != self.shown.get(name)

    def collect(self) -> EditValues:
        tz = self.app.actor.timezone
        values: dict[str, object] = {}
        for name, _, service, _ in TEXT_FIELDS:
            if name in ("start", "end") or not self.changed(name):
                continue
            if self.standard and name in TEMPLATE_FIELDS:
                continue
            text = self.value(name)
            values[service] = (text,) if name == "targets" else text
        if self.changed("start") or self.changed("end"):
            values["start"] = parse_when("start", self.value("start"), tz)
            values["end"] = parse_when("end", self.value("end"), tz) if self.value("end") else None
        risk = self.choice("risk")
        if not self.standard and risk and risk != self.view.risk:
            values["risk"] = risk
        return EditValues(**values)  # type: ignore[arg-type]

    def preview_values(self) -> EditValues:
        values = self.collect()
        if values.targets is not None and not values.targets[0]:
            raise ValidationError("targets", "name the affected services or CIs")
        return values

    def slot_query(self) -> SlotQuery:
        """The targets and implementer as typed (unchanged: the change's own), as long as the window typed."""
        values = self.preview_values()
        return SlotQuery(
            targets=values.targets,
            implementer=values.implementer if values.implementer is not None else self.view.implementer,
            duration=values.end - values.start if values.start and values.end else None,
            change_type=self.change_type,
            ref=self.ref,
        )

    def check(self, session: Session, values: EditValues) -> list[Conflict]:
        return changes.preview_edit(session, self.app.config, self.ref, **values.given())  # type: ignore[arg-type]

    def _store(self, values: EditValues) -> str:
        app = self.app
        with app.db.session() as session:
            change = changes.edit_change(
                session,
                app.config,
                app.actor,
                self.ref,
                expected_version=self.version,
                now=app.clock(),
                **values.given(),  # type: ignore[arg-type]
            )
            return change.state

    def error_text(self, exc: ServiceError) -> str:
        if isinstance(exc, StaleEdit):  # who changed it, when (in the viewer's zone), that it was reloaded
            return super(ChangeForm, self).error_text(exc)
        return super().error_text(exc)

    def _refused_here(self, exc: ServiceError) -> None:
        """A stale save: the change is reloaded underneath, and saving again goes on its newer version (the
        fields typed in keep what was typed, the others show the newer values: :meth:`take_newer`)."""
        if isinstance(exc, StaleEdit):
            self.version = exc.current
            if self.reload is not None:
                self.reload()
            self.take_newer()

    @work(thread=True, exclusive=True, group="change-edit-newer", exit_on_error=False)
    def take_newer(self) -> None:
        """The change as it is now, read for :meth:`_newer`."""
        app = self.app
        with app.db.read_session() as session:
            view = changes.view(session, app.config, changes.get_change(session, self.ref), now=app.clock())
        app.call_from_thread(self._newer, view)

    def _newer(self, view: ChangeView) -> None:
        """The form on ``view``'s version: each field not typed in shows its newer value, and what counts as
        unchanged (so is not sent) is ``view``'s."""
        if not self.is_attached or self.saving:
            return
        filled = self.filled(view)
        typed = {name for name, *_ in TEXT_FIELDS if self.changed(name)}
        for name, *_ in TEXT_FIELDS:
            if name not in typed:
                self.field_of(name, Input).value = filled[name]
        risk = self.field_of("risk", Select)
        if self.choice("risk") == self.view.risk:
            risk.value = view.risk
        risk.disabled = assessed_risk(view)
        self.view, self.version, self.state = view, view.version, view.state
        self.start, self.end = view.planned_start, view.planned_end
        # As on_mount: what an untouched field holds, read back; a typed one counts as changed from the newer.
        self.shown = {name: filled[name] if name in typed else self.text_of(name) for name in filled}
        self.newer_shown = view.version


def step_form(
    app: ItsmApp, action: str, view: ChangeView, reload: Callable[[], object] | None = None
) -> EditChangeForm | ReasonForm:
    """The form of editing, withdrawing or cancelling ``view``'s change (``reload`` reads the change screen
    again after a stale save). Withdrawing and cancelling ask the reason (required to cancel); saving that
    form is the confirmation."""
    if action == "edit":
        return EditChangeForm(view, app.actor.timezone, reload=reload)
    ref, version = view.ref, view.version
    if action == "withdraw":
        told = (
            "its approvers and the change managers are told"
            if view.state != "draft"
            else "nobody else is told"
        )
        return ReasonForm(
            f"Withdraw {ref}",
            _saver(app, changes.withdraw, ref, version, "reason"),
            required=False,
            note=f"Withdraw {ref} for good ({told})? A reason is optional.",
        )
    return ReasonForm(
        f"Cancel {ref}",
        _saver(app, changes.cancel, ref, version, "reason"),
        required=True,
        note=f"Cancel {ref} for good? Who raised it, its implementer and approvers read the reason.",
    )
