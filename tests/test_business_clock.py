"""The business clock: hand-worked cases (nights, weekends, holidays, DST) and round-trip properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itsm_tui.config import Calendar
from itsm_tui.services.sla import BusinessClock

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600.0
OFFICE_HOURS = {day: ((8 * 60, 18 * 60),) for day in range(5)}  # Mon-Fri 08:00-18:00


def berlin(*args: int) -> datetime:
    """A Berlin wall-clock time as a UTC instant."""
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


def office(holidays: frozenset[date] = frozenset()) -> BusinessClock:
    return BusinessClock(Calendar("office", "Europe/Berlin", False, OFFICE_HOURS, holidays))


def round_the_clock_berlin() -> BusinessClock:
    """Every minute of every local day counts, but days are Berlin days (so DST days are 23 or 25 hours)."""
    return BusinessClock(Calendar("allday", "Europe/Berlin", False, {d: ((0, 1440),) for d in range(7)}))


def always_open() -> BusinessClock:
    return BusinessClock(Calendar("24x7", "UTC", True))


# --------------------------------------------------------------------------- hand-worked cases


def test_start_after_hours_begins_next_morning() -> None:
    clock = office()
    start = berlin(2026, 3, 2, 23, 0)  # Monday 23:00
    assert clock.add(start, 60) == berlin(2026, 3, 3, 8, 1)  # Tuesday 08:01
    assert clock.add(start, 0) == berlin(2026, 3, 3, 8, 0)
    assert clock.elapsed(start, berlin(2026, 3, 3, 8, 0)) == 0
    assert clock.elapsed(start, berlin(2026, 3, 3, 8, 1)) == 60


def test_before_opening_counts_from_opening() -> None:
    clock = office()
    assert clock.add(berlin(2026, 3, 3, 5, 30), 2 * HOUR) == berlin(2026, 3, 3, 10, 0)


def test_within_one_day() -> None:
    clock = office()
    start = berlin(2026, 3, 3, 9, 15)
    assert clock.add(start, 90 * 60) == berlin(2026, 3, 3, 10, 45)
    assert clock.elapsed(start, berlin(2026, 3, 3, 10, 45)) == 90 * 60


def test_overnight_carries_the_rest_to_next_morning() -> None:
    clock = office()
    start = berlin(2026, 3, 3, 17, 0)  # Tuesday, one hour before closing
    assert clock.add(start, 3 * HOUR) == berlin(2026, 3, 4, 10, 0)
    assert clock.elapsed(start, berlin(2026, 3, 4, 10, 0)) == 3 * HOUR


def test_weekend_is_skipped() -> None:
    clock = office()
    start = berlin(2026, 3, 6, 17, 0)  # Friday 17:00
    assert clock.add(start, 2 * HOUR) == berlin(2026, 3, 9, 9, 0)  # Monday 09:00
    assert clock.elapsed(berlin(2026, 3, 6, 18, 0), berlin(2026, 3, 9, 8, 0)) == 0
    assert clock.add(berlin(2026, 3, 7, 12, 0), 60) == berlin(2026, 3, 9, 8, 1)  # from a Saturday


def test_holiday_is_skipped() -> None:
    clock = office(frozenset({date(2026, 3, 4)}))  # a Wednesday
    start = berlin(2026, 3, 3, 17, 0)  # Tuesday 17:00
    assert clock.add(start, 2 * HOUR) == berlin(2026, 3, 5, 9, 0)  # Thursday 09:00
    assert clock.elapsed(start, berlin(2026, 3, 5, 9, 0)) == 2 * HOUR
    assert clock.elapsed(berlin(2026, 3, 4, 0, 0), berlin(2026, 3, 5, 0, 0)) == 0


def test_spring_forward_day_has_23_hours() -> None:
    clock = round_the_clock_berlin()
    day_start, next_day = berlin(2026, 3, 29, 0, 0), berlin(2026, 3, 30, 0, 0)
    assert next_day - day_start == timedelta(hours=23)
    assert clock.elapsed(day_start, next_day) == 23 * HOUR
    assert clock.add(day_start, 23 * HOUR) == next_day
    assert clock.add(day_start, 3 * HOUR) == berlin(2026, 3, 29, 4, 0)  # 02:00-03:00 does not exist


def test_fall_back_day_has_25_hours() -> None:
    clock = round_the_clock_berlin()
    day_start, next_day = berlin(2026, 10, 25, 0, 0), berlin(2026, 10, 26, 0, 0)
    assert next_day - day_start == timedelta(hours=25)
    assert clock.elapsed(day_start, next_day) == 25 * HOUR
    assert clock.add(day_start, 25 * HOUR) == next_day
    assert clock.add(day_start, 4 * HOUR) == berlin(2026, 10, 25, 3, 0)  # 02:00-03:00 happens twice


def test_office_hours_across_spring_forward() -> None:
    clock = office()
    friday_open, monday_open = berlin(2026, 3, 27, 8, 0), berlin(2026, 3, 30, 8, 0)
    assert friday_open == datetime(2026, 3, 27, 7, 0, tzinfo=UTC)  # CET
    assert monday_open == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)  # CEST: 08:00 is an hour earlier in UTC
    start = berlin(2026, 3, 27, 17, 0)
    assert clock.add(start, 2 * HOUR) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # Monday 09:00 CEST
    assert clock.elapsed(start, datetime(2026, 3, 30, 7, 0, tzinfo=UTC)) == 2 * HOUR
    # A whole working week either side of the change still counts ten hours a day.
    assert clock.elapsed(berlin(2026, 3, 23, 0, 0), berlin(2026, 4, 4, 0, 0)) == 100 * HOUR


def test_office_hours_across_fall_back() -> None:
    clock = office()
    assert berlin(2026, 10, 23, 8, 0) == datetime(2026, 10, 23, 6, 0, tzinfo=UTC)  # CEST
    assert berlin(2026, 10, 26, 8, 0) == datetime(2026, 10, 26, 7, 0, tzinfo=UTC)  # CET
    start = berlin(2026, 10, 23, 17, 30)
    assert clock.add(start, HOUR) == datetime(2026, 10, 26, 7, 30, tzinfo=UTC)  # Monday 08:30 CET


def test_multi_week_duration() -> None:
    clock = office()
    start = berlin(2026, 3, 23, 8, 0)  # Monday; the span crosses the switch to summer time
    end = clock.add(start, 100 * HOUR)  # ten working days of ten hours
    assert end == berlin(2026, 4, 3, 18, 0)  # the second Friday at closing time
    assert clock.elapsed(start, end) == 100 * HOUR
    assert clock.add(start, 100 * HOUR + 60) == berlin(2026, 4, 6, 8, 1)


def test_elapsed_is_the_inverse_of_add() -> None:
    clock = office(frozenset({date(2026, 5, 1)}))
    start = berlin(2026, 4, 29, 16, 20)
    for seconds in (0, 1, 59, 3600, 6 * HOUR, 17.5 * HOUR, 40 * HOUR, 123 * HOUR + 7):
        assert clock.elapsed(start, clock.add(start, seconds)) == pytest.approx(seconds, abs=1e-6)


def test_elapsed_of_reversed_interval_is_zero() -> None:
    clock = office()
    assert clock.elapsed(berlin(2026, 3, 3, 12, 0), berlin(2026, 3, 3, 10, 0)) == 0
    assert clock.elapsed(berlin(2026, 3, 3, 10, 0), berlin(2026, 3, 3, 10, 0)) == 0


def test_always_open_is_wall_clock() -> None:
    clock = always_open()
    start = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
    assert clock.add(start, 48 * HOUR) == start + timedelta(hours=48)
    assert clock.elapsed(start, start + timedelta(days=3, seconds=5)) == 3 * 86400 + 5


def test_calendar_without_hours_is_refused() -> None:
    clock = BusinessClock(Calendar("never", "UTC", False, {}))
    with pytest.raises(ValueError, match="no working time"):
        clock.add(datetime(2026, 1, 1, tzinfo=UTC), 60)


# --------------------------------------------------------------------------- properties


def _shipped_office(config) -> BusinessClock:
    calendar = config.calendars["office"]
    assert calendar.country == "DE" and calendar.holidays  # public and listed holidays both count
    return BusinessClock(calendar)


INSTANTS = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
DURATIONS = st.floats(min_value=0, max_value=500 * HOUR, allow_nan=False, allow_infinity=False)
CLOCKS = {
    "office-with-holidays": None,  # filled in from the shipped configuration
    "berlin-all-day": round_the_clock_berlin(),
    "24x7": always_open(),
}


@pytest.fixture(scope="module", params=sorted(CLOCKS))
def clock(request, config) -> BusinessClock:
    return CLOCKS[request.param] or _shipped_office(config)


@settings(max_examples=200, deadline=None)
@given(start=INSTANTS, seconds=DURATIONS)
def test_property_elapsed_inverts_add(clock: BusinessClock, start: datetime, seconds: float) -> None:
    end = clock.add(start, seconds)
    assert end >= start
    assert clock.elapsed(start, end) == pytest.approx(seconds, abs=1e-3)


@settings(max_examples=200, deadline=None)
@given(start=INSTANTS, first=DURATIONS, second=DURATIONS)
def test_property_add_is_monotonic(
    clock: BusinessClock, start: datetime, first: float, second: float
) -> None:
    low, high = sorted((first, second))
    assert clock.add(start, low) <= clock.add(start, high)


@settings(max_examples=200, deadline=None)
@given(start=INSTANTS, first=DURATIONS, second=DURATIONS)
def test_property_add_composes(clock: BusinessClock, start: datetime, first: float, second: float) -> None:
    """Adding in two steps lands where adding at once does, up to closed time between them.

    (A duration that ends exactly at closing time gives the closing instant; adding nothing more to it gives
    the next opening: the two are the same business instant.)
    """
    direct = clock.add(start, first + second)
    stepped = clock.add(clock.add(start, first), second)
    early, late = sorted((direct, stepped))
    assert clock.elapsed(early, late) == pytest.approx(0, abs=1e-3)


def test_country_holidays_are_kept_in_the_cache_folder_and_shared_safely(tmp_path, monkeypatch):
    """The holidays package's answers are computed once and kept; threads writing at once publish whole
    files; a cache folder that cannot be written only means computing again."""
    from concurrent.futures import ThreadPoolExecutor

    from itsm_tui import config

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    values = [f"2026-01-{day:02d}" for day in range(1, 29)]
    calls: list[int] = []

    def compute() -> list[str]:
        calls.append(1)
        return values

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: config._kept("XX-2026", compute), range(16)))
    assert all(result == values for result in results)
    assert config._kept("XX-2026", lambda: pytest.fail("computed again")) == values
    kept = list((tmp_path / "cache" / "itsm-tui").iterdir())
    assert len(kept) == 1 and kept[0].read_text().split() == values  # no temporary file left behind

    (tmp_path / "blocked").write_text("a file where the folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "blocked"))
    assert config._kept("XX-2027", compute) == values
    assert config._country_holidays("DE", 2026) >= {date(2026, 12, 25), date(2026, 10, 3)}
