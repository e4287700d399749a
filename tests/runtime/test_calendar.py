"""The business calendar around China's 2025 National Day, Spring Festival 2026, and 2027."""

from __future__ import annotations

import datetime as dt

import pytest

from runtime.calendar import BusinessCalendar, HolidayData

CAL = BusinessCalendar()
SH = CAL.timezone


def at(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SH)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (dt.date(2025, 9, 26), True),  # Friday
        (dt.date(2025, 9, 27), False),  # Saturday
        (dt.date(2025, 9, 28), True),  # Sunday, swapped working day (调休)
        *[(dt.date(2025, 10, d), False) for d in range(1, 9)],  # National Day + Mid-Autumn
        (dt.date(2025, 10, 9), True),
        (dt.date(2025, 10, 11), True),  # Saturday, swapped working day
        (dt.date(2025, 10, 12), False),  # Sunday
        (dt.date(2026, 2, 14), True),  # Saturday before Spring Festival, swapped working day
        *[(dt.date(2026, 2, d), False) for d in range(15, 24)],  # Spring Festival 2026
        (dt.date(2026, 2, 24), True),
        (dt.date(2026, 2, 28), True),  # Saturday after, swapped working day
        (dt.date(2027, 1, 1), True),  # no 2027 data: a Friday counts as worked
        (dt.date(2027, 1, 2), False),  # Saturday
    ],
)
def test_working_days(day: dt.date, working: bool) -> None:
    assert CAL.is_working_day(day) is working


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (at(2025, 9, 22, 9), 8, at(2025, 9, 22, 18)),  # a whole day ends at closing, not next morning
        (at(2025, 9, 22, 9), 3, at(2025, 9, 22, 12)),  # lunch: ends at 12:00, not 13:00
        (at(2025, 9, 22, 12, 30), 1, at(2025, 9, 22, 14)),  # starting in the lunch break
        (at(2025, 9, 22, 20), 1, at(2025, 9, 23, 10)),  # starting after hours
        (at(2025, 9, 26, 9), 9, at(2025, 9, 28, 10)),  # Friday + 9h: Saturday off, Sunday 28 worked
        (at(2025, 9, 30, 17), 16, at(2025, 10, 10, 17)),  # across the National Day holiday
        (at(2025, 9, 30, 9), 16, at(2025, 10, 9, 18)),  # 2 working days: Sep 30 + Oct 9
        (at(2025, 9, 30, 10), 16, at(2025, 10, 10, 10)),
        (at(2025, 10, 3, 10), 1, at(2025, 10, 9, 10)),  # from inside the holiday
        (at(2025, 10, 10, 17), 2, at(2025, 10, 11, 10)),  # Saturday Oct 11 is worked
        (at(2026, 2, 13, 17), 8, at(2026, 2, 14, 17)),  # Saturday Feb 14 is worked
        (at(2026, 2, 14, 17), 8, at(2026, 2, 24, 17)),  # then nine days of Spring Festival
        (at(2026, 12, 31, 14), 16, at(2027, 1, 4, 14)),  # into 2027: weekends only, Jan 1 worked
        (at(2025, 10, 9, 10), -16, at(2025, 9, 29, 10)),  # backwards across the holiday
        (at(2025, 9, 22, 10), 0, at(2025, 9, 22, 10)),
    ],
)
def test_add_working_hours(start: dt.datetime, hours: float, expected: dt.datetime) -> None:
    assert CAL.add_working_hours(start, hours) == expected


def test_add_working_hours_keeps_the_timezone_of_the_input() -> None:
    start = dt.datetime(2025, 9, 30, 9, 0, tzinfo=dt.UTC)  # 17:00 in Shanghai
    result = CAL.add_working_hours(start, 16)
    assert result.tzinfo is dt.UTC
    assert result == at(2025, 10, 10, 17)


def test_add_working_hours_each_matches_single_calls() -> None:
    start = at(2025, 9, 30, 15, 30)
    offsets = (16, 12, 24, 0, -3)
    assert CAL.add_working_hours_each(start, offsets) == tuple(
        CAL.add_working_hours(start, h) for h in offsets
    )


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (at(2025, 9, 30, 9), at(2025, 10, 9, 18), 16.0),
        (at(2025, 9, 22, 11), at(2025, 9, 22, 14), 2.0),  # the lunch hour does not count
        (at(2025, 10, 2, 0), at(2025, 10, 7, 23), 0.0),  # the holiday does not count
        (at(2025, 10, 9, 18), at(2025, 9, 30, 9), -16.0),
        (at(2025, 9, 26, 18), at(2025, 9, 28, 9, 30), 0.5),
    ],
)
def test_working_hours_between(start: dt.datetime, end: dt.datetime, hours: float) -> None:
    assert CAL.working_hours_between(start, end) == pytest.approx(hours)


@pytest.mark.parametrize(
    ("day", "days", "expected"),
    [
        (dt.date(2025, 9, 30), 1, dt.date(2025, 10, 9)),
        (dt.date(2025, 9, 26), 1, dt.date(2025, 9, 28)),
        (dt.date(2025, 9, 22), 5, dt.date(2025, 9, 28)),
        (dt.date(2025, 10, 9), -1, dt.date(2025, 9, 30)),
        (dt.date(2025, 9, 27), -1, dt.date(2025, 9, 26)),
        (dt.date(2025, 10, 3), 0, dt.date(2025, 10, 3)),
        (dt.date(2026, 2, 13), 2, dt.date(2026, 2, 24)),
        (dt.date(2026, 12, 30), 3, dt.date(2027, 1, 4)),  # 2027 fallback: Jan 1 (Fri) counts
        (dt.date(2025, 1, 1), 1_000, dt.date(2028, 12, 6)),  # far beyond the first built range
        (dt.date(1995, 9, 22), -5, dt.date(1995, 9, 15)),
    ],
)
def test_add_working_days(day: dt.date, days: int, expected: dt.date) -> None:
    assert CAL.add_working_days(day, days) == expected


def test_2027_has_no_holiday_data_and_says_so() -> None:
    assert CAL.has_holiday_data(2025) and CAL.has_holiday_data(2026)
    assert not CAL.has_holiday_data(2027)
    assert CAL.warnings_for(2026) == ()
    (warning,) = CAL.warnings_for(2027)
    assert "2027" in warning and "weekends only" in warning
    assert CAL.is_estimate(at(2027, 3, 1)) and not CAL.is_estimate(at(2026, 3, 1))


def test_admin_overrides_and_confirmed_years() -> None:
    overrides = {dt.date(2027, 1, 1): False, dt.date(2025, 10, 8): True}
    calendar = BusinessCalendar(overrides=overrides, confirmed_years=[2027])
    assert not calendar.is_working_day(dt.date(2027, 1, 1))
    assert calendar.is_working_day(dt.date(2025, 10, 8))
    assert calendar.add_working_hours(at(2025, 9, 30, 17), 2) == at(2025, 10, 8, 10)
    assert calendar.warnings_for(2027) == ()


def test_custom_periods_timezone_and_holidays() -> None:
    calendar = BusinessCalendar(
        timezone="Europe/Berlin",
        periods=[(dt.time(8), dt.time(16))],
        holidays=HolidayData(off=frozenset({dt.date(2025, 12, 25)}), years=frozenset({2025})),
    )
    berlin = calendar.timezone
    start = dt.datetime(2025, 12, 24, 15, tzinfo=berlin)
    assert calendar.add_working_hours(start, 2) == dt.datetime(2025, 12, 26, 9, tzinfo=berlin)
    # across the switch to summer time (30 March 2025) the wall clock still says 09:00
    friday = dt.datetime(2025, 3, 28, 15, tzinfo=berlin)
    assert calendar.add_working_hours(friday, 2) == dt.datetime(2025, 3, 31, 9, tzinfo=berlin)


@pytest.mark.parametrize(
    "periods",
    [[], [(dt.time(12), dt.time(9))], [(dt.time(9), dt.time(12)), (dt.time(11), dt.time(14))]],
)
def test_bad_periods_are_refused(periods: list[tuple[dt.time, dt.time]]) -> None:
    with pytest.raises(ValueError):
        BusinessCalendar(periods=periods)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.add_working_hours(dt.datetime(2025, 9, 22, 9), 1)


def test_opening_closing_and_local_date() -> None:
    assert CAL.opening(dt.date(2025, 10, 9)) == at(2025, 10, 9, 9)
    assert CAL.closing(dt.date(2031, 1, 1)) == at(2031, 1, 1, 18)
    assert CAL.local_date(dt.datetime(2025, 9, 30, 17, tzinfo=dt.UTC)) == dt.date(2025, 10, 1)
