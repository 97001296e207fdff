"""The desk's fixed vocabularies, shared by the configuration (which validates files against them) and the
services (which validate input against them).

This module imports nothing of the project, so that both can depend on it without depending on each other.
"""

from __future__ import annotations

# Every role a user can hold; access rules, RACI files and user administration name only these.
ROLES: tuple[str, ...] = (
    "agent",
    "support_l2",
    "support_l3",
    "shift_lead",
    "problem_manager",
    "change_manager",
    "cab_member",
    "process_manager",
    "analyst",
    "admin",
)

# The levels of impact and of urgency, highest first: the two axes of the priority matrix.
LEVELS: tuple[str, ...] = ("high", "medium", "low")

# The kinds of ticket; each has its own list of categories in the catalog.
TICKET_KINDS: tuple[str, ...] = ("incident", "request")
