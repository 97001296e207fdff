"""The demo's changes obey the desk's change rules, checked by a walker of its own over the stored rows.

The walker does not ask the change services: from the users' roles and groups, catalog.toml's support
groups and changes.toml it works out who the CAB rule asks for each change, and checks four eyes (nobody
decides a change they raised or implement), the rule's outcome per state, that every approval was given
for the window the change is planned in (before it, and no move after it), that an emergency change always
had someone to approve it, and that every change began inside its window (or a change manager said why).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from itsm_tui.config import DeskConfig
from itsm_tui.db import Database
from itsm_tui.demo import build_demo
from itsm_tui.models import AuditEvent, Change, Group, GroupMembership, RoleMembership, User

ANCHOR = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # the conftest's demo anchor
SEEDS = ((1500, 3), (300, 5), (300, 17), (300, 29))  # (tickets, seed): the changes differ with each
DECIDED = ("approved", "scheduled", "implementing", "implemented", "failed", "backed_out", "review", "closed")
APPROVER_ROLES = {"cab_member", "change_manager"}  # the roles of access.py that approve changes


@dataclass
class Walked:
    """What the walker found in one demo: the broken rules, and what it saw (so a test cannot pass on
    an empty demo)."""

    problems: list[str]
    normal_decided: int = 0
    requester_on_the_cab: int = 0  # decided normal changes whose requester the rule had to leave out
    emergency_decided: int = 0
    emergency_by_a_manager: int = 0
    started: int = 0
    scored: int = 0  # assessed normal changes with the questionnaire's answers
    by_quorum: int = 0  # decided normal changes approved by fewer than all asked (a low risk's quorum)


def needed(risk: str, asked: int) -> int:
    """How many of ``asked`` must approve a change of ``risk``: changes.toml as shipped, read by hand: high
    every one, low one of them, medium (not in [approval.by_risk]) [approval]'s rule, every one."""
    return {"high": asked, "low": min(1, asked)}.get(risk, asked)


def approved(decisions: dict[int, str]) -> int:
    return sum(1 for d in decisions.values() if d == "approved")


# data/changes.toml's questionnaire, written out by hand: question -> answer -> points; medium from 3, high
# from 6.
POINTS = {
    "services": {"one": 0, "two or three": 2, "more than three": 4},
    "backout": {"yes": 0, "no": 2},
    "window": {"no": 0, "yes": 2},
    "failures": {"no": 0, "yes": 2},
    "users": {"no": 0, "some": 1, "many": 3},
}


def risk_problems(config: DeskConfig, change: Change) -> list[str]:
    """An assessed normal change's answers: every question answered, and its score and risk theirs."""
    if change.risk_answers is None:
        return [f"{change.ref}: assessed without the risk questionnaire"]
    answers = json.loads(change.risk_answers)
    if set(answers) != set(POINTS) or any(answers[q] not in POINTS[q] for q in POINTS):
        return [f"{change.ref}: answers {answers} are not the questionnaire's"]
    total = sum(POINTS[q][a] for q, a in answers.items())
    level = "high" if total >= 6 else "medium" if total >= 3 else "low"
    if (change.risk_score, change.risk) != (total, level):
        return [
            f"{change.ref}: scored {change.risk_score}, {change.risk} risk; its answers give {total}, {level}"
        ]
    return []


def _utc(instant: datetime) -> datetime:
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def meeting_problems(change: Change) -> list[str]:
    """A submitted normal change is on the agenda of the first CAB meeting (data/changes.toml: Tuesdays
    10:00 Europe/Berlin) starting at least 24 hours after it was submitted."""
    if change.submitted_at is None:
        return [f"{change.ref}: submitted, but no instant of its submission"]
    berlin = ZoneInfo("Europe/Berlin")
    cut = _utc(change.submitted_at) + timedelta(hours=24)
    day = cut.astimezone(berlin).date()
    while True:
        meeting = datetime(day.year, day.month, day.day, 10, 0, tzinfo=berlin)
        if day.weekday() == 1 and meeting >= cut:
            break
        day += timedelta(days=1)
    expected = meeting.astimezone(UTC)
    if change.cab_meeting is None or _utc(change.cab_meeting) != expected:
        return [f"{change.ref}: on the agenda of {change.cab_meeting}, not {expected}"]
    return []


def walk(db: Database, config: DeskConfig) -> Walked:
    problems: list[str] = []
    seen = Walked(problems)
    with db.read_session() as s:
        users = {u.id: u for u in s.scalars(select(User))}
        roles: dict[int, set[str]] = defaultdict(set)
        for user_id, role in s.execute(select(RoleMembership.user_id, RoleMembership.role)):
            roles[user_id].add(role)
        groups: dict[int, set[str]] = defaultdict(set)
        for user_id, code in s.execute(
            select(GroupMembership.user_id, Group.code).join(Group, Group.id == GroupMembership.group_id)
        ):
            groups[user_id].add(code)
        moves: dict[int, list[datetime]] = defaultdict(list)
        overrides: set[int] = set()
        for entity_id, at, action, field in s.execute(
            select(AuditEvent.entity_id, AuditEvent.at, AuditEvent.action, AuditEvent.field).where(
                AuditEvent.entity_type == "change"
            )
        ):
            if action == "reschedule" and field in ("planned_start", "planned_end"):
                moves[entity_id].append(at)
            if field == "start_override":
                overrides.add(entity_id)
        active = {i for i, u in users.items() if u.active}
        cab = {i for i in active if "cab_member" in roles[i]}
        managers = {i for i in active if "change_manager" in roles[i]}
        by_login = {u.login: i for i, u in users.items()}
        emergency_cab = {by_login[x] for x in config.changes.emergency_cab if by_login.get(x) in active} & {
            i for i in active if roles[i] & APPROVER_ROLES
        }
        lead = timedelta(minutes=config.changes.early_start_minutes)
        assert config.changes.rule == "all", "the walker works out the shipped rule: every one asked approves"
        assert set(config.changes.by_risk) == {"high", "low"}, "and the shipped rules by risk (see needed)"
        assert {q.id: {a.label: a.points for a in q.answers} for q in config.changes.risk.questions} == POINTS
        assert (config.changes.risk.medium, config.changes.risk.high) == (3, 6)

        for change in s.scalars(select(Change).order_by(Change.id)):
            ref, state = change.ref, change.state
            never = {change.requested_by_id, change.implementer_id}
            rows = {a.approver_id: a for a in change.approvals}
            decisions = {i: a.decision for i, a in rows.items()}
            start, end = change.planned_start, change.planned_end
            assert start is not None and end is not None

            for approver, approval in rows.items():
                who = users[approver].login
                if approver in never:
                    problems.append(f"{ref}: {who} decides a change they raised or implement")
                if approver not in active or not roles[approver] & APPROVER_ROLES:
                    problems.append(f"{ref}: {who} may not approve changes")
                if approval.decided_at is not None:
                    if not approval.decided_at <= ANCHOR or not approval.decided_at < start:
                        problems.append(f"{ref}: {who} decided at {approval.decided_at}, not before {start}")
                    if any(at > approval.decided_at for at in moves[change.id]):
                        problems.append(f"{ref}: moved after {who} decided, still {approval.decision}")

            if change.change_type == "standard":
                if rows:
                    problems.append(f"{ref}: a standard change with approvals")
            elif change.change_type == "normal":
                services = {t.service for t in change.targets}
                support = {config.services[x].support_group for x in services}
                named = {by_login.get(x) for svc in services for x in config.changes.members.get(svc, ())}
                assigned = {i for i in cab if groups[i] & support or i in named} - never
                expected = assigned or (cab - never) or (managers - never)
                if state in ("draft", "submitted"):
                    if rows:
                        problems.append(f"{ref}: {state}, yet decided")
                elif set(rows) != expected:
                    logins = sorted(users[i].login for i in expected)
                    problems.append(f"{ref}: asked {sorted(users[i].login for i in rows)}, not {logins}")
                elif state == "assessed" and set(decisions.values()) != {"pending"}:
                    problems.append(f"{ref}: assessed, yet {decisions}")
                elif state in DECIDED and approved(decisions) < needed(change.risk, len(rows)):
                    problems.append(
                        f"{ref}: {state} without the approvals {change.risk} risk needs: {decisions}"
                    )
                elif state == "rejected" and "rejected" not in decisions.values():
                    problems.append(f"{ref}: rejected by nobody")
                if state != "draft":
                    problems += meeting_problems(change)
                if state not in ("draft", "submitted"):
                    problems += risk_problems(config, change)
                    seen.scored += change.risk_answers is not None
                if state in DECIDED:
                    seen.normal_decided += 1
                    seen.by_quorum += approved(decisions) < len(rows)
                    if change.requested_by_id in cab:
                        seen.requester_on_the_cab += 1
            else:
                possible = (managers | emergency_cab) - never
                if not possible:
                    problems.append(f"{ref}: an emergency change nobody could approve")
                if state in DECIDED:
                    seen.emergency_decided += 1
                    seen.emergency_by_a_manager += change.requested_by_id in managers
                    if list(decisions.values()) != ["approved"] or not set(rows) <= possible:
                        problems.append(f"{ref}: {state}, decided {decisions}")
                elif state in ("draft", "submitted") and rows:
                    problems.append(f"{ref}: {state}, yet decided")

            if change.actual_start is not None:
                seen.started += 1
                inside = start - lead <= change.actual_start < end
                if not inside and change.id not in overrides:
                    problems.append(f"{ref}: began at {change.actual_start}, outside {start} to {end}")
    return seen


@pytest.fixture(scope="module")
def on_both(module_db, config) -> Database:
    """A small demo on each backend."""
    patch = pytest.MonkeyPatch()
    patch.setattr("itsm_tui.services.users.os_login", lambda: "deskuser")
    try:
        build_demo(module_db, config, tickets=300, seed=23, anchor=ANCHOR)
    finally:
        patch.undo()
    return module_db


def test_the_demo_changes_obey_the_change_rules(on_both, config):
    walked = walk(on_both, config)
    assert walked.problems == []
    assert walked.normal_decided > 5 and walked.started > 10 and walked.scored > 5


def test_every_seed_obeys_them_and_the_rules_were_put_to_work(demo_templates, config):
    total = Walked([])
    for tickets, seed in SEEDS:
        db = Database.connect(f"sqlite:///{demo_templates(tickets, seed)}")
        try:
            walked = walk(db, config)
        finally:
            db.dispose()
        assert walked.problems == [], (tickets, seed)
        for name in ("normal_decided", "requester_on_the_cab", "emergency_decided", "started", "by_quorum"):
            setattr(total, name, getattr(total, name) + getattr(walked, name))
        total.emergency_by_a_manager += walked.emergency_by_a_manager
    # Not a vacuous pass: the CAB rule had to leave a requester out, and emergencies were approved.
    assert total.requester_on_the_cab > 3 and total.emergency_decided > 0 and total.started > 40
    assert total.by_quorum > 0  # a low-risk change was approved by one of those asked


def test_the_walker_finds_a_self_approval_and_a_start_outside_the_window(demo_copy, config):
    """The walker is no pass-all: the attacker's demo (the implementer approving, work begun a day early)
    is caught."""
    db, _ = demo_copy(300, 5)
    with db.session() as s:
        change = s.scalar(
            select(Change).where(Change.change_type == "normal", Change.state == "closed").order_by(Change.id)
        )
        assert change is not None and change.approvals and change.planned_start is not None
        change.approvals[0].approver_id = change.implementer_id
        change.actual_start = change.planned_start - timedelta(days=1)
        ref = change.ref
    problems = walk(db, config).problems
    assert any(p.startswith(f"{ref}: ") and "raised or implement" in p for p in problems)
    assert any(p.startswith(f"{ref}: began at") for p in problems)
