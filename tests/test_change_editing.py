"""Editing, withdrawing and cancelling a change, on SQLite and PostgreSQL: who may do which in each state
(offered == allowed, against a rule written out here), each edited field audited, an edit past the draft
checked and told as submit is, approvals asked again after an edit, who is told of a withdrawal or a
cancellation (once), stale edits, freed slots and literal text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from access_helpers import run_as
from sqlalchemy import select

from itsm_tui.models import AuditEvent, Change, ChangeApproval, Notification, User
from itsm_tui.services import changes
from itsm_tui.services import users as user_service
from itsm_tui.services.changes import ChangeBlocked
from itsm_tui.services.errors import ServiceError, StaleEdit, ValidationError

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
SAT_NIGHT = datetime(2026, 3, 7, 22, 0, tzinfo=UTC)
ACTIONS = ("edit", "withdraw", "cancel")
STATES = ("draft", "submitted", "assessed", "approved", "scheduled", "implementing", "withdrawn", "cancelled")
WHO = (
    "net1",
    "eng1",
    "chm",
    "cab1",
    "agent1",
)  # who raised, who implements, a change manager, the CAB, an agent


def may(action: str, who: str, state: str) -> bool:
    """The rule, as the change's docs state it: who raised a change (net1) edits it while it is a draft or
    submitted, a change manager until it is assessed; who raised it withdraws it before approval; a change
    manager cancels it before implementation."""
    if action == "edit":
        return (who == "net1" and state in ("draft", "submitted")) or (
            who == "chm" and state in ("draft", "submitted", "assessed")
        )
    if action == "withdraw":
        return who == "net1" and state in ("draft", "submitted", "assessed")
    return who == "chm" and state in ("draft", "submitted", "assessed", "approved", "scheduled")


@pytest.fixture
def cab(db, staff):
    """A second CAB member (no support group: the network's changes ask every CAB member, cab1 and cab2)."""
    with db.session() as s:
        user_service.add_user(s, actor_login="admin1", login="cab2", roles=["cab_member"], groups=[])
    with db.read_session() as s:
        return staff | {"cab2": user_service.resolve_actor(s, "cab2")}


def new_change(db, config, actor, **kw) -> str:
    values = {
        "change_type": "normal",
        "title": "Replace core switch line card",
        "targets": ["network:core-sw-01"],
        "start": SAT_NIGHT,
        "end": SAT_NIGHT + timedelta(hours=2),
        "implementation_plan": "Swap the card.",
        "backout_plan": "Put the old card back.",
        "implementer": "eng1",
        "now": NOW,
    }
    if "start" in kw and "end" not in kw:
        kw["end"] = kw["start"] + timedelta(hours=2)
    values.update(kw)
    with db.session() as s:
        return changes.create_change(s, config, actor, **values).ref


def act(db, config, fn, actor, ref, **kw):
    kw.setdefault("now", NOW)
    with db.session() as s:
        change = fn(s, config, actor, ref, **kw)
        return change.state, change.version


def audit_rows(db, ref, action=None) -> list[tuple[str, str | None, str | None, str | None]]:
    with db.read_session() as s:
        change_id = changes.get_change(s, ref).id
        stmt = select(AuditEvent).where(AuditEvent.entity_type == "change", AuditEvent.entity_id == change_id)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        return [
            (e.action, e.field, e.old_value, e.new_value) for e in s.scalars(stmt.order_by(AuditEvent.id))
        ]


def told(db, ref, kind="change_approval") -> dict[str, list[str]]:
    """The notifications about ``ref`` of ``kind``, by login."""
    with db.read_session() as s:
        change_id = changes.get_change(s, ref).id
        rows = s.execute(
            select(User.login, Notification.message)
            .join(User, User.id == Notification.user_id)
            .where(Notification.entity_type == "change", Notification.entity_id == change_id)
            .where(Notification.kind == kind)
            .order_by(Notification.id)
        )
        result: dict[str, list[str]] = {}
        for login, message in rows:
            result.setdefault(login, []).append(message)
        return result


def bring_to(db, config, staff, ref: str, state: str, start: datetime) -> None:
    """Take a new normal draft (net1's, implemented by eng1, asking cab1) to ``state``."""
    steps = {
        "submitted": [(changes.submit, "net1", {})],
        "assessed": [(changes.submit, "net1", {}), (changes.assess, "chm", {})],
        "approved": [
            (changes.submit, "net1", {}),
            (changes.assess, "chm", {}),
            (changes.approve, "cab1", {}),
        ],
        "withdrawn": [(changes.submit, "net1", {}), (changes.withdraw, "net1", {})],
        "cancelled": [(changes.submit, "net1", {}), (changes.cancel, "chm", {"reason": "Not needed."})],
    }
    approved = steps["approved"]
    steps["scheduled"] = [*approved, (changes.schedule, "chm", {})]
    steps["implementing"] = [*steps["scheduled"], (changes.start_implementation, "eng1", {"now": start})]
    for fn, login, kw in steps.get(state, []):
        act(db, config, fn, staff[login], ref, **kw)


# --------------------------------------------------------------------------- who may, in each state


def test_what_is_offered_is_what_is_allowed_and_the_rule(db, config, staff):
    refs = {}
    for day, state in enumerate(STATES):
        start = SAT_NIGHT + timedelta(days=day)
        refs[state] = new_change(db, config, staff["net1"], start=start, end=start + timedelta(hours=2))
        bring_to(db, config, staff, refs[state], state, start)
    inputs = {
        "edit": lambda s, a, ref: changes.edit_change(s, config, a, ref, title="Edited", now=NOW),
        "withdraw": lambda s, a, ref: changes.withdraw(s, config, a, ref, now=NOW),
        "cancel": lambda s, a, ref: changes.cancel(s, config, a, ref, reason="Not needed.", now=NOW),
    }
    wrong: list[str] = []
    with db.session() as s:
        for state, ref in refs.items():
            assert changes.get_change(s, ref).state == state
            for who in WHO:
                offered = changes.available_actions(s, config, staff[who], changes.get_change(s, ref), NOW)
                for action in ACTIONS:
                    savepoint = s.begin_nested()
                    try:
                        inputs[action](s, staff[who], ref)
                    except ServiceError as exc:
                        refusal: str | None = str(exc)
                    else:
                        refusal = None
                    finally:
                        savepoint.rollback()
                    if offered[action] != refusal or (refusal is None) != may(action, who, state):
                        wrong.append(f"{who} {action} {state}: offered {offered[action]!r}, got {refusal!r}")
    assert not wrong, "\n".join(wrong)


def test_an_approved_change_is_not_edited_it_is_moved_or_cancelled(db, config, staff):
    ref = new_change(db, config, staff["net1"])
    bring_to(db, config, staff, ref, "approved", SAT_NIGHT)
    with pytest.raises(ServiceError) as refused:
        act(db, config, changes.edit_change, staff["chm"], ref, title="Later")
    assert str(refused.value) == (
        f"{ref} is approved: an approved change is not edited; move it to another window (reschedule) or "
        f"cancel it"
    )
    with pytest.raises(ServiceError, match="a change_manager may cancel it"):
        act(db, config, changes.withdraw, staff["net1"], ref)


# --------------------------------------------------------------------------- the edit


def test_each_edited_field_is_audited_and_only_what_is_given_changes(db, config, staff):
    ref = new_change(db, config, staff["net1"], description="Old text.")
    later = SAT_NIGHT + timedelta(days=7)
    state, version = act(
        db,
        config,
        changes.edit_change,
        staff["net1"],
        ref,
        title="Replace both line cards",
        implementation_plan="Swap both cards.",
        targets=["network:core-sw-01, vpn"],
        implementer="net1",
        start=later,
        risk="high",
    )
    assert (state, version) == ("draft", 2)
    assert audit_rows(db, ref, "edit") == [
        ("edit", "title", "Replace core switch line card", "Replace both line cards"),
        ("edit", "risk", "medium", "high"),
        ("edit", "implementation_plan", "Swap the card.", "Swap both cards."),
        ("edit", "planned_start", "2026-03-07T22:00:00+00:00", "2026-03-14T22:00:00+00:00"),
        ("edit", "planned_end", "2026-03-08T00:00:00+00:00", "2026-03-15T00:00:00+00:00"),
        ("edit", "targets", "network:core-sw-01", "network:core-sw-01, vpn"),
        ("edit", "implementer", "eng1", "net1"),
    ]
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        assert change.description == "Old text." and change.backout_plan == "Put the old card back."
        assert (change.planned_start, change.planned_end) == (later, later + timedelta(hours=2))
        assert sorted((t.service, t.ci) for t in change.targets) == [("network", "core-sw-01"), ("vpn", None)]
    # Clearing the implementer; an edit that changes nothing writes nothing.
    assert act(db, config, changes.edit_change, staff["net1"], ref, implementer="")[1] == 3
    assert audit_rows(db, ref, "edit")[-1] == ("edit", "implementer", "net1", None)
    assert act(db, config, changes.edit_change, staff["net1"], ref, title="Replace both line cards")[1] == 3


def test_the_edit_is_checked_as_creating_checks(db, config, staff):
    ref = new_change(db, config, staff["net1"])
    for fields, field, words in (
        ({"title": "  "}, "title", "a title is required"),
        ({"targets": ["nowhere"]}, "targets", "neither a service"),
        ({"implementer": "nobody-here"}, "implementer", "nobody-here"),
        ({"start": SAT_NIGHT, "end": SAT_NIGHT - timedelta(hours=1)}, "end", "after the planned start"),
        ({"risk": "extreme"}, "risk", "low, medium, high"),
    ):
        with pytest.raises(ValidationError) as refused:
            act(db, config, changes.edit_change, staff["net1"], ref, **fields)
        assert refused.value.field == field and words in str(refused.value), fields
    act(db, config, changes.submit, staff["net1"], ref)
    with pytest.raises(ValidationError, match="keeps an implementation plan"):
        act(db, config, changes.edit_change, staff["net1"], ref, implementation_plan="")
    with pytest.raises(ValidationError, match="planned to start in the past"):
        act(db, config, changes.edit_change, staff["net1"], ref, start=NOW - timedelta(days=1))
    assert audit_rows(db, ref, "edit") == []


def test_a_standard_change_is_edited_within_its_template(db, config, staff):
    ref = new_change(
        db,
        config,
        staff["net1"],
        change_type="standard",
        template="std-cert-renewal",
        title=None,
        targets=["vpn"],
        end=None,
        implementation_plan=None,
        backout_plan=None,
    )
    for fields, field in (
        ({"backout_plan": "Something else."}, "backout_plan"),
        ({"targets": ["network"]}, "targets"),  # not a service of the template
        ({"start": SAT_NIGHT, "end": SAT_NIGHT + timedelta(hours=2)}, "end"),  # the template: 60 minutes
        ({"risk": "medium"}, "risk"),
    ):
        with pytest.raises(ValidationError) as refused:
            act(db, config, changes.edit_change, staff["net1"], ref, **fields)
        assert refused.value.field == field, fields
    act(
        db,
        config,
        changes.edit_change,
        staff["net1"],
        ref,
        title="Renew the VPN certificate",
        targets=["email"],
    )
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        assert change.title == "Renew the VPN certificate" and [t.service for t in change.targets] == [
            "email"
        ]


def test_past_the_draft_an_edit_meets_blackouts_and_tells_conflicts(db, config, staff):
    first = new_change(db, config, staff["net1"])
    act(db, config, changes.submit, staff["net1"], first)
    later = SAT_NIGHT + timedelta(days=2)
    second = new_change(
        db, config, staff["eng1"], title="Upgrade firmware", start=later, end=later + timedelta(hours=1)
    )
    act(db, config, changes.submit, staff["eng1"], second)
    with db.session() as s:
        changes.add_blackout(
            s,
            staff["chm"],
            name="Network freeze",
            service="network",
            start=SAT_NIGHT + timedelta(days=5),
            end=SAT_NIGHT + timedelta(days=6),
            config=config,
            now=NOW,
        )
    # The preview says what saving would meet, and writes nothing.
    with db.read_session() as s:
        moved = changes.preview_edit(s, config, second, start=SAT_NIGHT + timedelta(minutes=30))
        frozen = changes.preview_edit(s, config, second, start=SAT_NIGHT + timedelta(days=5, hours=1))
    assert {(c.kind, c.severity, c.refs) for c in moved} >= {
        ("overlap", "conflict", (first, second)),
        ("implementer", "conflict", (first, second)),
    }
    assert [c.kind for c in frozen if c.severity == "blocked"] == ["blackout"]
    # Into the freeze: refused whole.
    with pytest.raises(ChangeBlocked, match="Network freeze"):
        act(
            db,
            config,
            changes.edit_change,
            staff["eng1"],
            second,
            start=SAT_NIGHT + timedelta(days=5, hours=1),
        )
    with db.read_session() as s:
        assert changes.get_change(s, second).planned_start == later
    # Onto the first change: saved, and both changes' people told of the clash.
    act(db, config, changes.edit_change, staff["eng1"], second, start=SAT_NIGHT + timedelta(minutes=30))
    clashes = told(db, first, "change_conflict")
    assert "net1" in clashes and "chm" in clashes
    # A draft is tentative: it is not checked (as creating one is not).
    draft = new_change(db, config, staff["net1"], start=later, end=later + timedelta(hours=1))
    act(db, config, changes.edit_change, staff["net1"], draft, start=SAT_NIGHT + timedelta(days=5, hours=1))


@pytest.fixture
def managers(db, cab):
    """cab1, cab2 and a second change manager (chm2), who is told what chm does."""
    with db.session() as s:
        user_service.add_user(s, actor_login="admin1", login="chm2", roles=["change_manager"], groups=[])
    with db.read_session() as s:
        return cab | {"chm2": user_service.resolve_actor(s, "chm2")}


def decisions(db, ref) -> dict[str, str]:
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        return {s.get(User, a.approver_id).login: a.decision for a in change.approvals}


def test_any_edit_of_an_assessed_change_sends_it_back_to_be_assessed_again(db, config, managers):
    ref = new_change(db, config, managers["net1"])
    act(db, config, changes.submit, managers["net1"], ref)
    act(db, config, changes.assess, managers["chm"], ref)
    act(db, config, changes.approve, managers["cab1"], ref, reason="Fine by me")
    assert decisions(db, ref) == {"cab1": "approved", "cab2": "pending"}
    before = told(db, ref)
    # Even the title: the CAB decides on the change as it was assessed.
    state, version = act(db, config, changes.edit_change, managers["chm"], ref, title="Replace the line card")
    assert (state, version, decisions(db, ref)) == ("submitted", 4, {})  # a decision is no version
    assert [row for row in audit_rows(db, ref, "edit") if row[1] in ("approvals", "state")] == [
        (
            "edit",
            "approvals",
            None,
            "reset (edited after assessment: title; given: cab1 (approved); pending: cab2); to be assessed "
            "again",
        ),
        ("edit", "state", "assessed", "submitted"),
    ]
    after = told(db, ref)
    assert after["chm2"][len(before["chm2"]) :] == [
        f"{ref} edited after its assessment (title): assess it again for the CAB: Replace the line card"
    ]
    for login in ("cab1", "cab2"):
        assert after[login][len(before[login]) :] == [
            f"{ref} was edited after its assessment (title): your approval is no longer asked; it is "
            f"assessed again first: Replace the line card"
        ]
    assert len(after["chm"]) == len(before["chm"])  # who edited it is not told
    with db.read_session() as s:
        shown = changes.view(s, config, changes.get_change(s, ref))
    assert (
        "Assessment asked again: chm edited the change after its assessment at 2026-03-02 09:00 UTC, and the "
        "CAB decides on the change as assessed"
    ) in shown.notices
    with pytest.raises(ServiceError):  # nobody is asked: nothing to decide until it is assessed again
        act(db, config, changes.approve, managers["cab2"], ref)
    # Assessed again: both asked afresh; a second edit is a new request to the change managers.
    act(db, config, changes.assess, managers["chm"], ref)
    assert decisions(db, ref) == {"cab1": "pending", "cab2": "pending"}
    act(db, config, changes.edit_change, managers["chm"], ref, implementation_plan="Swap both cards.")
    assert told(db, ref)["chm2"][-1] == (
        f"{ref} edited after its assessment (implementation plan): assess it again for the CAB: Replace the "
        f"line card"
    )
    assert len(told(db, ref)["chm2"]) == len(before["chm2"]) + 2
    # A change in a blackout or in the past is refused whole, still assessed.
    act(db, config, changes.assess, managers["chm"], ref)
    with pytest.raises(ValidationError, match="in the past"):
        act(db, config, changes.edit_change, managers["chm"], ref, start=NOW - timedelta(days=1))
    with db.read_session() as s:
        assert changes.get_change(s, ref).state == "assessed"


def test_an_assessed_risk_is_the_assessments_and_an_edit_never_changes_it(db, config, managers):
    ref = new_change(db, config, managers["net1"], risk="high")
    act(db, config, changes.edit_change, managers["net1"], ref, risk="medium")  # a draft: proposed
    act(db, config, changes.submit, managers["net1"], ref)
    act(db, config, changes.edit_change, managers["net1"], ref, risk="high")  # submitted: proposed still
    one_service = {"services": "one", "backout": "yes", "window": "no", "failures": "no", "users": "no"}
    state, version = act(db, config, changes.assess, managers["chm"], ref, answers=one_service)
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        assert (state, change.risk, change.risk_score) == ("assessed", "low", 0)  # 0 points: low
    refusal = f"{ref} was assessed: its risk is the assessment's; assess it again to change it"
    with pytest.raises(ValidationError) as refused:
        act(db, config, changes.edit_change, managers["chm"], ref, risk="high", title="Anything")
    assert (refused.value.field, str(refused.value)) == ("risk", refusal)
    # The same risk is no change: nothing is written.
    assert act(db, config, changes.edit_change, managers["chm"], ref, risk="low") == ("assessed", version)
    # Four services now: sent back; score and answers kept until assessed again, whose suggestion is new.
    act(db, config, changes.edit_change, managers["chm"], ref, targets=["network, erp, crm, vpn"])
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        assert (change.state, change.risk, change.risk_score) == ("submitted", "low", 0)
        asked = changes.questionnaire(s, config, change, NOW)
    (services,) = [q for q in asked.questions if q.id == "services"]
    assert (services.answer, services.recorded, services.suggested) == ("one", True, "more than three")
    # Sent back, it still was assessed: who raised it may edit it again, but not its risk.
    with pytest.raises(ValidationError, match="was assessed: its risk is the assessment's"):
        act(db, config, changes.edit_change, managers["net1"], ref, risk="high")
    four = one_service | {"services": "more than three"}
    act(db, config, changes.assess, managers["chm"], ref, answers=four)
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        assert (change.risk, change.risk_score) == ("medium", 4)  # 4 points: medium (from 3), not low
    act(db, config, changes.approve, managers["cab1"], ref)
    with db.read_session() as s:  # medium: [approval] rule "all", not low's quorum of one
        assert changes.get_change(s, ref).state == "assessed"


def test_an_emergency_change_being_decided_has_its_approvers_asked_again(db, config, managers):
    ref = new_change(db, config, managers["net1"], change_type="emergency")
    act(db, config, changes.submit, managers["net1"], ref)
    before = told(db, ref)
    later = SAT_NIGHT + timedelta(days=1)
    state, _ = act(db, config, changes.edit_change, managers["chm"], ref, start=later)
    assert state == "submitted"
    again = told(db, ref)
    assert len(again["chm2"]) == len(before["chm2"]) + 1
    assert again["chm2"][-1] == (
        f"Emergency change {ref} awaits your approval: edited (window; 2026-03-08 22:00 to 2026-03-09 00:00 "
        f"UTC): Replace core switch line card"
    )


# --------------------------------------------------------------------------- withdraw and cancel


def test_withdrawing_tells_who_was_asked_once(db, config, staff):
    draft = new_change(db, config, staff["net1"])
    assert act(db, config, changes.withdraw, staff["net1"], draft, reason="Not needed")[0] == "withdrawn"
    assert told(db, draft) == {}  # a draft was nobody's business yet
    assert ("withdraw", "cancel_reason", None, "Not needed") in audit_rows(db, draft)

    submitted = new_change(db, config, staff["net1"], start=SAT_NIGHT + timedelta(days=1))
    act(db, config, changes.submit, staff["net1"], submitted)
    asked = told(db, submitted)
    act(db, config, changes.withdraw, staff["net1"], submitted)
    after = told(db, submitted)
    assert {login: len(after[login]) - len(asked.get(login, [])) for login in after} == {"chm": 1}

    assessed = new_change(db, config, staff["net1"], start=SAT_NIGHT + timedelta(days=2))
    bring_to(db, config, staff, assessed, "assessed", SAT_NIGHT)
    asked = told(db, assessed)
    act(db, config, changes.withdraw, staff["net1"], assessed)
    after = told(db, assessed)
    assert {login: len(after[login]) - len(asked.get(login, [])) for login in after} == {"chm": 1, "cab1": 1}
    assert after["cab1"][-1] == f"{assessed} withdrawn by net1: Replace core switch line card"
    with pytest.raises(ServiceError, match="withdrawn to approved"):
        act(db, config, changes.approve, staff["cab1"], assessed)  # pending, but moot


def test_cancelling_needs_a_reason_and_tells_approvers_implementer_and_requester_once(db, config, staff):
    ref = new_change(db, config, staff["net1"])
    bring_to(db, config, staff, ref, "scheduled", SAT_NIGHT)
    with pytest.raises(ValidationError) as refused:
        act(db, config, changes.cancel, staff["chm"], ref, reason="  ")
    assert refused.value.field == "reason"
    asked = told(db, ref)
    assert (
        act(db, config, changes.cancel, staff["chm"], ref, reason="Vendor pulled the part")[0] == "cancelled"
    )
    after = told(db, ref)
    new = {login: after[login][len(asked.get(login, [])) :] for login in after}
    message = f"{ref} cancelled by chm (Vendor pulled the part): Replace core switch line card"
    assert {login: texts for login, texts in new.items() if texts} == {
        "cab1": [message],
        "eng1": [message],
        "net1": [message],
    }
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        assert (change.state, change.cancel_reason) == ("cancelled", "Vendor pulled the part")
        pending = s.scalars(select(ChangeApproval).where(ChangeApproval.change_id == change.id)).all()
        assert [a.decision for a in pending] == ["approved"]  # the rows stay
    assert audit_rows(db, ref, "cancel") == [
        ("cancel", "state", "scheduled", "cancelled"),
        ("cancel", "cancel_reason", None, "Vendor pulled the part"),
    ]


def test_a_stale_edit_is_refused(db, config, staff):
    ref = new_change(db, config, staff["net1"])
    act(
        db, config, changes.edit_change, staff["chm"], ref, title="Changed by the manager", expected_version=1
    )
    with pytest.raises(StaleEdit, match="version 1, now 2"):
        act(db, config, changes.edit_change, staff["net1"], ref, title="Mine", expected_version=1)
    with db.read_session() as s:
        assert changes.get_change(s, ref).title == "Changed by the manager"


def test_a_withdrawn_or_cancelled_change_frees_its_slot(db, config, staff):
    first = new_change(db, config, staff["net1"])
    second = new_change(db, config, staff["eng1"], title="Upgrade firmware", implementer="net1")
    third = new_change(db, config, staff["net1"], title="Replace optics", implementer=None)
    for ref, who in ((first, "net1"), (second, "eng1"), (third, "net1")):
        act(db, config, changes.submit, staff[who], ref)

    def clashes(ref: str) -> set[str]:
        with db.read_session() as s:
            view = changes.view(s, config, changes.get_change(s, ref))
        return {other for c in view.conflicts if c.kind == "overlap" for other in c.refs if other != ref}

    assert clashes(second) == {first, third}
    act(db, config, changes.withdraw, staff["net1"], first)
    act(db, config, changes.cancel, staff["chm"], third, reason="Merged into the firmware upgrade")
    assert clashes(second) == set()
    with db.read_session() as s:
        assert changes.view(s, config, changes.get_change(s, first)).conflicts == []


def test_markup_in_an_edited_title_stays_literal(db, config, staff, monkeypatch, capsys):
    ref = new_change(db, config, staff["net1"])
    act(db, config, changes.edit_change, staff["net1"], ref, title="[b]bold[/b] and [red]red")
    with db.read_session() as s:
        assert s.scalar(select(Change.title).where(Change.ref == ref)) == "[b]bold[/b] and [red]red"
    code, out, err = run_as(monkeypatch, capsys, "net1", "change", "show", ref, "--db", db.url)
    assert code == 0, err
    assert "[b]bold[/b] and [red]red" in out


# --------------------------------------------------------------------------- the command line


def test_the_command_line_edits_withdraws_and_cancels(db, config, staff, monkeypatch, capsys):
    ref = new_change(db, config, staff["net1"])
    code, out, err = run_as(
        monkeypatch, capsys, "net1", "change", "edit", ref, "--test-plan", "Ping it.", "--implementer", "",
        "--targets", "network:core-sw-01", "--targets", "vpn", "--db", db.url,
    )  # fmt: skip
    assert (code, err) == (0, "") and out.startswith(f"{ref} normal draft v2: Replace core switch line card")
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        assert (change.test_plan, change.implementer_id, len(change.targets)) == ("Ping it.", None, 2)
    code, out, err = run_as(monkeypatch, capsys, "net1", "change", "edit", ref, "--db", db.url)
    assert (
        code == 2
        and err.startswith("itsm: error: give at least one field to change")
        and err.count("\n") == 1
    )
    code, out, err = run_as(
        monkeypatch, capsys, "net1", "change", "cancel", ref, "--reason", "x", "--db", db.url
    )
    assert code == 2 and "change_manager" in err and err.count("\n") == 1
    code, out, err = run_as(
        monkeypatch,
        capsys,
        "net1",
        "change",
        "withdraw",
        ref,
        "--reason",
        "Done otherwise",
        "--json",
        "--db",
        db.url,
    )
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["state"], shown["cancel_reason"]) == ("withdrawn", "Done otherwise")
    code, out, err = run_as(monkeypatch, capsys, "net1", "change", "show", ref, "--db", db.url)
    assert "Withdrawn:    Done otherwise" in out


def test_the_command_line_never_edits_an_assessed_risk(db, config, staff, monkeypatch, capsys):
    ref = new_change(db, config, staff["net1"])
    bring_to(db, config, staff, ref, "assessed", SAT_NIGHT)
    code, out, err = run_as(
        monkeypatch, capsys, "chm", "change", "edit", ref, "--risk", "low", "--db", db.url
    )
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.endswith(
        f"{ref} was assessed: its risk is the assessment's; assess it again to change it\n"
    )
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        assert (change.state, change.risk, change.version) == ("assessed", "medium", 3)
