"""The change service on SQLite and PostgreSQL: lifecycle, standard templates, CAB approval rules, emergency
changes and the blackout override, the post-implementation review rule, permissions, audit and locking."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from itsm_tui.models import AuditEvent, Blackout, Change, ChangeApproval, Notification, User
from itsm_tui.services import changes
from itsm_tui.services import users as user_service
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.changes import ChangeBlocked
from itsm_tui.services.errors import InvalidTransition, ServiceError, StaleEdit, ValidationError

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
SAT_NIGHT = datetime(2026, 3, 7, 22, 0, tzinfo=UTC)


@pytest.fixture
def cab(db, staff):
    """CAB members assigned (by support group) to network and vpn (NET-L2) and to email and erp (APP-L2)."""
    with db.session() as s:
        for login, group in (("cabnet1", "NET-L2"), ("cabnet2", "NET-L2"), ("cabapp", "APP-L2")):
            user_service.add_user(
                s, actor_login="admin1", login=login, roles=["cab_member", "support_l2"], groups=[group]
            )
    with db.read_session() as s:
        return staff | {
            login: user_service.resolve_actor(s, login) for login in ("cabnet1", "cabnet2", "cabapp")
        }


def new_change(db, config, actor, **kw):
    values = {
        "change_type": "normal",
        "title": "Replace core switch line card",
        "targets": ["network:core-sw-01"],
        "start": SAT_NIGHT,
        "end": SAT_NIGHT + timedelta(hours=2),
        "implementation_plan": "Swap the card.",
        "backout_plan": "Put the old card back.",
        "implementer": "net1",
        "now": NOW,
    }
    values.update(kw)
    with db.session() as s:
        return changes.create_change(s, config, actor, **values).ref


def act(db, config, fn, actor, ref, **kw):
    """Run one service call in its own transaction; return the change's state and version after it."""
    kw.setdefault("now", NOW)
    with db.session() as s:
        change = fn(s, config, actor, ref, **kw)
        return change.state, change.version


def state_of(db, ref) -> str:
    with db.read_session() as s:
        return changes.get_change(s, ref).state


def audit_rows(db, ref) -> list[tuple[str, str | None, str | None, str | None]]:
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        return [
            (e.action, e.field, e.old_value, e.new_value)
            for e in s.scalars(
                select(AuditEvent)
                .where(AuditEvent.entity_type == "change", AuditEvent.entity_id == change.id)
                .order_by(AuditEvent.id)
            )
        ]


def notified(db, login, kind=None) -> list[str]:
    with db.read_session() as s:
        stmt = (
            select(Notification.message)
            .join(User, User.id == Notification.user_id)
            .where(User.login == login)
        )
        if kind:
            stmt = stmt.where(Notification.kind == kind)
        return list(s.scalars(stmt.order_by(Notification.id)))


# --------------------------------------------------------------------------- lifecycle


def test_normal_change_goes_through_the_whole_lifecycle_audited(db, config, cab):
    ref = new_change(db, config, cab["net1"])
    assert state_of(db, ref) == "draft"
    assert act(db, config, changes.submit, cab["net1"], ref)[0] == "submitted"
    assert notified(db, "chm", "change_approval")  # the change manager is asked to assess it
    assert act(db, config, changes.assess, cab["chm"], ref, risk="high")[0] == "assessed"
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        asked = {s.get(User, a.approver_id).login for a in change.approvals}
    assert asked == {
        "cabnet1",
        "cabnet2",
    }  # the CAB members of the network's support group, not cab1 or cabapp
    assert notified(db, "cabnet1", "change_approval") and notified(db, "cabnet2", "change_approval")
    assert not notified(db, "cab1", "change_approval")

    assert act(db, config, changes.approve, cab["cabnet1"], ref)[0] == "assessed"  # rule "all": one more
    assert act(db, config, changes.approve, cab["cabnet2"], ref, reason="ok")[0] == "approved"
    assert act(db, config, changes.schedule, cab["chm"], ref)[0] == "scheduled"
    assert act(db, config, changes.start_implementation, cab["net1"], ref, now=SAT_NIGHT)[0] == "implementing"
    done = SAT_NIGHT + timedelta(hours=1)
    assert (
        act(db, config, changes.complete, cab["net1"], ref, outcome="implemented", now=done)[0]
        == "implemented"
    )
    assert act(db, config, changes.close, cab["chm"], ref, now=done)[0] == "closed"

    rows = audit_rows(db, ref)
    states = [(old, new) for action, name, old, new in rows if name == "state" and action != "create"]
    assert states == [
        ("draft", "submitted"),
        ("submitted", "assessed"),
        ("assessed", "approved"),
        ("approved", "scheduled"),
        ("scheduled", "implementing"),
        ("implementing", "implemented"),
        ("implemented", "closed"),
    ]
    fields = {name for _, name, _, _ in rows}
    assert {"risk", "approvers", "approval", "actual_start", "actual_end", "outcome", "targets"} <= fields
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        assert (
            change.outcome == "implemented" and change.actual_start == SAT_NIGHT and change.actual_end == done
        )


def test_an_illegal_step_is_refused_naming_the_allowed_ones(db, config, cab):
    ref = new_change(db, config, cab["net1"])
    with pytest.raises(InvalidTransition) as refused:
        act(db, config, changes.start_implementation, cab["chm"], ref)
    assert "from draft it may go to: submitted" in str(refused.value)
    act(db, config, changes.submit, cab["net1"], ref)
    with pytest.raises(ServiceError, match="awaits assessment"):
        act(db, config, changes.approve, cab["cabnet1"], ref)
    with pytest.raises(InvalidTransition, match="from submitted it may go to: assessed, approved, rejected"):
        act(db, config, changes.schedule, cab["chm"], ref)
    assert state_of(db, ref) == "submitted"


def test_a_normal_change_needs_plans_and_a_future_window_to_be_submitted(db, config, cab):
    ref = new_change(db, config, cab["net1"], backout_plan="")
    with pytest.raises(ValidationError) as refused:
        act(db, config, changes.submit, cab["net1"], ref)
    assert refused.value.field == "backout_plan"
    late = new_change(db, config, cab["net1"], start=NOW - timedelta(hours=2), end=NOW - timedelta(hours=1))
    with pytest.raises(ValidationError, match="in the past"):
        act(db, config, changes.submit, cab["net1"], late)
    with pytest.raises(ValidationError) as bad:
        new_change(db, config, cab["net1"], end=SAT_NIGHT - timedelta(minutes=5))
    assert bad.value.field == "end"
    with pytest.raises(ValidationError, match="neither a service"):
        new_change(db, config, cab["net1"], targets=["no-such-thing"])
    with pytest.raises(ValidationError, match="not part of network"):
        new_change(db, config, cab["net1"], targets=["network:mx-01"])


def test_a_ci_alone_names_its_service_and_a_whole_service_covers_its_cis(config):
    assert changes.parse_targets(config, ["core-sw-01"]) == [("network", "core-sw-01")]
    assert changes.parse_targets(config, ["network:core-sw-01, network", "vpn"]) == [
        ("network", None),
        ("vpn", None),
    ]


# --------------------------------------------------------------------------- standard changes


def test_a_standard_change_comes_from_its_template_and_skips_the_cab(db, config, cab):
    with db.session() as s:
        change = changes.create_change(
            s,
            config,
            cab["net1"],
            change_type="standard",
            template="std-patch",
            targets=["vpn"],
            start=SAT_NIGHT,
            implementer="net1",
            now=NOW,
        )
        ref = change.ref
        template = config.changes.templates["std-patch"]
        assert change.title == template.title and change.risk == template.risk
        assert change.backout_plan == template.backout_plan
        assert change.planned_end - change.planned_start == timedelta(minutes=template.duration_minutes)
    assert act(db, config, changes.submit, cab["net1"], ref)[0] == "approved"
    with db.read_session() as s:
        assert not s.scalar(select(func.count()).select_from(ChangeApproval))
    assert ("preapproved", "approval", None, "pre-approved by template std-patch") in audit_rows(db, ref)
    with pytest.raises(ServiceError, match="pre-approved by template std-patch"):
        act(db, config, changes.approve, cab["chm"], ref)
    # Who raised a standard change may schedule it themselves.
    assert act(db, config, changes.schedule, cab["net1"], ref)[0] == "scheduled"


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"template": None}, "template", "comes from a template"),
        ({"template": "std-nope"}, "template", "unknown template"),
        ({"template": "std-user-storage"}, "targets", "only for storage"),
        ({"end": SAT_NIGHT + timedelta(hours=5)}, "end", "at most 4 h 00 min"),
        ({"risk": "high"}, "risk", "pre-approved at risk low"),
        ({"backout_plan": "Pray."}, "implementation_plan", "follows the plans"),
    ],
)
def test_a_standard_change_must_fit_its_template(db, config, cab, overrides, field, text):
    values = {"change_type": "standard", "template": "std-patch", "targets": ["network"], "start": SAT_NIGHT}
    values.update(overrides)
    with db.session() as s, pytest.raises(ValidationError) as refused:
        changes.create_change(s, config, cab["net1"], now=NOW, **values)
    assert refused.value.field == field and text in str(refused.value)


def test_a_template_is_only_for_standard_changes(db, config, cab):
    with pytest.raises(ValidationError, match="only standard changes"):
        new_change(db, config, cab["net1"], template="std-patch")


# --------------------------------------------------------------------------- CAB approval rules


def submitted_and_assessed(db, config, staff, **kw) -> str:
    ref = new_change(db, config, staff["net1"], **kw)
    act(db, config, changes.submit, staff["net1"], ref)
    act(db, config, changes.assess, staff["chm"], ref)
    return ref


def test_rule_all_needs_every_assigned_member_and_one_rejection_rejects(db, config, cab):
    ref = submitted_and_assessed(db, config, cab)
    with pytest.raises(ValidationError) as no_reason:
        act(db, config, changes.reject, cab["cabnet1"], ref, reason="  ")
    assert no_reason.value.field == "reason"
    with pytest.raises(PermissionDenied) as outsider:
        act(db, config, changes.approve, cab["cab1"], ref)
    assert "not one of the CAB members asked" in str(outsider.value) and "cabnet1, cabnet2" in str(
        outsider.value
    )
    act(db, config, changes.approve, cab["cabnet1"], ref)
    with db.read_session() as s:
        progress = changes.approval_progress(s, config, changes.get_change(s, ref))
    assert progress == "1 of 2 approvals; waiting for cabnet2"
    with pytest.raises(ServiceError, match="already approved"):
        act(db, config, changes.approve, cab["cabnet1"], ref)
    assert (
        act(db, config, changes.reject, cab["cabnet2"], ref, reason="Clashes with the audit")[0] == "rejected"
    )
    with db.read_session() as s:
        assert changes.get_change(s, ref).rejection_reason == "cabnet2: Clashes with the audit"
    assert any("rejected" in m for m in notified(db, "net1", "change_approval"))
    assert act(db, config, changes.close, cab["chm"], ref)[0] == "closed"


def test_rule_n_of_m_approves_at_n_and_rejects_when_n_is_out_of_reach(db, config, cab):
    quorum = replace(config, changes=replace(config.changes, rule="quorum", quorum=2))
    with db.session() as s:
        user_service.add_user(
            s, actor_login="admin1", login="cabnet3", roles=["cab_member"], groups=["NET-L2"]
        )
    with db.read_session() as s:
        cabnet3 = user_service.resolve_actor(s, "cabnet3")
    ref = submitted_and_assessed(db, quorum, cab)
    with db.read_session() as s:
        assert len(changes.get_change(s, ref).approvals) == 3
        assert changes.view(s, quorum, changes.get_change(s, ref)).approval_rule.endswith("(2 of 3)")
    assert act(db, quorum, changes.reject, cab["cabnet1"], ref, reason="Risky")[0] == "assessed"
    assert act(db, quorum, changes.approve, cab["cabnet2"], ref)[0] == "assessed"
    assert act(db, quorum, changes.approve, cabnet3, ref)[0] == "approved"

    other = submitted_and_assessed(
        db, quorum, cab, start=SAT_NIGHT + timedelta(days=7), end=SAT_NIGHT + timedelta(days=7, hours=1)
    )
    assert act(db, quorum, changes.reject, cab["cabnet1"], other, reason="No")[0] == "assessed"
    assert act(db, quorum, changes.reject, cabnet3, other, reason="Not now")[0] == "rejected"


def test_without_assigned_members_every_cab_member_is_asked_or_those_named_in_config(db, config, cab):
    ref = submitted_and_assessed(db, config, cab, targets=["identity"], implementer="eng1")
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        asked = sorted(s.get(User, a.approver_id).login for a in change.approvals)
    assert asked == ["cab1", "cabapp", "cabnet1", "cabnet2"]
    named = replace(config, changes=replace(config.changes, members={"identity": ("cab1",)}))
    ref2 = submitted_and_assessed(
        db,
        named,
        cab,
        targets=["identity"],
        implementer="eng1",
        start=SAT_NIGHT + timedelta(days=7),
        end=SAT_NIGHT + timedelta(days=7, hours=1),
    )
    with db.read_session() as s:
        assert [s.get(User, a.approver_id).login for a in changes.get_change(s, ref2).approvals] == ["cab1"]


def test_who_raised_a_change_is_not_asked_to_approve_it(db, config, cab):
    ref = new_change(db, config, cab["cabnet1"])
    act(db, config, changes.submit, cab["cabnet1"], ref)
    act(db, config, changes.assess, cab["chm"], ref)
    with db.read_session() as s:
        assert [s.get(User, a.approver_id).login for a in changes.get_change(s, ref).approvals] == ["cabnet2"]
    with pytest.raises(PermissionDenied):
        act(db, config, changes.approve, cab["cabnet1"], ref)


# --------------------------------------------------------------------------- permissions


@pytest.mark.parametrize(
    ("who", "step", "role"),
    [
        ("agent1", "create", "change_manager"),
        ("net1", "assess", "change_manager"),
        ("app1", "submit", "change_manager"),
        ("agent1", "approve", "cab_member or change_manager"),
        ("cab1", "schedule", "change_manager"),
        ("app1", "start", "change_manager"),
        ("net1", "close", "change_manager"),
    ],
)
def test_refusals_name_the_role_needed(db, config, cab, who, step, role):
    ref = new_change(db, config, cab["net1"])
    steps = {
        "create": lambda a: new_change(db, config, a),
        "assess": lambda a: (
            act(db, config, changes.submit, cab["net1"], ref),
            act(db, config, changes.assess, a, ref),
        ),
        "submit": lambda a: act(db, config, changes.submit, a, ref),
        "approve": lambda a: (
            act(db, config, changes.submit, cab["net1"], ref),
            act(db, config, changes.assess, cab["chm"], ref),
            act(db, config, changes.approve, a, ref),
        ),
        "schedule": lambda a: (approve_all(db, config, cab, ref), act(db, config, changes.schedule, a, ref)),
        "start": lambda a: (
            approve_all(db, config, cab, ref),
            act(db, config, changes.schedule, cab["chm"], ref),
            act(db, config, changes.start_implementation, a, ref, now=SAT_NIGHT),
        ),
        "close": lambda a: (
            approve_all(db, config, cab, ref),
            act(db, config, changes.schedule, cab["chm"], ref),
            act(db, config, changes.start_implementation, cab["net1"], ref, now=SAT_NIGHT),
            act(db, config, changes.complete, cab["net1"], ref, outcome="implemented", now=SAT_NIGHT),
            act(db, config, changes.close, a, ref, now=SAT_NIGHT),
        ),
    }
    with pytest.raises(PermissionDenied) as refused:
        steps[step](cab[who])
    assert role in str(refused.value)


def approve_all(db, config, staff, ref) -> None:
    act(db, config, changes.submit, staff["net1"], ref)
    act(db, config, changes.assess, staff["chm"], ref)
    for login in ("cabnet1", "cabnet2"):
        act(db, config, changes.approve, staff[login], ref)


def test_available_actions_say_why_not(db, config, cab):
    ref = submitted_and_assessed(db, config, cab)
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        mine = changes.available_actions(s, config, cab["cabnet1"], change, NOW)
        agents = changes.available_actions(s, config, cab["agent1"], change, NOW)
    assert mine["approve"] is None and mine["reject"] is None
    assert "cab_member or change_manager" in agents["approve"]
    assert "from assessed it may go to" in mine["start"]


# --------------------------------------------------------------------------- emergency changes and blackouts


def test_an_emergency_change_is_decided_by_a_change_manager(db, config, cab):
    ref = new_change(
        db,
        config,
        cab["net1"],
        change_type="emergency",
        start=NOW + timedelta(hours=1),
        end=NOW + timedelta(hours=2),
    )
    act(db, config, changes.submit, cab["net1"], ref)
    assert any("Emergency change" in m for m in notified(db, "chm", "change_approval"))
    with pytest.raises(PermissionDenied) as refused:
        act(db, config, changes.approve, cab["cab1"], ref)
    assert "change_manager" in str(refused.value)
    with pytest.raises(ServiceError, match="without CAB assessment"):
        act(db, config, changes.assess, cab["chm"], ref)
    assert act(db, config, changes.approve, cab["chm"], ref)[0] == "approved"


def test_an_emergency_change_raised_by_the_change_manager_needs_another_one(db, config, cab):
    ref = new_change(
        db,
        config,
        cab["chm"],
        change_type="emergency",
        start=NOW + timedelta(hours=1),
        end=NOW + timedelta(hours=2),
    )
    act(db, config, changes.submit, cab["chm"], ref)
    with pytest.raises(PermissionDenied, match="another change_manager"):
        act(db, config, changes.approve, cab["chm"], ref)


def add_freeze(db, staff, config, service=None) -> None:
    with db.session() as s:
        changes.add_blackout(
            s,
            staff["chm"],
            name="Quarter close",
            start=datetime(2026, 3, 6, tzinfo=UTC),
            end=datetime(2026, 3, 9, tzinfo=UTC),
            service=service,
            reason="Finance",
            config=config,
            now=NOW,
        )


def test_a_blackout_blocks_normal_and_standard_changes_and_nothing_is_written(db, config, cab):
    add_freeze(db, cab, config)
    ref = new_change(db, config, cab["net1"])
    std = None
    with db.session() as s:
        std = changes.create_change(
            s,
            config,
            cab["net1"],
            change_type="standard",
            template="std-patch",
            targets=["vpn"],
            start=SAT_NIGHT,
            now=NOW,
        ).ref
    before = len(audit_rows(db, ref))
    for r in (ref, std):
        with pytest.raises(ChangeBlocked) as blocked:
            act(db, config, changes.submit, cab["net1"], r)
        assert 'change freeze "Quarter close"' in str(blocked.value) and "every service" in str(blocked.value)
        assert state_of(db, r) == "draft"
    assert len(audit_rows(db, ref)) == before
    with pytest.raises(ValidationError, match="only an emergency change may override"):
        act(db, config, changes.submit, cab["chm"], ref, override_reason="Please")


def test_a_blackout_of_another_service_does_not_block(db, config, cab):
    add_freeze(db, cab, config, service="erp")
    ref = new_change(db, config, cab["net1"])
    assert act(db, config, changes.submit, cab["net1"], ref)[0] == "submitted"
    erp = new_change(db, config, cab["app1"], targets=["erp"], implementer="app1")
    with pytest.raises(ChangeBlocked, match="service erp"):
        act(db, config, changes.submit, cab["app1"], erp)


def test_an_emergency_change_enters_a_blackout_only_with_a_change_managers_override_reason(db, config, cab):
    add_freeze(db, cab, config)
    ref = new_change(db, config, cab["net1"], change_type="emergency")
    with pytest.raises(ChangeBlocked, match="only with an override reason"):
        act(db, config, changes.submit, cab["net1"], ref)
    with pytest.raises(PermissionDenied, match="change_manager"):
        act(db, config, changes.submit, cab["net1"], ref, override_reason="Core switch failing")
    assert (
        act(db, config, changes.submit, cab["chm"], ref, override_reason="Core switch failing")[0]
        == "submitted"
    )
    assert ("override", "override_reason", None, "Core switch failing") in audit_rows(db, ref)
    with db.read_session() as s:
        found = changes.view(s, config, changes.get_change(s, ref)).conflicts
    freeze = next(c for c in found if c.kind == "blackout")
    assert freeze.severity == "overridden" and "emergency override: Core switch failing" in freeze.message


def test_moving_a_submitted_change_into_a_blackout_is_refused_but_a_draft_may_be_parked_there(
    db, config, cab
):
    add_freeze(db, cab, config)
    early = datetime(2026, 3, 4, 22, tzinfo=UTC)
    ref = new_change(db, config, cab["net1"], start=early, end=early + timedelta(hours=1))
    assert act(db, config, changes.reschedule, cab["net1"], ref, start=SAT_NIGHT, end=None)[0] == "draft"
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        assert change.planned_end - change.planned_start == timedelta(hours=1)  # the length is kept
    act(db, config, changes.reschedule, cab["net1"], ref, start=early, end=None)
    act(db, config, changes.submit, cab["net1"], ref)
    with pytest.raises(ChangeBlocked):
        act(db, config, changes.reschedule, cab["net1"], ref, start=SAT_NIGHT, end=None)
    assert ("reschedule", "planned_start", SAT_NIGHT.isoformat(), early.isoformat()) in audit_rows(db, ref)


def test_only_a_change_manager_moves_an_approved_change(db, config, cab):
    ref = new_change(db, config, cab["net1"])
    approve_all(db, config, cab, ref)
    later = SAT_NIGHT + timedelta(days=7)
    with pytest.raises(PermissionDenied, match="change_manager"):
        act(db, config, changes.reschedule, cab["net1"], ref, start=later, end=None)
    # Scheduling it in another window than the one approved sends it back to the CAB.
    assert act(db, config, changes.schedule, cab["chm"], ref, start=later)[0] == "assessed"
    with db.read_session() as s:
        assert changes.get_change(s, ref).planned_start == later


# --------------------------------------------------------------------------- post-implementation review


def implemented(db, config, staff, outcome, **kw) -> str:
    ref = new_change(db, config, staff["net1"], **kw)
    if kw.get("change_type") == "emergency":
        act(db, config, changes.submit, staff["net1"], ref)
        act(db, config, changes.approve, staff["chm"], ref)
    else:
        approve_all(db, config, staff, ref)
    act(db, config, changes.schedule, staff["chm"], ref)
    begins = kw.get("start", SAT_NIGHT)  # the implementer begins at the planned start
    act(db, config, changes.start_implementation, staff["net1"], ref, now=begins)
    note = None if outcome == "implemented" else "Card did not boot"
    act(db, config, changes.complete, staff["net1"], ref, outcome=outcome, note=note, now=begins)
    return ref


@pytest.mark.parametrize(
    ("outcome", "change_type"),
    [("failed", "normal"), ("backed_out", "normal"), ("implemented", "emergency")],
)
def test_failed_backed_out_and_emergency_changes_need_a_review_before_closing(
    db, config, cab, outcome, change_type
):
    kw = {"change_type": change_type}
    if change_type == "emergency":
        kw.update(start=NOW + timedelta(hours=1), end=NOW + timedelta(hours=2))
    ref = implemented(db, config, cab, outcome, **kw)
    assert state_of(db, ref) == outcome
    with pytest.raises(ServiceError, match="needs a post-implementation review"):
        act(db, config, changes.close, cab["chm"], ref)
    assert act(db, config, changes.start_review, cab["chm"], ref)[0] == "review"
    with pytest.raises(ValidationError) as no_notes:
        act(db, config, changes.close, cab["chm"], ref)
    assert no_notes.value.field == "review_notes"
    assert (
        act(db, config, changes.close, cab["chm"], ref, review_notes="Firmware mismatch; check first.")[0]
        == "closed"
    )
    assert ("review", "review_notes", None, "Firmware mismatch; check first.") in audit_rows(db, ref)


def test_a_successful_normal_change_closes_without_review_and_failures_need_a_note(db, config, cab):
    ref = implemented(db, config, cab, "implemented")
    assert act(db, config, changes.close, cab["chm"], ref)[0] == "closed"
    other = new_change(
        db,
        config,
        cab["net1"],
        start=SAT_NIGHT + timedelta(days=7),
        end=SAT_NIGHT + timedelta(days=7, hours=1),
    )
    approve_all(db, config, cab, other)
    act(db, config, changes.schedule, cab["chm"], other)
    act(db, config, changes.start_implementation, cab["net1"], other, now=SAT_NIGHT + timedelta(days=7))
    with pytest.raises(ValidationError) as no_note:
        act(db, config, changes.complete, cab["net1"], other, outcome="failed")
    assert no_note.value.field == "note"
    with pytest.raises(ValidationError, match="implemented, failed, backed_out"):
        act(db, config, changes.complete, cab["net1"], other, outcome="meh")


# --------------------------------------------------------------------------- locking and audit


def test_a_save_over_a_newer_version_is_refused(db, config, cab):
    ref = new_change(db, config, cab["net1"])
    with db.read_session() as s:
        shown = changes.get_change(s, ref).version
    act(db, config, changes.submit, cab["net1"], ref, expected_version=shown)
    with pytest.raises(StaleEdit) as stale:
        act(db, config, changes.assess, cab["chm"], ref, expected_version=shown)
    assert "Net1 (net1)" in str(stale.value) and "reload" in str(stale.value)
    assert state_of(db, ref) == "submitted"


def test_every_mutation_is_audited_in_its_own_transaction(db, config, cab):
    ref = new_change(db, config, cab["net1"])
    counts = [len(audit_rows(db, ref))]
    for fn, who, kw in (
        (changes.submit, "net1", {}),
        (changes.assess, "chm", {}),
        (changes.approve, "cabnet1", {}),
        (changes.approve, "cabnet2", {}),
        (
            changes.reschedule,
            "chm",
            {"start": SAT_NIGHT + timedelta(hours=1), "end": None},
        ),  # back to the CAB
        (changes.approve, "cabnet1", {}),
        (changes.approve, "cabnet2", {}),
        (changes.schedule, "chm", {}),
    ):
        act(db, config, fn, cab[who], ref, **kw)
        counts.append(len(audit_rows(db, ref)))
    assert all(b > a for a, b in itertools.pairwise(counts))
    with db.read_session() as s:
        actors = set(s.scalars(select(AuditEvent.actor_id).where(AuditEvent.entity_type == "change")))
        assert {cab[x].id for x in ("net1", "chm", "cabnet1", "cabnet2")} <= actors


def test_windows_and_blackouts_are_added_by_change_managers_with_valid_rules(db, config, cab):
    with db.session() as s, pytest.raises(PermissionDenied, match="change_manager"):
        changes.add_blackout(s, cab["net1"], name="x", start=NOW, end=NOW + timedelta(days=1), config=config)
    with db.session() as s, pytest.raises(ValidationError, match="not an RRULE"):
        changes.add_window(
            s,
            cab["chm"],
            name="w",
            service="network",
            rrule="every saturday",
            start_local="22:00",
            duration_minutes=60,
            timezone="Europe/Berlin",
            config=config,
        )
    with db.session() as s, pytest.raises(ValidationError, match="HH:MM"):
        changes.add_window(
            s,
            cab["chm"],
            name="w",
            service="network",
            rrule="FREQ=WEEKLY;BYDAY=SA",
            start_local="25:00",
            duration_minutes=60,
            timezone="Europe/Berlin",
            config=config,
        )
    with db.session() as s:
        window = changes.add_window(
            s,
            cab["chm"],
            name="w",
            service="network",
            rrule="rrule:freq=weekly;byday=sa",
            start_local="22:00",
            duration_minutes=60,
            timezone="Europe/Berlin",
            config=config,
            now=NOW,
        )
        assert window.rrule == "FREQ=WEEKLY;BYDAY=SA"
    with db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(Blackout)) == 0
        assert s.scalar(select(func.count()).where(AuditEvent.entity_type == "window")) == 1


def test_change_ids_and_refs_are_forgiving(db, config, cab):
    ref = new_change(db, config, cab["net1"])
    with db.read_session() as s:
        assert changes.get_change(s, "chg1").ref == ref == "CHG0000001"
        assert changes.get_change(s, "1").ref == ref
        assert s.scalar(select(func.count()).select_from(Change)) == 1


def test_a_blackout_laid_over_a_scheduled_change_stops_its_start(db, config, cab):
    ref = new_change(db, config, cab["net1"])
    approve_all(db, config, cab, ref)
    act(db, config, changes.schedule, cab["chm"], ref)
    add_freeze(db, cab, config)  # decided after the change was scheduled
    with pytest.raises(ChangeBlocked, match="cannot be started"):
        act(db, config, changes.start_implementation, cab["net1"], ref, now=SAT_NIGHT)
    assert state_of(db, ref) == "scheduled"


def test_two_approvers_deciding_at_once_are_both_counted(db, db_url, config, cab, monkeypatch):
    import threading
    import time

    from itsm_tui.db import Database

    ref = submitted_and_assessed(db, config, cab)
    original = changes._check_version

    def slow_check(*args, **kwargs):  # each decision holds on a moment after reading the change
        time.sleep(0.4)
        return original(*args, **kwargs)

    # Patched where the lifecycle looks it up, so that the two decisions really overlap.
    monkeypatch.setattr("itsm_tui.services.changes.helpers._check_version", slow_check)
    errors: list[Exception] = []

    def decide(login: str) -> None:
        other = Database.connect(db_url)
        try:
            with other.session() as s:
                changes.approve(s, config, cab[login], ref, now=NOW)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            other.dispose()

    threads = [threading.Thread(target=decide, args=(login,)) for login in ("cabnet1", "cabnet2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert state_of(db, ref) == "approved"  # the second decision saw the first (row lock), rule "all" met
