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
another directly, never this package, so the package can name them all.
"""

from __future__ import annotations

from itsm_tui.services.tickets.bulk import MARK_LIMIT, BulkResult, BulkStopped, apply_each
from itsm_tui.services.tickets.creating import create_ticket
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
from itsm_tui.services.tickets.helpers import TITLE_MAX
from itsm_tui.services.tickets.lifecycle import (
    PENDING_REASONS,
    cancel,
    close,
    rate,
    reopen,
    resolve,
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
from itsm_tui.services.tickets.major import MajorAnnouncement, announce_major
from itsm_tui.services.tickets.presenter import SLA_TARGETS, TicketDetail, detail
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
from itsm_tui.services.tickets.references import PREFIX, next_reference
from itsm_tui.services.tickets.taking import NothingToTake, take_next

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
    "role_actions",
    "take",
    "take_next",
    "timeline",
    "transition",
    "update_fields",
    "view",
]
