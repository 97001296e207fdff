"""The access review (``itsm report access``): who holds which roles, who has gone quiet, who tried what.

What an auditor asks of a service desk: every account with its roles, groups and the groups it leads,
whether it is active, when it was created and when it was last at work; the accounts that have done nothing
for N days (dormant: candidates for removal); the admins; and the privileged attempts that were refused in
the last N days. Shift leads, process managers and admins may read it.

A user's last activity is the later of ``users.last_seen_at`` (a console opened, a command run) and their
newest audited change (one index seek each on ``ix_audit_actor``). Every query is bounded: at most
:data:`MAX_ACCOUNTS` accounts and :data:`MAX_REFUSALS` refusals are listed, and the totals say when there
are more.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from itsm_tui.models import AccessRefusal, AuditEvent, RoleMembership, User, utc_or_now
from itsm_tui.services.access import require
from itsm_tui.services.errors import ValidationError
from itsm_tui.services.jsondata import jsonable
from itsm_tui.services.users import Actor

MAX_ACCOUNTS = 5000
MAX_REFUSALS = 500
MAX_DORMANT_DAYS = 3650


@dataclass(frozen=True)
class Account:
    """One account as the review lists it."""

    login: str
    name: str
    roles: list[str]
    groups: list[str]
    lead_of: list[str]
    active: bool
    created_at: datetime
    last_seen_at: datetime | None
    last_change_at: datetime | None  # the newest audit event they made
    last_activity_at: datetime | None  # the later of the two
    dormant: bool

    def as_json(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass(frozen=True)
class Refusal:
    """One refused privileged attempt."""

    at: datetime
    login: str
    user_id: int | None
    action: str
    permission: str | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass(frozen=True)
class AccessReview:
    """The review at ``now``: accounts by login, then what stands out."""

    now: datetime
    dormant_days: int
    accounts: list[Account]
    accounts_total: int
    admins: list[str]  # active admins, by login
    refusals: list[Refusal]  # newest first, within the last ``dormant_days`` days
    refusals_total: int

    @property
    def dormant(self) -> list[Account]:
        return [a for a in self.accounts if a.dormant]

    @property
    def truncated(self) -> bool:
        """Whether there are more accounts than listed (more than :data:`MAX_ACCOUNTS`)."""
        return self.accounts_total > len(self.accounts)

    def as_json(self) -> dict[str, Any]:
        return {
            **jsonable({"now": self.now}),
            "dormant_days": self.dormant_days,
            "accounts": [a.as_json() for a in self.accounts],
            "accounts_total": self.accounts_total,
            "admins": self.admins,
            "dormant": [a.login for a in self.dormant],
            "refusals": [r.as_json() for r in self.refusals],
            "refusals_total": self.refusals_total,
        }


def review(
    session: Session, actor: Actor, *, dormant_days: int = 30, now: datetime | None = None
) -> AccessReview:
    """The access review for shift leads, process managers and admins (refused for anyone else)."""
    require(actor.roles, "report.access")
    if not 1 <= dormant_days <= MAX_DORMANT_DAYS:
        raise ValidationError("dormant_days", f"give a number of days from 1 to {MAX_DORMANT_DAYS}")
    now = utc_or_now(now)
    since = now - timedelta(days=dormant_days)
    # One index seek per account on ix_audit_actor (actor_id, at): the account's newest entry in it.
    last_change = (
        select(AuditEvent.at)
        .where(AuditEvent.actor_id == User.id)
        .order_by(AuditEvent.at.desc())
        .limit(1)
        .correlate(User)
        .scalar_subquery()
    )
    rows = session.execute(
        select(User, last_change.label("last_change")).order_by(User.login).limit(MAX_ACCOUNTS)
    ).all()
    accounts = [_account(user, changed, since) for user, changed in rows]
    total = len(accounts)
    if total == MAX_ACCOUNTS:
        total = session.scalar(select(func.count()).select_from(User)) or total
    admins = list(
        session.scalars(
            select(User.login)
            .join(RoleMembership, RoleMembership.user_id == User.id)
            .where(RoleMembership.role == "admin", User.active.is_(True))
            .order_by(User.login)
            .limit(MAX_ACCOUNTS)
        )
    )
    recent = AccessRefusal.at >= since
    refusals = [
        Refusal(r.at, r.login, r.user_id, r.action, r.permission, r.detail)
        for r in session.scalars(
            select(AccessRefusal)
            .where(recent)
            .order_by(AccessRefusal.at.desc(), AccessRefusal.id.desc())
            .limit(MAX_REFUSALS)
        )
    ]
    refusals_total = len(refusals)
    if refusals_total == MAX_REFUSALS:
        refusals_total = session.scalar(select(func.count()).select_from(AccessRefusal).where(recent)) or 0
    return AccessReview(now, dormant_days, accounts, total, admins, refusals, refusals_total)


def _account(user: User, changed: datetime | None, since: datetime) -> Account:
    """An account; dormant if active and neither at work nor created since ``since``."""
    moments = [m for m in (user.last_seen_at, changed) if m is not None]
    last = max(moments) if moments else None
    dormant = user.active and (last or user.created_at) < since
    return Account(
        login=user.login,
        name=user.name,
        roles=user.role_names,
        groups=sorted(m.group.code for m in user.groups),
        lead_of=sorted(m.group.code for m in user.groups if m.is_lead),
        active=user.active,
        created_at=user.created_at,
        last_seen_at=user.last_seen_at,
        last_change_at=changed,
        last_activity_at=last,
        dormant=dormant,
    )
