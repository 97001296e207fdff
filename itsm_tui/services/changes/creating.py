"""Raising a change (a draft), and previewing the conflicts a new change or a move would have."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import Change, ChangeTarget, User
from itsm_tui.services import conflicts
from itsm_tui.services.changes.helpers import (
    _implementer,
    _new_window,
    _note,
    _now,
    _validate_title,
    _window,
    parse_targets,
)
from itsm_tui.services.changes.permissions import guard_create
from itsm_tui.services.changes.reading import _target_text, get_change, planned_of
from itsm_tui.services.changes.rules import RISKS, TYPES
from itsm_tui.services.conflicts import Conflict, Planned
from itsm_tui.services.errors import ValidationError
from itsm_tui.services.users import Actor


def create_change(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    *,
    change_type: str,
    targets: Iterable[str],
    start: datetime | None,
    end: datetime | None = None,
    title: str | None = None,
    template: str | None = None,
    risk: str | None = None,
    description: str = "",
    implementation_plan: str | None = None,
    backout_plan: str | None = None,
    test_plan: str | None = None,
    implementer: str | None = None,
    now: datetime | None = None,
) -> Change:
    """Raise a change (a draft). A standard change takes title, risk, plans and longest window from its
    template and may only touch the template's services."""
    guard_create(actor)
    now = _now(now)
    values = _validate_new(
        session,
        config,
        change_type=change_type,
        targets=targets,
        start=start,
        end=end,
        title=title,
        template=template,
        risk=risk,
        implementation_plan=implementation_plan,
        backout_plan=backout_plan,
        test_plan=test_plan,
        implementer=implementer,
    )
    from itsm_tui.services.tickets import next_reference

    change = Change(
        ref=next_reference(session, "CHG"),
        title=values.title,
        description=(description or "").strip(),
        change_type=values.change_type,
        template=values.template,
        state="draft",
        risk=values.risk,
        planned_start=values.start,
        planned_end=values.end,
        implementation_plan=values.implementation_plan,
        backout_plan=values.backout_plan,
        test_plan=values.test_plan,
        implementer_id=values.implementer.id if values.implementer else None,
        requested_by_id=actor.id,
        created_at=now,
        updated_at=now,
    )
    change.targets = [ChangeTarget(service=s, ci=ci) for s, ci in values.targets]
    session.add(change)
    session.flush()
    for name, value in (
        ("state", "draft"),
        ("change_type", change.change_type),
        ("template", change.template),
        ("targets", ", ".join(_target_text(s, ci) for s, ci in values.targets)),
        ("planned_start", change.planned_start),
        ("planned_end", change.planned_end),
        ("risk", change.risk),
        ("implementer", values.implementer.login if values.implementer else None),
    ):
        if value is not None:
            _note(session, change, actor, now, "create", name, value)
    return change


@dataclass(frozen=True)
class _NewChange:
    """The checked values of a change about to be raised."""

    change_type: str
    template: str | None
    targets: list[tuple[str, str | None]]
    risk: str
    title: str
    start: datetime
    end: datetime
    implementer: User | None
    implementation_plan: str
    backout_plan: str
    test_plan: str


def _validate_new(
    session: Session,
    config: DeskConfig,
    *,
    change_type: str,
    targets: Iterable[str],
    start: datetime | None,
    end: datetime | None,
    title: str | None,
    template: str | None,
    risk: str | None,
    implementation_plan: str | None,
    backout_plan: str | None,
    test_plan: str | None,
    implementer: str | None,
) -> _NewChange:
    change_type = (change_type or "").strip().lower()
    if change_type not in TYPES:
        raise ValidationError(
            "change_type", f"the type must be one of {', '.join(TYPES)}, not {change_type!r}"
        )
    templates = config.changes.templates
    template_code = (template or "").strip() or None
    parsed = parse_targets(config, targets)
    wanted_risk = (risk or "").strip().lower() or None
    if wanted_risk is not None and wanted_risk not in RISKS:
        raise ValidationError("risk", f"the risk must be one of {', '.join(RISKS)}, not {wanted_risk!r}")
    plans = {
        "implementation_plan": (implementation_plan or "").strip(),
        "backout_plan": (backout_plan or "").strip(),
        "test_plan": (test_plan or "").strip(),
    }
    if change_type == "standard":
        if template_code is None:
            known = ", ".join(templates) or "none (add [[templates]] to changes.toml)"
            raise ValidationError("template", f"a standard change comes from a template; templates: {known}")
        if template_code not in templates:
            raise ValidationError(
                "template", f"unknown template {template_code!r}; templates: {', '.join(templates) or 'none'}"
            )
        chosen = templates[template_code]
        outside = sorted({s for s, _ in parsed} - set(chosen.services))
        if outside:
            raise ValidationError(
                "targets",
                f"template {chosen.code} is pre-approved only for {', '.join(chosen.services)}, "
                f"not {', '.join(outside)}; raise a normal change instead",
            )
        if wanted_risk is not None and wanted_risk != chosen.risk:
            raise ValidationError("risk", f"template {chosen.code} is pre-approved at risk {chosen.risk}")
        if any(value and value != getattr(chosen, key) for key, value in plans.items()):
            raise ValidationError(
                "implementation_plan", f"a standard change follows the plans of template {chosen.code}"
            )
        checked_title = _validate_title(title or chosen.title)
        checked_risk = chosen.risk
        plans = {k: getattr(chosen, k) for k in plans}
    else:
        if template_code is not None:
            raise ValidationError("template", "only standard changes come from a template")
        checked_title = _validate_title(title)
        checked_risk = wanted_risk or "medium"
    begin, finish = _window(config, change_type, template_code, start, end)
    return _NewChange(
        change_type=change_type,
        template=template_code,
        targets=parsed,
        risk=checked_risk,
        title=checked_title,
        start=begin,
        end=finish,
        implementer=_implementer(session, implementer),
        implementation_plan=plans["implementation_plan"],
        backout_plan=plans["backout_plan"],
        test_plan=plans["test_plan"],
    )


def preview(
    session: Session,
    config: DeskConfig,
    *,
    change_type: str,
    targets: Iterable[str],
    start: datetime | None,
    end: datetime | None = None,
    template: str | None = None,
    implementer: str | None = None,
    override_reason: str | None = None,
    ref: str | None = None,
) -> list[Conflict]:
    """The conflicts a new change (or ``ref`` moved to the given window) would have; nothing is written.

    Raises :class:`ValidationError` for inputs that cannot be checked yet (as the save would).
    """
    change_type = (change_type or "").strip().lower()
    if change_type not in TYPES:
        raise ValidationError("change_type", f"the type must be one of {', '.join(TYPES)}")
    parsed = parse_targets(config, targets)
    begin, finish = _window(config, change_type, (template or "").strip() or None, start, end)
    user = _implementer(session, implementer)
    existing = get_change(session, ref) if ref else None
    planned = Planned(
        id=existing.id if existing else None,
        ref=existing.ref if existing else "(new)",
        change_type=change_type,
        state=existing.state if existing else "draft",
        start=begin,
        end=finish,
        services=frozenset(s for s, _ in parsed),
        cis=frozenset(ci for _, ci in parsed if ci),
        implementer_id=user.id if user else None,
        implementer=user.login if user else None,
        override_reason=(override_reason or "").strip() or (existing.override_reason if existing else None),
        targets=frozenset(parsed),
    )
    return conflicts.check(session, planned, same_service=config.changes.same_service_severity)


def preview_move(
    session: Session,
    config: DeskConfig,
    ref: str,
    start: datetime | None,
    end: datetime | None,
    override_reason: str | None = None,
) -> list[Conflict]:
    """The conflicts ``ref`` would have in a new window (for the reschedule form); without ``end`` the
    change keeps its length."""
    change = get_change(session, ref)
    begin, finish = _new_window(config, change, start, end)
    planned = planned_of(session, change)
    return conflicts.check(
        session,
        dataclasses.replace(
            planned,
            start=begin,
            end=finish,
            override_reason=(override_reason or "").strip() or planned.override_reason,
        ),
        same_service=config.changes.same_service_severity,
    )
