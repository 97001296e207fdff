"""The grammar of a change to a ticket, shared by ``itsm ticket update`` and the console's ``:`` line.

An :class:`Update` is what ``itsm ticket update`` takes (its options, parsed by argparse) and what a ``:``
command such as ``:assign mlopez`` or ``:status pending customer`` says (parsed by :func:`parse`);
:func:`apply` makes it, through the ticket services, in the caller's transaction, so both refuse in the
same words. The ``:`` line also knows a few console commands that change nothing (:class:`Open`,
:class:`ShowView`, :class:`Help`), and what to offer as the next word (:func:`candidates`).

No Textual here, no argparse: the CLI builds an :class:`Update` from its options, the console from a line.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from itsm_tui.config import DeskConfig
from itsm_tui.constants import LEVELS
from itsm_tui.models import TICKET_STATUSES, Ticket, User
from itsm_tui.services.errors import ServiceError, ValidationError
from itsm_tui.services.tickets.reading import TicketView, get_ticket, view
from itsm_tui.services.users import Actor


class CommandError(ServiceError):
    """A command that does not say what to do (a word missing, an unknown verb); nothing was written."""


FIELDS = ("title", "description", "requester", "category", "service", "ci", "impact", "urgency")
"""The fields an update may set, as ``itsm ticket update --FIELD VALUE`` and ``:FIELD VALUE`` name them."""


@dataclass(frozen=True)
class Update:
    """A change to one ticket: what ``itsm ticket update REF`` does, in the order it does it (fields,
    take or assign, escalate, reply, note, status, links, rating), in one transaction."""

    fields: Mapping[str, str] = field(default_factory=dict)
    take: bool = False
    assign: str | None = None
    group: str | None = None  # with ``assign``: the group to assign to
    escalate: str | None = None  # the group to escalate to; "" for the service's support group
    reason: str | None = None  # why (escalate, pending, cancelled, a reopen)
    reply: str | None = None
    note: str | None = None
    status: str | None = None
    code: str | None = None  # with status resolved: the resolution code
    resolution_note: str | None = None
    links: tuple[str, ...] = ()
    rate: int | None = None


@dataclass(frozen=True)
class Open:
    """``:open REF``: show that ticket."""

    ref: str


@dataclass(frozen=True)
class ShowView:
    """``:view NAME``: show a view of the queue (a built-in one, or a saved one)."""

    name: str


@dataclass(frozen=True)
class Help:
    """``:help``: list the commands."""


Command = Update | Open | ShowView | Help


# verb -> its words: what a refusal of a line missing some shows, and the order verbs are offered in.
VERBS: dict[str, str] = {
    "take": "",
    "assign": "LOGIN [GROUP]",
    "escalate": "GROUP|- REASON...",
    "status": "STATUS [REASON...]",
    "reply": "TEXT...",
    "note": "TEXT...",
    "link": "REF [REF...]",
    "rate": "1-5",
    **{name: "TEXT..." for name in FIELDS if name not in ("impact", "urgency")},
    "impact": "high|medium|low",
    "urgency": "high|medium|low",
    "open": "REF",
    "view": "NAME",
    "help": "",
}

HELP: tuple[tuple[str, str], ...] = (
    (":take", "take it if nobody has it yet"),
    (":assign LOGIN [GROUP]", "give it to someone (shift leads)"),
    (":escalate GROUP|- REASON...", "hand it to a group (-: the service's group)"),
    (":status STATUS [REASON...]", "pending customer, resolved CODE NOTE..., ..."),
    (":reply TEXT...  :note TEXT...", "a public reply, an internal work note"),
    (":link REF [REF...]", "to a problem, known error, change, ticket"),
    (":rate 1-5", "the requester's satisfaction"),
    (":title TEXT...", "also :description :requester :service :ci ..."),
    (":impact|urgency LEVEL", "high, medium or low (the priority follows)"),
    (":open REF", "open that ticket (INC0000042, inc42, 42)"),
    (":view NAME", "a queue view: breaching, my_work, ... or yours"),
)
"""The ``:help`` list: a line's words, what it does."""


def usage(verb: str) -> str:
    words = VERBS[verb]
    return f":{verb} {words}" if words else f":{verb}"


# --------------------------------------------------------------------------- the : line


def parse(text: str) -> Command:
    """The command a ``:`` line says (the leading ``:`` may be left out), or :class:`CommandError` saying
    what is missing. The text of a reply or note is the rest of the line as typed."""
    line = text.strip().removeprefix(":").strip()
    if not line:
        raise CommandError("type a command, e.g. :assign LOGIN; :help lists them")
    verb, _, rest = line.partition(" ")
    verb, rest = verb.lower(), rest.strip()
    words = rest.split()
    if verb not in VERBS:
        nearest = difflib.get_close_matches(verb, list(VERBS), n=1)
        hint = f" (did you mean :{nearest[0]}?)" if nearest else ""
        shown = verb if len(verb) <= 30 else verb[:29] + "…"  # a pasted paragraph is no verb
        raise CommandError(f"no command :{shown}{hint}; :help lists them")

    def needs(count: int, most: int | None = None) -> None:
        if len(words) < count or (most is not None and len(words) > most):
            raise CommandError(f"use {usage(verb)}")

    if verb == "take":
        needs(0, 0)
        return Update(take=True)
    if verb == "assign":
        needs(1, 2)
        return Update(assign=words[0], group=words[1] if len(words) > 1 else None)
    if verb == "escalate":
        needs(1)
        group = "" if words[0] == "-" else words[0]
        return Update(escalate=group, reason=rest.partition(" ")[2].strip() or None)
    if verb == "status":
        needs(1)
        status, after = words[0].lower(), rest.partition(" ")[2].strip()
        if status == "resolved":
            code, _, note = after.partition(" ")
            return Update(status=status, code=code or None, resolution_note=note.strip() or None)
        return Update(status=status, reason=after or None)
    if verb in ("reply", "note"):
        needs(1)
        return Update(reply=rest) if verb == "reply" else Update(note=rest)
    if verb == "link":
        needs(1)
        return Update(links=tuple(words))
    if verb == "rate":
        needs(1, 1)
        if not (words[0].isascii() and words[0].isdigit()):  # "²" is a digit to str.isdigit, not to int
            raise CommandError(f"use {usage(verb)}: the rating is a whole number from 1 to 5")
        return Update(rate=int(words[0]))
    if verb in FIELDS:
        needs(1)
        return Update(fields={verb: rest})
    if verb == "open":
        needs(1, 1)
        return Open(words[0])
    if verb == "view":
        needs(1)
        return ShowView(rest)
    needs(0, 0)
    return Help()


# --------------------------------------------------------------------------- making it


def check(update: Update) -> None:
    """Refuse an update whose parts do not go together, before anything is read (the ``:`` line cannot
    say these; ``itsm ticket update`` can)."""
    if update.group and not update.assign:
        raise CommandError("--group goes with --assign (to escalate to a group use --escalate GROUP)")
    if update.take and update.assign:
        raise CommandError("use either --take or --assign, not both")
    parts = (
        update.fields,
        update.take,
        update.assign,
        update.escalate is not None,
        update.reply,
        update.note,
        update.status,
        update.links,
        update.rate is not None,
    )
    if not any(parts):
        raise CommandError("nothing to change; see `itsm ticket update --help`")


def apply(
    session: Session,
    config: DeskConfig,
    actor: Actor,
    ref: str,
    update: Update,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> TicketView:
    """Make ``update`` on the ticket ``ref`` in the caller's transaction, each part through its ticket
    service (its guard, its rules, its audit rows); the first refusal stops it (the caller rolls back).

    ``expected_version``: refuse if the ticket is no longer at that version; each part then builds on the
    version the one before it made (or it would be refused as stale, naming the caller's own change)."""
    # The services that write, loaded with the first command run, not with the console's command line.
    from itsm_tui.services.tickets.editing import add_entry, assign, escalate, take, update_fields
    from itsm_tui.services.tickets.lifecycle import rate, transition
    from itsm_tui.services.tickets.links import link

    check(update)
    ref = get_ticket(session, ref).ref
    version = expected_version

    def step(result: Ticket) -> None:
        nonlocal version
        if version is not None:
            version = result.version  # the next part builds on this one

    if update.fields:
        step(update_fields(session, config, actor, ref, expected_version=version, now=now, **update.fields))
    if update.take:  # only if nobody has it yet: a take that came too late says who has it
        step(take(session, config, actor, ref, now=now))
    elif update.assign:  # the explicit assign: version-checked, the previous assignee is told
        step(
            assign(
                session,
                config,
                actor,
                ref,
                assignee=update.assign,
                group=update.group,
                expected_version=version,
                now=now,
            )
        )
    if update.escalate is not None:
        step(
            escalate(
                session,
                config,
                actor,
                ref,
                group=update.escalate or None,
                reason=update.reason or "",
                expected_version=version,
                now=now,
            )
        )
    # A reply or note moves the ticket to a new version too: the parts after it build on that one, or they
    # would be refused as stale, naming the caller's own entry as the change they missed.
    for body, public in ((update.reply, True), (update.note, False)):
        if body:
            add_entry(
                session, config, actor, ref, body=body, public=public, expected_version=version, now=now
            )
            step(get_ticket(session, ref))
    if update.status:
        step(
            transition(
                session,
                config,
                actor,
                ref,
                update.status,
                reason=update.reason,
                code=update.code,
                note=update.resolution_note,
                expected_version=version,
                now=now,
            )
        )
    for target in update.links:
        link(session, actor, ref, target, now=now)
    if update.rate is not None:
        rate(session, actor, ref, score=update.rate, now=now)
    return view(session, get_ticket(session, ref))


def done_text(update: Update, view: TicketView) -> str:
    """What a made update did, in a line: ``INC0000042 assigned to mlopez.``"""
    if update == Update(take=True):
        return f"{view.ref} is yours."
    done: list[str] = []
    if update.fields:
        done.append(", ".join(update.fields) + " set")
    if update.take:
        done.append("taken")
    elif update.assign:
        done.append(f"assigned to {update.assign}")
    if update.escalate is not None:
        done.append(f"escalated to {view.group or '?'}")
    if update.reply:
        done.append("reply sent")
    if update.note:
        done.append("work note added")
    if update.status:
        done.append(f"now {view.status}")
    if update.links:
        done.append("linked to " + ", ".join(target.upper() for target in update.links))
    if update.rate is not None:
        done.append(f"rated {update.rate}")
    return f"{view.ref} {', '.join(done)}."


def refusal_text(error: ServiceError) -> str:
    """A refusal as the command line prints it (after ``itsm: error:``): a field's rule names the field."""
    if isinstance(error, ValidationError):
        return f"{error.field}: {error}"
    return str(error)


# --------------------------------------------------------------------------- completion

LOGIN_LIMIT = 2000
"""The most logins offered for completion (a desk has a few hundred people)."""


def logins(session: Session, limit: int = LOGIN_LIMIT) -> list[str]:
    """The logins of the desk's active users, in order (read along the unique index of logins)."""
    stmt = select(User.login).where(User.active.is_(True)).order_by(User.login).limit(limit)
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class Vocabulary:
    """The words the ``:`` line completes, besides its verbs: the desk's logins, groups, services and
    resolution codes, the views, and the references the screen shows (or the line was given before)."""

    logins: Sequence[str] = ()
    groups: Sequence[str] = ()
    services: Sequence[str] = ()
    codes: Sequence[str] = ()
    views: Sequence[str] = ()
    refs: Sequence[str] = ()


def _word_kinds(verb: str, before: list[str]) -> Sequence[str] | str | None:
    """What the word after ``before`` (the words after the verb) names: a vocabulary attribute, a fixed
    list of words, or None for free text."""
    position = len(before)
    if verb == "assign":
        return ("logins", "groups", None)[min(position, 2)]
    if verb == "escalate":
        return "groups" if position == 0 else None
    if verb == "status":
        if position == 0:
            return TICKET_STATUSES
        if position == 1:
            from itsm_tui.services.tickets.lifecycle import PENDING_REASONS

            return {"pending": PENDING_REASONS, "resolved": "codes"}.get(before[0].lower())
        return None
    if verb in ("link", "open"):
        return "refs" if verb == "link" or position == 0 else None
    if verb == "view":
        return "views" if position == 0 else None
    if verb in ("impact", "urgency"):
        return LEVELS if position == 0 else None
    if verb == "service":
        return "services" if position == 0 else None
    return None


def candidates(text: str, vocabulary: Vocabulary) -> tuple[int, list[str]]:
    """What may complete the word ``text`` ends in (a leading ``:`` may be typed or not): where that word
    starts in ``text``, and the words that start like it (in any case), in the vocabulary's order, at most
    50; none where the word is free text."""
    body = text.removeprefix(":")
    start = len(body) - len(body.split(" ")[-1])
    typed, words = body[start:], body[:start].split()
    offered: Sequence[str]
    if not words:  # the verb itself
        offered = list(VERBS)
    else:
        verb = words[0].lower()
        kind = _word_kinds(verb, words[1:])
        if kind is None:
            return len(text) - len(typed), []
        offered = getattr(vocabulary, kind) if isinstance(kind, str) else kind
        if verb == "escalate":
            offered = ["-", *offered]
    folded = typed.casefold()
    found = [word for word in offered if word.casefold().startswith(folded)]
    return len(text) - len(typed), list(dict.fromkeys(found))[:50]
