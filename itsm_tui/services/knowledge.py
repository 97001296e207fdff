"""The known-error database (KEDB) and knowledge articles: search by words, apply a workaround in one step."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, func, or_, select
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import KnowledgeArticle, KnownError, Link, Ticket
from itsm_tui.services import tickets
from itsm_tui.services.errors import NotFound, ValidationError
from itsm_tui.services.users import Actor

WORDS_MAX = 8
WORD_MAX = 50
LIMIT_MAX = 100
SNIPPET = 160


@dataclass(frozen=True)
class KnowledgeHit:
    """One search result: a known error (``kind`` 'known_error') or an article (``kind`` 'article')."""

    ref: str
    kind: str
    title: str
    snippet: str
    workaround: str | None


@dataclass(frozen=True)
class AppliedWorkaround:
    ticket_ref: str
    known_error_ref: str
    entry_id: int
    linked: bool  # False when the ticket was already linked to the known error


def split_words(words: str | Iterable[str]) -> list[str]:
    """The distinct search words, lower case, at most :data:`WORDS_MAX` of at most :data:`WORD_MAX` chars."""
    if isinstance(words, str):
        words = words.split()
    result: list[str] = []
    for word in words:
        word = word.strip().lower()[:WORD_MAX]
        if word and word not in result:
            result.append(word)
        if len(result) == WORDS_MAX:
            break
    return result


def _pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _matches_all(words: list[str], columns: Sequence[SQLColumnExpression[str | None]]) -> ColumnElement[bool]:
    """Every word occurs (case-insensitively) in at least one of the columns."""
    return and_(
        *(
            or_(*(func.lower(func.coalesce(col, "")).like(_pattern(word), escape="\\") for col in columns))
            for word in words
        )
    )


def snippet(text: str | None, words: list[str], width: int = SNIPPET) -> str:
    """One line of ``text`` around the first word found (the start when none is found)."""
    flat = " ".join((text or "").split())
    if len(flat) <= width:
        return flat
    lower = flat.lower()
    found = [i for i in (lower.find(w) for w in words) if i >= 0]
    start = max(0, min(found) - width // 4) if found else 0
    start = min(start, len(flat) - width)
    part = flat[start : start + width]
    return ("..." if start else "") + part + ("..." if start + width < len(flat) else "")


def search(
    session: Session,
    words: str | Iterable[str],
    limit: int = 20,
    *,
    service: str | None = None,
    ci: str | None = None,
) -> list[KnowledgeHit]:
    """Known errors in force (title, symptom, workaround) and published articles (title, body) holding every
    word; a retired known error or an article not yet published (or retired) is not offered.

    Ranked: known errors first, those of the same CI (``ci``, a ticket's) before those of the same service
    (``service``), then hits with more words in the title, then the newest; at most ``limit`` results.
    """
    terms = split_words(words)
    if not terms:
        return []
    limit = max(1, min(int(limit), LIMIT_MAX))
    wanted_ci = (ci or "").strip().lower()
    hits: list[tuple[int, int, int, KnowledgeHit]] = []
    known = session.execute(
        select(
            KnownError.ref,
            KnownError.title,
            KnownError.symptom,
            KnownError.workaround,
            KnownError.service,
            KnownError.ci,
        )
        .where(
            KnownError.status == "published",
            _matches_all(terms, (KnownError.title, KnownError.symptom, KnownError.workaround)),
        )
        .order_by(KnownError.published_at.desc(), KnownError.id.desc())
        .limit(LIMIT_MAX)
    )
    for ref, title, symptom, workaround, ke_service, ke_ci in known:
        place = (
            0
            if wanted_ci and (ke_ci or "").lower() == wanted_ci
            else 1
            if service and ke_service == service
            else 2
        )
        hits.append(
            (
                0,
                place,
                -_in_title(title, terms),
                KnowledgeHit(ref, "known_error", title, snippet(symptom, terms), workaround),
            )
        )
    articles = session.execute(
        select(KnowledgeArticle.ref, KnowledgeArticle.title, KnowledgeArticle.body, KnowledgeArticle.service)
        .where(
            KnowledgeArticle.status == "published",
            _matches_all(terms, (KnowledgeArticle.title, KnowledgeArticle.body)),
        )
        .order_by(KnowledgeArticle.updated_at.desc(), KnowledgeArticle.id.desc())
        .limit(LIMIT_MAX)
    )
    for ref, title, body, kb_service in articles:
        place = 1 if service and kb_service == service else 2
        hits.append(
            (
                1,
                place,
                -_in_title(title, terms),
                KnowledgeHit(ref, "article", title, snippet(body, terms), None),
            )
        )
    hits.sort(key=lambda hit: (hit[0], hit[1], hit[2]))  # stable: the newest first within a rank
    return [hit for _, _, _, hit in hits[:limit]]


@dataclass(frozen=True)
class KnownErrorMatch:
    """A known error in force that may be what a ticket is about: the ticket screen offers it."""

    ref: str
    title: str
    workaround: str | None
    reason: str  # why it matches, in words ("same CI PRN-0042", "same service, words: jam, tray")


MATCH_WORD_MIN = 4  # shorter words ("the", "vpn" aside) say little about a symptom
_MATCH_READ = 50


def _words_of(text: str | None) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9][a-z0-9-]+", (text or "").lower()) if len(w) >= MATCH_WORD_MIN}


def matching_known_errors(session: Session, ticket_id: int, limit: int = 3) -> list[KnownErrorMatch]:
    """The known errors in force that match an open incident: the same CI, or the same service and at least
    one word of the ticket's title in the known error's title or symptom; those already linked to the
    ticket are left out. Best first: the same CI, then more shared words, then the newest.

    Reads the ticket by primary key and at most 50 known errors of its CI or service
    (``ix_known_errors_ci`` / ``ix_known_errors_service``)."""
    row = session.execute(
        select(Ticket.service, Ticket.ci, Ticket.title, Ticket.kind, Ticket.is_open).where(
            Ticket.id == ticket_id
        )
    ).first()
    if row is None:
        return []
    service, ci, title, kind, is_open = row
    if kind != "incident" or not is_open or not (service or ci):
        return []
    same = []
    if ci:
        same.append(KnownError.ci == ci)
    if service:
        same.append(KnownError.service == service)
    linked = select(Link.target_id).where(
        Link.source_type == "ticket", Link.source_id == ticket_id, Link.target_type == "known_error"
    )
    found = session.execute(
        select(
            KnownError.ref,
            KnownError.title,
            KnownError.symptom,
            KnownError.workaround,
            KnownError.service,
            KnownError.ci,
            KnownError.published_at,
        )
        .where(KnownError.status == "published", or_(*same), KnownError.id.not_in(linked))
        .order_by(KnownError.published_at.desc(), KnownError.id.desc())
        .limit(_MATCH_READ)
    ).all()
    words = _words_of(title)
    ranked: list[tuple[int, int, int, KnownErrorMatch]] = []
    for order, (ref, ke_title, symptom, workaround, ke_service, ke_ci, _published) in enumerate(found):
        shared = sorted(words & (_words_of(ke_title) | _words_of(symptom)))
        same_ci = bool(ci) and ke_ci == ci
        if not same_ci and not (ke_service == service and shared):
            continue
        if same_ci:
            reason = f"same CI {ci}" + (f", words: {', '.join(shared[:4])}" if shared else "")
        else:
            reason = f"same service {service}, words: {', '.join(shared[:4])}"
        ranked.append(
            (0 if same_ci else 1, -len(shared), order, KnownErrorMatch(ref, ke_title, workaround, reason))
        )
    ranked.sort(key=lambda item: item[:3])
    return [match for *_, match in ranked[: max(1, limit)]]


def _in_title(title: str, words: list[str]) -> int:
    lower = title.lower()
    return sum(1 for word in words if word in lower)


def workaround_note(known_error: KnownError) -> str:
    text = re.sub(r"\n{3,}", "\n\n", (known_error.workaround or "").strip())
    return f"Workaround applied from {known_error.ref} ({known_error.title}):\n{text}"


def apply_workaround(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ticket_ref: str,
    known_error_ref: str,
    now: datetime | None = None,
) -> AppliedWorkaround:
    """In one step: a work note quoting the known error's workaround, and a link to the known error.

    Both are audited (by :func:`tickets.add_entry` and :func:`tickets.link`); the caller's transaction holds
    both or neither.
    """
    ticket = tickets.get_ticket(session, ticket_ref)
    tickets.enforce(tickets.guard_apply_workaround, actor, ticket)  # the rule the screen offers
    ref = (known_error_ref or "").strip().upper()
    known_error = session.scalar(select(KnownError).where(KnownError.ref == ref))
    if known_error is None:
        raise NotFound(f"no known error {ref!r} in the KEDB")
    if not (known_error.workaround or "").strip():
        raise ValidationError("known_error", f"{ref} has no workaround to apply; link it instead")
    already = ref in tickets.links_of(session, ticket)
    entry = tickets.add_entry(
        session, config, actor, ticket.ref, body=workaround_note(known_error), public=False, now=now
    )
    if not already:
        tickets.link(session, actor, ticket.ref, ref, now=now)
    return AppliedWorkaround(ticket.ref, ref, entry.id, linked=not already)


def search_for_ticket(
    session: Session, ticket_id: int, words: str | Iterable[str], limit: int = 20
) -> list[KnowledgeHit]:
    """What the ticket screen's KEDB form lists: the known errors that match the ticket (its CI, or its
    service and a word of its title: :func:`matching_known_errors`, the ones its "Possible known error" line
    names) first, then what :func:`search` finds for ``words`` ranked by the ticket's CI and service."""
    row = session.execute(select(Ticket.service, Ticket.ci).where(Ticket.id == ticket_id)).first()
    service, ci = (row[0], row[1]) if row else (None, None)
    limit = max(1, min(int(limit), LIMIT_MAX))
    matched = matching_known_errors(session, ticket_id, limit=limit)
    hits: list[KnowledgeHit] = []
    if matched:
        wanted = select(KnownError.ref, KnownError.symptom).where(
            KnownError.ref.in_([m.ref for m in matched])
        )
        symptoms: dict[str, str] = {ref: symptom for ref, symptom in session.execute(wanted)}
        hits = [
            KnowledgeHit(
                m.ref,
                "known_error",
                m.title,
                f"({m.reason}) {snippet(symptoms.get(m.ref), [])}",
                m.workaround,
            )
            for m in matched
        ]
    seen = {hit.ref for hit in hits}
    hits += [hit for hit in search(session, words, limit, service=service, ci=ci) if hit.ref not in seen]
    return hits[:limit]
