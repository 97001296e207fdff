"""Links from a ticket to a problem, known error, knowledge article, change or another ticket."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from itsm_tui.models import Change, KnowledgeArticle, KnownError, Link, Problem, Ticket
from itsm_tui.services import audit
from itsm_tui.services.errors import NotFound, ValidationError
from itsm_tui.services.tickets.guards import guard_link
from itsm_tui.services.tickets.helpers import _guarded, _now, _save
from itsm_tui.services.users import Actor

Linkable = type[Problem] | type[KnownError] | type[KnowledgeArticle] | type[Change] | type[Ticket]

# Link targets by reference prefix.
LINK_TARGETS: dict[str, tuple[str, Linkable]] = {
    "PRB": ("problem", Problem),
    "KE": ("known_error", KnownError),
    "KB": ("article", KnowledgeArticle),
    "CHG": ("change", Change),
    "INC": ("ticket", Ticket),
    "REQ": ("ticket", Ticket),
}


def link(session: Session, actor: Actor, ref: str, target_ref: str, now: datetime | None = None) -> Link:
    """Link a ticket to a problem, known error, knowledge article, change or another ticket."""
    now = _now(now)
    ticket = _guarded(session, actor, ref, guard_link)
    target_ref = (target_ref or "").strip().upper()
    prefix = target_ref.rstrip("0123456789")
    if prefix not in LINK_TARGETS:
        raise ValidationError(
            "target", f"{target_ref!r} is not a reference to link (PRB, KE, KB, CHG, INC, REQ)"
        )
    target_type, model = LINK_TARGETS[prefix]
    target_id = session.scalar(select(model.id).where(model.ref == target_ref))
    if target_id is None:
        raise NotFound(f"no record {target_ref!r} to link to")
    if target_type == "ticket" and target_id == ticket.id:
        raise ValidationError("target", "a ticket cannot be linked to itself")
    exists = session.scalar(
        select(Link.id).where(
            Link.source_type == "ticket",
            Link.source_id == ticket.id,
            Link.target_type == target_type,
            Link.target_id == target_id,
        )
    )
    if exists:
        raise ValidationError("target", f"{ticket.ref} is already linked to {target_ref}")
    row = Link(
        source_type="ticket",
        source_id=ticket.id,
        target_type=target_type,
        target_id=target_id,
        created_by_id=actor.id,
        created_at=now,
    )
    session.add(row)
    audit.record_for(session, "ticket", ticket, actor.id, now, "link", "link", target_ref)
    _save(session, ticket, now, None)
    return row


def links_of(session: Session, ticket: Ticket) -> list[str]:
    """References of everything linked from a ticket."""
    refs: list[str] = []
    for target_type, target_id in session.execute(
        select(Link.target_type, Link.target_id)
        .where(Link.source_type == "ticket", Link.source_id == ticket.id)
        .order_by(Link.id)
    ):
        model = next(m for t, m in LINK_TARGETS.values() if t == target_type)
        target_ref = session.scalar(select(model.ref).where(model.id == target_id))
        if target_ref is not None:  # records are not deleted; a link to one that was is left out
            refs.append(target_ref)
    return refs
