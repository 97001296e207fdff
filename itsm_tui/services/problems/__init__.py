"""Problem management: problems from raising to closing, their analysis, links, known errors and the
candidate problems found in incident clusters.

Lifecycle (:mod:`.rules`): new -> investigating -> known_error -> fix_in_progress -> resolved -> closed, with
cancelled and duplicate (each with a reason) ending an unresolved problem, and a resolved one reopened when
its fix did not hold. A known error is published from the problem's root cause and workaround; resolving
retires it and offers to resolve the open linked incidents, each in a transaction of its own; closing needs
the verification note.

The modules, each importing only those above it: ``rules``, ``reading`` (by reference, the list),
``guards`` (one per action; what a viewer is offered), ``lifecycle`` (every step), ``presenter``
(:func:`detail`), ``candidates`` (incident clusters). Callers import from the package.
"""

from __future__ import annotations

from itsm_tui.services.problems.guards import (
    GUARDS,
    ActionOffer,
    available_actions,
    create_refusal,
    enforce,
    published_known_error,
)
from itsm_tui.services.problems.lifecycle import (
    cancel,
    categories_of,
    close,
    create_problem,
    link_change,
    link_incidents,
    mark_duplicate,
    open_linked_incidents,
    publish_known_error,
    reopen,
    resolve,
    resolve_linked_incidents,
    retire_known_error,
    start_fix,
    start_investigation,
    unlink_incident,
    update_problem,
    whys_of,
)
from itsm_tui.services.problems.presenter import (
    HistoryItem,
    KnownErrorRef,
    LinkedChange,
    LinkedIncident,
    ProblemDetail,
    detail,
)
from itsm_tui.services.problems.reading import (
    VIEWS,
    ProblemList,
    ProblemRow,
    get_problem,
    list_problems,
    normal_ref,
)
from itsm_tui.services.problems.rules import (
    ACTION_LABELS,
    ACTIONS,
    CAUSE_CATEGORIES,
    OPEN_STATUSES,
    STATUS_LABELS,
    STATUSES,
    TRANSITIONS,
)

__all__ = [
    "ACTIONS",
    "ACTION_LABELS",
    "CAUSE_CATEGORIES",
    "GUARDS",
    "OPEN_STATUSES",
    "STATUSES",
    "STATUS_LABELS",
    "TRANSITIONS",
    "VIEWS",
    "ActionOffer",
    "HistoryItem",
    "KnownErrorRef",
    "LinkedChange",
    "LinkedIncident",
    "ProblemDetail",
    "ProblemList",
    "ProblemRow",
    "available_actions",
    "cancel",
    "categories_of",
    "close",
    "create_problem",
    "create_refusal",
    "detail",
    "enforce",
    "get_problem",
    "link_change",
    "link_incidents",
    "list_problems",
    "mark_duplicate",
    "normal_ref",
    "open_linked_incidents",
    "publish_known_error",
    "published_known_error",
    "reopen",
    "resolve",
    "resolve_linked_incidents",
    "retire_known_error",
    "start_fix",
    "start_investigation",
    "unlink_incident",
    "update_problem",
    "whys_of",
]
