"""Roles and permissions, enforced here rather than in the screens.

A refused action raises :class:`PermissionDenied` whose message names the roles that may do it.
"""

from __future__ import annotations

from collections.abc import Iterable

from itsm_tui.constants import ROLES  # defined below the configuration, which checks RACI files against it
from itsm_tui.services.errors import ServiceError

ROLE_TITLES = {
    "agent": "Agent (L1)",
    "support_l2": "Support L2",
    "support_l3": "Support L3",
    "shift_lead": "Shift lead",
    "problem_manager": "Problem manager",
    "change_manager": "Change manager",
    "cab_member": "CAB member",
    "process_manager": "Process manager",
    "analyst": "Analyst",
    "admin": "Admin",
}

_SUPPORT = ("agent", "support_l2", "support_l3", "shift_lead")

# permission -> (roles that hold it, what the permission lets you do)
PERMISSIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "ticket.create": ((*_SUPPORT, "problem_manager", "change_manager", "admin"), "create a ticket"),
    "ticket.work": (_SUPPORT, "work on a ticket (status, reply, note, resolve)"),
    "ticket.take": (_SUPPORT, "take a ticket"),
    "ticket.assign_others": (("shift_lead",), "assign a ticket to someone else"),
    "ticket.escalate": (_SUPPORT, "escalate a ticket"),
    "ticket.cancel": (("agent", "support_l2", "support_l3", "shift_lead"), "cancel a ticket"),
    "ticket.reopen": ((*_SUPPORT,), "reopen a ticket"),
    "ticket.rate": ((*_SUPPORT,), "record a satisfaction rating"),
    "ticket.link": ((*_SUPPORT, "problem_manager", "change_manager"), "link a ticket"),
    "problem.create": (
        ("problem_manager", "support_l2", "support_l3", "shift_lead"),
        "raise a problem",
    ),
    "problem.analyse": (
        ("problem_manager", "support_l2", "support_l3"),
        "record a problem's analysis and publish its known error",
    ),
    "problem.own": (("problem_manager",), "own, resolve and close problems"),
    "knowledge.write": (
        ("agent", "support_l2", "support_l3", "shift_lead", "problem_manager"),
        "write knowledge articles",
    ),
    "knowledge.publish": (("support_l2", "support_l3", "problem_manager", "shift_lead"), "publish knowledge"),
    "change.create": (
        ("change_manager", "support_l2", "support_l3", "shift_lead", "cab_member"),
        "raise a change",
    ),
    "change.approve": (("cab_member", "change_manager"), "approve or reject a normal change"),
    "change.approve_emergency": (("change_manager",), "approve an emergency change"),
    "change.manage": (("change_manager",), "manage changes, maintenance windows and change freezes"),
    "report.read": (tuple(ROLES), "read reports and KPIs"),
    "report.access": (("shift_lead", "process_manager", "admin"), "read the access review"),
    "user.admin": (("admin",), "add users and change roles"),
    # The commands that act on the whole desk rather than on one record.
    "desk.rebuild": (("admin",), "replace the records of this service desk with demonstration data"),
    "desk.upgrade": (("admin",), "upgrade the schema of a service desk that has users"),
    "desk.grant_roles": (("admin",), "grant the desk's database roles and privileges"),
    "desk.jobs": (tuple(ROLES), "run the SLA job and the change reminders"),
    "desk.backup": (("admin",), "copy the whole service desk database to a file"),
    "desk.restore": (("admin",), "replace the whole service desk database with a backup"),
    "sla.scan_at": (("process_manager", "admin"), "run the SLA job at another instant than now"),
}


class PermissionDenied(ServiceError):
    """The acting user lacks a permission; the message names the role(s) that have it."""

    def __init__(
        self,
        permission: str,
        user_roles: Iterable[str],
        detail: str | None = None,
        *,
        action: str | None = None,
    ) -> None:
        roles, what = PERMISSIONS[permission]
        action = action or what  # the step refused ("assess CHG0000012"), else what the permission is for
        self.permission = permission
        self.needed_roles = roles
        have = ", ".join(sorted(user_roles)) or "no role"
        message = detail or f"You may not {action}: {_needs(roles)} (you have {have})."
        super().__init__(message)

    @classmethod
    def not_a_user(cls, permission: str, login: str) -> PermissionDenied:
        """The refusal of a login that is no active user of the desk: it holds no role, so no permission."""
        roles, action = PERMISSIONS[permission]
        return cls(
            permission,
            (),
            f"You may not {action}: the login {login!r} is not an active user of this service desk "
            f"({_needs(roles)}); ask an admin to add you.",
        )


def _needs(roles: tuple[str, ...]) -> str:
    """What a permission needs, in words: the roles that hold it, or any role when every role does."""
    if set(roles) >= set(ROLES):
        return "it needs a role on this service desk"
    needed = " or ".join(roles) if len(roles) <= 4 else ", ".join(roles[:-1]) + " or " + roles[-1]
    return f"it needs the role {needed}"


def has_permission(roles: Iterable[str], permission: str) -> bool:
    """Whether any of ``roles`` holds ``permission``.

    Admin is no super-role: it holds the administration of users and of the desk itself, not the work on
    tickets and changes (an admin who works tickets holds a support role as well).
    """
    allowed = PERMISSIONS[permission][0]
    return any(role in allowed for role in roles)


def require(roles: Iterable[str], permission: str, *, action: str | None = None) -> None:
    """Raise :class:`PermissionDenied` unless one of ``roles`` holds ``permission``; ``action`` names the
    step refused ("You may not assess CHG0000012: ...") where the permission covers several."""
    roles = list(roles)
    if not has_permission(roles, permission):
        raise PermissionDenied(permission, roles, action=action)
