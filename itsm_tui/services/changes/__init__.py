"""Changes: lifecycle, CAB approval, conflicts at every step and the calendar's data (the reminder job,
:mod:`itsm_tui.jobs.change_reminders`, builds on them).

Lifecycle (SPEC): draft -> submitted -> assessed -> approved | rejected -> scheduled -> implementing ->
implemented | failed | backed_out -> review -> closed.

- A **standard** change is raised from a pre-approved template of changes.toml (its risk, plans, services
  and longest duration) and is approved on submit: no CAB.
- A **normal** change is assessed by a change manager, which asks the CAB members assigned to its services
  (changes.toml ``[approval]``); it is approved when the rule is met (``all`` of them, or ``quorum`` N of
  the M asked) and rejected once a rejection makes the rule unreachable.
- An **emergency** change is approved (or rejected) by a change manager or a member of the emergency CAB
  (changes.toml ``[emergency] cab``), without assessment. One nobody could approve is still logged, but it
  says "No possible approver" and the change managers and shift leads are told.
- **Four eyes**: who raised or implements a change is never among its approvers, whatever the configuration
  lists (they are skipped, and the change says so); a decision of theirs never counts.
- **Approval holds for a window**: moving an approved or scheduled normal change sends it back to the CAB
  (assessed), an emergency one back to its approvers (submitted), each asked again; decisions already given
  on a change still being decided are asked again too. A standard change moves within its template's
  longest duration and stays pre-approved.
- A change **begins inside its window** (from changes.toml ``[implementation] early_start_minutes`` before
  its planned start until its planned end); outside it only a change manager begins it, with an override
  reason (audited).
- A rejection needs a reason. A change inside a blackout is refused at submit, schedule and reschedule,
  unless it is an emergency change whose change manager recorded an override reason (audited).
- A failed, backed-out or emergency change needs a post-implementation review (notes) before it closes.
- Until its approval a change is **edited** (who raised it while a draft or submitted, a change manager
  until approved; checked as creating and submitting it are, its approvers asked again) or **withdrawn** by
  who raised it; a change manager **cancels** one not yet implementing, saying why. Both end it.

Every function takes a session, the configuration and the acting user; permissions are checked here (a
refusal names the role needed); every mutation writes its audit events in the same session; a save based on a
stale version is refused with :class:`StaleEdit`. Screens get plain dataclasses, never ORM objects.

The modules, each importing only those above it: ``rules`` (types, transitions, actions), ``reading``
(changes by reference, lists, shared lookups), ``helpers`` (versions, audited fields, validation, the start
window), ``approvers`` (who may approve a change, and who never may), ``permissions`` (one guard per action,
what a viewer may do, and the start of every step), ``risk`` (the risk questionnaire: suggestions, the
score), ``presenter``
(:func:`view`), ``creating`` (new changes and previews), ``notices`` (conflict and approval notifications),
``approvals`` (the CAB), ``lifecycle`` (the other steps), ``editing`` (edit, withdraw, cancel),
``calendar_data`` and ``windows`` (maintenance windows and blackouts), ``slots`` (the next free slot).
Callers import from the package.
"""

from __future__ import annotations

from itsm_tui.services.changes.approvals import (
    approval_progress,
    approve,
    approvers_for,
    assess,
    decide,
    reject,
    required_approvals,
    send_back,
)
from itsm_tui.services.changes.approvers import (
    Candidate,
    Pool,
    approver_notice,
    barred_ids,
    choose_cab,
    choose_emergency,
    pool_of,
)
from itsm_tui.services.changes.cab import (
    Agenda,
    AgendaItem,
    Meeting,
    agenda,
    current_meeting,
    meeting_for,
    meeting_on,
    meetings,
    minutes,
    neighbour,
    record_decision,
)
from itsm_tui.services.changes.calendar_data import CalendarData, calendar, fingerprint
from itsm_tui.services.changes.creating import create_change, preview, preview_move
from itsm_tui.services.changes.editing import cancel, edit_change, preview_edit, withdraw
from itsm_tui.services.changes.helpers import _check_version as _check_version  # patch it in .helpers
from itsm_tui.services.changes.helpers import outside_window, parse_targets
from itsm_tui.services.changes.impact import Impact, impact_of, targets_scope
from itsm_tui.services.changes.lifecycle import (
    close,
    complete,
    reschedule,
    schedule,
    start_implementation,
    start_review,
    submit,
)
from itsm_tui.services.changes.notices import (
    notify_conflicts,
    notify_emergency_approval,
    notify_unapprovable,
)
from itsm_tui.services.changes.permissions import (
    GUARDS,
    Guard,
    available_actions,
    create_refusal,
    enforce,
    guard_create,
)
from itsm_tui.services.changes.presenter import ApprovalView, ChangeView, HistoryItem, view
from itsm_tui.services.changes.reading import (
    ChangeRow,
    get_change,
    list_changes,
    planned_of,
    ref_of,
    review_required,
    upcoming,
    version_of,
)
from itsm_tui.services.changes.risk import Questionnaire, questionnaire, suggested_answers
from itsm_tui.services.changes.rules import (
    ACTIONS,
    OUTCOMES,
    PRE_IMPLEMENTATION,
    RISKS,
    TITLE_MAX,
    TRANSITIONS,
    TYPES,
    ChangeBlocked,
    OutsideWindow,
)
from itsm_tui.services.changes.slots import Slot, SlotQuery, find_slots, free_slots, slots_for
from itsm_tui.services.changes.windows import (
    KEEP,
    BlackoutRow,
    Blocked,
    BlockedChange,
    WindowLists,
    WindowRow,
    add_blackout,
    add_window,
    blocked_by_blackout,
    blocked_by_saved,
    delete_blackout,
    delete_window,
    edit_blackout,
    edit_window,
    notify_blocked,
    window_lists,
    window_refusal,
)

__all__ = [
    "ACTIONS",
    "GUARDS",
    "KEEP",
    "OUTCOMES",
    "PRE_IMPLEMENTATION",
    "RISKS",
    "TITLE_MAX",
    "TRANSITIONS",
    "TYPES",
    "Agenda",
    "AgendaItem",
    "ApprovalView",
    "BlackoutRow",
    "Blocked",
    "BlockedChange",
    "CalendarData",
    "Candidate",
    "ChangeBlocked",
    "ChangeRow",
    "ChangeView",
    "Guard",
    "HistoryItem",
    "Impact",
    "Meeting",
    "OutsideWindow",
    "Pool",
    "Questionnaire",
    "Slot",
    "SlotQuery",
    "WindowLists",
    "WindowRow",
    "add_blackout",
    "add_window",
    "agenda",
    "approval_progress",
    "approve",
    "approver_notice",
    "approvers_for",
    "assess",
    "available_actions",
    "barred_ids",
    "blocked_by_blackout",
    "blocked_by_saved",
    "calendar",
    "cancel",
    "choose_cab",
    "choose_emergency",
    "close",
    "complete",
    "create_change",
    "create_refusal",
    "current_meeting",
    "decide",
    "delete_blackout",
    "delete_window",
    "edit_blackout",
    "edit_change",
    "edit_window",
    "enforce",
    "find_slots",
    "fingerprint",
    "free_slots",
    "get_change",
    "guard_create",
    "impact_of",
    "list_changes",
    "meeting_for",
    "meeting_on",
    "meetings",
    "minutes",
    "neighbour",
    "notify_blocked",
    "notify_conflicts",
    "notify_emergency_approval",
    "notify_unapprovable",
    "outside_window",
    "parse_targets",
    "planned_of",
    "pool_of",
    "preview",
    "preview_edit",
    "preview_move",
    "questionnaire",
    "record_decision",
    "ref_of",
    "reject",
    "required_approvals",
    "reschedule",
    "review_required",
    "schedule",
    "send_back",
    "slots_for",
    "start_implementation",
    "start_review",
    "submit",
    "suggested_answers",
    "targets_scope",
    "upcoming",
    "version_of",
    "view",
    "window_lists",
    "window_refusal",
    "withdraw",
]
