"""Conflict detection: recurring maintenance windows across months and daylight-saving changes (pure), and
every conflict kind on SQLite and PostgreSQL: at submit, in the preview before saving, over a range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itsm_tui.jobs.change_reminders import remind
from itsm_tui.services import changes, conflicts
from itsm_tui.services.conflicts import BlackoutSpec, Planned, WindowSpec

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def window(rule="FREQ=WEEKLY;BYDAY=SA", start="22:00", minutes=360, tz="Europe/Berlin", **kw) -> WindowSpec:
    values = {
        "id": 1,
        "name": "Network weekly window",
        "service": "network",
        "timezone": tz,
        "rrule": rule,
        "start_local": start,
        "duration_minutes": minutes,
        "valid_from": utc(2025, 1, 1),
        "valid_until": None,
    }
    values.update(kw)
    return WindowSpec(**values)


def spans(spec: WindowSpec, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    return [(o.start, o.end) for o in conflicts.occurrences(spec, start, end)]


# --------------------------------------------------------------------------- windows (pure)


def test_a_weekly_window_keeps_local_wall_clock_times_across_the_spring_change():
    # Europe/Berlin goes from UTC+1 to UTC+2 at 02:00 on Sunday 2026-03-29.
    assert spans(window(), utc(2026, 3, 20), utc(2026, 4, 6)) == [
        (utc(2026, 3, 21, 21), utc(2026, 3, 22, 3)),  # 22:00 CET - 04:00 CET: 6 h
        (utc(2026, 3, 28, 21), utc(2026, 3, 29, 2)),  # 22:00 CET - 04:00 CEST: 5 h on the short night
        (utc(2026, 4, 4, 20), utc(2026, 4, 5, 2)),  # 22:00 CEST - 04:00 CEST: 6 h
    ]


def test_a_weekly_window_keeps_local_wall_clock_times_across_the_autumn_change():
    # Back to UTC+1 at 03:00 on Sunday 2026-10-25: that night's window lasts seven hours.
    assert spans(window(), utc(2026, 10, 16), utc(2026, 11, 2)) == [
        (utc(2026, 10, 17, 20), utc(2026, 10, 18, 2)),
        (utc(2026, 10, 24, 20), utc(2026, 10, 25, 3)),
        (utc(2026, 10, 31, 21), utc(2026, 11, 1, 3)),
    ]


def test_a_monthly_window_expands_across_months_and_zones():
    first_saturdays = spans(window("FREQ=MONTHLY;BYDAY=1SA", "20:00", 480), utc(2026, 1, 1), utc(2026, 5, 1))
    assert [s for s, _ in first_saturdays] == [
        utc(2026, 1, 3, 19),
        utc(2026, 2, 7, 19),
        utc(2026, 3, 7, 19),
        utc(2026, 4, 4, 18),  # summer time
    ]
    # New York changes on 2026-03-08, three weeks before Europe.
    ny = window("FREQ=WEEKLY;BYDAY=SU", "01:00", 120, tz="America/New_York")
    assert [s for s, _ in spans(ny, utc(2026, 3, 1), utc(2026, 3, 16))] == [
        utc(2026, 3, 1, 6),
        utc(2026, 3, 8, 6),  # 01:00 EST, the change is at 02:00
        utc(2026, 3, 15, 5),  # 01:00 EDT
    ]


def test_a_start_inside_the_spring_gap_moves_an_hour_on_and_validity_bounds_hold():
    daily = window("FREQ=DAILY", "02:30", 90, valid_from=utc(2026, 3, 27), valid_until=utc(2026, 3, 30, 12))
    assert spans(daily, utc(2026, 3, 1), utc(2026, 4, 30)) == [
        (utc(2026, 3, 27, 1, 30), utc(2026, 3, 27, 3)),
        (utc(2026, 3, 28, 1, 30), utc(2026, 3, 28, 3)),
        # 02:30 does not exist: 03:30 CEST (01:30 UTC), to the local end 04:00 CEST (02:00 UTC), half an hour
        (utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 2)),
        (utc(2026, 3, 30, 0, 30), utc(2026, 3, 30, 2)),
    ]


def test_an_until_in_utc_is_honoured():
    until = window("FREQ=WEEKLY;BYDAY=SA;UNTIL=20260315T000000Z")
    starts = [s for s, _ in spans(until, utc(2026, 3, 1), utc(2026, 4, 1))]
    assert starts == [utc(2026, 2, 28, 21), utc(2026, 3, 7, 21), utc(2026, 3, 14, 21)]  # none after the 15th
    assert conflicts.validate_rrule("RRULE:freq=weekly;byday=sa") == "FREQ=WEEKLY;BYDAY=SA"
    with pytest.raises(ValueError, match="not a valid RRULE"):
        conflicts.validate_rrule("FREQ=WEEKLY;BYDAY=XX")
    with pytest.raises(ValueError, match="repeats within a day"):
        conflicts.validate_rrule("FREQ=HOURLY;UNTIL=20260315T000000Z")


@settings(max_examples=60, deadline=None)
@given(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)),
    st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Sydney", "UTC"]),
)
def test_every_occurrence_starts_at_the_local_time_on_the_rule_s_weekday(start, tz):
    from zoneinfo import ZoneInfo

    spec = window(tz=tz)
    begin = start.replace(tzinfo=UTC)
    found = spans(spec, begin, begin + timedelta(days=40))
    assert 5 <= len(found) <= 7
    for occ_start, occ_end in found:
        local = occ_start.astimezone(ZoneInfo(tz))
        assert (local.weekday(), local.hour, local.minute) == (5, 22, 0)
        assert occ_end.astimezone(ZoneInfo(tz)).hour == 4
        assert timedelta(hours=5) <= occ_end - occ_start <= timedelta(hours=7)


# --------------------------------------------------------------------------- the check (pure)


def planned(ref, start, hours, services=("network",), cis=(), implementer=None, change_type="normal", **kw):
    return Planned(
        id=int(ref[-3:]),
        ref=ref,
        change_type=change_type,
        state=kw.pop("state", "submitted"),
        start=start,
        end=start + timedelta(hours=hours),
        services=frozenset(services),
        cis=frozenset(cis),
        implementer_id=implementer,
        implementer=f"user{implementer}" if implementer else None,
        **kw,
    )


def test_the_sweep_finds_exactly_the_overlapping_pairs():
    a = planned("CHG0000001", utc(2026, 3, 7, 21), 4, cis=("core-sw-01",))
    b = planned("CHG0000002", utc(2026, 3, 7, 22), 3, cis=("core-sw-01",))
    c = planned("CHG0000003", utc(2026, 3, 8, 0), 2, cis=("core-sw-02",))
    d = planned("CHG0000004", utc(2026, 3, 8, 2), 1)  # starts as c ends: half-open intervals do not meet
    found = conflicts.find_conflicts([d, c, b, a])
    assert [(x.refs, x.resource, x.start, x.end) for x in found] == [
        (("CHG0000001", "CHG0000002"), "CI core-sw-01 (network)", utc(2026, 3, 7, 22), utc(2026, 3, 8, 1)),
        (("CHG0000001", "CHG0000003"), "service network", utc(2026, 3, 8, 0), utc(2026, 3, 8, 1)),
        (("CHG0000002", "CHG0000003"), "service network", utc(2026, 3, 8, 0), utc(2026, 3, 8, 1)),
    ]
    assert found[0].message == (
        "CHG0000001 and CHG0000002 both change CI core-sw-01 (network) during "
        "2026-03-07 22:00 to 2026-03-08 01:00 UTC"
    )
    # The same CI conflicts; different CIs of one service only warn (changes.toml [conflicts] same_service).
    assert [x.severity for x in found] == ["conflict", "warning", "warning"]
    assert found[1].message == (
        "CHG0000001 and CHG0000003 both change service network (different CIs: core-sw-01, core-sw-02) "
        "during 2026-03-08 00:00-01:00 UTC"
    )


def test_one_implementer_on_overlapping_changes_of_different_services():
    a = planned("CHG0000001", utc(2026, 3, 7, 21), 2, implementer=7)
    b = planned("CHG0000002", utc(2026, 3, 7, 22), 2, services=("vpn",), implementer=7)
    c = planned("CHG0000003", utc(2026, 3, 7, 22), 2, services=("erp",), implementer=8)
    found = conflicts.find_conflicts([a, b, c])
    assert [(x.kind, x.refs, x.resource) for x in found] == [
        ("implementer", ("CHG0000001", "CHG0000002"), "implementer user7")
    ]
    assert (
        found[0].message
        == "user7 implements both CHG0000001 and CHG0000002 during 2026-03-07 22:00-23:00 UTC"
    )


def test_blackouts_block_unless_an_emergency_change_carries_an_override():
    freeze = BlackoutSpec(1, "Year-end freeze", None, utc(2026, 12, 18), utc(2027, 1, 5), "close")
    erp_only = BlackoutSpec(2, "ERP close", "erp", utc(2026, 12, 1), utc(2026, 12, 4))
    normal = planned("CHG0000001", utc(2026, 12, 20, 22), 2)
    emergency = planned("CHG0000002", utc(2026, 12, 21, 22), 2, change_type="emergency")
    overridden = planned(
        "CHG0000003",
        utc(2026, 12, 22, 22),
        2,
        change_type="emergency",
        override_reason="Fix the failing core switch",
    )
    other = planned("CHG0000004", utc(2026, 12, 2, 22), 2)  # network during the ERP-only freeze
    found = conflicts.find_conflicts([normal, emergency, overridden, other], blackouts=[freeze, erp_only])
    assert [(x.refs[0], x.severity, x.resource) for x in found] == [
        ("CHG0000001", "blocked", "blackout Year-end freeze"),
        ("CHG0000002", "blocked", "blackout Year-end freeze"),
        ("CHG0000003", "overridden", "blackout Year-end freeze"),
    ]
    assert (found[0].start, found[0].end) == (freeze.start, freeze.end)
    assert "every service, 2026-12-18 00:00 to 2027-01-05 00:00 UTC" in found[0].message


def test_outside_every_window_is_a_warning_judged_in_local_time_across_dst():
    spec = window()
    # On the short night (2026-03-28/29) the window ends at 04:00 CEST = 02:00 UTC.
    inside = planned("CHG0000001", utc(2026, 3, 29, 0), 1.5)  # 01:00 CET - 03:30 CEST
    past_end = planned("CHG0000002", utc(2026, 3, 29, 1), 1.5)  # ends 02:30 UTC = 04:30 CEST: outside
    too_early = planned("CHG0000003", utc(2026, 3, 28, 20), 2)  # 21:00 CET, before the window
    elsewhere = planned("CHG0000004", utc(2026, 3, 25, 12), 1, services=("crm",))  # crm has no windows
    found = conflicts.find_conflicts([inside, past_end, too_early, elsewhere], windows=[spec])
    warned = [(x.refs[0], x.severity, x.resource) for x in found if x.kind == "outside_window"]
    assert warned == [
        ("CHG0000003", "warning", "service network"),
        ("CHG0000002", "warning", "service network"),
    ]
    assert "outside every maintenance window of service network (Network weekly window)" in found[-1].message


def test_back_to_back_windows_of_one_service_count_as_one():
    evening = window(start="20:00", minutes=120)
    night = window(id=2, name="Night", start="22:00", minutes=360)
    across = planned("CHG0000001", utc(2026, 3, 7, 20), 3)  # 21:00-00:00 CET spans both
    assert conflicts.find_conflicts([across], windows=[evening, night]) == []


def test_focus_keeps_only_the_conflicts_of_one_change():
    a = planned("CHG0000001", utc(2026, 3, 7, 21), 4)
    b = planned("CHG0000002", utc(2026, 3, 7, 22), 3)
    c = planned("CHG0000003", utc(2026, 3, 7, 22), 3, services=("vpn",))
    d = planned("CHG0000004", utc(2026, 3, 7, 23), 3, services=("vpn",))
    assert [x.refs for x in conflicts.find_conflicts([a, b, c, d], focus=[3])] == [
        ("CHG0000003", "CHG0000004")
    ]


# --------------------------------------------------------------------------- on the database


@pytest.fixture
def desk(db, staff, config):
    with db.session() as s:
        changes.add_window(
            s,
            staff["chm"],
            name="Network weekly window",
            service="network",
            rrule="FREQ=WEEKLY;BYDAY=SA",
            start_local="22:00",
            duration_minutes=360,
            timezone="Europe/Berlin",
            config=config,
            valid_from=utc(2025, 1, 1),
            now=NOW,
        )
        changes.add_blackout(
            s,
            staff["chm"],
            name="ERP close",
            start=utc(2026, 3, 27),
            end=utc(2026, 3, 31),
            service="erp",
            config=config,
            now=NOW,
        )
    return db, staff


def raise_change(db, config, actor, start, hours, targets=("network:core-sw-01",), implementer="net1", **kw):
    submit = kw.pop("submit", True)
    with db.session() as s:
        change = changes.create_change(
            s,
            config,
            actor,
            change_type=kw.pop("change_type", "normal"),
            title=kw.pop("title", "Work"),
            targets=list(targets),
            start=start,
            end=start + timedelta(hours=hours),
            implementation_plan="Do it.",
            backout_plan="Undo it.",
            implementer=implementer,
            now=NOW,
            **kw,
        )
        ref = change.ref
    if submit:
        with db.session() as s:
            changes.submit(s, config, actor, ref, now=NOW)
    return ref


def test_conflicts_are_found_at_submit_and_notified_once(desk, config):
    db, staff = desk
    sat = utc(2026, 3, 7, 22)
    first = raise_change(db, config, staff["net1"], sat, 3)
    second = raise_change(db, config, staff["lead"], sat + timedelta(hours=1), 3, implementer="eng1")
    with db.read_session() as s:
        found = changes.view(s, config, changes.get_change(s, second)).conflicts
    assert [(c.kind, c.refs, c.resource) for c in found] == [
        ("overlap", (first, second), "CI core-sw-01 (network)")
    ]
    from sqlalchemy import func, select

    from itsm_tui.models import Notification

    with db.read_session() as s:
        kinds = dict(
            s.execute(
                select(Notification.kind, func.count())
                .where(Notification.kind == "change_conflict")
                .group_by(Notification.kind)
            ).all()
        )
    assert kinds == {"change_conflict": 4}  # net1 and eng1 (implementers), lead (raised it), chm
    result = remind(db, config, now=NOW)
    assert result.conflicts == 0  # already told


def test_an_implementer_booked_twice_is_a_conflict_on_the_database(desk, config):
    db, staff = desk
    sat = utc(2026, 3, 7, 22)
    raise_change(db, config, staff["net1"], sat, 2, targets=["network"])
    vpn = raise_change(db, config, staff["net1"], sat + timedelta(hours=1), 2, targets=["vpn"])
    with db.read_session() as s:
        found = changes.view(s, config, changes.get_change(s, vpn)).conflicts
    assert [(c.kind, c.resource, c.start, c.end) for c in found] == [
        ("implementer", "implementer net1", sat + timedelta(hours=1), sat + timedelta(hours=2))
    ]


def test_drafts_and_finished_changes_do_not_hold_slots(desk, config):
    db, staff = desk
    sat = utc(2026, 3, 7, 22)
    raise_change(db, config, staff["net1"], sat, 3, submit=False)
    ref = raise_change(db, config, staff["net1"], sat, 3)
    with db.read_session() as s:
        assert changes.view(s, config, changes.get_change(s, ref)).conflicts == []


def test_preview_shows_a_new_changes_conflicts_before_saving(desk, config):
    db, staff = desk
    sat = utc(2026, 3, 7, 22)
    existing = raise_change(db, config, staff["net1"], sat, 3)
    with db.read_session() as s:
        found = changes.preview(
            s,
            config,
            change_type="normal",
            targets=["core-sw-01"],
            start=sat + timedelta(hours=2),
            end=sat + timedelta(hours=9),
            implementer="net1",
        )
    assert [(c.kind, c.refs) for c in found] == [
        ("overlap", (existing, "(new)")),
        ("implementer", (existing, "(new)")),
        ("outside_window", ("(new)",)),
    ]
    with db.read_session() as s:
        erp = changes.preview(
            s,
            config,
            change_type="normal",
            targets=["erp"],
            start=utc(2026, 3, 28, 10),
            end=utc(2026, 3, 28, 11),
        )
        moved = changes.preview_move(s, config, existing, utc(2026, 3, 14, 22), None)
    assert [(c.kind, c.severity) for c in erp] == [("blackout", "blocked")]
    assert moved == []  # next Saturday, inside the window, alone


def test_the_range_check_lists_every_conflict_in_the_window(desk, config):
    db, staff = desk
    sat = utc(2026, 3, 7, 22)
    a = raise_change(db, config, staff["net1"], sat, 3)
    b = raise_change(db, config, staff["app1"], sat + timedelta(hours=1), 1, implementer="app1")
    c = raise_change(
        db, config, staff["app1"], utc(2026, 3, 10, 12), 1, targets=["network"], implementer="app1"
    )
    with db.read_session() as s:
        found = conflicts.between(s, utc(2026, 3, 1), utc(2026, 4, 1))
        data = changes.calendar(s, utc(2026, 3, 1), utc(2026, 4, 1))
    assert [(x.kind, x.refs) for x in found] == [("overlap", (a, b)), ("outside_window", (c,))]
    assert data.conflicted == {a: "conflict", b: "conflict", c: "warning"}
    assert len(data.occurrences) == 5 and [b.name for b in data.blackouts] == ["ERP close"]
