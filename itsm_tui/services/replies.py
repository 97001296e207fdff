"""Canned replies and work-note templates (``replies.toml``): which a form offers, their text for a ticket.

The configuration has checked every placeholder on load (``config.REPLY_PLACEHOLDERS``); here they are
filled from the ticket as shown and from the actor. What people wrote (a requester's name, a title) goes in
as it is, once: it is never read again as a placeholder, so a requester called ``{ref}`` stays ``{ref}``.
"""

from __future__ import annotations

import string

from itsm_tui.config import DeskConfig, ReplyTemplate
from itsm_tui.services.tickets import TicketView
from itsm_tui.services.users import Actor


def offered(config: DeskConfig, public: bool) -> tuple[ReplyTemplate, ...]:
    """The templates the form of a public reply (``public``) or of an internal work note lists, in the
    file's order."""
    return tuple(template for template in config.reply_templates if template.offered_for(public))


def values(ticket: TicketView, actor: Actor, config: DeskConfig) -> dict[str, str]:
    """What each placeholder stands for on ``ticket``, written by ``actor``.

    ``{group}`` is the support group's name (its code if the catalog no longer has it; empty without one),
    ``{agent}`` the actor's name (the login if the user has no name)."""
    group = config.groups.get(ticket.group) if ticket.group else None
    return {
        "ref": ticket.ref,
        "title": ticket.title,
        "requester": ticket.requester,
        "agent": actor.name or actor.login,
        "group": group.name if group else (ticket.group or ""),
    }


def render(template: ReplyTemplate, ticket: TicketView, actor: Actor, config: DeskConfig) -> str:
    """The template's text with its placeholders filled for ``ticket`` and ``actor``; ``{{`` and ``}}``
    give a brace.

    Built piece by piece from the parsed template rather than with ``str.format``: the values are only
    ever appended, never parsed, whatever braces or markup they hold."""
    filled = values(ticket, actor, config)
    pieces: list[str] = []
    for text, name, _spec, _conversion in string.Formatter().parse(template.text):
        pieces.append(text)
        if name is not None:
            pieces.append(filled[name])
    return "".join(pieces)
