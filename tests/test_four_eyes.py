"""Four eyes on changes, on SQLite and PostgreSQL: who raised or implements a change never approves it, an
approval holds for the window it was given for, a change begins inside its window unless a change manager
says why, and an emergency change nobody could approve says so when it is raised.

Each rule through the services and through ``itsm change`` (``itsm_tui.cli.main``, the login patched), the
change screen with Pilot, and approvers deciding while the change is moved, in processes of their own. The
expected values are worked out by hand from the rules and the cast below, never from the code under test.
"""

from __future__ import annotations

import json
import textwrap
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from forked import PIPE, Forked
from pilot_helpers import screen_text, wait_until
from sqlalchemy import select, update

from itsm_tui.app import ItsmApp
from itsm_tui.cli import main
from itsm_tui.config import ConfigError, load_config
from itsm_tui.db import Database
from itsm_tui.models import AuditEvent, Change, Notification, User
from itsm_tui.screens.change import ChangeScreen, ReasonForm
from itsm_tui.services import changes
from itsm_tui.services import users as user_service
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.changes import OutsideWindow
from itsm_tui.services.errors import InvalidTransition, ValidationError

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
SAT = datetime(2026, 3, 7, 22, 0, tzinfo=UTC)  # the changes' window: Saturday 22:00 to Sunday 00:00 UTC
NEXT_SAT = SAT + timedelta(days=7)
TITLE = "Replace core switch line card"


@pytest.fixture
def cast(db, staff):
    """The conftest's cast (one change manager, chm; one CAB member without a group, cab1) plus three CAB
    members of NET-L2 (the network's support group), one of APP-L2 (email, erp, crm) and a second change
    manager, chm2."""
    with db.session() as s:
        for login, roles, groups in (
            ("cabnet1", ["cab_member", "support_l2"], ["NET-L2"]),
            ("cabnet2", ["cab_member", "support_l2"], ["NET-L2"]),
            ("cabnet3", ["cab_member", "support_l2"], ["NET-L2"]),
            ("cabapp", ["cab_member", "support_l2"], ["APP-L2"]),
            ("chm2", ["change_manager"], []),
        ):
            user_service.add_user(s, actor_login="admin1", login=login, roles=roles, groups=groups)
    with db.read_session() as s:
        added = {login: user_service.resolve_actor(s, login) for login in ("cabnet1", "cabnet2", "cabnet3")}
        added |= {login: user_service.resolve_actor(s, login) for login in ("cabapp", "chm2")}
    return staff | added


def raise_change(db, config, actor, **kw) -> str:
    values: dict[str, Any] = {
        "change_type": "normal",
        "title": TITLE,
        "targets": ["network:core-sw-01"],
        "start": SAT,
        "end": SAT + timedelta(hours=2),
        "implementation_plan": "Swap the card.",
        "backout_plan": "Put the old card back.",
        "implementer": "net1",
        "now": NOW,
    }
    values.update(kw)
    with db.session() as s:
        return changes.create_change(s, config, actor, **values).ref


def act(db, config, fn, actor, ref, **kw) -> str:
    """One service call in its own transaction; the change's state after it."""
    kw.setdefault("now", NOW)
    with db.session() as s:
        return fn(s, config, actor, ref, **kw).state


def asked(db, ref) -> dict[str, str]:
    """login -> decision of the change's approval rows."""
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        return {s.get(User, a.approver_id).login: a.decision for a in change.approvals}


def shown(db, config, ref, actor=None) -> changes.ChangeView:
    with db.read_session() as s:
        return changes.view(s, config, changes.get_change(s, ref), actor, NOW)


def inbox(db, login) -> list[str]:
    with db.read_session() as s:
        return list(
            s.scalars(
                select(Notification.message)
                .join(User, User.id == Notification.user_id)
                .where(User.login == login, Notification.kind == "change_approval")
                .order_by(Notification.id)
            )
        )


def audit_rows(db, ref) -> list[tuple[str, str | None, str | None, str | None]]:
    with db.read_session() as s:
        change_id = changes.get_change(s, ref).id
        return [
            (e.action, e.field, e.old_value, e.new_value)
            for e in s.scalars(
                select(AuditEvent)
                .where(AuditEvent.entity_type == "change", AuditEvent.entity_id == change_id)
                .order_by(AuditEvent.id)
            )
        ]


def approved_and_scheduled(db, config, people, ref) -> None:
    """net1 submits, chm assesses (cabnet1, cabnet2 and cabnet3 are asked), all three approve, chm
    schedules."""
    act(db, config, changes.submit, people["net1"], ref)
    act(db, config, changes.assess, people["chm"], ref)
    for login in ("cabnet1", "cabnet2", "cabnet3"):
        act(db, config, changes.approve, people[login], ref)
    assert act(db, config, changes.schedule, people["chm"], ref) == "scheduled"


# --------------------------------------------------------------------------- 1. four eyes


def test_the_implementer_on_the_cab_is_not_asked_and_may_not_approve(db, config, cast):
    ref = raise_change(db, config, cast["net1"], implementer="cabnet1")
    act(db, config, changes.submit, cast["net1"], ref)
    act(db, config, changes.assess, cast["chm"], ref)
    # The network's CAB members are cabnet1, cabnet2 and cabnet3; cabnet1 implements the change.
    assert asked(db, ref) == {"cabnet2": "pending", "cabnet3": "pending"}
    assert inbox(db, "cabnet1") == []
    with pytest.raises(PermissionDenied) as refused:
        act(db, config, changes.approve, cast["cabnet1"], ref)
    assert str(refused.value) == (
        "You implement CHG0000001: someone else must approve it (a CAB member asked at assessment)."
    )
    with db.read_session() as s:
        offered = changes.available_actions(s, config, cast["cabnet1"], changes.get_change(s, ref), NOW)
    assert offered["approve"] == str(refused.value)
    assert act(db, config, changes.approve, cast["cabnet2"], ref) == "assessed"
    assert act(db, config, changes.approve, cast["cabnet3"], ref) == "approved"


def test_a_sole_cab_member_who_implements_the_change_leaves_it_to_the_change_manager(db, config, staff):
    # cab1 is the conftest's only CAB member: before four eyes, the implementer approved his own change.
    ref = raise_change(db, config, staff["net1"], implementer="cab1")
    act(db, config, changes.submit, staff["net1"], ref)
    act(db, config, changes.assess, staff["chm"], ref)
    assert asked(db, ref) == {"chm": "pending"}  # no CAB member is left: the change managers are asked
    with pytest.raises(PermissionDenied, match="You implement CHG0000001: someone else must reject it"):
        act(db, config, changes.reject, staff["cab1"], ref, reason="Fine by me")
    assert act(db, config, changes.approve, staff["chm"], ref) == "approved"


def test_configuration_naming_the_requester_skips_him_and_says_so(db, config, cast):
    named = replace(config, changes=replace(config.changes, members={"erp": ("cabapp",)}))
    ref = raise_change(
        db, named, cast["cabapp"], targets=["erp"], implementer="app1", title="Apply ERP quarterly patch"
    )
    notes = shown(db, named, ref).notices
    assert notes == [
        "Skipped approvers (who raises or implements a change never approves it): cabapp (raised it)"
    ]
    act(db, named, changes.submit, cast["cabapp"], ref)
    act(db, named, changes.assess, cast["chm"], ref)
    # cabapp is the erp's CAB member twice over (APP-L2 and the configuration) but raised it: every other
    # CAB member is asked.
    assert asked(db, ref) == {
        "cab1": "pending",
        "cabnet1": "pending",
        "cabnet2": "pending",
        "cabnet3": "pending",
    }
    with pytest.raises(PermissionDenied, match="You raised CHG0000001: someone else must approve it"):
        act(db, named, changes.approve, cast["cabapp"], ref)


def test_an_approval_by_who_became_the_implementer_no_longer_counts(db, config, cast):
    quorum = replace(config, changes=replace(config.changes, rule="quorum", quorum=2))
    ref = raise_change(db, quorum, cast["net1"])
    act(db, quorum, changes.submit, cast["net1"], ref)
    act(db, quorum, changes.assess, cast["chm"], ref)
    assert act(db, quorum, changes.approve, cast["cabnet1"], ref) == "assessed"  # 1 of 2
    with db.session() as s:  # the work is handed to cabnet1 after he approved
        s.execute(update(Change).where(Change.ref == ref).values(implementer_id=cast["cabnet1"].id))
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        assert (
            changes.approval_progress(s, quorum, change) == "0 of 2 approvals; waiting for cabnet2, cabnet3"
        )
    assert (
        "cabnet1's decision (approved) does not count: cabnet1 implements it"
        in shown(db, quorum, ref).notices
    )
    # Without four eyes cabnet2 would make it 2 of 3; the rows that count are cabnet2's and cabnet3's.
    assert act(db, quorum, changes.approve, cast["cabnet2"], ref) == "assessed"
    with pytest.raises(PermissionDenied, match="You implement CHG0000001"):
        act(db, quorum, changes.reject, cast["cabnet1"], ref, reason="Changed my mind")
    assert act(db, quorum, changes.approve, cast["cabnet3"], ref) == "approved"


def test_the_command_line_refuses_the_requester_and_show_names_who_was_skipped(
    db_url, db, cast, conf_dir, monkeypatch, capsys
):
    path = conf_dir / "changes.toml"
    body = path.read_text()
    path.write_text(body.replace('# erp = ["qerp"]', 'erp = ["cabapp"]'))
    monkeypatch.setenv("ITSM_CONFIG_DIR", str(conf_dir))
    config = load_config(conf_dir)
    ref = raise_change(
        db,
        config,
        cast["cabapp"],
        targets=["erp"],
        implementer="app1",
        start=datetime.now(UTC) + timedelta(days=9),
        end=datetime.now(UTC) + timedelta(days=9, hours=1),
    )
    act(db, config, changes.submit, cast["cabapp"], ref, now=datetime.now(UTC))
    act(db, config, changes.assess, cast["chm"], ref, now=datetime.now(UTC))
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "cabapp")
    assert main(["change", "approve", ref, "--db", db_url]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.strip().endswith(
        "You raised CHG0000001: someone else must approve it (a CAB member asked at assessment)."
    )
    assert "Traceback" not in err
    assert main(["change", "show", ref, "--db", db_url]) == 0
    out, _ = capsys.readouterr()
    assert (
        "! Skipped approvers (who raises or implements a change never approves it): cabapp (raised it)" in out
    )


# --------------------------------------------------------------------------- 2. approval holds for a window


def test_moving_a_scheduled_normal_change_sends_it_back_to_the_cab(db, config, cast):
    ref = raise_change(db, config, cast["net1"])
    approved_and_scheduled(db, config, cast, ref)
    assert (
        act(
            db,
            config,
            changes.reschedule,
            cast["chm"],
            ref,
            start=NEXT_SAT,
            end=None,
            now=NOW + timedelta(hours=1),
        )
        == "assessed"
    )
    assert asked(db, ref) == {"cabnet1": "pending", "cabnet2": "pending", "cabnet3": "pending"}
    rows = audit_rows(db, ref)
    assert ("reschedule", "state", "scheduled", "assessed") in rows
    assert (
        "reschedule",
        "approvals",
        None,
        "reset (moved from 2026-03-07 22:00 to 2026-03-08 00:00 UTC; given: cabnet1 (approved), "
        "cabnet2 (approved), cabnet3 (approved)); 3 of 3 must approve again: cabnet1, cabnet2, cabnet3",
    ) in rows
    again = (
        f"{ref} moved to 2026-03-14 22:00 to 2026-03-15 00:00 UTC: it awaits your approval again "
        f"(medium risk): {TITLE}"
    )
    for login in ("cabnet1", "cabnet2", "cabnet3"):
        assert inbox(db, login)[-1] == again
    assert not any("again" in m for m in inbox(db, "chm"))  # who moved it is not told
    notes = shown(db, config, ref).notices
    assert notes == [
        "Approval asked again: chm moved the change at 2026-03-02 10:00 UTC, and an approval holds only for "
        "the window it was given for"
    ]
    # Not started in the old window: it is no longer scheduled (the lifecycle names what it may do).
    with pytest.raises(InvalidTransition, match="from assessed"):
        act(db, config, changes.start_implementation, cast["net1"], ref, now=SAT)
    for login in ("cabnet1", "cabnet2", "cabnet3"):
        act(db, config, changes.approve, cast[login], ref)
    assert act(db, config, changes.schedule, cast["chm"], ref) == "scheduled"
    assert act(db, config, changes.start_implementation, cast["net1"], ref, now=NEXT_SAT) == "implementing"


def test_scheduling_in_the_approved_window_keeps_the_approval_and_another_window_does_not(db, config, cast):
    ref = raise_change(db, config, cast["net1"])
    act(db, config, changes.submit, cast["net1"], ref)
    act(db, config, changes.assess, cast["chm"], ref)
    for login in ("cabnet1", "cabnet2", "cabnet3"):
        act(db, config, changes.approve, cast[login], ref)
    with db.session() as s:
        savepoint = s.begin_nested()
        same = changes.schedule(s, config, cast["chm"], ref, start=SAT, end=SAT + timedelta(hours=2), now=NOW)
        assert same.state == "scheduled"
        savepoint.rollback()
        moved = changes.schedule(s, config, cast["chm"], ref, start=SAT + timedelta(hours=1), now=NOW)
        assert (moved.state, moved.planned_end) == ("assessed", SAT + timedelta(hours=3))  # the length kept
    assert set(asked(db, ref).values()) == {"pending"}


def test_a_decision_given_while_the_cab_decides_is_asked_again_when_the_change_moves(db, config, cast):
    ref = raise_change(db, config, cast["net1"])
    act(db, config, changes.submit, cast["net1"], ref)
    act(db, config, changes.assess, cast["chm"], ref)
    act(db, config, changes.approve, cast["cabnet1"], ref)
    assert act(db, config, changes.reschedule, cast["chm"], ref, start=NEXT_SAT, end=None) == "assessed"
    assert asked(db, ref) == {"cabnet1": "pending", "cabnet2": "pending", "cabnet3": "pending"}
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        assert (
            changes.approval_progress(s, config, change)
            == "0 of 3 approvals; waiting for cabnet1, cabnet2, cabnet3"
        )


def test_a_later_end_alone_is_another_window_too(db, config, cast):
    ref = raise_change(db, config, cast["net1"])
    approved_and_scheduled(db, config, cast, ref)
    later_end = SAT + timedelta(hours=3)
    assert act(db, config, changes.reschedule, cast["chm"], ref, start=SAT, end=later_end) == "assessed"
    assert (
        "reschedule",
        "planned_end",
        "2026-03-08T00:00:00+00:00",
        "2026-03-08T01:00:00+00:00",
    ) in audit_rows(db, ref)
    assert set(asked(db, ref).values()) == {"pending"}


def test_a_standard_change_moves_within_its_template_and_stays_pre_approved(db, config, cast):
    ref = raise_change(
        db,
        config,
        cast["net1"],
        change_type="standard",
        template="std-patch",  # at most 240 minutes
        title=None,
        targets=["vpn"],
        end=None,
        implementation_plan=None,
        backout_plan=None,
    )
    assert act(db, config, changes.submit, cast["net1"], ref) == "approved"
    assert act(db, config, changes.reschedule, cast["net1"], ref, start=NEXT_SAT, end=None) == "approved"
    assert act(db, config, changes.schedule, cast["net1"], ref) == "scheduled"
    later = NEXT_SAT + timedelta(days=1)
    assert act(db, config, changes.reschedule, cast["net1"], ref, start=later, end=None) == "scheduled"
    with pytest.raises(ValidationError, match="pre-approved for at most 4 h 00 min"):
        act(db, config, changes.reschedule, cast["net1"], ref, start=later, end=later + timedelta(hours=5))
    assert asked(db, ref) == {}
    assert not any(field == "approvals" for _, field, _, _ in audit_rows(db, ref))


def test_moving_an_approved_emergency_change_sends_it_back_to_its_approvers(db, config, cast):
    soon = NOW + timedelta(hours=2)
    ref = raise_change(
        db, config, cast["net1"], change_type="emergency", start=soon, end=soon + timedelta(hours=1)
    )
    act(db, config, changes.submit, cast["net1"], ref)
    assert act(db, config, changes.approve, cast["chm"], ref) == "approved"
    later = NOW + timedelta(hours=6)
    assert act(db, config, changes.reschedule, cast["chm"], ref, start=later, end=None) == "submitted"
    assert asked(db, ref) == {}  # chm's decision was for 11:00-12:00
    assert inbox(db, "chm2")[-1] == (
        f"Emergency change {ref} awaits your approval: "
        f"moved to 2026-03-02 15:00 to 2026-03-02 16:00 UTC: {TITLE}"
    )
    assert act(db, config, changes.approve, cast["chm2"], ref) == "approved"


# --------------------------------------------------------------------------- 3. the start window


def test_a_change_begins_inside_its_window_or_with_a_change_managers_reason(db, config, cast):
    ref = raise_change(db, config, cast["net1"])
    approved_and_scheduled(db, config, cast, ref)
    early = datetime(2026, 3, 7, 21, 44, tzinfo=UTC)  # a minute before the 15 minutes' early start
    with pytest.raises(PermissionDenied) as refused:
        act(db, config, changes.start_implementation, cast["net1"], ref, now=early)
    assert str(refused.value) == (
        "CHG0000001 is planned for 2026-03-07 22:00 to 2026-03-08 00:00 UTC: it may begin from "
        "2026-03-07 21:45 UTC (15 min early at most), not at 2026-03-07 21:44 UTC; a change_manager may "
        "start it with an override reason."
    )
    with pytest.raises(
        PermissionDenied, match="2026-03-08 00:00 UTC, which is over: move it to a new window"
    ):
        act(
            db,
            config,
            changes.start_implementation,
            cast["net1"],
            ref,
            now=datetime(2026, 3, 8, 0, 0, tzinfo=UTC),
        )
    with pytest.raises(OutsideWindow) as no_reason:
        act(db, config, changes.start_implementation, cast["chm"], ref, now=early)
    assert no_reason.value.field == "override_reason"
    assert "it may begin from 2026-03-07 21:45 UTC" in str(no_reason.value) and "override reason" in str(
        no_reason.value
    )
    with pytest.raises(OutsideWindow):  # a blank reason is no reason
        act(db, config, changes.start_implementation, cast["chm"], ref, override_reason="   ", now=early)
    assert "start_override" not in {field for _, field, _, _ in audit_rows(db, ref)}  # nothing was written
    assert (
        act(
            db,
            config,
            changes.start_implementation,
            cast["chm"],
            ref,
            override_reason="Vendor leaves at 23:00",
            now=early,
        )
        == "implementing"
    )
    assert ("override", "start_override", None, "Vendor leaves at 23:00") in audit_rows(db, ref)
    with db.read_session() as s:
        assert changes.get_change(s, ref).actual_start == early


def test_the_early_start_is_configurable(db, config, cast):
    hour = replace(config, changes=replace(config.changes, early_start_minutes=60))
    ref = raise_change(db, hour, cast["net1"])
    approved_and_scheduled(db, hour, cast, ref)
    with pytest.raises(PermissionDenied, match="may begin from 2026-03-07 21:00 UTC"):
        act(db, hour, changes.start_implementation, cast["net1"], ref, now=SAT - timedelta(minutes=61))
    at_the_lead = SAT - timedelta(minutes=60)
    assert act(db, hour, changes.start_implementation, cast["net1"], ref, now=at_the_lead) == "implementing"
    # Inside the window a reason is not needed; one given is not recorded.
    assert "start_override" not in {field for _, field, _, _ in audit_rows(db, ref)}


@pytest.fixture
def as_login(monkeypatch):
    def use(login: str) -> None:
        monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: login)

    return use


def week_ahead() -> datetime:
    """A Saturday 21:00 UTC at least eight days ahead (the command line plans against the real clock)."""
    day = datetime.now(UTC).replace(hour=21, minute=0, second=0, microsecond=0) + timedelta(days=8)
    return day + timedelta(days=(5 - day.weekday()) % 7)


def test_the_start_command_takes_an_override_reason_from_a_change_manager(
    db_url, db, config, cast, as_login, capsys
):
    start = week_ahead()
    ref = raise_change(db, config, cast["net1"], start=start, end=start + timedelta(hours=2))
    real = datetime.now(UTC)
    act(db, config, changes.submit, cast["net1"], ref, now=real)
    act(db, config, changes.assess, cast["chm"], ref, now=real)
    for login in ("cabnet1", "cabnet2", "cabnet3"):
        act(db, config, changes.approve, cast[login], ref, now=real)
    act(db, config, changes.schedule, cast["chm"], ref, now=real)
    window = f"{start:%Y-%m-%d %H:%M} to {start + timedelta(hours=2):%Y-%m-%d %H:%M} UTC"
    as_login("net1")
    assert main(["change", "start", ref, "--db", db_url, "--override", "I am sure"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and f"{ref} is planned for {window}" in err and "change_manager may start it" in err
    as_login("chm")
    assert main(["change", "start", ref, "--db", db_url]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "give an override reason" in err and "Traceback" not in err
    assert (
        main(["change", "start", ref, "--db", db_url, "--override", "Vendor on site today only", "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["state"] == "implementing"
    assert [h["new"] for h in data["history"] if h["field"] == "start_override"] == [
        "Vendor on site today only"
    ]


# --------------------------------------------------------------------------- 4. no possible approver


def test_an_emergency_change_nobody_could_approve_is_logged_and_says_so(db, config, staff):
    soon = NOW + timedelta(hours=2)
    # chm is the only change manager, there is no emergency CAB: nobody but chm could approve his change.
    ref = raise_change(
        db, config, staff["chm"], change_type="emergency", start=soon, end=soon + timedelta(hours=1)
    )
    notice = (
        f"No possible approver: no change manager or emergency CAB member but who raised or implements {ref} "
        f"could approve it; name a deputy in [emergency] cab of {config.sources['changes.toml']} or give "
        f"someone the change_manager role (itsm user role LOGIN --add change_manager)"
    )
    skipped = "Skipped approvers (who raises or implements a change never approves it): chm (raised it)"
    assert shown(db, config, ref).notices == [notice, skipped]  # said as soon as it is raised
    assert act(db, config, changes.submit, staff["chm"], ref) == "submitted"  # an emergency is still logged
    assert shown(db, config, ref).notices == [notice, skipped]
    assert inbox(db, "lead") == [f"{ref}: {notice}"]  # the shift lead (RACI: informed of emergency changes)
    assert inbox(db, "chm") == []  # who raised it was told on the spot
    assert inbox(db, "cab1") == []
    with pytest.raises(PermissionDenied, match="You raised CHG0000001: someone else must approve it"):
        act(db, config, changes.approve, staff["chm"], ref)
    # An emergency CAB gives it an approver: then nothing is flagged, and the seat decides.
    ecab = replace(config, changes=replace(config.changes, emergency_cab=("cab1",)))
    assert shown(db, ecab, ref).notices == [skipped]
    assert act(db, ecab, changes.approve, staff["cab1"], ref) == "approved"


def test_the_implementer_counts_too_when_looking_for_an_emergency_approver(db, config, cast):
    soon = NOW + timedelta(hours=2)
    ref = raise_change(
        db,
        config,
        cast["chm"],
        change_type="emergency",
        start=soon,
        end=soon + timedelta(hours=1),
        implementer="chm2",
    )
    notes = shown(db, config, ref).notices
    assert notes[0].startswith("No possible approver:")
    assert notes[1] == (
        "Skipped approvers (who raises or implements a change never approves it): chm (raised it); "
        "chm2 (implements it)"
    )
    act(db, config, changes.submit, cast["chm"], ref)
    assert inbox(db, "chm2") == [f"{ref}: {notes[0]}"]  # told as a change manager, not asked to approve
    with pytest.raises(PermissionDenied, match="You implement CHG0000001"):
        act(db, config, changes.approve, cast["chm2"], ref)


def test_an_emergency_cab_seat_needs_an_approvers_role(db, config, staff):
    ecab = replace(config, changes=replace(config.changes, emergency_cab=("agent1", "nosuchuser")))
    soon = NOW + timedelta(hours=2)
    ref = raise_change(
        db, ecab, staff["net1"], change_type="emergency", start=soon, end=soon + timedelta(hours=1)
    )
    why = "in the emergency CAB of changes.toml, but not an active cab_member or change_manager"
    assert shown(db, ecab, ref).notices == [
        f"Skipped approvers (who raises or implements a change never approves it): agent1 ({why}); "
        f"nosuchuser ({why})"
    ]
    act(db, ecab, changes.submit, staff["net1"], ref)
    with pytest.raises(PermissionDenied, match="emergency CAB"):
        act(db, ecab, changes.approve, staff["agent1"], ref)
    assert act(db, ecab, changes.approve, staff["chm"], ref) == "approved"


def test_the_command_line_says_nobody_can_approve_it(db_url, staff, config, as_login, capsys):
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=2)
    as_login("chm")
    argv = [
        "change", "create", "--db", db_url, "--type", "emergency", "--title", "Core switch failing",
        "--target", "network:core-sw-01", "--start", start.strftime("%Y-%m-%dT%H:%MZ"), "--minutes", "60",
        "--implementation-plan", "Swap it.", "--backout-plan", "Swap back.", "--implementer", "net1",
        "--submit",
    ]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("CHG0000001 emergency submitted v"), err
    assert lines[0].endswith(": Core switch failing")
    assert lines[1].startswith("  ! No possible approver: no change manager or emergency CAB member but who ")
    assert "[emergency] cab of" in lines[1]
    assert main(["change", "show", "CHG0000001", "--db", db_url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [n.split(":")[0] for n in data["notices"]] == [
        "No possible approver",
        "Skipped approvers (who raises or implements a change never approves it)",
    ]


@pytest.mark.parametrize(
    ("old", "new", "key", "rule"),
    [
        ("cab = []", 'cab = "cab1"', "emergency.cab", "list of logins"),
        ("cab = []", 'cab = ["cab1", "cab1"]', "emergency.cab", "names cab1 more than once"),
        ("cab = []", 'cab = ["two words"]', "emergency.cab", "list of logins"),
        ("cab = []", "cabs = []", "emergency.cabs", "unknown key; [emergency] knows cab"),
        (
            "early_start_minutes = 15",
            "early_start_minutes = -1",
            "implementation.early_start_minutes",
            "between 0",
        ),
        ("early_start_minutes = 15", "early_start = 15", "implementation.early_start", "unknown key"),
    ],
)
def test_the_emergency_cab_and_the_early_start_are_checked_on_load(conf_dir, old, new, key, rule):
    path = conf_dir / "changes.toml"
    body = path.read_text()
    assert body.count(old) == 1
    path.write_text(body.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_config(conf_dir)
    assert Path(info.value.path) == path and info.value.key == key and rule in info.value.rule, info.value


def test_the_shipped_file_has_an_empty_emergency_cab_and_a_quarter_hour_early_start(config):
    assert config.changes.emergency_cab == () and config.changes.early_start_minutes == 15


# --------------------------------------------------------------------------- the change screen


def recorder(app) -> list[str]:
    messages: list[str] = []
    original = app.notify

    def notify(message, *args, **kwargs):
        messages.append(str(message))
        return original(message, *args, **kwargs)

    app.notify = notify
    return messages


async def open_change(pilot, app, ref) -> ChangeScreen:
    app.push_screen(ChangeScreen(ref))
    await wait_until(
        pilot, lambda: isinstance(app.screen, ChangeScreen) and app.screen.view is not None, "change"
    )
    return app.screen


async def test_the_change_screen_says_why_not_and_asks_a_managers_reason(staff_sqlite, config):
    db, staff = staff_sqlite
    ref = raise_change(db, config, staff["net1"])
    act(db, config, changes.submit, staff["net1"], ref)
    act(db, config, changes.assess, staff["chm"], ref)
    act(db, config, changes.approve, staff["cab1"], ref)
    act(db, config, changes.schedule, staff["chm"], ref)
    window = "CHG0000001 is planned for 2026-03-07 22:00 to 2026-03-08 00:00 UTC"

    app = ItsmApp(db, config, staff["net1"], run_scheduler=False, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        said = recorder(app)
        screen = await open_change(pilot, app, ref)
        assert screen.refusal("start") is not None
        await pilot.press("b")
        await wait_until(pilot, lambda: any(window in m for m in said), "the refusal")
        assert any("a change_manager may start it with an override reason" in m for m in said)
    with db.read_session() as s:
        assert changes.get_change(s, ref).state == "scheduled"

    app = ItsmApp(db, config, staff["chm"], run_scheduler=False, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_change(pilot, app, ref)
        await pilot.press("b")
        await wait_until(pilot, lambda: isinstance(app.screen, ReasonForm), "the override form")
        form = app.screen
        assert isinstance(form, ReasonForm) and form.note is not None and window in form.note
        await pilot.press(*"Vendor only today", "enter")
        await wait_until(pilot, lambda: app.screen is screen, "the change again")
        await wait_until(
            pilot, lambda: screen.view is not None and screen.view.state == "implementing", "started"
        )
    assert ("override", "start_override", None, "Vendor only today") in audit_rows(db, ref)


async def test_the_change_screen_flags_a_change_nobody_can_approve(staff_sqlite, config):
    db, staff = staff_sqlite
    soon = NOW + timedelta(hours=2)
    ref = raise_change(
        db, config, staff["chm"], change_type="emergency", start=soon, end=soon + timedelta(hours=1)
    )
    app = ItsmApp(db, config, staff["chm"], run_scheduler=False, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        said = recorder(app)
        await open_change(pilot, app, ref)
        assert "! No possible approver" in screen_text(app)
        await pilot.press("u")
        await wait_until(
            pilot, lambda: any(m.startswith("No possible approver") for m in said), "the warning"
        )
    with db.read_session() as s:
        assert changes.get_change(s, ref).state == "submitted"


# --------------------------------------------------------------------------- approvers and a move at once

RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import itsm_tui.services.users as users
    login, gate, *argv = sys.argv[1:]
    users.os_login = lambda: login
    from itsm_tui.cli import main
    while not Path(gate).exists():
        time.sleep(0.002)
    sys.exit(main(argv))
    """
)


def race(
    db: Database, tmp_path: Path, name: str, commands: dict[str, list[str]]
) -> dict[str, tuple[int, str, str]]:
    """Run each login's ``itsm`` command in a process of its own, all let go at once; login -> (exit code,
    stdout, stderr)."""
    db.dispose()  # no connection of this process is carried into the racers (forked: see forked.py)
    gate = tmp_path / f"go-{name}"
    procs = {
        login: Forked(RACER, login, str(gate), *argv, stdout=PIPE, stderr=PIPE)
        for login, argv in commands.items()
    }
    time.sleep(1)  # every process is up and waiting at the gate (forked: its modules are loaded already)
    gate.touch()
    results = {}
    for login, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        results[login] = (proc.returncode, out, err)
    return results


def consistent(db, ref) -> None:
    """The change's state and decisions, checked against the one rule that matters when the window moves
    while approvers decide: a decision stands only if it was written after the last move (by audit order),
    and the change is approved exactly when every approver asked stands approved."""
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        events = s.execute(
            select(AuditEvent.id, AuditEvent.actor_id, AuditEvent.action, AuditEvent.field).where(
                AuditEvent.entity_type == "change", AuditEvent.entity_id == change.id
            )
        ).all()
        last_move = max(e.id for e in events if e.field == "planned_start")
        logins = {u.id: u.login for u in s.scalars(select(User))}
        decisions = {logins[a.approver_id]: a.decision for a in change.approvals}
        for approval in change.approvals:
            given = [e.id for e in events if e.field == "approval" and e.actor_id == approval.approver_id]
            after = [i for i in given if i > last_move]
            assert (approval.decision == "approved") == bool(after), (logins[approval.approver_id], events)
        assert (change.state == "approved") == (set(decisions.values()) == {"approved"})
        assert change.state in ("assessed", "approved")
        assert change.implementer_id not in {a.approver_id for a in change.approvals}


def test_approvers_deciding_while_the_implementer_moves_the_change_leave_it_consistent(
    db_url, db, config, cast, tmp_path
):
    # chm2, a change manager, implements the change and moves it; cabnet1 and cabnet2 approve at that moment.
    # (cabnet3 is taken off the network group so that the two of them are the whole CAB asked.)
    with db.session() as s:
        user_service.change_roles(s, actor_login="admin1", login="cabnet3", remove_groups=["NET-L2"])
        user_service.change_roles(s, actor_login="admin1", login="cabnet3", remove=["cab_member"])
    real = datetime.now(UTC)
    start = week_ahead()
    for round_ in range(1):
        planned = start + timedelta(days=round_)
        ref = raise_change(
            db, config, cast["net1"], implementer="chm2", start=planned, end=planned + timedelta(hours=2)
        )
        act(db, config, changes.submit, cast["net1"], ref, now=real)
        act(db, config, changes.assess, cast["chm"], ref, now=real)
        assert asked(db, ref) == {"cabnet1": "pending", "cabnet2": "pending"}
        moved = (planned + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%MZ")
        results = race(
            db,
            tmp_path,
            f"{round_}",
            {
                "cabnet1": ["change", "approve", ref, "--db", db_url],
                "cabnet2": ["change", "approve", ref, "--db", db_url],
                "chm2": ["change", "schedule", ref, "--db", db_url, "--start", moved],
            },
        )
        for login, (code, out, err) in results.items():
            # Without a version to hold to, the three steps queue on the change's lock: each one lands.
            assert code == 0 and "Traceback" not in err, (login, out, err)
        consistent(db, ref)
        with db.read_session() as s:
            assert changes.get_change(s, ref).planned_start == planned + timedelta(hours=1)
    # A console holds to the version it shows: then one of the three lands, the others are told to reload.
    planned = start + timedelta(days=5)
    ref = raise_change(
        db, config, cast["net1"], implementer="chm2", start=planned, end=planned + timedelta(hours=2)
    )
    act(db, config, changes.submit, cast["net1"], ref, now=real)
    act(db, config, changes.assess, cast["chm"], ref, now=real)
    with db.read_session() as s:
        version = str(changes.get_change(s, ref).version)
    moved = (planned + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%MZ")
    held = ["--db", db_url, "--expected-version", version]
    results = race(
        db,
        tmp_path,
        "held",
        {
            "cabnet1": ["change", "approve", ref, *held],
            "cabnet2": ["change", "approve", ref, *held],
            "chm2": ["change", "schedule", ref, "--start", moved, *held],
        },
    )
    codes = sorted(code for code, _, _ in results.values())
    assert codes == [0, 2, 2], results
    for code, out, err in results.values():
        if code == 2:
            assert "reload it and apply your change again" in err and "Traceback" not in err and out == ""
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        winner = next(login for login, (code, _, _) in results.items() if code == 0)
        if winner == "chm2":  # the move landed: nobody's decision was written
            assert change.planned_start == planned + timedelta(hours=1)
            assert {a.decision for a in change.approvals} == {"pending"}
        else:  # one approval landed and the change did not move
            assert change.planned_start == planned
            decided = {s.get(User, a.approver_id).login: a.decision for a in change.approvals}
            assert decided == {winner: "approved", ({"cabnet1", "cabnet2"} - {winner}).pop(): "pending"}
        assert change.state == "assessed"
