"""Changes: lifecycle, CAB approval, conflicts at every step and the calendar's data (the reminder job,
:mod:`itsm_tui.jobs.change_reminders`, builds on them).

Lifecycle (SPEC): draft -> submitted -> assessed -> approved | rejected -> scheduled -> implementing ->
implemented | failed | backed_out -> review -> closed.

- A **standard** change is raised from a pre-approved template of changes.toml (its risk, plans, services
  and longest duration) and is approved on submit: no CAB.
- A **normal** change is assessed by a change manager, which asks the CAB members assigned to its services
  (changes.toml ``[approval]``); it is approved when the rule is met (``all`` of them, or ``quorum`` N of
  the M asked) and rejected once a rejection makes the rule unreachable.
- An **emergency** change is approved (or rejected) by a change manager, without assessment.
- A rejection needs a reason. A change inside a blackout is refused at submit, schedule and reschedule,
  unless it is an emergency change whose change manager recorded an override reason (audited).
- A failed, backed-out or emergency change needs a post-implementation review (notes) before it closes.

Every function takes a session, the configuration and the acting user; permissions are checked here (a
refusal names the role needed); every mutation writes its audit events in the same session; a save based on a
stale version is refused with :class:`StaleEdit`. Screens get plain dataclasses, never ORM objects.

The modules, each importing only those above it: ``rules`` (types, transitions, actions), ``reading``
(changes by reference, lists, shared lookups), ``helpers`` (versions, audited fields, validation),
``permissions`` (one guard per action, what a viewer may do, and the start of every step), ``presenter``
(:func:`view`), ``creating`` (new changes and previews), ``notices`` (conflict and approval notifications),
``approvals`` (the CAB), ``lifecycle`` (the other steps), ``calendar_data`` and ``windows`` (maintenance
windows and blackouts). Callers import from the package.
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
)
from itsm_tui.services.changes.calendar_data import CalendarData, calendar, fingerprint
from itsm_tui.services.changes.creating import create_change, preview, preview_move
from itsm_tui.services.changes.helpers import _check_version as _check_version  # patch it in .helpers
from itsm_tui.services.changes.helpers import parse_targets
from itsm_tui.services.changes.lifecycle import (
    close,
    complete,
    reschedule,
    schedule,
    start_implementation,
    start_review,
    submit,
)
from itsm_tui.services.changes.notices import notify_conflicts, notify_emergency_approval
from itsm_tui.services.changes.permissions import GUARDS, Guard, available_actions, enforce
from itsm_tui.services.changes.presenter import ApprovalView, ChangeView, HistoryItem, view
from itsm_tui.services.changes.reading import (
    ChangeRow,
    get_change,
    list_changes,
    planned_of,
    ref_of,
    review_required,
    upcoming,
)
from itsm_tui.services.changes.rules import (
    ACTIONS,
    OUTCOMES,
    PRE_IMPLEMENTATION,
    RISKS,
    TITLE_MAX,
    TRANSITIONS,
    TYPES,
    ChangeBlocked,
)
from itsm_tui.services.changes.windows import add_blackout, add_window

__all__ = [
    "ACTIONS",
    "GUARDS",
    "OUTCOMES",
    "PRE_IMPLEMENTATION",
    "RISKS",
    "TITLE_MAX",
    "TRANSITIONS",
    "TYPES",
    "ApprovalView",
    "CalendarData",
    "ChangeBlocked",
    "ChangeRow",
    "ChangeView",
    "Guard",
    "HistoryItem",
    "add_blackout",
    "add_window",
    "approval_progress",
    "approve",
    "approvers_for",
    "assess",
    "available_actions",
    "calendar",
    "close",
    "complete",
    "create_change",
    "decide",
    "enforce",
    "fingerprint",
    "get_change",
    "list_changes",
    "notify_conflicts",
    "notify_emergency_approval",
    "parse_targets",
    "planned_of",
    "preview",
    "preview_move",
    "ref_of",
    "reject",
    "required_approvals",
    "reschedule",
    "review_required",
    "schedule",
    "start_implementation",
    "start_review",
    "submit",
    "upcoming",
    "view",
]
