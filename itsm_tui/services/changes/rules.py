"""The vocabulary of a change: its types, risks and outcomes, the lifecycle's transitions and its actions.

Every other module of the package reads these; this one imports none of them.
"""

from __future__ import annotations

from itsm_tui.services.conflicts import Conflict
from itsm_tui.services.errors import ServiceError, ValidationError

TYPES = ("standard", "normal", "emergency")
RISKS = ("low", "medium", "high")
OUTCOMES = ("implemented", "failed", "backed_out")
PRE_IMPLEMENTATION = ("draft", "submitted", "assessed", "approved", "scheduled")
TITLE_MAX = 200

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("submitted", "withdrawn", "cancelled"),
    # approved: standard on submit, emergency at once
    "submitted": ("assessed", "approved", "rejected", "withdrawn", "cancelled"),
    # submitted: edited after its assessment, it is assessed again (the CAB decides on the change as assessed)
    "assessed": ("approved", "rejected", "withdrawn", "cancelled", "submitted"),
    # assessed / submitted: moved to another window, an approved normal change goes back to the CAB and an
    # emergency one to the change managers (a standard change moves within its template and stays approved)
    "approved": ("scheduled", "assessed", "submitted", "cancelled"),
    "rejected": ("closed",),
    "scheduled": ("implementing", "assessed", "submitted", "cancelled"),
    "implementing": ("implemented", "failed", "backed_out"),
    "implemented": ("review", "closed"),
    "failed": ("review",),
    "backed_out": ("review",),
    "review": ("closed",),
    "closed": (),
    # Ended before implementation: withdrawn by who raised it before approval, or cancelled by a manager
    "withdrawn": (),
    "cancelled": (),
}

# The actions of a change, in lifecycle order (available_actions says, for each, whether one may).
ACTIONS = (
    "submit",
    "edit",
    "withdraw",
    "assess",
    "approve",
    "reject",
    "schedule",
    "reschedule",
    "cancel",
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


class OutsideWindow(ValidationError):
    """A change manager began a change outside its planned window without saying why; nothing was written.

    ``window`` says when it may start; the override reason is the field to fill in (audited)."""

    def __init__(self, ref: str, window: str) -> None:
        self.ref, self.window = ref, window
        super().__init__(
            "override_reason",
            f"{window}; to start it anyway give an override reason (it is recorded in the audit trail)",
        )
