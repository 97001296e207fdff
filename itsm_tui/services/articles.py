"""Knowledge articles (KBnnnnnnn): writing, review, publication and retirement, lists and an article's page.

Lifecycle (SPEC): draft -> in_review -> published -> retired.

- **draft**: its author writes it (``knowledge.write``: agents, L2, L3, shift leads, problem managers); a
  publisher (``knowledge.publish``: L2, L3, problem managers, shift leads) may edit anyone's. The author (or
  a publisher) submits it for review once it has a text.
- **in_review**: a publisher publishes it, never the one who wrote it (four eyes), or sends it back to a
  draft with a note saying why (the author is told either way).
- **published**: what agents find from a ticket. It never goes back to review: a publisher corrects it in
  place (its ``updated_at`` moves on, every field audited), or retires it, saying why.
- **retired**: final; kept, with its links, for the tickets that used it.

An article written from a ticket (``create_article(from_ticket=...)``) takes its title, text, service and
category from the ticket (its description and its resolution) unless they are given, remembers the ticket
(``source_ticket_id``) and is linked from it, as an agent's link would (``tickets.link``). **Uses** are the
tickets linking to an article (rows of ``links`` with target type ``article``), counted over
``ix_links_target``.

Each action has one guard (:data:`GUARDS`, pure rules on the actor and the article): the step enforces it
before it looks at its inputs, and :func:`available_actions` asks the same guards, so what a screen offers
is what the step allows, refused in the same words. Every write is audited (entity type ``article``) in the
caller's transaction; a save based on another version than the article's is refused with ``StaleEdit``.
Screens and the command line get frozen dataclasses (:class:`ArticleRow`, :class:`ArticleDetail`); the
steps return the ORM row, for the caller's own transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.models import KnowledgeArticle, Link, Ticket, User, utc_or_now
from itsm_tui.services import audit, notifications, tickets, versions
from itsm_tui.services.access import PERMISSIONS, PermissionDenied, has_permission, require
from itsm_tui.services.errors import InvalidTransition, NotFound, ServiceError, ValidationError
from itsm_tui.services.inputs import known_service, required_title
from itsm_tui.services.jsondata import jsonable
from itsm_tui.services.knowledge import split_words
from itsm_tui.services.tickets.links import LinkedRecord, linked_records
from itsm_tui.services.tickets.references import next_reference
from itsm_tui.services.users import Actor

ENTITY = "article"  # the audit trail's, the links' and the notifications' name of an article
PREFIX = "KB"

# --------------------------------------------------------------------------- vocabulary

STATUSES: tuple[str, ...] = ("draft", "in_review", "published", "retired")
STATUS_LABELS: dict[str, str] = {
    "draft": "draft",
    "in_review": "in review",
    "published": "published",
    "retired": "retired",
}
# status -> the statuses it may move to: a review publishes or sends back; a published article is
# corrected in place, never sent back to review.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("in_review",),
    "in_review": ("published", "draft"),
    "published": ("retired",),
    "retired": (),
}

# The actions of an article, in the order a screen lists them.
ACTION_LABELS: dict[str, str] = {
    "edit": "Edit title, text, service and category",
    "submit": "Submit for review",
    "publish": "Publish",
    "send_back": "Send back to the author",
    "retire": "Retire",
}
ACTIONS: tuple[str, ...] = tuple(ACTION_LABELS)

# The fields update_article changes.
FIELDS: tuple[str, ...] = ("title", "body", "service", "category")

TITLE_MAX = 200
BODY_MAX = 100_000
CATEGORY_MAX = 40
NOTE_MAX = 2_000  # a review note or a reason to retire
LIMIT_MAX = 200

# The lists of :func:`list_articles`: view -> what it shows.
VIEWS: dict[str, str] = {
    "published": "Published articles",
    "drafts": "My drafts (and, for publishers, what awaits review)",
    "review": "Awaiting review",
    "retired": "Retired articles",
    "all": "All articles",
}


def _now(now: datetime | None) -> datetime:
    return utc_or_now(now)


def normal_ref(text: str) -> str:
    """An article's reference as stored: ``kb12``, ``12`` and ``KB0000012`` are all ``KB0000012``."""
    value = (text or "").strip().upper()
    digits = value.removeprefix(PREFIX)
    if digits.isdigit() and len(digits) <= 9:
        return f"{PREFIX}{int(digits):07d}"
    return value


def get_article(session: Session, ref: str, *, for_update: bool = False) -> KnowledgeArticle:
    """An article by reference (case and zero padding forgiven); ``for_update`` row-locks it (PostgreSQL)."""
    stmt = select(KnowledgeArticle).where(KnowledgeArticle.ref == normal_ref(ref))
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    article = session.scalar(stmt)
    if article is None:
        raise NotFound(f"no knowledge article {ref!r}; `itsm kb list --view all` lists them")
    return article


# --------------------------------------------------------------------------- guards

Guard: TypeAlias = Callable[[Actor, KnowledgeArticle], None]


@dataclass(frozen=True)
class ActionOffer:
    """One action of an article as a screen offers it: ``refusal`` None when the viewer may take it now,
    else why not, in the words the step would refuse with."""

    action: str
    label: str
    refusal: str | None


def _publishers() -> str:
    roles = PERMISSIONS["knowledge.publish"][0]
    return ", ".join(roles[:-1]) + " or " + roles[-1]


def _denied(actor: Actor, why: str) -> PermissionDenied:
    """A refusal that only a publisher of knowledge would not get, saying ``why``."""
    have = ", ".join(sorted(actor.roles)) or "no role"
    return PermissionDenied("knowledge.publish", actor.roles, f"{why} ({_publishers()}; you have {have}).")


def _is_publisher(actor: Actor) -> bool:
    return has_permission(actor.roles, "knowledge.publish")


def _is_author(actor: Actor, article: KnowledgeArticle) -> bool:
    return article.author_id is not None and article.author_id == actor.id


def _require_status(article: KnowledgeArticle, wanted: str, *statuses: str) -> None:
    if article.status not in statuses:
        raise InvalidTransition(article.ref, article.status, wanted, TRANSITIONS.get(article.status, ()))


def guard_create(actor: Actor) -> None:
    """Writing an article (there is none to look at yet): ``knowledge.write``."""
    require(actor.roles, "knowledge.write")


def create_refusal(actor: Actor) -> str | None:
    """Why ``actor`` may not write an article (None: they may), as :func:`guard_create` refuses."""
    try:
        guard_create(actor)
    except ServiceError as exc:
        return str(exc)
    return None


def guard_edit(actor: Actor, article: KnowledgeArticle) -> None:
    """Its author edits a draft; a publisher edits any article that is not retired."""
    if article.status == "retired":
        raise ServiceError(f"{article.ref} is retired: a retired article is no longer edited")
    if _is_publisher(actor):
        return
    if article.status != "draft":
        raise _denied(
            actor, f"{article.ref} is {STATUS_LABELS[article.status]}: only a publisher of knowledge edits it"
        )
    if not _is_author(actor, article):
        raise _denied(
            actor,
            f"{article.ref} is someone else's draft: only its author or a publisher of knowledge edits it",
        )
    require(actor.roles, "knowledge.write")


def guard_submit(actor: Actor, article: KnowledgeArticle) -> None:
    """Its author (or a publisher) submits a draft with a text for review."""
    _require_status(article, "in_review", "draft")
    if not _is_publisher(actor):
        if not _is_author(actor, article):
            raise _denied(
                actor,
                f"{article.ref} is someone else's draft: "
                "only its author or a publisher of knowledge submits it",
            )
        require(actor.roles, "knowledge.write")
    if not article.body.strip():
        raise ServiceError(f"{article.ref} has no text yet: write it before submitting it for review")


def guard_publish(actor: Actor, article: KnowledgeArticle) -> None:
    """A publisher publishes an article in review, never one they wrote (four eyes)."""
    _require_status(article, "published", "in_review")
    require(actor.roles, "knowledge.publish")
    if _is_author(actor, article):
        raise PermissionDenied(
            "knowledge.publish",
            actor.roles,
            f"You wrote {article.ref}: someone else must review and publish it (another {_publishers()}).",
        )


def guard_send_back(actor: Actor, article: KnowledgeArticle) -> None:
    """A publisher sends an article in review back to a draft (with a note, an input of the step)."""
    _require_status(article, "draft", "in_review")
    require(actor.roles, "knowledge.publish")


def guard_retire(actor: Actor, article: KnowledgeArticle) -> None:
    """A publisher retires a published article (with a reason, an input of the step)."""
    _require_status(article, "retired", "published")
    require(actor.roles, "knowledge.publish")


# One guard per action of ACTIONS, in its order (available_actions answers in this order).
GUARDS: dict[str, Guard] = {
    "edit": guard_edit,
    "submit": guard_submit,
    "publish": guard_publish,
    "send_back": guard_send_back,
    "retire": guard_retire,
}
assert tuple(GUARDS) == ACTIONS


def enforce(actor: Actor, article: KnowledgeArticle, action: str) -> None:
    """Raise (``PermissionDenied``, ``InvalidTransition`` or another ``ServiceError``) unless ``actor`` may
    take ``action`` on ``article`` now."""
    guard = GUARDS.get(action)
    if guard is None:
        raise ValueError(f"unknown article action {action!r}")
    guard(actor, article)


def available_actions(actor: Actor, article: KnowledgeArticle) -> tuple[ActionOffer, ...]:
    """Every action of :data:`ACTIONS` with why ``actor`` may not take it now (None when they may)."""
    offers: list[ActionOffer] = []
    for action, guard in GUARDS.items():
        try:
            guard(actor, article)
        except ServiceError as exc:
            offers.append(ActionOffer(action, ACTION_LABELS[action], str(exc)))
        else:
            offers.append(ActionOffer(action, ACTION_LABELS[action], None))
    return tuple(offers)


# --------------------------------------------------------------------------- inputs


def _title(title: str | None) -> str:
    return required_title(title, "one line saying what the article answers", TITLE_MAX)


def _body(body: str | None) -> str:
    text = (body or "").strip("\n")
    if len(text) > BODY_MAX:
        raise ValidationError("body", f"the text is {len(text)} characters; keep it within {BODY_MAX}")
    return text


def _service(config: DeskConfig, service: str | None) -> str | None:
    if service is None or not service.strip():
        return None
    return known_service(config, service)


def _category(category: str | None) -> str | None:
    text = " ".join((category or "").split())
    if not text:
        return None
    if len(text) > CATEGORY_MAX:
        raise ValidationError(
            "category", f"the category is {len(text)} characters; keep it within {CATEGORY_MAX}"
        )
    return text


def _note(field: str, text: str | None, what: str) -> str:
    note = (text or "").strip()
    if not note:
        raise ValidationError(field, f"say {what}")
    if len(note) > NOTE_MAX:
        raise ValidationError(field, f"the {field} is {len(note)} characters; keep it within {NOTE_MAX}")
    return note


@dataclass(frozen=True)
class Prefill:
    """What an article written from a ticket starts with (the new-article form shows it to be edited)."""

    ticket_ref: str
    title: str
    body: str
    service: str | None
    category: str | None


def ticket_text(ticket: Ticket) -> str:
    """An article's text from a ticket: its description, then its resolution (code and note)."""
    parts: list[str] = []
    description = (ticket.description or "").strip()
    if description:
        parts.append(description)
    note = (ticket.resolution_note or "").strip()
    code = (ticket.resolution_code or "").strip()
    if note or code:
        heading = f"Resolution ({code}):" if code else "Resolution:"
        parts.append(f"{heading}\n{note}" if note else heading)
    return "\n\n".join(parts)


RESOLVED_STATUSES = ("resolved", "closed")  # a ticket an article is written from has its resolution


def resolution_refusal(ticket_ref: str, status: str) -> str | None:
    """Why no article is written from a ticket in ``status`` (None: it may be): only from a resolution."""
    if status in RESOLVED_STATUSES:
        return None
    word = status.replace("_", " ")
    return f"{ticket_ref} is {word}; an article is written from its resolution once it is resolved"


def from_ticket_refusal(actor: Actor, ticket_ref: str, status: str, link_refusal: str | None) -> str | None:
    """Why ``actor`` may not write an article from the ticket (None: they may): the ticket has its
    resolution, the writing guard allows them, and the ticket's link guard (the article is linked to it)."""
    return resolution_refusal(ticket_ref, status) or create_refusal(actor) or link_refusal


def prefill_from_ticket(session: Session, config: DeskConfig, ticket_ref: str) -> Prefill:
    """The title, text, service and category an article written from ``ticket_ref`` starts with (its service
    only while the catalog still has it)."""
    return _prefill(config, tickets.get_ticket(session, ticket_ref))


def _prefill(config: DeskConfig, ticket: Ticket) -> Prefill:
    service = ticket.service if ticket.service in config.services else None
    category = (ticket.category or "")[:CATEGORY_MAX] or None
    return Prefill(ticket.ref, ticket.title[:TITLE_MAX], ticket_text(ticket), service, category)


# --------------------------------------------------------------------------- steps


def _load(session: Session, ref: str, expected_version: int | None) -> KnowledgeArticle:
    article = get_article(session, ref, for_update=True)
    versions.check_version(session, ENTITY, article, expected_version)
    return article


def _begin(
    session: Session, actor: Actor, ref: str, action: str, expected_version: int | None
) -> KnowledgeArticle:
    """The article a step works on: loaded (row-locked, refused if stale), then refused unless ``actor``
    may take ``action`` on it now, before any input of the step is looked at."""
    article = _load(session, ref, expected_version)
    enforce(actor, article, action)
    return article


def _finish(
    session: Session, article: KnowledgeArticle, expected_version: int | None, now: datetime
) -> KnowledgeArticle:
    article.updated_at = now
    versions.flush(session, ENTITY, article, expected_version)
    return article


def _set(
    session: Session,
    article: KnowledgeArticle,
    name: str,
    value: object,
    actor: Actor,
    now: datetime,
    action: str = "update",
) -> bool:
    return audit.set_field(session, article, ENTITY, name, value, actor.id, now, action)


def _move(
    session: Session, article: KnowledgeArticle, to: str, actor: Actor, now: datetime, action: str
) -> None:
    allowed = TRANSITIONS[article.status]
    if to not in allowed:  # the guards have refused it already; kept so no step can break the lifecycle
        raise InvalidTransition(article.ref, article.status, to, allowed)
    _set(session, article, "status", to, actor, now, action)


def _tell_author(
    session: Session, article: KnowledgeArticle, actor: Actor, now: datetime, what: str, message: str
) -> None:
    if article.author_id is None:
        return
    notifications.notify(
        session,
        [article.author_id],
        kind=ENTITY,
        event_key=f"article:{article.id}:{what}:{article.version}",
        entity=(ENTITY, article.id),
        message=message,
        now=now,
        exclude=actor.id,
    )


def create_article(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    *,
    title: str | None = None,
    body: str | None = None,
    service: str | None = None,
    category: str | None = None,
    from_ticket: str | None = None,
    now: datetime | None = None,
) -> KnowledgeArticle:
    """A new draft by ``actor``. With ``from_ticket``, what is not given comes from the ticket
    (:func:`prefill_from_ticket`), the article remembers the ticket and the ticket links to it."""
    now = _now(now)
    guard_create(actor)
    source: Ticket | None = None
    if from_ticket is not None:
        source = tickets.get_ticket(session, from_ticket)
        refused = resolution_refusal(source.ref, source.status)
        if refused:
            raise ValidationError("from_ticket", refused)
        prefill = _prefill(config, source)
        title = prefill.title if title is None or not title.strip() else title
        body = prefill.body if body is None else body
        service = prefill.service if service is None else service
        category = prefill.category if category is None else category
    title, body, service, category = (
        _title(title),
        _body(body),
        _service(config, service),
        _category(category),
    )
    article = KnowledgeArticle(
        ref=next_reference(session, PREFIX),
        title=title,
        body=body,
        service=service,
        category=category,
        status="draft",
        author_id=actor.id,
        source_ticket_id=source.id if source else None,
        created_at=now,
        updated_at=now,
    )
    session.add(article)
    session.flush()
    for name, value in (
        ("status", "draft"),
        ("title", article.title),
        ("service", article.service),
        ("category", article.category),
        ("source_ticket", source.ref if source else None),
    ):
        if value is not None:
            audit.record_for(session, ENTITY, article, actor.id, now, "create", name, value)
    if source is not None:
        tickets.link(session, actor, source.ref, article.ref, now=now)
    return article


def update_article(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    changes: Mapping[str, object],
    *,
    now: datetime | None = None,
    expected_version: int | None = None,
) -> KnowledgeArticle:
    """Change any of :data:`FIELDS` (``title``, ``body``, ``service``, ``category``; a service or category of
    None or "" is cleared). Each changed field is audited; nothing changed writes nothing."""
    now = _now(now)
    article = _begin(session, actor, ref, "edit", expected_version)
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise ValidationError(
            unknown[0], f"no article field {unknown[0]!r}; the fields are {', '.join(FIELDS)}"
        )

    def text(name: str) -> str | None:
        value = changes[name]
        if value is not None and not isinstance(value, str):
            raise ValidationError(name, f"the {name} is text, not {type(value).__name__}")
        return value

    values: dict[str, object] = {}
    if "title" in changes:
        values["title"] = _title(text("title"))
    if "body" in changes:
        values["body"] = _body(text("body"))
    if "service" in changes:
        values["service"] = _service(config, text("service"))
    if "category" in changes:
        values["category"] = _category(text("category"))
    changed = [
        name for name in FIELDS if name in values and _set(session, article, name, values[name], actor, now)
    ]
    if not changed:
        return article
    return _finish(session, article, expected_version, now)


def submit(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    now: datetime | None = None,
    expected_version: int | None = None,
) -> KnowledgeArticle:
    """A draft goes to review (draft -> in_review)."""
    now = _now(now)
    article = _begin(session, actor, ref, "submit", expected_version)
    _move(session, article, "in_review", actor, now, "submit")
    return _finish(session, article, expected_version, now)


def publish(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    *,
    now: datetime | None = None,
    expected_version: int | None = None,
) -> KnowledgeArticle:
    """A publisher who did not write it publishes an article in review (in_review -> published): its
    reviewer and publication instant are recorded, the last review note cleared, the author told."""
    now = _now(now)
    article = _begin(session, actor, ref, "publish", expected_version)
    with session.no_autoflush:  # one write of the row (one version), however many fields move
        _move(session, article, "published", actor, now, "publish")
        audit.set_field(
            session, article, ENTITY, "reviewer_id", actor.id, actor.id, now, "publish", _login_names(session)
        )
        _set(session, article, "published_at", now, actor, now, "publish")
        _set(session, article, "review_note", None, actor, now, "publish")
    _finish(session, article, expected_version, now)
    _tell_author(
        session,
        article,
        actor,
        now,
        "published",
        f"{article.ref} ({article.title}) was published by {actor.login}",
    )
    return article


def send_back(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    note: str,
    *,
    now: datetime | None = None,
    expected_version: int | None = None,
) -> KnowledgeArticle:
    """A publisher sends an article in review back to its author (in_review -> draft), saying why (kept as
    its ``review_note`` until it is published); the author is told."""
    now = _now(now)
    article = _begin(session, actor, ref, "send_back", expected_version)
    text = _note("note", note, "why it goes back (what the author should change)")
    _move(session, article, "draft", actor, now, "send_back")
    _set(session, article, "review_note", text, actor, now, "send_back")
    _finish(session, article, expected_version, now)
    _tell_author(
        session,
        article,
        actor,
        now,
        "sent_back",
        f"{article.ref} ({article.title}) was sent back by {actor.login}: {text}",
    )
    return article


def retire(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    reason: str,
    *,
    now: datetime | None = None,
    expected_version: int | None = None,
) -> KnowledgeArticle:
    """A publisher retires a published article (published -> retired), saying why (in the audit trail)."""
    now = _now(now)
    article = _begin(session, actor, ref, "retire", expected_version)
    text = _note("reason", reason, "why it is retired")
    _move(session, article, "retired", actor, now, "retire")
    _set(session, article, "retired_at", now, actor, now, "retire")
    audit.record_for(session, ENTITY, article, actor.id, now, "retire", "reason", text)
    return _finish(session, article, expected_version, now)


def _login_names(session: Session) -> Callable[[Any, Any], tuple[str | None, str | None]]:
    def names(old: int | None, new: int | None) -> tuple[str | None, str | None]:
        found = _logins(session, [old, new])
        return found.get(old) if old is not None else None, found.get(new) if new is not None else None

    return names


def _logins(session: Session, user_ids: Iterable[int | None]) -> dict[int, str]:
    ids = sorted({i for i in user_ids if i is not None})
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.login).where(User.id.in_(ids))).tuples().all())


# --------------------------------------------------------------------------- reading


def uses(session: Session, article_ids: Iterable[int]) -> dict[int, int]:
    """How many tickets link to each article (one grouped read over ``ix_links_target``; 0 for none)."""
    ids = sorted(set(article_ids))
    counts = dict.fromkeys(ids, 0)
    if ids:
        for article_id, source_type, count in session.execute(uses_select(ids)).tuples():
            if source_type == "ticket":
                counts[article_id] += count
    return counts


def uses_select(article_ids: Iterable[int]) -> Select[tuple[int, str, int]]:
    """The statement of :func:`uses`: (article id, source type, links) of the links to the articles, a seek
    on ``ix_links_target`` (the source type is grouped by, not sought: the unique index on the links' pairs
    starts with it and would be read whole instead)."""
    return (
        select(Link.target_id, Link.source_type, func.count())
        .where(Link.target_type == ENTITY, Link.target_id.in_(sorted(article_ids)))
        .group_by(Link.target_id, Link.source_type)
    )


@dataclass(frozen=True)
class ArticleRow:
    """One article in a list."""

    id: int
    ref: str
    title: str
    status: str
    service: str | None
    category: str | None
    author: str | None  # login
    updated_at: datetime
    uses: int
    version: int

    def as_json(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass(frozen=True)
class ArticleList:
    """A list of articles; ``error`` says why the filter text was refused (then there are no rows)."""

    rows: tuple[ArticleRow, ...]
    error: str | None = None


@dataclass(frozen=True)
class Filter:
    """The filter text of :func:`list_articles`, read: words and tokens."""

    words: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()  # logins ("me" is the actor's)


_TOKENS = {
    "svc": "services",
    "service": "services",
    "cat": "categories",
    "status": "statuses",
    "author": "authors",
}


def _status_word(word: str) -> str:
    status = word.strip().lower().replace("-", "_").replace(" ", "_")
    status = {"review": "in_review", "inreview": "in_review"}.get(status, status)
    if status not in STATUSES:
        raise ValidationError("filter", f"no article status {word!r}; the statuses are {', '.join(STATUSES)}")
    return status


def parse_filter(text: str) -> Filter:
    """Words (each must be in the title or the text) and the tokens ``svc:X``, ``cat:X``, ``status:X`` and
    ``author:LOGIN`` (``author:me``); a token may list values with commas (``svc:email,vpn``: either). A
    word with another colon in it is a word. Refused (``ValidationError``): an unknown status, a token
    without a value."""
    found: dict[str, list[str]] = {"services": [], "categories": [], "statuses": [], "authors": []}
    words: list[str] = []
    for part in (text or "").split():
        key, colon, value = part.partition(":")
        slot = _TOKENS.get(key.lower()) if colon else None
        if slot is None:
            words.append(part)
            continue
        values = [v for v in value.split(",") if v.strip()]
        if not values:
            raise ValidationError("filter", f"{part!r} names no value: write e.g. {key}:something")
        for item in values:
            if slot == "statuses":
                item = _status_word(item)
            elif slot != "authors":
                item = item.strip().lower()
            if item not in found[slot]:
                found[slot].append(item)
    return Filter(
        tuple(split_words(words)),
        tuple(found["services"]),
        tuple(found["categories"]),
        tuple(found["statuses"]),
        tuple(found["authors"]),
    )


def _pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _view_condition(actor: Actor, view: str) -> ColumnElement[bool] | None:
    status = KnowledgeArticle.status
    if view == "published":
        return status == "published"
    if view == "review":
        return status == "in_review"
    if view == "retired":
        return status == "retired"
    if view == "drafts":
        mine = and_(KnowledgeArticle.author_id == actor.id, status.in_(("draft", "in_review")))
        return or_(mine, status == "in_review") if _is_publisher(actor) else mine
    if view == "all":
        return None
    raise ValidationError("view", f"no article view {view!r}; the views are {', '.join(VIEWS)}")


def _list_select(session: Session, actor: Actor, view: str, wanted: Filter) -> Select[Any]:
    stmt = (
        select(
            KnowledgeArticle.id,
            KnowledgeArticle.ref,
            KnowledgeArticle.title,
            KnowledgeArticle.status,
            KnowledgeArticle.service,
            KnowledgeArticle.category,
            User.login,
            KnowledgeArticle.updated_at,
            KnowledgeArticle.version,
        )
        .outerjoin(User, User.id == KnowledgeArticle.author_id)
        .order_by(KnowledgeArticle.updated_at.desc(), KnowledgeArticle.id.desc())
    )
    condition = _view_condition(actor, view)
    if condition is not None:
        stmt = stmt.where(condition)
    if wanted.statuses:
        stmt = stmt.where(KnowledgeArticle.status.in_(wanted.statuses))
    if wanted.services:
        stmt = stmt.where(KnowledgeArticle.service.in_(wanted.services))
    if wanted.categories:
        stmt = stmt.where(func.lower(KnowledgeArticle.category).in_(wanted.categories))
    if wanted.authors:
        logins = [actor.login if login.lower() == "me" else login for login in wanted.authors]
        ids = [i for (i,) in session.execute(select(User.id).where(User.login.in_(logins)))]
        stmt = stmt.where(KnowledgeArticle.author_id.in_(ids))
    for word in wanted.words:
        stmt = stmt.where(
            or_(
                *(
                    func.lower(column).like(_pattern(word), escape="\\")
                    for column in (KnowledgeArticle.title, KnowledgeArticle.body, KnowledgeArticle.ref)
                )
            )
        )
    return stmt


def list_articles(
    session: Session, actor: Actor, *, view: str = "published", text: str = "", limit: int = 100
) -> ArticleList:
    """The articles of a view of :data:`VIEWS` matching the filter text (:func:`parse_filter`), most
    recently updated first, at most ``limit`` (1..200), each with its uses.

    Views: ``published``; ``drafts`` (the actor's drafts and articles in review, and for a publisher
    everything in review); ``review`` (in review); ``retired``; ``all``. A refused filter gives no rows and
    says why (``error``); an unknown view is refused (``ValidationError``).
    """
    _view_condition(actor, view)  # an unknown view is refused whatever the filter
    try:
        wanted = parse_filter(text)
    except ValidationError as exc:
        return ArticleList((), str(exc))
    limit = max(1, min(int(limit), LIMIT_MAX))
    found = session.execute(_list_select(session, actor, view, wanted).limit(limit)).tuples().all()
    counts = uses(session, (row[0] for row in found))
    rows = tuple(
        ArticleRow(i, ref, title, status, service, category, author, updated, counts[i], version)
        for i, ref, title, status, service, category, author, updated, version in found
    )
    return ArticleList(rows)


@dataclass(frozen=True)
class HistoryItem:
    """One audited change of an article, as its page lists it."""

    at: datetime
    by: str  # login, or "system"
    action: str
    field: str | None
    old: str | None
    new: str | None


@dataclass(frozen=True)
class ArticleDetail:
    """An article with everything its page and ``itsm kb show`` need, as plain data."""

    id: int
    ref: str
    title: str
    body: str
    service: str | None
    category: str | None
    status: str
    author: str | None  # login
    author_name: str | None
    reviewer: str | None  # login of who published it
    source_ticket: str | None  # the ticket's ref
    review_note: str | None  # why the last review sent it back (until it is published)
    retire_reason: str | None
    created_at: datetime
    published_at: datetime | None
    updated_at: datetime
    retired_at: datetime | None
    version: int
    uses: int  # the tickets linking to it
    linked: tuple[LinkedRecord, ...]  # the records linked with it (the tickets using it first few)
    history: tuple[HistoryItem, ...]  # newest first
    actions: tuple[ActionOffer, ...]  # every action, with why the viewer may not take it (None: may)
    history_warning: str | None = None  # the audit chain does not verify (audit.history_warning)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    def offered(self, action: str) -> bool:
        """Whether the viewer may take ``action`` now."""
        return any(offer.action == action and offer.refusal is None for offer in self.actions)

    def as_json(self) -> dict[str, Any]:
        data = jsonable({k: v for k, v in asdict(self).items() if k not in ("linked", "history", "actions")})
        data["linked"] = [jsonable(asdict(record)) for record in self.linked]
        data["history"] = [jsonable(asdict(item)) for item in self.history]
        data["actions"] = {offer.action: offer.refusal for offer in self.actions}
        return data


def article_detail(session: Session, actor: Actor, ref: str) -> ArticleDetail:
    """The article ``ref`` as plain data: its fields, uses, links, history (newest first, at most 100) and
    the actions ``actor`` is offered (each with its refusal)."""
    article = get_article(session, ref)
    events = audit.history(session, ENTITY, article.id, limit=100)
    users = {
        row.id: (row.login, row.name)
        for row in session.execute(
            select(User.id, User.login, User.name).where(
                User.id.in_(
                    sorted({article.author_id, article.reviewer_id, *(e.actor_id for e in events)} - {None})
                )
            )
        )
    }
    source = (
        session.scalar(select(Ticket.ref).where(Ticket.id == article.source_ticket_id))
        if article.source_ticket_id is not None
        else None
    )
    reason = next((e.new_value for e in events if e.action == "retire" and e.field == "reason"), None)
    author = users.get(article.author_id) if article.author_id is not None else None
    reviewer = users.get(article.reviewer_id) if article.reviewer_id is not None else None
    return ArticleDetail(
        id=article.id,
        ref=article.ref,
        title=article.title,
        body=article.body,
        service=article.service,
        category=article.category,
        status=article.status,
        author=author[0] if author else None,
        author_name=author[1] if author else None,
        reviewer=reviewer[0] if reviewer else None,
        source_ticket=source,
        review_note=article.review_note,
        retire_reason=reason if article.status == "retired" else None,
        created_at=article.created_at,
        published_at=article.published_at,
        updated_at=article.updated_at,
        retired_at=article.retired_at,
        version=article.version,
        uses=uses(session, [article.id])[article.id],
        linked=tuple(linked_records(session, ENTITY, article.id)),
        history=tuple(
            HistoryItem(
                e.at,
                users[e.actor_id][0] if e.actor_id in users else "system",
                e.action,
                e.field,
                e.old_value,
                e.new_value,
            )
            for e in events
        ),
        actions=available_actions(actor, article),
        history_warning=audit.history_warning(session, ENTITY, article.id),
    )
