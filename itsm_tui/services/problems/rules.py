"""The problem lifecycle's vocabulary: statuses, the moves between them, the analysis' cause categories and
the actions a screen offers (each with the guard of :mod:`.guards` that decides it)."""

from __future__ import annotations

STATUSES: tuple[str, ...] = (
    "new",
    "investigating",
    "known_error",
    "fix_in_progress",
    "resolved",
    "closed",
    "cancelled",
    "duplicate",
)
OPEN_STATUSES: tuple[str, ...] = ("new", "investigating", "known_error", "fix_in_progress", "resolved")
ENDED_STATUSES: tuple[str, ...] = ("closed", "cancelled", "duplicate")

STATUS_LABELS: dict[str, str] = {
    "new": "new",
    "investigating": "investigating",
    "known_error": "known error",
    "fix_in_progress": "fix in progress",
    "resolved": "resolved",
    "closed": "closed",
    "cancelled": "cancelled",
    "duplicate": "duplicate",
}

# status -> the statuses it may move to. A known error is published from new or investigating (the problem
# becomes one); the fix is worked once a root cause is known; a resolved problem is closed once its fix is
# verified, or reopened when the incidents go on; cancelled and duplicate end an unresolved problem.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("investigating", "known_error", "cancelled", "duplicate"),
    "investigating": ("known_error", "fix_in_progress", "cancelled", "duplicate"),
    "known_error": ("fix_in_progress", "cancelled", "duplicate"),
    "fix_in_progress": ("resolved", "cancelled"),
    "resolved": ("closed", "investigating"),
    "closed": (),
    "cancelled": (),
    "duplicate": (),
}

CAUSE_CATEGORIES: tuple[str, ...] = ("people", "process", "technology", "supplier", "environment")

TITLE_MAX = 200
TEXT_MAX = 20_000  # a root cause, workaround, fix, verification or reason
WHY_MAX = 500  # one of the five whys
WHYS_MAX = 10

ACTION_LABELS: dict[str, str] = {
    "edit": "Edit title, description and classification",
    "analyse": "Record the analysis (root cause, five whys, workaround, fix)",
    "assign": "Assign the owner",
    "investigate": "Start the investigation",
    "publish": "Publish the known error",
    "start_fix": "Start the permanent fix",
    "resolve": "Resolve (the fix is in)",
    "close": "Close with the verification",
    "reopen": "Reopen (the fix did not hold)",
    "cancel": "Cancel",
    "duplicate": "Mark as a duplicate",
    "link_incident": "Link incidents",
    "link_change": "Link the change of the fix",
    "retire_known_error": "Retire the known error",
}
ACTIONS: tuple[str, ...] = tuple(ACTION_LABELS)
