"""Incidents and service requests: lifecycle, priority, assignment, replies and notes, links, resolution.

Every function takes a session, the validated configuration and the acting user; every mutation writes its
audit events in the same session (through :mod:`itsm_tui.services.audit`), and a save based on a stale
version is refused (:class:`StaleEdit`); a take takes a ticket only while nobody has it
(:class:`AlreadyTaken` names who does). Who may do what is decided by one guard per action
(:mod:`.guards`): the service functions call it before they look at their inputs, and
:func:`available_actions` asks the same guards, so offered and allowed cannot drift apart.

The modules, lowest first: :mod:`.references`, :mod:`.reading`, :mod:`.helpers`, :mod:`.guards`, then
:mod:`.major` (announcing major incidents), :mod:`.creating`, :mod:`.editing`, :mod:`.taking` (taking the
next ticket of one's groups), :mod:`.lifecycle`, :mod:`.links`, :mod:`.presenter` (a ticket's page as
plain data) and :mod:`.bulk` (one action over many tickets, each in its own transaction). They import one
another directly, never this package, so the package can name them all: each name is imported from its
module when it is first asked for (PEP 562), so that reading a ticket list (the queue) does not load
the modules that write.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from itsm_tui.services.tickets.bulk import (
        MARK_LIMIT,
        BulkResult,
        BulkStopped,
        apply_each,
    )
    from itsm_tui.services.tickets.creating import (
        create_ticket,
    )
    from itsm_tui.services.tickets.editing import (
        EDITABLE,
        add_entry,
        assign,
        escalate,
        escalate_to_lead,
        move_to_group,
        take,
        update_fields,
    )
    from itsm_tui.services.tickets.guards import (
        ACTIONS,
        GUARDS,
        RATEABLE,
        TRANSITIONS,
        AlreadyTaken,
        Guard,
        TicketFacts,
        allowed_transitions,
        available_actions,
        enforce,
        guard_apply_workaround,
        guard_assign,
        guard_cancel,
        guard_edit,
        guard_escalate,
        guard_escalate_lead,
        guard_link,
        guard_note,
        guard_rate,
        guard_reopen,
        guard_reply,
        guard_resolve,
        guard_take,
        guard_transition,
        move_action,
        role_actions,
    )
    from itsm_tui.services.tickets.helpers import (
        TITLE_MAX,
    )
    from itsm_tui.services.tickets.lifecycle import (
        PENDING_REASONS,
        cancel,
        close,
        rate,
        reopen,
        resolve,
        resolve_by_problem,
        transition,
    )
    from itsm_tui.services.tickets.links import (
        LINK_TARGETS,
        LinkedRecord,
        RecordPage,
        link,
        linked_records,
        links_of,
        record_page,
    )
    from itsm_tui.services.tickets.major import (
        MajorAnnouncement,
        announce_major,
    )
    from itsm_tui.services.tickets.presenter import (
        SLA_TARGETS,
        TicketDetail,
        detail,
    )
    from itsm_tui.services.tickets.reading import (
        TicketRow,
        TicketView,
        TimelineItem,
        entries,
        find_ticket_by_id,
        get_ticket,
        list_tickets,
        timeline,
        view,
    )
    from itsm_tui.services.tickets.references import (
        PREFIX,
        next_reference,
    )
    from itsm_tui.services.tickets.taking import (
        NothingToTake,
        take_next,
    )

# Each public name and the module that defines it.
_MODULE_OF: dict[str, str] = {
    "MARK_LIMIT": "bulk",
    "BulkResult": "bulk",
    "BulkStopped": "bulk",
    "apply_each": "bulk",
    "create_ticket": "creating",
    "EDITABLE": "editing",
    "add_entry": "editing",
    "assign": "editing",
    "escalate": "editing",
    "escalate_to_lead": "editing",
    "move_to_group": "editing",
    "take": "editing",
    "update_fields": "editing",
    "ACTIONS": "guards",
    "GUARDS": "guards",
    "RATEABLE": "guards",
    "TRANSITIONS": "guards",
    "AlreadyTaken": "guards",
    "Guard": "guards",
    "TicketFacts": "guards",
    "allowed_transitions": "guards",
    "available_actions": "guards",
    "enforce": "guards",
    "guard_apply_workaround": "guards",
    "guard_assign": "guards",
    "guard_cancel": "guards",
    "guard_edit": "guards",
    "guard_escalate": "guards",
    "guard_escalate_lead": "guards",
    "guard_link": "guards",
    "guard_note": "guards",
    "guard_rate": "guards",
    "guard_reopen": "guards",
    "guard_reply": "guards",
    "guard_resolve": "guards",
    "guard_take": "guards",
    "guard_transition": "guards",
    "move_action": "guards",
    "role_actions": "guards",
    "TITLE_MAX": "helpers",
    "PENDING_REASONS": "lifecycle",
    "cancel": "lifecycle",
    "close": "lifecycle",
    "rate": "lifecycle",
    "reopen": "lifecycle",
    "resolve": "lifecycle",
    "resolve_by_problem": "lifecycle",
    "transition": "lifecycle",
    "LINK_TARGETS": "links",
    "LinkedRecord": "links",
    "RecordPage": "links",
    "link": "links",
    "linked_records": "links",
    "links_of": "links",
    "record_page": "links",
    "MajorAnnouncement": "major",
    "announce_major": "major",
    "SLA_TARGETS": "presenter",
    "TicketDetail": "presenter",
    "detail": "presenter",
    "TicketRow": "reading",
    "TicketView": "reading",
    "TimelineItem": "reading",
    "entries": "reading",
    "find_ticket_by_id": "reading",
    "get_ticket": "reading",
    "list_tickets": "reading",
    "timeline": "reading",
    "view": "reading",
    "PREFIX": "references",
    "next_reference": "references",
    "NothingToTake": "taking",
    "take_next": "taking",
}

__all__ = [
    "ACTIONS",
    "EDITABLE",
    "GUARDS",
    "LINK_TARGETS",
    "MARK_LIMIT",
    "PENDING_REASONS",
    "PREFIX",
    "RATEABLE",
    "SLA_TARGETS",
    "TITLE_MAX",
    "TRANSITIONS",
    "AlreadyTaken",
    "BulkResult",
    "BulkStopped",
    "Guard",
    "LinkedRecord",
    "MajorAnnouncement",
    "NothingToTake",
    "RecordPage",
    "TicketDetail",
    "TicketFacts",
    "TicketRow",
    "TicketView",
    "TimelineItem",
    "add_entry",
    "allowed_transitions",
    "announce_major",
    "apply_each",
    "assign",
    "available_actions",
    "cancel",
    "close",
    "create_ticket",
    "detail",
    "enforce",
    "entries",
    "escalate",
    "escalate_to_lead",
    "find_ticket_by_id",
    "get_ticket",
    "guard_apply_workaround",
    "guard_assign",
    "guard_cancel",
    "guard_edit",
    "guard_escalate",
    "guard_escalate_lead",
    "guard_link",
    "guard_note",
    "guard_rate",
    "guard_reopen",
    "guard_reply",
    "guard_resolve",
    "guard_take",
    "guard_transition",
    "link",
    "linked_records",
    "links_of",
    "list_tickets",
    "move_action",
    "move_to_group",
    "next_reference",
    "rate",
    "record_page",
    "reopen",
    "resolve",
    "resolve_by_problem",
    "role_actions",
    "take",
    "take_next",
    "timeline",
    "transition",
    "update_fields",
    "view",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # asked for once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))
