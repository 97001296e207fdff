"""Links from a ticket to a problem, known error, knowledge article, change or another ticket."""

from __future__ import annotations

from dataclasses import dataclass
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
    digits = target_ref[len(prefix) :]
    if prefix in LINK_TARGETS and digits and len(digits) < 7:  # typed short: prb12 is PRB0000012
        target_ref = f"{prefix}{int(digits):07d}"
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


# How many links a page lists, each way (the rest are left out; a ticket has a handful).
LINKS_SHOWN = 50

_TYPE_MODEL: dict[str, Linkable] = {kind: model for kind, model in LINK_TARGETS.values()}
_TYPE_WORDS = {
    "problem": "problem",
    "known_error": "known error",
    "article": "knowledge article",
    "change": "change",
    "ticket": "ticket",
}


@dataclass(frozen=True)
class LinkedRecord:
    """One record linked with another, as its page lists it (and the key that follows the link opens)."""

    ref: str
    kind: str  # ticket | problem | known_error | article | change
    id: int
    title: str
    outgoing: bool  # True: linked from the record shown; False: it links to the record shown

    @property
    def kind_word(self) -> str:
        return _TYPE_WORDS.get(self.kind, self.kind)


def _refs_and_titles(session: Session, wanted: dict[str, set[int]]) -> dict[tuple[str, int], tuple[str, str]]:
    """(type, id) -> (ref, title) for the records named, one query per type (primary keys)."""
    found: dict[tuple[str, int], tuple[str, str]] = {}
    for kind, ids in wanted.items():
        model = _TYPE_MODEL[kind]
        for row_id, ref, title in session.execute(
            select(model.id, model.ref, model.title).where(model.id.in_(sorted(ids)))
        ):
            found[(kind, row_id)] = (ref, title)
    return found


def linked_records(session: Session, record_type: str, record_id: int) -> list[LinkedRecord]:
    """Everything linked with a record, both ways: what it links to first, then what links to it (each in
    the order linked, at most :data:`LINKS_SHOWN` each way). A ticket linked to a ticket shows on both."""
    outgoing = session.execute(
        select(Link.target_type, Link.target_id)
        .where(Link.source_type == record_type, Link.source_id == record_id)
        .order_by(Link.id)
        .limit(LINKS_SHOWN)
    ).all()
    incoming = session.execute(
        select(Link.source_type, Link.source_id)
        .where(Link.target_type == record_type, Link.target_id == record_id)
        .order_by(Link.id)
        .limit(LINKS_SHOWN)
    ).all()
    wanted: dict[str, set[int]] = {}
    for kind, row_id in [*outgoing, *incoming]:
        if kind in _TYPE_MODEL:
            wanted.setdefault(kind, set()).add(row_id)
    names = _refs_and_titles(session, wanted)
    records: list[LinkedRecord] = []
    seen: set[tuple[str, int]] = set()
    for rows, out in ((outgoing, True), (incoming, False)):
        for kind, row_id in rows:
            name = names.get((kind, row_id))
            if name is None or (kind, row_id) in seen:  # a record that was deleted; one linked both ways once
                continue
            seen.add((kind, row_id))
            records.append(LinkedRecord(name[0], kind, row_id, name[1], out))
    return records


@dataclass(frozen=True)
class RecordPage:
    """A problem, known error or knowledge article as a ticket's link opens it: its text and its links."""

    ref: str
    kind: str
    title: str
    fields: list[tuple[str, str]]  # label -> text, in order
    linked: list[LinkedRecord]


def record_page(session: Session, ref: str) -> RecordPage:
    """The page of a problem, known error or knowledge article by reference (a ticket or a change has its
    own screen), with the records linked with it both ways."""
    ref = (ref or "").strip().upper()
    kind, model = LINK_TARGETS.get(ref.rstrip("0123456789"), ("", Ticket))
    if kind not in ("problem", "known_error", "article"):
        raise ValidationError("ref", f"{ref!r} is no problem, known error or knowledge article")
    record = session.scalar(select(model).where(model.ref == ref))
    if record is None:
        raise NotFound(f"no record {ref!r}")
    fields: list[tuple[str, str]]
    if isinstance(record, Problem):
        fields = [
            ("Status", record.status),
            ("Service", record.service or "-"),
            ("Description", record.description or "-"),
            ("Root cause", record.root_cause or "-"),
        ]
    elif isinstance(record, KnownError):
        problem = session.scalar(select(Problem.ref).where(Problem.id == record.problem_id))
        fields = [
            ("Problem", problem or "-"),
            ("Service", record.service or "-"),
            ("Symptom", record.symptom or "-"),
            ("Cause", record.cause or "-"),
            ("Workaround", record.workaround or "-"),
            ("Fix", record.permanent_fix or "-"),
        ]
    else:
        assert isinstance(record, KnowledgeArticle)
        fields = [
            ("Service", record.service or "-"),
            ("Category", record.category or "-"),
            ("Text", record.body),
        ]
    return RecordPage(record.ref, kind, record.title, fields, linked_records(session, kind, record.id))
