"""Statutory holidays and swapped working days (调休), as plain sets of dates.

China announces each year's holidays in the autumn before; `chinese_calendar` ships the
announced years only. `HolidayData.years` says which years are covered, so that a calendar
can tell a real working day from a guess for a year nobody has announced yet.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import chinese_calendar
import msgspec


class HolidayData(msgspec.Struct, frozen=True, kw_only=True):
    """Days off that would be working days (`off`), working days that fall on a weekend (`on`)."""

    off: frozenset[dt.date] = frozenset()
    on: frozenset[dt.date] = frozenset()
    years: frozenset[int] = frozenset()
    """Years whose holidays are known; other years count weekends only."""


@cache
def statutory_holidays() -> HolidayData:
    """China's statutory holidays and swapped working days from the `chinese_calendar` package."""
    off = frozenset(chinese_calendar.holidays)
    on = frozenset(chinese_calendar.workdays)
    return HolidayData(off=off, on=on, years=frozenset(day.year for day in off))
