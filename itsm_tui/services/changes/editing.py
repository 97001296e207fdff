"""Editing a change before it is approved, withdrawing it (who raised it), cancelling it (a change manager).

An edit changes only what it is given, each field audited, with the checks of :func:`.creating.create_change`
(a standard change only within its template); past the draft, a new window, new targets or another
implementer are checked as submit checks them (a blackout blocks, conflicts are told). The CAB decides on a
normal change as it was assessed: any edit of an assessed change sends it back to the change managers to be
assessed again (its decisions and pending approvals cleared), and its risk is the assessment's, never the
edit's. An emergency change being decided has its approvers asked again when its window, targets or
implementer change. Withdrawn and cancelled are end states: the change frees its slot on the calendar, and
approvals still pending are moot (the guards refuse every decision on a change in those states).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Change, ChangeTarget, User
from itsm_tui.services import audit, notifications
from itsm_tui.services.changes.approvers import approver_notice, emergency_pool
from itsm_tui.services.changes.creating import preview
from itsm_tui.services.changes.helpers import (
    _finish,
    _implementer,
    _move,
    _new_window,
    _now,
    _set,
    _validate_title,
    a_kind,
    parse_targets,
)
from itsm_tui.services.changes.lifecycle import _check_blocking, _not_in_past
from itsm_tui.services.changes.notices import (
    notify_conflicts,
    notify_emergency_approval,
    notify_unapprovable,
)
from itsm_tui.services.changes.permissions import begin
from itsm_tui.services.changes.reading import _login_of, _logins, _planned_window, _target_text, get_change
from itsm_tui.services.changes.rules import RISKS
from itsm_tui.services.conflicts import Conflict
from itsm_tui.services.errors import ValidationError
from itsm_tui.services.users import Actor

PLANS = ("implementation_plan", "backout_plan", "test_plan")
UNSET = object()  # an implementer not given (None would clear it)


@dataclass(frozen=True)
class _Edit:
    """The checked values of an edit: None for what stays as it is."""

    title: str | None
    description: str | None
    plans: dict[str, str]  # only the plans given
    risk: str | None
    targets: list[tuple[str, str | None]] | None
    implementer: User | object | None  # UNSET: not given; None: cleared
    window: tuple[datetime, datetime] | None


class _Assessable(Protocol):
    @property
    def state(self) -> str: ...
    @property
    def risk_score(self) -> int | None: ...


def assessed_risk(change: _Assessable) -> bool:
    """Whether the risk of ``change`` (a change or its view) is its assessment's: assessed, or scored by the
    questionnaire and sent back to be assessed again. An edit never changes it; before the assessment the
    risk is what who raised the change proposes."""
    return change.state == "assessed" or change.risk_score is not None


def _checked(
    session: Session,
    config: DeskConfig,
    change: Change,
    *,
    title: str | None,
    description: str | None,
    implementation_plan: str | None,
    backout_plan: str | None,
    test_plan: str | None,
    targets: Iterable[str] | None,
    implementer: str | None,
    start: datetime | None,
    end: datetime | None,
    risk: str | None,
) -> _Edit:
    """The edit's inputs, checked as creating a change checks them (nothing is set yet)."""
    standard = change.change_type == "standard"
    template = config.changes.templates.get(change.template or "") if standard else None
    given = {
        name: value.strip()
        for name, value in zip(PLANS, (implementation_plan, backout_plan, test_plan), strict=True)
        if value is not None
    }
    if template is not None:
        for name, value in given.items():
            if value != getattr(template, name):
                raise ValidationError(
                    name, f"a standard change follows the plans of template {template.code}"
                )
        given = {}
    elif change.state != "draft":
        for name in ("implementation_plan", "backout_plan"):
            if name in given and not given[name]:
                raise ValidationError(
                    name,
                    f"{a_kind(change.change_type)} change past its draft keeps an implementation plan and a "
                    f"back-out plan",
                )
    wanted_risk = None
    if risk is not None:
        wanted_risk = risk.strip().lower()
        if wanted_risk not in RISKS:
            raise ValidationError("risk", f"the risk must be one of {', '.join(RISKS)}, not {wanted_risk!r}")
        if template is not None and wanted_risk != template.risk:
            raise ValidationError("risk", f"template {template.code} is pre-approved at risk {template.risk}")
        if wanted_risk != change.risk and assessed_risk(change):
            raise ValidationError(
                "risk",
                f"{change.ref} was assessed: its risk is the assessment's; assess it again to change it",
            )
    parsed = None
    if targets is not None:
        parsed = parse_targets(config, list(targets))
        if template is not None:
            outside = sorted({s for s, _ in parsed} - set(template.services))
            if outside:
                raise ValidationError(
                    "targets",
                    f"template {template.code} is pre-approved only for {', '.join(template.services)}, "
                    f"not {', '.join(outside)}; raise a normal change instead",
                )
    who: User | object | None = UNSET
    if implementer is not None:
        who = _implementer(session, implementer)  # "" clears it
    window = None
    if start is not None or end is not None:
        window = _new_window(config, change, start, end)
    return _Edit(
        title=_validate_title(title) if title is not None else None,
        description=description.strip() if description is not None else None,
        plans=given,
        risk=wanted_risk,
        targets=parsed,
        implementer=who,
        window=window,
    )


def edit_change(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    title: str | None = None,
    description: str | None = None,
    implementation_plan: str | None = None,
    backout_plan: str | None = None,
    test_plan: str | None = None,
    targets: Iterable[str] | None = None,
    implementer: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    risk: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Edit a change not yet approved: only what is given changes (``implementer=""`` clears it; ``start``
    alone keeps the length), each field audited.

    Past the draft, a new window, targets or implementer are checked as submit checks them (a blackout
    blocks: :class:`ChangeBlocked`; conflicts are told). An assessed normal change, edited in any way, goes
    back to be assessed again (:func:`_reassess`); an emergency change being decided has its approvers asked
    again. Once assessed, the risk is the assessment's: ``risk`` is refused (:class:`ValidationError`)."""
    now = _now(now)
    change = begin(session, config, actor, ref, "edit", expected_version, now)
    edit = _checked(
        session,
        config,
        change,
        title=title,
        description=description,
        implementation_plan=implementation_plan,
        backout_plan=backout_plan,
        test_plan=test_plan,
        targets=targets,
        implementer=implementer,
        start=start,
        end=end,
        risk=risk,
    )
    # One write at the end (a flush midway would count as a version of its own).
    with session.no_autoflush:
        changed: list[str] = []  # what the approvers decided on and is no longer so
        edited: list[str] = []  # every field that changed (an assessed change is assessed again)
        for name, value in (("title", edit.title), ("description", edit.description), ("risk", edit.risk)):
            if value is not None and _set(session, change, name, value, actor, now, action="edit"):
                edited.append(name)
        for name, value in edit.plans.items():
            if _set(session, change, name, value, actor, now, action="edit"):
                edited.append(name.replace("_", " "))
        if edit.window is not None:
            moved = _set(session, change, "planned_start", edit.window[0], actor, now, action="edit")
            moved = _set(session, change, "planned_end", edit.window[1], actor, now, action="edit") or moved
            if moved:
                changed.append("window")
        if edit.targets is not None and _set_targets(session, change, edit.targets, actor, now):
            changed.append("targets")
        if edit.implementer is not UNSET:
            user = edit.implementer if isinstance(edit.implementer, User) else None
            if _set(session, change, "implementer_id", user.id if user else None, actor, now, action="edit"):
                changed.append("implementer")
        if not session.is_modified(change) and not changed:
            return change  # nothing to change: nothing is written
        found: list[Conflict] = []
        if change.state != "draft" and changed:
            if "window" in changed:
                _not_in_past(change, now)
            found = _check_blocking(session, config, change, "changed so")
        if change.change_type == "normal" and change.state == "assessed":
            _reassess(session, change, actor, [*edited, *changed] or ["edited"], now)
        elif change.state != "draft" and changed:
            _ask_again(session, config, change, actor, changed, now)
        notify_conflicts(session, found, now)
    return _finish(session, change, expected_version, now)


def _reassess(session: Session, change: Change, actor: Actor, edited: list[str], now: datetime) -> None:
    """An assessed normal change edited: the CAB decides on the change as it was assessed, so it goes back
    to the change managers (submitted) to be assessed again. The decisions given so far and the approvals
    still pending are cleared (audited, as a move's reset is: :func:`.approvals.send_back`); whom the
    assessment asked are told their approval is no longer asked, the change managers to assess it again. Its
    risk, score and answers stay until that assessment (whose suggestions read the change as edited)."""
    what = ", ".join(edited)
    asked = [a.approver_id for a in change.approvals]
    decided = [a for a in change.approvals if a.decision != "pending"]
    names = _logins(session, asked)
    given = ", ".join(sorted(f"{_login_of(names, a.approver_id)} ({a.decision})" for a in decided))
    pending = sorted(
        str(_login_of(names, a.approver_id)) for a in change.approvals if a.decision == "pending"
    )
    change.approvals.clear()
    audit.record_for(
        session,
        "change",
        change,
        actor.id,
        now,
        "edit",
        "approvals",
        f"reset (edited after assessment: {what}; given: {given or 'none'}; pending: "
        f"{', '.join(pending) or 'none'}); to be assessed again",
    )
    _move(session, change, "submitted", actor, now, action="edit")
    notifications.notify(
        session,
        asked,
        kind="change_approval",
        event_key=f"change_approval:{change.id}:edit:{change.version}",
        entity=("change", change.id),
        message=f"{change.ref} was edited after its assessment ({what}): your approval is no longer asked; "
        f"it is assessed again first: {change.title}",
        now=now,
        exclude=actor.id,
    )
    notifications.notify(
        session,
        notifications.users_with_roles(session, ["change_manager"]),
        kind="change_approval",
        event_key=f"change_assess:{change.id}:edit:{change.version}",
        entity=("change", change.id),
        message=f"{change.ref} edited after its assessment ({what}): assess it again for the CAB: "
        f"{change.title}",
        now=now,
        exclude=actor.id,
    )


def _set_targets(
    session: Session, change: Change, wanted: list[tuple[str, str | None]], actor: Actor, now: datetime
) -> bool:
    """The change's targets replaced by ``wanted`` (audited as one text field, as creating writes them);
    whether they changed."""
    current = [(t.service, t.ci) for t in sorted(change.targets, key=lambda t: t.id)]
    if set(current) == set(wanted):
        return False
    change.targets = [ChangeTarget(service=s, ci=ci) for s, ci in wanted]
    old = ", ".join(_target_text(s, ci) for s, ci in current)
    new = ", ".join(_target_text(s, ci) for s, ci in wanted)
    audit.record_for(session, "change", change, actor.id, now, "edit", "targets", new, old)
    return True


def _ask_again(
    session: Session, config: DeskConfig, change: Change, actor: Actor, changed: list[str], now: datetime
) -> None:
    """The approvers of an emergency change being decided were asked about it as it was: its decisions so far
    are reset and whom the rule now names (its services or implementer may have changed) are asked again, as
    a move asks them (:func:`.approvals.send_back`). A standard change is pre-approved; a normal change not
    yet assessed has nobody asked yet (an assessed one is assessed again: :func:`_reassess`)."""
    if change.change_type != "emergency":
        return
    what = ", ".join(changed)
    start, end = _planned_window(change)
    window = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    pool = list(emergency_pool(session, config, change).asked)
    change.approvals.clear()  # an emergency change's rows are its decisions
    audit.record_for(
        session,
        "change",
        change,
        actor.id,
        now,
        "edit",
        "approvals",
        f"asked again ({what} edited): " + (", ".join(sorted(_names(session, pool))) or "nobody"),
    )
    notify_emergency_approval(
        session,
        pool,
        change.id,
        change.ref,
        f"edited ({what}; {window}): {change.title}",
        change.requested_by_id,
        now,
        exclude=actor.id,
        round_key=f"edit:{change.version}",
    )
    notice = approver_notice(session, config, change)
    if notice is not None:
        notify_unapprovable(session, config, change, notice, now, exclude=actor.id)


def _names(session: Session, user_ids: Iterable[int]) -> list[str]:
    names = _logins(session, user_ids)
    return [login for login, _ in names.values()]


def preview_edit(
    session: Session,
    config: DeskConfig,
    ref: str,
    *,
    title: str | None = None,
    description: str | None = None,
    implementation_plan: str | None = None,
    backout_plan: str | None = None,
    test_plan: str | None = None,
    targets: Iterable[str] | None = None,
    implementer: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    risk: str | None = None,
) -> list[Conflict]:
    """The conflicts ``ref`` would have once edited so (the edit form's live check); nothing is written.

    Raises :class:`ValidationError` for inputs the save would refuse."""
    change = get_change(session, ref)
    edit = _checked(
        session,
        config,
        change,
        title=title,
        description=description,
        implementation_plan=implementation_plan,
        backout_plan=backout_plan,
        test_plan=test_plan,
        targets=targets,
        implementer=implementer,
        start=start,
        end=end,
        risk=risk,
    )
    current = [(t.service, t.ci) for t in sorted(change.targets, key=lambda t: t.id)]
    if edit.implementer is UNSET:
        login = _login_of(_logins(session, [change.implementer_id]), change.implementer_id)
    else:
        login = edit.implementer.login if isinstance(edit.implementer, User) else None
    begin_at, end_at = edit.window or _planned_window(change)
    return preview(
        session,
        config,
        change_type=change.change_type,
        targets=[_target_text(s, ci) for s, ci in (edit.targets or current)],
        start=begin_at,
        end=end_at,
        template=change.template,
        implementer=login,
        ref=change.ref,
    )


def withdraw(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    reason: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """Who raised a change withdraws it before approval (a reason is optional); the approvers already asked
    are told, and the change managers too once it had been submitted."""
    now = _now(now)
    change = begin(session, config, actor, ref, "withdraw", expected_version, now)
    submitted = change.state != "draft"
    with session.no_autoflush:  # one write at the end: one version
        _move(session, change, "withdrawn", actor, now, action="withdraw")
        text = (reason or "").strip()
        if text:
            _set(session, change, "cancel_reason", text, actor, now, action="withdraw")
        told = {a.approver_id for a in change.approvals}
        if submitted:
            told |= set(notifications.users_with_roles(session, ["change_manager"]))
        notifications.notify(
            session,
            told,
            kind="change_approval",
            event_key=f"change_withdrawn:{change.id}",
            entity=("change", change.id),
            message=f"{change.ref} withdrawn by {actor.login}"
            + (f" ({text})" if text else "")
            + f": {change.title}",
            now=now,
            exclude=actor.id,
        )
    return _finish(session, change, expected_version, now)


def cancel(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    reason: str | None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Change:
    """A change manager cancels a change not yet implementing, saying why; its approvers asked, its
    implementer and who raised it are told."""
    now = _now(now)
    change = begin(session, config, actor, ref, "cancel", expected_version, now)
    text = (reason or "").strip()
    if not text:
        raise ValidationError(
            "reason", "say why the change is cancelled (who raised it and its approvers read it)"
        )
    with session.no_autoflush:  # one write at the end: one version
        _move(session, change, "cancelled", actor, now, action="cancel")
        _set(session, change, "cancel_reason", text, actor, now, action="cancel")
        told = {a.approver_id for a in change.approvals}
        told |= {u for u in (change.implementer_id, change.requested_by_id) if u is not None}
        notifications.notify(
            session,
            told,
            kind="change_approval",
            event_key=f"change_cancelled:{change.id}",
            entity=("change", change.id),
            message=f"{change.ref} cancelled by {actor.login} ({text}): {change.title}",
            now=now,
            exclude=actor.id,
        )
    return _finish(session, change, expected_version, now)
