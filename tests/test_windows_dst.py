"""Maintenance windows across daylight-saving changes and the limits on their rules, with every UTC instant
worked out by hand.

Europe/Berlin, 2027: on Sunday 28 March the clocks go from 02:00 CET (UTC+1) to 03:00 CEST (UTC+2), at 01:00
UTC; on Sunday 31 October they go back from 03:00 CEST to 02:00 CET, at 01:00 UTC. The ERP window opens on
Sundays at 02:00 local for 240 minutes, so it ends at 06:00 local:

- 21 March (CET): 02:00+01 to 06:00+01 = 01:00-05:00 UTC, four hours.
- 28 March: 02:00 does not exist; taken with the offset before the gap (+01) it is 01:00 UTC (03:00 CEST);
  06:00 CEST is 04:00 UTC: 01:00-04:00 UTC, three hours (not 01:00-05:00).
- 4 April (CEST): 02:00+02 to 06:00+02 = 00:00-04:00 UTC.
- 24 October (CEST): 00:00-04:00 UTC.
- 31 October: 02:00 occurs twice (00:00 and 01:00 UTC); the first is taken, 02:00 CEST = 00:00 UTC; 06:00 CET
  is 05:00 UTC: 00:00-05:00 UTC, five hours.
- 7 November (CET): 01:00-05:00 UTC.

The conflict check, the calendar data and the .ics export all read these instants from one expansion.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
from dateutil.rrule import rrulestr
from hypothesis import given, settings
from hypothesis import strategies as st

from itsm_tui.cli import main
from itsm_tui.models import MaintenanceWindow
from itsm_tui.services import changes, conflicts, ical
from itsm_tui.services.conflicts import Planned, WindowSpec
from itsm_tui.services.errors import ValidationError

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def erp(rule="FREQ=WEEKLY;BYDAY=SU", start="02:00", minutes=240, **kw) -> WindowSpec:
    values = {
        "id": 1,
        "name": "ERP Sunday window",
        "service": "erp",
        "timezone": "Europe/Berlin",
        "rrule": rule,
        "start_local": start,
        "duration_minutes": minutes,
        "valid_from": utc(2027, 1, 1),
        "valid_until": None,
    }
    values.update(kw)
    return WindowSpec(**values)


def spans(spec: WindowSpec, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    return [(o.start, o.end) for o in conflicts.occurrences(spec, start, end)]


SPRING = [
    (utc(2027, 3, 21, 1), utc(2027, 3, 21, 5)),
    (utc(2027, 3, 28, 1), utc(2027, 3, 28, 4)),
    (utc(2027, 4, 4, 0), utc(2027, 4, 4, 4)),
]
AUTUMN = [
    (utc(2027, 10, 24, 0), utc(2027, 10, 24, 4)),
    (utc(2027, 10, 31, 0), utc(2027, 10, 31, 5)),
    (utc(2027, 11, 7, 1), utc(2027, 11, 7, 5)),
]


# --------------------------------------------------------------------------- the expansion (pure)


def test_the_days_are_the_sundays_the_clocks_change():
    assert date(2027, 3, 28).weekday() == date(2027, 10, 31).weekday() == 6
    assert datetime(2027, 3, 28, 1, 59, tzinfo=BERLIN).utcoffset() == timedelta(hours=1)
    assert datetime(2027, 3, 28, 3, 0, tzinfo=BERLIN).utcoffset() == timedelta(hours=2)
    assert datetime(2027, 10, 31, 2, 0, tzinfo=BERLIN).utcoffset() == timedelta(hours=2)  # the first 02:00
    assert datetime(2027, 10, 31, 2, 0, fold=1, tzinfo=BERLIN).utcoffset() == timedelta(hours=1)


def test_a_window_across_the_spring_gap_ends_at_its_local_end_time():
    assert spans(erp(), utc(2027, 3, 20), utc(2027, 4, 5)) == SPRING
    (short,) = spans(erp(), utc(2027, 3, 28), utc(2027, 3, 29))
    assert short[1] - short[0] == timedelta(hours=3)
    assert [t.astimezone(BERLIN).strftime("%H:%M") for t in short] == ["03:00", "06:00"]


def test_a_window_across_the_autumn_change_takes_the_first_two_o_clock():
    assert spans(erp(), utc(2027, 10, 23), utc(2027, 11, 8)) == AUTUMN
    (long,) = spans(erp(), utc(2027, 10, 31), utc(2027, 11, 1))
    assert long[1] - long[0] == timedelta(hours=5)
    assert [t.astimezone(BERLIN).strftime("%H:%M %Z") for t in long] == ["02:00 CEST", "06:00 CET"]


def test_a_window_the_gap_leaves_without_time_is_left_out_that_day():
    # 02:30 for 60 minutes: on 28 March both 02:30 (taken as 03:30 CEST) and 03:30 CEST are 01:30 UTC.
    short = erp("FREQ=DAILY", "02:30", 60)
    assert spans(short, utc(2027, 3, 27), utc(2027, 3, 30)) == [
        (utc(2027, 3, 27, 1, 30), utc(2027, 3, 27, 2, 30)),
        (utc(2027, 3, 29, 0, 30), utc(2027, 3, 29, 1, 30)),
    ]
    # 02:30 for 90 minutes ends at 04:00 CEST = 02:00 UTC: half an hour that day.
    longer = erp("FREQ=DAILY", "02:30", 90)
    assert spans(longer, utc(2027, 3, 28), utc(2027, 3, 29)) == [
        (utc(2027, 3, 28, 1, 30), utc(2027, 3, 28, 2))
    ]


def test_an_end_that_falls_twice_is_its_first_occurrence():
    # Saturday 22:00 for 270 minutes ends at 02:30 on 31 October: the first 02:30 is CEST, 00:30 UTC.
    late = erp("FREQ=WEEKLY;BYDAY=SA", "22:00", 270)
    assert spans(late, utc(2027, 10, 30), utc(2027, 10, 31)) == [
        (utc(2027, 10, 30, 20), utc(2027, 10, 31, 0, 30))
    ]


# --------------------------------------------------------------------------- the conflict check (pure)


def change(ref: str, start: datetime, minutes: int = 30) -> Planned:
    return Planned(
        id=int(ref[-3:]),
        ref=ref,
        change_type="normal",
        state="submitted",
        start=start,
        end=start + timedelta(minutes=minutes),
        services=frozenset({"erp"}),
    )


def test_the_conflict_check_uses_the_window_s_local_end():
    inside = change("CHG0000001", utc(2027, 3, 28, 3, 30))  # 05:30-06:00 CEST
    after = change("CHG0000002", utc(2027, 3, 28, 4, 30))  # 06:30-07:00 CEST: the window has ended
    across = change("CHG0000003", utc(2027, 3, 28, 3, 30), 60)  # 05:30-06:30 CEST: runs past the end
    autumn = change("CHG0000004", utc(2027, 10, 31, 4, 30))  # 05:30-06:00 CET: inside the five hours
    found = conflicts.find_conflicts([inside, after, across, autumn], windows=[erp()])
    assert [c.refs for c in found if c.kind == "outside_window"] == [("CHG0000003",), ("CHG0000002",)]


# --------------------------------------------------------------------------- on the database


@pytest.fixture
def erp_window(db, staff, config):
    with db.session() as s:
        changes.add_window(
            s,
            staff["chm"],
            name="ERP Sunday window",
            service="erp",
            rrule="FREQ=WEEKLY;BYDAY=SU",
            start_local="02:00",
            duration_minutes=240,
            timezone="Europe/Berlin",
            config=config,
            valid_from=utc(2027, 1, 1),
            now=NOW,
        )
    return db


def raise_change(db, config, actor, start: datetime, minutes: int = 30) -> str:
    with db.session() as s:
        ref = changes.create_change(
            s,
            config,
            actor,
            change_type="normal",
            title="ERP patch",
            targets=["erp"],
            start=start,
            end=start + timedelta(minutes=minutes),
            implementation_plan="Patch it.",
            backout_plan="Restore it.",
            now=NOW,
        ).ref
    with db.session() as s:
        changes.submit(s, config, actor, ref, now=NOW)
    return ref


def test_the_check_before_saving_and_the_calendar_data_agree(erp_window, config, staff):
    db = erp_window
    with db.read_session() as s:
        at_0330 = changes.preview(
            s,
            config,
            change_type="normal",
            targets=["erp"],
            start=utc(2027, 3, 28, 3, 30),
            end=utc(2027, 3, 28, 4),
        )
        at_0430 = changes.preview(
            s,
            config,
            change_type="normal",
            targets=["erp"],
            start=utc(2027, 3, 28, 4, 30),
            end=utc(2027, 3, 28, 5),
        )
    assert at_0330 == []
    assert [c.kind for c in at_0430] == ["outside_window"]
    inside = raise_change(db, config, staff["app1"], utc(2027, 3, 28, 3, 30))
    after = raise_change(db, config, staff["app1"], utc(2027, 3, 28, 4, 30))
    with db.read_session() as s:
        spring = changes.calendar(s, utc(2027, 3, 20), utc(2027, 4, 5))
        autumn = changes.calendar(s, utc(2027, 10, 23), utc(2027, 11, 8))
    assert [(o.start, o.end) for o in spring.occurrences] == SPRING
    assert [(o.start, o.end) for o in autumn.occurrences] == AUTUMN
    assert spring.conflicted == {after: "warning"} and inside not in spring.conflicted

    from itsm_tui.screens.calendar import DayIndex

    shaded = DayIndex.build(spring, BERLIN).windows
    assert sorted(shaded) == [date(2027, 3, 21), date(2027, 3, 28), date(2027, 4, 4)]


def window_events(text: str) -> list[tuple[datetime, datetime]]:
    calendar = icalendar.Calendar.from_ical(text)
    found = []
    for event in calendar.walk("VEVENT"):
        if str(event["CATEGORIES"].cats[0]) == "maintenance-window":
            assert "RRULE" not in event  # one event per occurrence, in UTC
            found.append((event["DTSTART"].dt.astimezone(UTC), event["DTEND"].dt.astimezone(UTC)))
    return sorted(found)


def test_the_ics_export_holds_the_same_instants(erp_window):
    db = erp_window
    with db.read_session() as s:
        spring, summary = ical.export(s, utc(2027, 3, 20), utc(2027, 4, 5), now=NOW)
        autumn, _ = ical.export(s, utc(2027, 10, 23), utc(2027, 11, 8), now=NOW)
    assert window_events(spring) == SPRING and summary.windows == 3
    assert window_events(autumn) == AUTUMN
    assert "DTSTART:20270328T010000Z\r\nDTEND:20270328T040000Z" in spring
    assert "VTIMEZONE" not in spring and "TZID" not in spring


# --------------------------------------------------------------------------- what a rule may be


@pytest.mark.parametrize(
    "rule", ["FREQ=SECONDLY", "FREQ=MINUTELY", "FREQ=HOURLY;INTERVAL=4", "freq=minutely"]
)
def test_rules_finer_than_daily_are_refused(rule):
    with pytest.raises(ValueError) as info:
        conflicts.validate_rrule(rule)
    message = str(info.value)
    assert rule.upper() in message and "FREQ=DAILY, WEEKLY, MONTHLY or YEARLY" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ("FREQ=DAILY;BYHOUR=1,2,3", "sets BYHOUR"),
        ("FREQ=WEEKLY;BYDAY=SA;BYMINUTE=0,30", "sets BYMINUTE"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL is a whole number"),
        ("FREQ=DAILY;COUNT=0", "COUNT is a whole number"),
        ("FREQ=FORTNIGHTLY", "use FREQ=DAILY, WEEKLY, MONTHLY or YEARLY"),
        ("FREQ=WEEKLY;BYDAY=SA;BYDAY=SU", "BYDAY is given twice"),
    ],
)
def test_rules_that_would_open_a_window_more_than_once_a_day_or_never_end_are_refused(rule, says):
    with pytest.raises(ValueError, match=says):
        conflicts.validate_rrule(rule)


def test_the_service_refuses_them_and_a_rule_that_never_occurs(db, staff, config):
    def add(rule: str) -> None:
        with db.session() as s:
            changes.add_window(
                s,
                staff["chm"],
                name="Too often",
                service="erp",
                rrule=rule,
                start_local="02:00",
                duration_minutes=60,
                timezone="Europe/Berlin",
                config=config,
                now=NOW,
            )

    with pytest.raises(ValidationError) as info:
        add("FREQ=MINUTELY")
    assert info.value.field == "rrule" and "repeats within a day" in str(info.value)
    with pytest.raises(ValidationError, match="never occurs"):
        add("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30")
    with pytest.raises(ValidationError, match="never occurs"):
        add("FREQ=WEEKLY;UNTIL=20200101T000000Z")
    with db.read_session() as s:
        assert conflicts.window_specs(s) == []


def test_the_command_line_refuses_them_in_one_line_with_exit_2(db_url, staff, capsys, monkeypatch):
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "chm")
    argv = ["change", "add-window", "--db", db_url, "--name", "Every minute", "--service", "erp"]
    argv += ["--rrule", "FREQ=MINUTELY", "--start", "02:00", "--minutes", "60", "--timezone", "Europe/Berlin"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert "FREQ=MINUTELY" in err and "FREQ=DAILY, WEEKLY, MONTHLY or YEARLY" in err


# --------------------------------------------------------------------------- bounded expansion


def test_a_stored_rule_finer_than_daily_has_no_occurrences_and_is_listed_as_such(
    erp_window, db_url, capsys, monkeypatch
):
    db = erp_window
    with db.session() as s:  # as a window written before such rules were refused
        s.add(
            MaintenanceWindow(
                name="Every minute",
                service="erp",
                timezone="Europe/Berlin",
                rrule="FREQ=MINUTELY",
                start_local="00:00",
                duration_minutes=1,
                valid_from=utc(2027, 1, 1),
            )
        )
    with db.read_session() as s:
        text, summary = ical.export(s, utc(2027, 1, 1), utc(2028, 1, 1), now=NOW)
    assert summary.windows == 52 and len(text) < 200_000  # the Sundays of 2027 only
    monkeypatch.setattr("itsm_tui.services.users.os_login", lambda: "chm")
    assert main(["change", "windows", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "window 2 (Every minute) is not expanded: FREQ=MINUTELY repeats within a day" in out


def test_a_span_with_too_many_occurrences_is_refused():
    daily = erp("FREQ=DAILY", "03:00", 60)
    assert len(spans(daily, utc(2027, 1, 1), utc(2037, 1, 1))) == 3653  # ten years of days
    with pytest.raises(conflicts.TooManyOccurrences, match="more than 4000 occurrences"):
        conflicts.occurrences(daily, utc(2027, 1, 1), utc(2040, 1, 1))


def test_an_old_window_is_expanded_from_the_span_not_from_its_start(monkeypatch):
    old = erp("FREQ=DAILY", "02:00", 60, valid_from=utc(1990, 1, 1))
    span = (utc(2090, 6, 1), utc(2090, 6, 3))
    expected = [(utc(2090, 6, d, 0), utc(2090, 6, d, 1)) for d in (1, 2)]  # 02:00-03:00 CEST
    assert spans(old, *span) == expected
    starts: list[datetime] = []
    original = conflicts._rule

    def spy(text, timezone, dtstart):
        starts.append(dtstart)
        return original(text, timezone, dtstart)

    monkeypatch.setattr(conflicts, "_rule", spy)
    assert spans(old, *span) == expected
    assert starts == [datetime(2090, 5, 31)]  # the day before the span (local), not 1 January 1990


RULES = [
    "FREQ=DAILY",
    "FREQ=DAILY;INTERVAL=3",
    "FREQ=WEEKLY",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SA",
    "FREQ=WEEKLY;INTERVAL=3;BYDAY=SU;WKST=SU",
    "FREQ=MONTHLY",
    "FREQ=MONTHLY;INTERVAL=2;BYDAY=1SA",
    "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
    "FREQ=MONTHLY;BYMONTHDAY=31",
    "FREQ=YEARLY",
    "FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29",
    "FREQ=YEARLY;BYMONTH=3,10;BYDAY=-1SU",
    "FREQ=WEEKLY;BYDAY=SA;UNTIL=20311231T000000Z",
    "FREQ=WEEKLY;BYDAY=TH;COUNT=40",
]


@settings(max_examples=120, deadline=None)
@given(
    st.sampled_from(RULES),
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31)),
    st.integers(min_value=0, max_value=3000),
    st.integers(min_value=1, max_value=120),
    st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Sydney"]),
)
def test_expanding_from_the_span_gives_what_expanding_from_the_start_gives(rule, first, offset, days, tz):
    valid_from = first.replace(tzinfo=UTC)
    spec = erp(rule, "02:30", 150, timezone=tz, valid_from=valid_from)
    start = valid_from + timedelta(days=offset)
    end = start + timedelta(days=days)
    # The reference: the whole rule from its first day, as dateutil expands it, each end resolved alone.
    zone = ZoneInfo(tz)
    dtstart = valid_from.astimezone(zone).replace(hour=2, minute=30, second=0, microsecond=0, tzinfo=None)
    local_rule = conflicts._naive_until(rule, zone)
    expected = []
    for local in rrulestr(local_rule, dtstart=dtstart).between(
        dtstart, dtstart + timedelta(days=offset + days + 2), inc=True
    ):
        s_utc = local.replace(tzinfo=zone).astimezone(UTC)
        e_utc = (local + timedelta(minutes=150)).replace(tzinfo=zone).astimezone(UTC)
        if e_utc > s_utc and s_utc >= valid_from and e_utc > start and s_utc < end:
            expected.append((s_utc, e_utc))
    assert spans(spec, start, end) == expected
