"""The vocabulary of a change: its types, risks and outcomes, the lifecycle's transitions and its actions.

Every other module of the package reads these; this one imports none of them.
"""

from __future__ import annotations

from itsm_tui.services.conflicts import Conflict
from itsm_tui.services.errors import ServiceError

TYPES = ("standard", "normal", "emergency")
RISKS = ("low", "medium", "high")
OUTCOMES = ("implemented", "failed", "backed_out")
PRE_IMPLEMENTATION = ("draft", "submitted", "assessed", "approved", "scheduled")
TITLE_MAX = 200

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("submitted",),
    "submitted": ("assessed", "approved", "rejected"),  # approved: standard on submit, emergency at once
    "assessed": ("approved", "rejected"),
    "approved": ("scheduled",),
    "rejected": ("closed",),
    "scheduled": ("implementing",),
    "implementing": ("implemented", "failed", "backed_out"),
    "implemented": ("review", "closed"),
    "failed": ("review",),
    "backed_out": ("review",),
    "review": ("closed",),
    "closed": (),
}

# The actions of a change, in lifecycle order (available_actions says, for each, whether one may).
ACTIONS = (
    "submit",
    "assess",
    "approve",
    "reject",
    "schedule",
    "reschedule",
    "start",
    "complete",
    "review",
    "close",
)


class ChangeBlocked(ServiceError):
    """The change would land in a blackout (and is no emergency with an override); nothing was written."""

    def __init__(self, ref: str, doing: str, blocking: list[Conflict]) -> None:
        self.ref, self.conflicts = ref, blocking
        reasons = "; ".join(c.message for c in blocking)
        super().__init__(f"{ref} cannot be {doing}: {reasons}")
