"""The CAB's meetings, agenda, decisions and minutes, on SQLite and PostgreSQL.

changes.toml's CAB meets on Tuesdays at 10:00 Europe/Berlin for 90 minutes, with a 24 h cut-off: 09:00 UTC
in winter (CET), 08:00 UTC in summer (CEST). Every expected instant below is worked out by hand from that.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from itsm_tui.models import AuditEvent, Change, ChangeApproval, User
from itsm_tui.services import changes
from itsm_tui.services import users as user_service
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.errors import ServiceError, ValidationError
from itsm_tui.services.jsondata import instant

MON = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 2 March 2026, 09:00 in Berlin (CET, UTC+1)
TUE_3 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # the meeting of Tuesday 3 March, 10:00 CET
TUE_10 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
TUE_17 = datetime(2026, 3, 17, 9, 0, tzinfo=UTC)
SAT = datetime(2026, 3, 14, 22, 0, tzinfo=UTC)  # Saturday night, 23:00 in Berlin


def u(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------- meetings (no database)


def test_meetings_are_tuesdays_at_ten_in_berlin_across_the_end_of_summer_time(config):
    # Summer time ends on Sunday 25 October 2026: 10:00 CEST is 08:00 UTC before, 10:00 CET 09:00 UTC after.
    found = changes.meetings(config, u(2026, 10, 13), u(2026, 11, 4))
    assert [(m.start, m.end) for m in found] == [
        (u(2026, 10, 13, 8), u(2026, 10, 13, 9, 30)),
        (u(2026, 10, 20, 8), u(2026, 10, 20, 9, 30)),
        (u(2026, 10, 27, 9), u(2026, 10, 27, 10, 30)),
        (u(2026, 11, 3, 9), u(2026, 11, 3, 10, 30)),
    ]
    assert found[2].label() == "Tue 27 Oct 2026 10:00-11:30 Europe/Berlin"
    assert found[0].label("UTC") == "Tue 13 Oct 2026 08:00-09:30 UTC"
    # Only meetings that start in the span: the one of the 13th started before 08:30.
    assert [m.start for m in changes.meetings(config, u(2026, 10, 13, 8, 30), u(2026, 10, 21))] == [
        u(2026, 10, 20, 8)
    ]


def test_a_change_is_on_the_first_meeting_at_least_the_cut_off_after_its_submission(config):
    assert changes.meeting_for(config, MON) == TUE_3  # Monday 09:00 local: Tuesday 09:00 + 1 h to spare
    assert changes.meeting_for(config, u(2026, 3, 2, 9, 0)) == TUE_3  # Monday 10:00 local: exactly 24 h
    assert changes.meeting_for(config, u(2026, 3, 2, 9, 1)) == TUE_10  # Monday 10:01: next week's
    assert changes.meeting_for(config, u(2026, 3, 3, 12, 0)) == TUE_10
    # Across the start of summer time (29 March): Tuesday 31 March 10:00 CEST is 08:00 UTC.
    assert changes.meeting_for(config, u(2026, 3, 27, 12, 0)) == u(2026, 3, 31, 8, 0)


def test_the_meeting_going_on_is_the_current_one_then_the_next(config):
    assert changes.current_meeting(config, u(2026, 3, 3, 10, 29)).start == TUE_3  # until 11:30 local
    assert changes.current_meeting(config, u(2026, 3, 3, 10, 30)).start == TUE_10
    assert changes.meeting_on(config, "2026-03-10").start == TUE_10
    with pytest.raises(ValidationError) as refused:
        changes.meeting_on(config, "2026-03-11")
    assert str(refused.value) == (
        "the CAB does not meet on Wed 2026-03-11; the nearest meetings are Tue 2026-03-10 10:00 and "
        "Tue 2026-03-17 10:00 Europe/Berlin"
    )


def test_a_bad_meeting_rule_is_refused_naming_changes_toml(config):
    broken = replace(
        config, changes=replace(config.changes, cab=replace(config.changes.cab, rrule="FREQ=HOURLY"))
    )
    with pytest.raises(ServiceError, match=r"changes.toml \[cab\]"):
        changes.meetings(broken, MON, MON + timedelta(days=7))


# --------------------------------------------------------------------------- on the database


@pytest.fixture
def cab(db, staff):
    """CAB members of NET-L2 (so asked about network changes)."""
    with db.session() as s:
        for login in ("cabnet1", "cabnet2"):
            user_service.add_user(
                s, actor_login="admin1", login=login, roles=["cab_member", "support_l2"], groups=["NET-L2"]
            )
    with db.read_session() as s:
        return staff | {login: user_service.resolve_actor(s, login) for login in ("cabnet1", "cabnet2")}


def raise_change(db, config, actor, *, submitted, start=SAT, **kw) -> str:
    values = {
        "change_type": "normal",
        "title": "Replace core switch line card",
        "targets": ["network:core-sw-01"],
        "start": start,
        "end": start + timedelta(hours=2),
        "implementation_plan": "Swap the card.",
        "backout_plan": "Put the old card back.",
        "implementer": "net1",
        "now": submitted - timedelta(hours=1),
    }
    values.update(kw)
    with db.session() as s:
        ref = changes.create_change(s, config, actor, **values).ref
        changes.submit(s, config, actor, ref, now=submitted)
    return ref


def assess(db, config, cab, ref, at):
    with db.session() as s:
        changes.assess(s, config, cab["chm"], ref, risk="high", now=at)


def decide(db, config, actor, ref, meeting, *, approve=True, comment=None, now):
    with db.session() as s:
        change = changes.record_decision(
            s, config, actor, ref, approve=approve, comment=comment, meeting_start=meeting, now=now
        )
        return change.state


def test_submit_records_when_and_puts_a_normal_change_on_a_meeting_audited(db, config, cab):
    ref = raise_change(db, config, cab["net1"], submitted=MON)
    with db.session() as s:
        standard = changes.create_change(
            s,
            config,
            cab["net1"],
            change_type="standard",
            template="std-patch",
            targets=["vpn"],
            start=SAT,
            implementer="net1",
            now=MON,
        ).ref
        changes.submit(s, config, cab["net1"], standard, now=MON)
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        assert (change.submitted_at, change.cab_meeting) == (MON, TUE_3)
        other = changes.get_change(s, standard)
        assert (other.submitted_at, other.cab_meeting) == (MON, None)  # pre-approved: no CAB
        rows = [
            (e.action, e.field, e.old_value, e.new_value)
            for e in s.scalars(
                select(AuditEvent).where(
                    AuditEvent.entity_type == "change", AuditEvent.entity_id == change.id
                )
            )
            if e.field in ("submitted_at", "cab_meeting")
        ]
    assert rows == [
        ("update", "submitted_at", None, "2026-03-02T08:00:00+00:00"),
        ("cab", "cab_meeting", None, "2026-03-03T09:00:00+00:00"),
    ]


def test_the_agenda_lists_its_changes_and_carries_the_undecided_over(db, config, cab):
    early = raise_change(db, config, cab["net1"], submitted=MON, start=SAT + timedelta(hours=1))
    assess(db, config, cab, early, MON + timedelta(hours=2))
    late = raise_change(
        db, config, cab["net1"], submitted=u(2026, 3, 2, 9, 1), title="Patch the VPN", targets=["vpn"]
    )

    with db.read_session() as s:
        before = changes.agenda(s, config, TUE_3, cab["cabnet1"], now=MON + timedelta(hours=3))
    assert before.current and [i.ref for i in before.items] == [early]
    item = before.items[0]
    assert (item.status, item.risk, item.tally, item.carried_from) == (
        "awaiting decision",
        "high",
        "0/2",
        None,
    )
    assert item.progress == "0 of 2 approvals; waiting for cabnet1, cabnet2"
    assert [(a.login, a.decision) for a in item.approvers] == [("cabnet1", "pending"), ("cabnet2", "pending")]
    # Monday: the meeting of the 3rd is still to come, so nothing is decided at it yet; during it, it is.
    closed = (
        "the CAB of Tue 03 Mar 2026 has not met yet; decisions are recorded at a meeting in progress or held "
        "(the last: Tue 24 Feb 2026 10:00 Europe/Berlin)"
    )
    assert before.closed == closed and item.actions == {"approve": closed, "reject": closed}
    with db.read_session() as s:
        during = changes.agenda(s, config, TUE_3, cab["cabnet1"], now=TUE_3 + timedelta(minutes=30))
    assert during.closed is None and during.items[0].actions == {"approve": None, "reject": None}
    assert before.next is not None and before.next.start == TUE_10

    # Wednesday: the meeting of the 3rd is over, the assessed change still undecided.
    wednesday = u(2026, 3, 4, 9)
    with db.read_session() as s:
        now_on = changes.agenda(s, config, TUE_10, cab["net1"], now=wednesday)
        past = changes.agenda(s, config, TUE_3, now=wednesday)
    # By planned start: the VPN patch (Saturday 22:00 UTC) before the switch (23:00).
    assert [(i.ref, i.status, i.carried_from) for i in now_on.items] == [
        (late, "awaiting assessment", None),
        (early, "awaiting decision", TUE_3),
    ]
    assert now_on.items[1].actions["approve"] is not None  # net1 implements it: never its approver
    assert now_on.items[0].tally == "-"
    assert not past.current and [i.ref for i in past.items] == [early]
    with db.read_session() as s:
        assert changes.agenda(s, config, TUE_17, now=wednesday).items == ()  # the next after: nothing yet


def test_a_decision_recorded_at_a_meeting_names_it_audited_and_four_eyes_hold(db, config, cab):
    ref = raise_change(db, config, cab["net1"], submitted=MON)
    assess(db, config, cab, ref, MON + timedelta(hours=1))
    after = TUE_10 + timedelta(minutes=30)  # carried over to the meeting of the 10th, in progress

    with pytest.raises(ValidationError) as no_meeting:
        decide(db, config, cab["cabnet1"], ref, TUE_10 + timedelta(hours=1), now=after)
    assert no_meeting.value.field == "meeting"
    with pytest.raises(ValidationError) as no_comment:
        decide(db, config, cab["cabnet1"], ref, TUE_10, approve=False, now=after)
    assert no_comment.value.field == "reason"
    with pytest.raises(PermissionDenied, match="needs the role cab_member"):
        decide(db, config, cab["net1"], ref, TUE_10, now=after)
    # Four eyes: a CAB member who implements a change never decides it.
    own = raise_change(db, config, cab["net1"], submitted=MON, title="Own work", implementer="cabnet2")
    assess(db, config, cab, own, MON + timedelta(hours=1))
    with pytest.raises(PermissionDenied, match="You implement"):
        decide(db, config, cab["cabnet2"], own, TUE_10, now=after)

    assert decide(db, config, cab["cabnet1"], ref, TUE_10, comment="Fine by me", now=after) == "assessed"
    with pytest.raises(ServiceError, match="you already approved"):
        decide(db, config, cab["cabnet1"], ref, TUE_10, now=after)
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        row = s.scalar(
            select(ChangeApproval)
            .join(User, User.id == ChangeApproval.approver_id)
            .where(ChangeApproval.change_id == change.id, User.login == "cabnet1")
        )
        assert (row.decision, row.reason, row.decided_at, row.meeting) == (
            "approved",
            "Fine by me",
            after,
            TUE_10,
        )
        assert change.cab_meeting == TUE_10  # decided there: on that meeting's agenda from now on
        events = [
            (e.action, e.field, e.old_value, e.new_value)
            for e in s.scalars(
                select(AuditEvent)
                .where(AuditEvent.entity_type == "change", AuditEvent.entity_id == change.id)
                .order_by(AuditEvent.id)
            )
        ][-3:]
        agenda = changes.agenda(s, config, TUE_10, now=after)
    assert events == [
        ("approve", "approval", None, "approved by cabnet1: Fine by me"),
        (
            "cab",
            "meeting",
            None,
            "approved by cabnet1 at the CAB of Tue 10 Mar 2026 10:00-11:30 Europe/Berlin",
        ),
        ("cab", "cab_meeting", "2026-03-03T09:00:00+00:00", "2026-03-10T09:00:00+00:00"),
    ]
    assert [(d.ref, d.login, d.decision, d.comment) for d in agenda.decisions] == [
        (ref, "cabnet1", "approved", "Fine by me")
    ]
    assert agenda.items[0].carried_from is None and agenda.items[0].tally == "1/2"

    # A change of a later meeting is not decided at an earlier one.
    later = raise_change(db, config, cab["net1"], submitted=u(2026, 3, 9, 12), title="Later")
    assess(db, config, cab, later, u(2026, 3, 9, 13))
    with pytest.raises(ValidationError, match="on the agenda of Tue 2026-03-17 10:00 Europe/Berlin"):
        decide(db, config, cab["cabnet2"], later, TUE_10, now=after)


def test_the_minutes_as_markdown_and_json(db, config, cab):
    title = "Swap [bold]card[/bold] | `x`"
    ref = raise_change(db, config, cab["net1"], submitted=u(2026, 3, 3, 12), title=title)
    assess(db, config, cab, ref, u(2026, 3, 3, 13))
    at = TUE_10 + timedelta(hours=1)  # 11:00 in Berlin, during the meeting
    decide(db, config, cab["cabnet1"], ref, TUE_10, comment="ok | `go`\nreally", now=at)
    with db.read_session() as s:
        agenda = changes.agenda(s, config, TUE_10, now=at)
    escaped = r"Swap \[bold\]card\[/bold\] \| \`x\`"
    said = r"ok \| \`go\` really"
    assert changes.minutes(agenda, "md") == (
        "# CAB meeting Tue 10 Mar 2026 10:00-11:30 Europe/Berlin\n"
        "\n"
        "1 change on the agenda.\n"
        "\n"
        f"## {ref} {escaped}\n"
        "\n"
        "- Type: normal; state: awaiting decision; risk: high\n"
        "- Window: 2026-03-14 23:00 to 2026-03-15 01:00 Europe/Berlin\n"
        "- Approvals: 1/2 (1 of 2 approvals; waiting for cabnet2)\n"
        "- Conflicts: none\n"
        "- Approvers:\n"
        f"  - cabnet1: approved: {said} (2026-03-10 11:00 CET)\n"
        "  - cabnet2: pending\n"
        "\n"
        "## Decisions\n"
        "\n"
        "| Change | Title | Approver | Decision | Comment | At (Europe/Berlin) |\n"
        "|---|---|---|---|---|---|\n"
        f"| {ref} | {escaped} | cabnet1 | approved | {said} | 2026-03-10 11:00 CET |\n"
    )
    data = json.loads(changes.minutes(agenda, "json"))
    assert data["meeting"] == {
        "start": "2026-03-10T09:00:00Z",
        "end": "2026-03-10T10:30:00Z",
        "timezone": "Europe/Berlin",
    }
    [item] = data["items"]
    assert {k: item[k] for k in ("ref", "title", "status", "risk", "approvals", "carried_over_from")} == {
        "ref": ref,
        "title": title,
        "status": "awaiting decision",
        "risk": "high",
        "approvals": "1/2",
        "carried_over_from": None,
    }
    assert (item["planned_start"], item["planned_end"], item["conflicts"]) == (
        "2026-03-14T22:00:00Z",
        "2026-03-15T00:00:00Z",
        [],
    )
    assert [(a["login"], a["decision"], a["comment"], a["meeting"]) for a in item["approvers"]] == [
        ("cabnet1", "approved", "ok | `go`\nreally", "2026-03-10T09:00:00Z"),
        ("cabnet2", "pending", None, None),
    ]
    assert data["decisions"] == [
        {
            "ref": ref,
            "title": title,
            "login": "cabnet1",
            "decision": "approved",
            "comment": "ok | `go`\nreally",
            "decided_at": "2026-03-10T10:00:00Z",
        }
    ]
    text = changes.minutes(agenda, "text", timezone="UTC")
    assert text.splitlines()[:2] == ["CAB meeting Tue 10 Mar 2026 09:00-10:30 UTC", "=" * 43]
    assert f"  {ref} approved by cabnet1 at 2026-03-10 10:00 UTC: ok | `go` really" in text
    assert "    cabnet1: approved: ok | `go` really (2026-03-10 10:00 UTC)" in text
    # New York has been on summer time since Sunday 8 March: 10:00 UTC is 06:00 EDT.
    american = changes.minutes(agenda, "text", timezone="America/New_York")
    assert f"  {ref} approved by cabnet1 at 2026-03-10 06:00 EDT: ok | `go` really" in american
    assert "    cabnet1: approved: ok | `go` really (2026-03-10 06:00 EDT)" in american


def test_a_change_submitted_before_meetings_is_carried_over_to_the_meeting_now(db, config, cab):
    ref = raise_change(db, config, cab["net1"], submitted=MON)
    assess(db, config, cab, ref, MON + timedelta(hours=1))
    urgent = raise_change(db, config, cab["net1"], submitted=MON, change_type="emergency", title="Urgent")
    # As a desk upgraded from before meetings has it: no meeting, no submission instant.
    with db.session() as s:
        s.execute(update(Change).where(Change.ref == ref).values(cab_meeting=None, submitted_at=None))
    wednesday = u(2026, 3, 4, 9)  # the next meeting is the 10th's
    with db.read_session() as s:
        assert changes.get_change(s, urgent).cab_meeting is None  # an emergency change: never the CAB's
        now_on = changes.agenda(s, config, TUE_10, now=wednesday)
        held = changes.agenda(s, config, TUE_3, now=wednesday)
        later = changes.agenda(s, config, TUE_17, now=wednesday)
    assert [(i.ref, i.status, i.carried_from) for i in now_on.items] == [(ref, "awaiting decision", None)]
    assert held.items == () and later.items == ()

    during = TUE_10 + timedelta(minutes=20)
    assert decide(db, config, cab["cabnet1"], ref, TUE_10, comment="Fine", now=during) == "assessed"
    with db.read_session() as s:
        assert changes.get_change(s, ref).cab_meeting == TUE_10  # decided there: on that meeting's agenda
        assert [i.ref for i in changes.agenda(s, config, TUE_10, now=during).items] == [ref]
        assert changes.agenda(s, config, TUE_17, now=TUE_10 + timedelta(hours=2)).items[0].ref == ref


def test_a_decision_is_recorded_at_the_meeting_going_on_or_one_held_never_one_to_come(db, config, cab):
    ref = raise_change(db, config, cab["net1"], submitted=MON)  # on the agenda of the 3rd
    assess(db, config, cab, ref, MON + timedelta(hours=1))
    wednesday = u(2026, 3, 4, 9)
    during = TUE_10 + timedelta(minutes=10)
    with pytest.raises(ValidationError) as coming:
        decide(db, config, cab["cabnet1"], ref, TUE_10, now=wednesday)
    assert (coming.value.field, str(coming.value)) == (
        "meeting",
        "the CAB of Tue 10 Mar 2026 has not met yet; decisions are recorded at a meeting in progress or held "
        "(the last: Tue 03 Mar 2026 10:00 Europe/Berlin)",
    )
    with pytest.raises(ValidationError) as ahead:
        decide(db, config, cab["cabnet1"], ref, TUE_17, now=during)
    assert str(ahead.value) == (
        "the CAB of Tue 17 Mar 2026 has not met yet; decisions are recorded at a meeting in progress or held "
        "(in progress: Tue 10 Mar 2026 10:00 Europe/Berlin)"
    )
    with pytest.raises(ValidationError) as far:
        decide(db, config, cab["cabnet1"], ref, u(9999, 12, 28, 9), now=during)
    assert str(far.value) == "give a date between 2000-01-04 (the CAB's first meeting) and 2099-12-31"
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        assert change.cab_meeting == TUE_3 and {a.decision for a in change.approvals} == {"pending"}
    # The minutes of the 3rd, written up on Wednesday: recorded at the meeting held.
    assert decide(db, config, cab["cabnet1"], ref, TUE_3, comment="Agreed", now=wednesday) == "assessed"
    with db.read_session() as s:
        decisions = changes.agenda(s, config, TUE_3, now=wednesday).decisions
    assert [(d.ref, d.login, d.decided_at) for d in decisions] == [(ref, "cabnet1", wednesday)]


def test_meeting_days_are_bounded_by_the_schedule(config):
    # The rule counts from Monday 3 January 2000: its first Tuesday at 10:00 in Berlin.
    for day in ("0001-01-02", "1900-01-02", "9999-12-21", "2100-01-05"):
        with pytest.raises(ValidationError) as refused:
            changes.meeting_on(config, day, name="meeting")
        assert (refused.value.field, str(refused.value)) == (
            "meeting",
            "give a date between 2000-01-04 (the CAB's first meeting) and 2099-12-31",
        ), day
    assert changes.meeting_on(config, "2000-01-04").start == u(2000, 1, 4, 9)
    assert changes.meeting_on(config, "2099-12-29").start == u(2099, 12, 29, 9)


def test_approvals_no_longer_asked_for_show_as_not_needed_or_moot(db, config, cab, monkeypatch, capsys):
    from itsm_tui.cli import main

    rejected = raise_change(db, config, cab["net1"], submitted=MON, title="Rejected")
    withdrawn = raise_change(db, config, cab["net1"], submitted=MON, title="Withdrawn")
    for ref in (rejected, withdrawn):
        assess(db, config, cab, ref, MON + timedelta(hours=1))
    during = TUE_3 + timedelta(minutes=30)
    assert decide(db, config, cab["cabnet1"], rejected, TUE_3, approve=False, comment="No", now=during) == (
        "rejected"
    )
    with db.session() as s:
        changes.withdraw(s, config, cab["net1"], withdrawn, reason="Not now", now=during)
    with db.read_session() as s:
        agenda = changes.agenda(s, config, TUE_3, now=during)
        views = {ref: changes.view(s, config, changes.get_change(s, ref)) for ref in (rejected, withdrawn)}
    expected = {
        rejected: [("cabnet1", "rejected"), ("cabnet2", "not needed")],
        withdrawn: [("cabnet1", "moot"), ("cabnet2", "moot")],
    }
    assert {i.ref: [(a.login, a.label) for a in i.approvers] for i in agenda.items} == expected
    assert {ref: [(a.login, a.shown) for a in v.approvals] for ref, v in views.items()} == expected
    text = changes.minutes(agenda, "text")
    assert "    cabnet2: not needed\n" in text and "    cabnet1: moot\n" in text
    data = json.loads(changes.minutes(agenda, "json"))
    assert [(a["decision"], a["shown"]) for a in data["items"][1]["approvers"]] == [
        ("pending", "moot"),
        ("pending", "moot"),
    ]
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "cabnet1")
    assert main(["change", "show", withdrawn, "--db", db.url]) == 0
    shown = capsys.readouterr().out
    assert "  cabnet2      moot" in shown and "pending" not in shown


def test_a_change_planned_to_start_before_its_meeting_is_flagged(db, config, cab):
    # Submitted on Monday for the meeting of Tuesday 3 March, but planned for Monday night.
    early = raise_change(db, config, cab["net1"], submitted=MON, start=u(2026, 3, 2, 20), title="Tonight")
    later = raise_change(db, config, cab["net1"], submitted=MON, title="Saturday")
    with db.read_session() as s:
        agenda = changes.agenda(s, config, TUE_3, now=MON + timedelta(hours=2))
    warning = "starts before this meeting: decide it earlier or move it"
    assert [(i.ref, i.warning) for i in agenda.items] == [(early, warning), (later, None)]
    assert f"- Warning: {warning}\n" in changes.minutes(agenda, "md")
    assert f"  Warning: {warning}\n" in changes.minutes(agenda, "text")
    data = json.loads(changes.minutes(agenda, "json"))
    assert [i["warning"] for i in data["items"]] == [warning, None]


# --------------------------------------------------------------------------- the command line


def test_the_agenda_and_a_decision_at_a_meeting_from_the_command_line(db, config, cab, monkeypatch, capsys):
    from itsm_tui.cli import main

    def one_line_error(argv: list[str], said: str) -> str:
        assert main(argv) == 2, argv
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1 and said in err, err
        return err

    # The command line runs on the real clock: a change submitted two weeks ago is on a meeting held since.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    ref = raise_change(
        db, config, cab["net1"], submitted=now - timedelta(days=14), start=now + timedelta(days=20)
    )
    assess(db, config, cab, ref, now - timedelta(days=14))
    with db.read_session() as s:
        meeting = changes.get_change(s, ref).cab_meeting
    assert meeting < now - timedelta(days=5)
    day = meeting.astimezone(ZoneInfo("Europe/Berlin")).date()
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "cabnet1")

    assert main(["change", "agenda", "--db", db.url, "--date", day.isoformat(), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert [i["ref"] for i in data["items"]] == [ref] and data["meeting"]["start"] == instant(meeting)

    wednesday = day + timedelta(days=1)
    err = one_line_error(
        ["change", "agenda", "--db", db.url, "--date", wednesday.isoformat()], "--date: the CAB does not meet"
    )
    assert f"does not meet on Wed {wednesday.isoformat()}" in err and f"Tue {day.isoformat()} 10:00" in err
    # Days out of the schedule's range: one line, no traceback.
    for far in ("0001-01-02", "9999-12-21", "1900-01-02"):
        one_line_error(
            ["change", "agenda", "--db", db.url, "--date", far],
            "--date: give a date between 2000-01-04 (the CAB's first meeting) and 2099-12-31",
        )

    approve = ["change", "approve", ref, "--db", db.url, "--reason", "Fine", "--meeting"]
    # No meeting that day: said of --meeting. A meeting still to come: refused, naming the last one held.
    one_line_error([*approve, wednesday.isoformat()], "--meeting: the CAB does not meet on Wed")
    one_line_error([*approve, "9999-12-28"], "--meeting: give a date between 2000-01-04")
    coming = changes.meetings(config, now + timedelta(days=8), now + timedelta(days=15))[0]
    coming_day = coming.local().date()
    err = one_line_error(
        [*approve, coming_day.isoformat()], f"--meeting: the CAB of {coming.local():%a %d %b %Y}"
    )
    assert "has not met yet" in err
    last = changes.meetings(config, now - timedelta(days=7), now)[-1]
    assert f"{last.local():%a %d %b %Y %H:%M} Europe/Berlin" in err

    assert main([*approve, day.isoformat()]) == 0  # at the meeting held: the minutes written afterwards
    capsys.readouterr()
    with db.read_session() as s:
        change = changes.get_change(s, ref)
        decided = [(a.decision, a.meeting) for a in change.approvals if a.reason == "Fine"]
    assert decided == [("approved", meeting)]

    one_line_error(
        ["change", "agenda", "--db", db.url, "--date", day.isoformat(), "--timezone", "Mars/Base"],
        "unknown time zone 'Mars/Base'",
    )


def test_the_agenda_reads_its_changes_along_the_meeting_index(db, config, cab):
    if not db.url.startswith("sqlite"):
        pytest.skip("the plan is SQLite's (PostgreSQL's planner picks by its statistics)")
    from plan_helpers import sqlite_plans

    raise_change(db, config, cab["net1"], submitted=MON)
    plans = sqlite_plans(
        db, lambda s: changes.agenda(s, config, TUE_10, now=u(2026, 3, 4)), "changes.cab_meeting"
    )
    # The meeting's own changes, the undecided ones carried over to it, and those submitted before changes
    # had a meeting (no cab_meeting).
    own, carried, unplaced = plans
    assert own.startswith("SEARCH changes USING INDEX ix_changes_cab (cab_meeting=?)"), own
    # The undecided are few: by state, or by meeting then state; never the whole table.
    assert carried.startswith(
        ("SEARCH changes USING INDEX ix_changes_state", "SEARCH changes USING INDEX ix_changes_cab")
    ), carried
    unplaced_by = "SEARCH changes USING INDEX ix_changes_cab (cab_meeting=? AND state=?)"
    assert unplaced.startswith(unplaced_by), unplaced
