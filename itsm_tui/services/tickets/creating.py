"""Logging a new incident or service request."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from itsm_tui.config import KINDS, DeskConfig
from itsm_tui.models import Group, Ticket
from itsm_tui.services import audit, kpi, sla
from itsm_tui.services.access import require
from itsm_tui.services.errors import ValidationError
from itsm_tui.services.inputs import required_title
from itsm_tui.services.tickets.helpers import (
    TITLE_MAX,
    _group_by_code,
    _now,
    _validate_classification,
    _validate_level,
)
from itsm_tui.services.tickets.major import announce_major
from itsm_tui.services.tickets.references import PREFIX, next_reference
from itsm_tui.services.users import Actor


def create_ticket(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    *,
    title: str,
    kind: str = "incident",
    description: str = "",
    impact: str = "medium",
    urgency: str = "medium",
    requester: str,
    category: str | None = None,
    service: str | None = None,
    ci: str | None = None,
    group: str | None = None,
    opened_at: datetime | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Log a new incident or request; priority comes from the matrix, SLA targets from its policy.

    A ticket of a major priority is announced as a major incident (:mod:`.major`) in the same transaction.
    """
    require(actor.roles, "ticket.create")
    now = _now(now)
    kind = (kind or "").strip().lower()
    if kind not in KINDS:
        raise ValidationError("kind", f"kind must be incident or request, not {kind!r}")
    title = required_title(title, "one line saying what is wrong or wanted", TITLE_MAX)
    requester = (requester or "").strip()
    if not requester:
        raise ValidationError("requester", "a requester is required (who reported it)")
    impact = _validate_level("impact", impact)
    urgency = _validate_level("urgency", urgency)
    category, service, ci = _validate_classification(config, kind, category, service, ci)
    if opened_at is not None:
        opened_at = _now(opened_at)
        if opened_at > now:
            raise ValidationError("opened_at", "the opening instant lies in the future")
    else:
        opened_at = now
    group_row = _group_by_code(session, group) if group else _default_group(session, config)
    ticket = Ticket(
        ref=next_reference(session, PREFIX[kind]),
        kind=kind,
        title=title,
        description=description or "",
        requester=requester,
        category=category,
        service=service,
        ci=ci,
        impact=impact,
        urgency=urgency,
        priority=config.priority_for(impact, urgency),
        status="new",
        is_open=True,
        group_id=group_row.id,
        first_group_id=group_row.id,
        created_by_id=actor.id,
        opened_at=opened_at,
        updated_at=now,
        reopen_count=0,
        escalation_count=0,
        reassignment_count=0,
    )
    sla.retarget(ticket, config)
    session.add(ticket)
    session.flush()
    kpi.mark_dirty(session, ticket.opened_at)
    for field, value in (("status", "new"), ("priority", ticket.priority), ("group", group_row.code)):
        audit.record_for(session, "ticket", ticket, actor.id, now, "create", field, value)
    announce_major(session, config, ticket, actor, now)
    return ticket


def _default_group(session: Session, config: DeskConfig) -> Group:
    first_line = next(g for g in config.groups.values() if g.level == 1)
    return _group_by_code(session, first_line.code)
