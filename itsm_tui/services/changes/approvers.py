"""Who may approve a change, and who never may.

Four eyes: whoever raised a change or implements it is never among its approvers, whatever changes.toml
says. For a normal change the CAB rule (``[approval]``) names the pool; for an emergency change the change
managers and the emergency CAB (``[emergency] cab``) do. Someone the rule or the configuration would name who
raised or implements the change is *skipped*, and the change says so; a decision by someone who raised the
change or has since become its implementer is *void*: it never counts, and they are refused if they try.

:func:`choose_cab` and :func:`choose_emergency` are the rules themselves, over plain data, so that the demo
builds its approvals with the very rule the desk applies; the functions below them read the database and
ask them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from itsm_tui.config import ChangePolicy, DeskConfig
from itsm_tui.models import Change, ChangeApproval, Group, GroupMembership, RoleMembership, User
from itsm_tui.services.access import has_permission
from itsm_tui.services.changes.reading import _logins
from itsm_tui.services.users import Actor

# A desk's CAB is a few dozen people; the bound only keeps a broken role table from loading without end.
POOL_LIMIT = 2000
NOT_CAB = "listed in changes.toml, but not an active cab_member"
NOT_APPROVER = "in the emergency CAB of changes.toml, but not an active cab_member or change_manager"


@dataclass(frozen=True)
class Candidate:
    """Someone an approval rule may name: their user id, login and support groups (by code)."""

    id: int
    login: str
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Pool:
    """Who is asked to approve a change (user ids), and who the rule or the configuration would have named
    but are left out, each with why (login, why): they raised or implement it, or are no approver."""

    asked: tuple[int, ...]
    skipped: tuple[tuple[str, str], ...] = ()


def barred_ids(requested_by_id: int | None, implementer_id: int | None) -> dict[int, str]:
    """Who may never approve a change raised by ``requested_by_id`` for ``implementer_id``: id -> why."""
    why: dict[int, str] = {}
    if requested_by_id is not None:
        why[requested_by_id] = "raised it"
    if implementer_id is not None:
        why[implementer_id] = "raised and implements it" if implementer_id in why else "implements it"
    return why


def barred(change: Change) -> dict[int, str]:
    """Who may never approve ``change`` now: who raised it and who implements it (id -> why)."""
    return barred_ids(change.requested_by_id, change.implementer_id)


def counted(change: Change) -> list[ChangeApproval]:
    """The approval rows that count: all but those of who raised or now implements the change."""
    never = barred(change)
    return [a for a in change.approvals if a.approver_id not in never]


def choose_cab(
    policy: ChangePolicy,
    support_groups: Mapping[str, str],
    services: Iterable[str],
    members: Sequence[Candidate],
    managers: Sequence[Candidate],
    never: Mapping[int, str],
) -> Pool:
    """The CAB rule of a normal change on ``services``: the CAB ``members`` assigned to them (by the
    services' ``support_groups``, service -> group code, if the policy says so, and by the logins it names),
    else every CAB member, else the change ``managers``; at each step without those of ``never``. A step
    whose every candidate is barred falls through to the next, as one with nobody assigned does."""
    wanted = set(services)
    by_group = policy.assign_by_support_group
    groups = {support_groups[s] for s in wanted if s in support_groups} if by_group else set()
    named = {login for s in sorted(wanted) for login in policy.members.get(s, ())}
    assigned = [m for m in members if m.groups & groups or m.login in named]
    skipped: dict[str, str] = {login: NOT_CAB for login in named - {m.login for m in members}}
    for step in (assigned, members, managers):
        skipped |= {m.login: never[m.id] for m in step if m.id in never}
        eligible = sorted({m.id for m in step if m.id not in never})
        if eligible:
            return Pool(tuple(eligible), tuple(sorted(skipped.items())))
    return Pool((), tuple(sorted(skipped.items())))


def choose_emergency(
    policy: ChangePolicy, managers: Sequence[Candidate], cab: Sequence[Candidate], never: Mapping[int, str]
) -> Pool:
    """Who decides an emergency change: the change ``managers`` and the emergency ``cab`` (those of the
    policy's logins who are active approvers), without those of ``never``."""
    people = {m.id: m for m in (*managers, *cab)}
    skipped = {people[i].login: never[i] for i in people if i in never}
    skipped |= {login: NOT_APPROVER for login in set(policy.emergency_cab) - {c.login for c in cab}}
    return Pool(tuple(sorted(i for i in people if i not in never)), tuple(sorted(skipped.items())))


# --------------------------------------------------------------------------- from the database


def cab_members(session: Session) -> list[Candidate]:
    """The active CAB members, with their support groups."""
    groups: dict[tuple[int, str], set[str]] = defaultdict(set)
    rows = session.execute(
        select(User.id, User.login, Group.code)
        .join(RoleMembership, RoleMembership.user_id == User.id)
        .outerjoin(GroupMembership, GroupMembership.user_id == User.id)
        .outerjoin(Group, Group.id == GroupMembership.group_id)
        .where(RoleMembership.role == "cab_member", User.active.is_(True))
        .order_by(User.id)
        .limit(POOL_LIMIT)
    )
    for user_id, login, code in rows:
        seen = groups[user_id, login]
        if code is not None:
            seen.add(code)
    return [Candidate(i, login, frozenset(codes)) for (i, login), codes in groups.items()]


def change_managers(session: Session) -> list[Candidate]:
    """The active change managers."""
    rows = session.execute(
        select(User.id, User.login)
        .join(RoleMembership, RoleMembership.user_id == User.id)
        .where(RoleMembership.role == "change_manager", User.active.is_(True))
        .order_by(User.id)
        .limit(POOL_LIMIT)
    )
    return [Candidate(i, login) for i, login in rows]


def emergency_cab(session: Session, config: DeskConfig) -> list[Candidate]:
    """The active users of the emergency CAB who hold a role that approves changes."""
    logins = sorted(config.changes.emergency_cab)
    if not logins:
        return []
    roles: dict[tuple[int, str], set[str]] = defaultdict(set)
    for user_id, login, role in session.execute(
        select(User.id, User.login, RoleMembership.role)
        .join(RoleMembership, RoleMembership.user_id == User.id)
        .where(User.login.in_(logins), User.active.is_(True))
    ):
        roles[user_id, login].add(role)
    return [
        Candidate(i, login)
        for (i, login), held in sorted(roles.items())
        if has_permission(held, "change.approve")
    ]


def normal_pool(session: Session, config: DeskConfig, change: Change) -> Pool:
    """The CAB members a normal change's assessment asks (see :func:`choose_cab`)."""
    support_groups = {code: s.support_group for code, s in config.services.items()}
    return choose_cab(
        config.changes,
        support_groups,
        {t.service for t in change.targets},
        cab_members(session),
        change_managers(session),
        barred(change),
    )


def emergency_pool(session: Session, config: DeskConfig, change: Change) -> Pool:
    """Who may decide an emergency change (see :func:`choose_emergency`)."""
    return choose_emergency(
        config.changes, change_managers(session), emergency_cab(session, config), barred(change)
    )


def pool_of(session: Session, config: DeskConfig, change: Change) -> Pool:
    """Who may approve ``change``: its CAB, its emergency approvers, or nobody (a standard change is
    pre-approved by its template)."""
    if change.change_type == "normal":
        return normal_pool(session, config, change)
    if change.change_type == "emergency":
        return emergency_pool(session, config, change)
    return Pool(())


def decides_emergencies(config: DeskConfig, actor: Actor) -> bool:
    """Whether ``actor`` may decide emergency changes at all: a change manager, or a member of the
    emergency CAB who holds a role that approves changes."""
    return has_permission(actor.roles, "change.approve_emergency") or (
        actor.login in config.changes.emergency_cab and has_permission(actor.roles, "change.approve")
    )


# --------------------------------------------------------------------------- what the change says about it


def approver_notice(
    session: Session, config: DeskConfig, change: Change, pool: Pool | None = None
) -> str | None:
    """The "No possible approver: ..." notice while a change awaits its approval and nobody but who raised or
    implements it could give it; None otherwise (or once the decision is made). ``pool``: the change's
    :func:`pool_of`, if the caller has it."""
    awaiting = {"normal": ("draft", "submitted"), "emergency": ("draft", "submitted", "assessed")}
    if change.state not in awaiting.get(change.change_type, ()):
        return None
    if (pool or pool_of(session, config, change)).asked:
        return None
    if change.change_type == "normal":
        return (
            f"No possible approver: no CAB member or change manager but who raised or implements "
            f"{change.ref} could approve it; give someone else the cab_member role "
            f"(itsm user role LOGIN --add cab_member)"
        )
    where = config.sources.get("changes.toml", "changes.toml")
    return (
        f"No possible approver: no change manager or emergency CAB member but who raised or implements "
        f"{change.ref} could approve it; name a deputy in [emergency] cab of {where} or give someone "
        f"the change_manager role (itsm user role LOGIN --add change_manager)"
    )


def approval_notes(session: Session, config: DeskConfig, change: Change) -> list[str]:
    """What a reader of the change must know about its approvers: nobody can approve it, who the rule
    skipped and why, and the decisions that do not count."""
    if change.change_type == "standard" or change.state not in ("draft", "submitted", "assessed"):
        notes: list[str] = []
    else:
        pool = pool_of(session, config, change)
        notice = approver_notice(session, config, change, pool)
        notes = [notice] if notice else []
        skipped = pool.skipped
        if skipped:
            notes.append(
                "Skipped approvers (who raises or implements a change never approves it): "
                + "; ".join(f"{login} ({why})" for login, why in skipped)
            )
    never = barred(change)
    void = [a for a in change.approvals if a.approver_id in never]
    if void:
        names = _logins(session, [a.approver_id for a in void])
        for approval in void:
            login = names.get(approval.approver_id, ("?", "?"))[0]
            why = f"{login} {never[approval.approver_id]}"
            notes.append(
                f"{login} is no longer asked: {why}"
                if approval.decision == "pending"
                else f"{login}'s decision ({approval.decision}) does not count: {why}"
            )
    return notes
