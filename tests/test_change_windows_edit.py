"""Maintenance windows and blackouts edited and deleted by change managers (audited, stale saves refused),
the live changes a freeze blocks, and their owners told once; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from itsm_tui.cli import main
from itsm_tui.models import AuditEvent, Blackout, MaintenanceWindow, Notification, User
from itsm_tui.services import changes, conflicts
from itsm_tui.services import users as user_service
from itsm_tui.services.access import PermissionDenied
from itsm_tui.services.errors import NotFound, StaleEdit, ValidationError

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
FREEZE = (datetime(2026, 12, 20, tzinfo=UTC), datetime(2026, 12, 27, tzinfo=UTC))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def cast(db, staff):
    """The cast and a second change manager (told of freezes the first one lays)."""
    with db.session() as s:
        user_service.add_user(s, actor_login="admin1", login="chm2", roles=["change_manager"], groups=[])
    with db.read_session() as s:
        return staff | {"chm2": user_service.resolve_actor(s, "chm2")}


def planned(db, config, actor, title, target, start, end, state, *, change_type="normal", override=None):
    """A change raised by ``actor`` and put in ``state`` (the lifecycle itself is tested elsewhere)."""
    implementer = "app1" if target == "email" else "net1"
    with db.session() as s:
        change = changes.create_change(
            s,
            config,
            actor,
            change_type=change_type,
            title=title,
            targets=[target],
            start=start,
            end=end,
            implementation_plan="Do it.",
            backout_plan="Undo it.",
            implementer=implementer,
            now=NOW,
        )
        ref = change.ref
    with db.session() as s:
        s.execute(
            text("UPDATE changes SET state = :state, override_reason = :why WHERE ref = :ref"),
            {"state": state, "why": override, "ref": ref},
        )
    return ref


@pytest.fixture
def around(db, config, cast):
    """Changes around the freeze of 20-27 December, each worked out by hand against it (network):
    before it, over its start, inside it, a draft, another service, an emergency let in, one starting as it
    ends, a closed one."""
    net1 = cast["net1"]
    refs = {
        "before": planned(db, config, net1, "Before", "network", at(19, 20), at(19, 22), "scheduled"),
        "over_start": planned(db, config, net1, "Over", "network", at(19, 23), at(20, 1), "scheduled"),
        "inside": planned(db, config, net1, "Inside", "network", at(22, 22), at(22, 23), "approved"),
        "draft": planned(db, config, net1, "Draft", "network", at(23, 22), at(23, 23), "draft"),
        "email": planned(db, config, net1, "Mail", "email", at(22, 20), at(22, 21), "scheduled"),
        "emergency": planned(
            db,
            config,
            net1,
            "Urgent",
            "network",
            at(24, 2),
            at(24, 3),
            "submitted",
            change_type="emergency",
            override="Vendor fix",
        ),
        "at_end": planned(db, config, net1, "After", "network", at(27, 0), at(27, 2), "scheduled"),
        "closed": planned(db, config, net1, "Done", "network", at(21, 22), at(21, 23), "closed"),
    }
    return refs


def audit_of(db, entity_type, entity_id):
    with db.read_session() as s:
        return [
            (e.action, e.field, e.old_value, e.new_value)
            for e in s.scalars(
                select(AuditEvent)
                .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
                .order_by(AuditEvent.id)
            )
        ]


def told(db, login):
    with db.read_session() as s:
        return list(
            s.execute(
                select(Notification.event_key, Notification.message)
                .join(User, User.id == Notification.user_id)
                .where(User.login == login, Notification.kind == "change_conflict")
                .order_by(Notification.id)
            ).tuples()
        )


def add_window(db, config, actor, **kw):
    values = {
        "name": "Network Saturday",
        "service": "network",
        "rrule": "FREQ=WEEKLY;BYDAY=SA",
        "start_local": "22:00",
        "duration_minutes": 60,
        "timezone": "Europe/Berlin",
        "config": config,
        "now": NOW,
    }
    with db.session() as s:
        window = changes.add_window(s, actor, **(values | kw))
        return window.id, window.version


def add_freeze(db, config, actor, service="network", name="Year end"):
    with db.session() as s:
        blackout = changes.add_blackout(
            s, actor, name=name, start=FREEZE[0], end=FREEZE[1], service=service, config=config, now=NOW
        )
        return blackout.id


# --------------------------------------------------------------------------- windows


def test_a_window_is_edited_field_by_field_audited_and_a_stale_edit_refused(db, config, cast):
    window_id, version = add_window(db, config, cast["chm"])
    assert version == 1
    with db.session() as s:
        window = changes.edit_window(
            s,
            cast["chm"],
            window_id,
            config=config,
            name="Network Saturday late",
            duration_minutes=90,
            expected_version=1,
            now=NOW,
        )
        assert window.version == 2
    edits = [row for row in audit_of(db, "window", window_id) if row[0] == "update"]
    assert edits == [
        ("update", "name", "Network Saturday", "Network Saturday late"),
        ("update", "duration_minutes", "60", "90"),
    ]
    with db.read_session() as s:
        assert s.get(MaintenanceWindow, window_id).created_by_id == cast["chm"].id
    with db.session() as s, pytest.raises(StaleEdit) as stale:
        changes.edit_window(s, cast["chm"], window_id, config=config, name="x", expected_version=1, now=NOW)
    assert f"window {window_id} was changed" in str(stale.value) and "version 1, now 2" in str(stale.value)
    # The same checks as a new window: a rule within a day is refused, and nothing is written.
    with db.session() as s, pytest.raises(ValidationError) as bad:
        changes.edit_window(s, cast["chm"], window_id, config=config, rrule="FREQ=HOURLY", now=NOW)
    assert bad.value.field == "rrule"
    # An end of validity, then none again.
    with db.session() as s:
        changes.edit_window(s, cast["chm"], window_id, config=config, valid_until=at(31, 0), now=NOW)
    with db.session() as s:
        window = changes.edit_window(s, cast["chm"], window_id, config=config, valid_until=None, now=NOW)
        assert window.valid_until is None and window.version == 4
    assert [r[1:] for r in audit_of(db, "window", window_id)][-2:] == [
        ("valid_until", None, at(31, 0).isoformat()),
        ("valid_until", at(31, 0).isoformat(), None),
    ]


def test_only_change_managers_edit_or_delete_and_a_missing_one_is_named(db, config, cast):
    window_id, _ = add_window(db, config, cast["chm"])
    blackout_id = add_freeze(db, config, cast["chm"])
    for call in (
        lambda s: changes.edit_window(s, cast["agent1"], window_id, config=config, name="Mine"),
        lambda s: changes.delete_window(s, cast["agent1"], window_id),
        lambda s: changes.edit_blackout(s, cast["net1"], blackout_id, config=config, name="Mine"),
        lambda s: changes.delete_blackout(s, cast["cab1"], blackout_id),
    ):
        with db.session() as s, pytest.raises(PermissionDenied, match="change_manager"):
            call(s)
    assert changes.window_refusal(cast["agent1"]) and changes.window_refusal(cast["chm"]) is None
    with db.session() as s, pytest.raises(NotFound, match="no maintenance window 999"):
        changes.delete_window(s, cast["chm"], 999)
    with db.read_session() as s:
        assert s.get(MaintenanceWindow, window_id).name == "Network Saturday"
        assert s.get(Blackout, blackout_id).name == "Year end"


def test_deleting_a_window_is_audited_and_its_conflicts_go_with_it(db, config, cast):
    # A change on a Thursday: outside the network's only window (Saturdays), a warning.
    ref = planned(db, config, cast["net1"], "Thu", "network", at(17, 10), at(17, 11), "scheduled")
    window_id, _ = add_window(db, config, cast["chm"])
    with db.read_session() as s:
        kinds = [c.kind for c in conflicts.between(s, at(17, 0), at(18, 0))]
    assert kinds == ["outside_window"]
    with db.session() as s, pytest.raises(StaleEdit):
        changes.delete_window(s, cast["chm"], window_id, expected_version=7)
    with db.session() as s:
        said = changes.delete_window(s, cast["chm"], window_id, expected_version=1, now=NOW)
    assert said.startswith("Network Saturday: network: FREQ=WEEKLY;BYDAY=SA at 22:00 Europe/Berlin")
    assert audit_of(db, "window", window_id)[-1] == ("delete", "window", None, said)
    with db.read_session() as s:
        assert s.get(MaintenanceWindow, window_id) is None
        assert conflicts.between(s, at(17, 0), at(18, 0)) == []
        assert changes.get_change(s, ref).state == "scheduled"


# --------------------------------------------------------------------------- blackouts


def test_what_a_freeze_blocks_worked_out_by_hand(db, config, around):
    with db.read_session() as s:
        network = changes.blocked_by_blackout(s, config, start=FREEZE[0], end=FREEZE[1], service="network")
        every = changes.blocked_by_blackout(s, config, start=FREEZE[0], end=FREEZE[1])
        email = changes.blocked_by_blackout(s, config, start=FREEZE[0], end=FREEZE[1], service="email")
        first = changes.blocked_by_blackout(s, config, start=FREEZE[0], end=FREEZE[1], limit=1)
    refs = around
    assert [c.ref for c in network.blocked] == [refs["over_start"], refs["inside"]]
    assert [c.ref for c in network.overridden] == [refs["emergency"]]
    assert network.total == 3 and not network.truncated
    assert [c.ref for c in every.blocked] == [refs["over_start"], refs["email"], refs["inside"]]
    assert [c.ref for c in every.overridden] == [refs["emergency"]] and every.total == 4
    assert [c.ref for c in email.blocked] == [refs["email"]] and not email.overridden
    assert [c.ref for c in first] == [refs["over_start"]] and first.total == 4 and first.truncated
    over = network.blocked[0]
    assert (over.state, over.start, over.end, over.services) == (
        "scheduled",
        at(19, 23),
        at(20, 1),
        ("network",),
    )
    assert network.summary() == (
        f"It blocks 2 live changes: {refs['over_start']} (scheduled, 2026-12-19 23:00 to 2026-12-20 01:00 "
        f"UTC), "
        f"{refs['inside']} (approved, 2026-12-22 22:00-23:00 UTC); 1 emergency change may go ahead with an "
        f"override reason: {refs['emergency']} (submitted, 2026-12-24 02:00-03:00 UTC)."
    )
    with db.read_session() as s, pytest.raises(ValidationError):
        changes.blocked_by_blackout(s, config, start=FREEZE[1], end=FREEZE[0])


def test_a_new_freeze_tells_each_owner_once_and_the_other_managers_once(db, config, cast, around):
    blackout_id = add_freeze(db, config, cast["chm"])
    refs = around
    keys = [key for key, _ in told(db, "net1")]  # net1 raised and implements both blocked network changes
    with db.read_session() as s:
        ids = {ref: changes.get_change(s, ref).id for ref in refs.values()}
    assert keys == [
        f"blackout:{blackout_id}:v1:change:{ids[refs['over_start']]}",
        f"blackout:{blackout_id}:v1:change:{ids[refs['inside']]}",
    ]
    assert told(db, "net1")[0][1] == (
        f"{refs['over_start']} is inside the change freeze "
        '"Year end" (service network, 2026-12-20 00:00 to 2026-12-27 00:00 UTC); move it out of the freeze'
    )
    assert told(db, "app1") == []  # the email change is not in a network freeze
    assert [key for key, _ in told(db, "chm2")] == [f"blackout:{blackout_id}:v1"]
    assert told(db, "chm") == []  # who laid it saw the list before saving
    # Saved again with the same period (the same values; then the name alone): nobody is told again.
    with db.session() as s:
        changes.edit_blackout(s, cast["chm"], blackout_id, config=config, start=FREEZE[0], now=NOW)
    with db.session() as s:
        assert changes.notify_blocked(s, config, s.get(Blackout, blackout_id), cast["chm"], NOW) == 0
    with db.session() as s:
        changes.edit_blackout(s, cast["chm"], blackout_id, config=config, name="Year-end freeze", now=NOW)
    assert len(told(db, "net1")) == 2 and len(told(db, "chm2")) == 1
    # Widened to every service: the email change's owners are told, the others once more (a new version).
    with db.session() as s:
        blackout = changes.edit_blackout(
            s, cast["chm"], blackout_id, config=config, service="", expected_version=2, now=NOW
        )
        assert blackout.version == 3 and blackout.service is None
    assert [key for key, _ in told(db, "app1")] == [f"blackout:{blackout_id}:v3:change:{ids[refs['email']]}"]
    assert len(told(db, "net1")) == 5  # 2 at v1; over_start, email (raised by net1), inside at v3


def test_a_blackout_is_edited_audited_stale_refused_and_deleted(db, config, cast, around):
    blackout_id = add_freeze(db, config, cast["chm"])
    with db.read_session() as s:
        assert s.get(Blackout, blackout_id).created_by_id == cast["chm"].id
        blocked = [c.refs[0] for c in conflicts.between(s, FREEZE[0], FREEZE[1]) if c.kind == "blackout"]
    assert sorted(blocked) == sorted([around["over_start"], around["inside"], around["emergency"]])
    with db.session() as s:
        changes.edit_blackout(
            s,
            cast["chm"],
            blackout_id,
            config=config,
            reason="Finance close",
            end=at(21, 0),
            expected_version=1,
            now=NOW,
        )
    assert audit_of(db, "blackout", blackout_id)[1:] == [
        ("update", "reason", None, "Finance close"),
        ("update", "ends_at", FREEZE[1].isoformat(), at(21, 0).isoformat()),
    ]
    with db.read_session() as s:  # the conflicts follow at once: only the change over its start is left
        blocked = [c.refs[0] for c in conflicts.between(s, FREEZE[0], FREEZE[1]) if c.kind == "blackout"]
    assert blocked == [around["over_start"]]
    with db.session() as s, pytest.raises(ValidationError) as bad:
        changes.edit_blackout(s, cast["chm"], blackout_id, config=config, end=at(19, 0), now=NOW)
    assert bad.value.field == "end"
    with db.session() as s, pytest.raises(StaleEdit, match=f"blackout {blackout_id} was changed by Chm"):
        changes.delete_blackout(s, cast["chm"], blackout_id, expected_version=1, now=NOW)
    with db.session() as s:
        said = changes.delete_blackout(s, cast["chm"], blackout_id, expected_version=2, now=NOW)
    assert said == ("Year end: network: 2026-12-20T00:00:00+00:00 to 2026-12-21T00:00:00+00:00")
    assert audit_of(db, "blackout", blackout_id)[-1] == ("delete", "blackout", None, said)
    with db.read_session() as s:
        assert s.get(Blackout, blackout_id) is None
        assert [c for c in conflicts.between(s, FREEZE[0], FREEZE[1]) if c.kind == "blackout"] == []


# --------------------------------------------------------------------------- the command line


def test_the_command_line_lists_what_a_freeze_blocks_and_a_dry_run_saves_nothing(
    db, db_url, config, cast, monkeypatch, capsys
):
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "chm")
    start = datetime.now(UTC).replace(hour=22, minute=0, second=0, microsecond=0) + timedelta(days=30)
    ref = planned(
        db, config, cast["net1"], "Later", "network", start, start + timedelta(hours=1), "scheduled"
    )
    day = f"{start:%Y-%m-%d}"
    freeze = ("--name", "Hold", "--start", f"{day}T00:00Z", "--end", f"{day}T23:59Z", "--service", "network")
    assert main(["change", "add-blackout", "--db", db_url, *freeze, "--dry-run"]) == 0
    out = capsys.readouterr().out
    blocks = f"It blocks 1 live change: {ref} (scheduled, {day} 22:00-23:00 UTC)."
    assert out == f"dry run, nothing saved: the blackout Hold (network) would be added. {blocks}\n"
    with db.read_session() as s:
        assert s.scalar(select(Blackout.id)) is None
    assert main(["change", "add-blackout", "--db", db_url, *freeze]) == 0
    with db.read_session() as s:
        bid = str(s.scalar(select(Blackout.id)))  # the dry run's id is spent on PostgreSQL
    assert capsys.readouterr().out == f"blackout {bid} added (v1): Hold (network). {blocks}\n"
    assert main(["change", "windows", "--db", db_url]) == 0
    listed = capsys.readouterr().out
    assert "ID  V  FROM" in listed and f"\n{bid}   1  " in listed
    code = main(
        ["change", "edit-blackout", bid, "--db", db_url, "--end", f"{day}T21:00Z", "--expected-version", "1"]
    )
    assert code == 0
    assert (
        capsys.readouterr().out == f"blackout {bid} saved (v2): Hold (network). It blocks no live change.\n"
    )
    assert main(["change", "delete-blackout", bid, "--db", db_url, "--expected-version", "1"]) == 2
    assert f"blackout {bid} was changed" in capsys.readouterr().err
    assert main(["change", "delete-blackout", bid, "--db", db_url]) == 0
    assert capsys.readouterr().out.startswith(f"blackout {bid} deleted: Hold: network: ")
    window = ("--name", "Sat", "--service", "network", "--rrule", "FREQ=WEEKLY;BYDAY=SA", "--start", "22:00")
    assert (
        main(["change", "add-window", "--db", db_url, *window, "--minutes", "60", "--timezone", "UTC"]) == 0
    )
    capsys.readouterr()
    assert main(["change", "edit-window", "1", "--db", db_url, "--minutes", "90", "--valid-until", ""]) == 0
    assert (
        capsys.readouterr().out
        == "window 1 saved (v2): network FREQ=WEEKLY;BYDAY=SA at 22:00 UTC for 90 min\n"
    )
    assert main(["change", "delete-window", "1", "--db", db_url]) == 0
    assert capsys.readouterr().out.startswith("window 1 deleted: Sat: network: ")


def test_an_edit_of_a_window_or_blackout_with_nothing_to_change_is_refused(
    db, db_url, config, cast, monkeypatch, capsys
):
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "chm")
    blackout_id = str(add_freeze(db, config, cast["chm"]))
    window_id = str(add_window(db, config, cast["chm"])[0])
    capsys.readouterr()
    for argv, options in (
        (["edit-blackout", blackout_id], "--name, --reason, --service, --start, --end"),
        (["edit-blackout", blackout_id, "--dry-run"], "--name, --reason, --service, --start, --end"),
        (
            ["edit-window", window_id],
            "--name, --service, --rrule, --start, --minutes, --timezone, --valid-until",
        ),
    ):
        assert main(["change", *argv, "--db", db_url]) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == f"itsm: error: give at least one field to change ({options})\n", argv
    with db.read_session() as s:  # nothing written
        assert s.get(Blackout, int(blackout_id)).version == 1
        assert s.get(MaintenanceWindow, int(window_id)).version == 1
    assert audit_of(db, "blackout", int(blackout_id))[1:] == []


def test_what_a_freeze_blocks_is_read_along_the_changes_window_index(db, config, around):
    if db.backend != "sqlite":
        pytest.skip("the plans asserted are SQLite's")
    from plan_helpers import sqlite_plans

    def every(s):
        return changes.blocked_by_blackout(s, config, start=FREEZE[0], end=FREEZE[1])

    def network(s):
        return changes.blocked_by_blackout(s, config, start=FREEZE[0], end=FREEZE[1], service="network")

    for run in (every, network):
        plans = sqlite_plans(db, run, "FROM change")
        assert len(plans) == 3, plans  # the count, the page, the page's targets
        for plan in plans:
            assert "SCAN changes" not in plan and "SCAN change_targets" not in plan, plan
        assert plans[0].startswith("SEARCH changes USING INDEX ix_changes_window (planned_start>? AND"), plans
        assert (
            plans[2]
            == "SEARCH change_targets USING INDEX ix_change_targets_service (service=? AND change_id=?)"
        )
