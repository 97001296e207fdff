"""The known-error database (KEDB) and knowledge articles: search by words, apply a workaround in one step."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, func, or_, select
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import KnowledgeArticle, KnownError
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


def search(session: Session, words: str | Iterable[str], limit: int = 20) -> list[KnowledgeHit]:
    """Known errors (title, symptom, workaround) and articles (title, body) holding every word.

    Known errors come first, then hits with more words in the title; at most ``limit`` results.
    """
    terms = split_words(words)
    if not terms:
        return []
    limit = max(1, min(int(limit), LIMIT_MAX))
    hits: list[tuple[int, int, KnowledgeHit]] = []
    known = session.execute(
        select(KnownError.ref, KnownError.title, KnownError.symptom, KnownError.workaround)
        .where(_matches_all(terms, (KnownError.title, KnownError.symptom, KnownError.workaround)))
        .order_by(KnownError.published_at.desc(), KnownError.id.desc())
        .limit(limit)
    )
    for ref, title, symptom, workaround in known:
        hits.append(
            (
                0,
                -_in_title(title, terms),
                KnowledgeHit(ref, "known_error", title, snippet(symptom, terms), workaround),
            )
        )
    articles = session.execute(
        select(KnowledgeArticle.ref, KnowledgeArticle.title, KnowledgeArticle.body)
        .where(_matches_all(terms, (KnowledgeArticle.title, KnowledgeArticle.body)))
        .order_by(KnowledgeArticle.updated_at.desc(), KnowledgeArticle.id.desc())
        .limit(limit)
    )
    for ref, title, body in articles:
        hits.append(
            (1, -_in_title(title, terms), KnowledgeHit(ref, "article", title, snippet(body, terms), None))
        )
    hits.sort(key=lambda hit: (hit[0], hit[1]))
    return [hit for _, _, hit in hits[:limit]]


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
