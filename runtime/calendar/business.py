"""Working time: which days are worked, and how many working hours lie between two instants.

A day is a working day when an admin override says so, else when it is a swapped working day
(调休), else when it is a weekday that is not a statutory holiday. Years without holiday data
count weekends only; `warnings_for(year)` says so in words an admin can act on.

Internally every instant maps to a position on a line of working seconds (`_position`): the
working seconds before its day plus the working seconds of its day before it. Adding hours is
moving along that line and mapping back, so `add_working_hours` and `working_hours_between`
cost a binary search, not a walk over days. The line is built lazily for the years in use.

Instants passed in must be timezone-aware; results come back in the timezone of the input.
Within working time they land on the earliest wall-clock time with the given position: 3
working hours from 09:00 is 12:00 (not 13:00), 8 hours from 09:00 is 18:00 the same day.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from collections.abc import Iterable, Mapping
from zoneinfo import ZoneInfo

from runtime.calendar.holidays import HolidayData, statutory_holidays

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_PERIODS: tuple[tuple[dt.time, dt.time], ...] = (
    (dt.time(9), dt.time(12)),
    (dt.time(13), dt.time(18)),
)
_MARGIN_DAYS = 400
_EPOCH = dt.date(1970, 1, 1)
_FIRST_BUILT = dt.date(2026, 1, 1)  # the line grows on demand from here; no clock is read


class _Line:
    """Days from `base` on: working seconds before each day, and each day's UTC offset.

    `starts[i]` is the working time (seconds) from `base` to the start of day i, so a day is
    worked when `starts[i + 1] > starts[i]`, and `starts[i] / day_seconds` counts the working
    days before it. `base_stamp` is `base` at local midnight as if local time were UTC: a POSIX
    timestamp plus the day's offset minus `base_stamp` is local seconds since `base`.
    """

    __slots__ = ("base", "base_ordinal", "base_stamp", "days", "offsets", "starts")

    def __init__(self, base: dt.date, starts: list[float], offsets: list[float]) -> None:
        self.base = base
        self.base_ordinal = base.toordinal()
        self.base_stamp = (base - _EPOCH).days * 86400.0
        self.starts = starts
        self.offsets = offsets
        self.days = len(offsets)


class BusinessCalendar:
    """Working days and hours with China's holidays, swapped days and admin overrides.

    `periods` are the daily working periods in local wall-clock time (default 09:00-12:00 and
    13:00-18:00, 8 hours). `overrides` force a date on (True) or off (False) and win over
    everything else. `confirmed_years` are years the admin has completed by overrides, so they
    no longer warn when the holiday data lacks them. Instances are immutable after creation
    and safe to share between threads (the internal line is only ever replaced whole).
    """

    __slots__ = (
        "_day_seconds",
        "_holidays",
        "_line",
        "_overrides",
        "_periods",
        "_quiet_years",
        "_spans",
        "timezone",
    )

    def __init__(
        self,
        *,
        timezone: str = DEFAULT_TIMEZONE,
        periods: Iterable[tuple[dt.time, dt.time]] = DEFAULT_PERIODS,
        overrides: Mapping[dt.date, bool] | None = None,
        holidays: HolidayData | None = None,
        confirmed_years: Iterable[int] = (),
    ) -> None:
        self.timezone = ZoneInfo(timezone)
        spans = sorted((_seconds(start), _seconds(end)) for start, end in periods)
        if not spans or any(end <= start for start, end in spans):
            raise ValueError("working periods must be non-empty and end after they start")
        for (_, end), (start, _) in itertools.pairwise(spans):
            if start < end:
                raise ValueError("working periods overlap")
        self._periods: tuple[tuple[int, int], ...] = tuple(spans)
        self._spans = tuple((start, end - start) for start, end in spans)
        self._day_seconds = float(sum(end - start for start, end in spans))
        self._overrides = dict(overrides or {})
        self._holidays = holidays if holidays is not None else statutory_holidays()
        self._quiet_years = frozenset(confirmed_years) | self._holidays.years
        margin = dt.timedelta(days=_MARGIN_DAYS)
        self._line = self._build(_FIRST_BUILT - margin, _FIRST_BUILT + margin)

    # -- days ---------------------------------------------------------------------------

    def is_working_day(self, day: dt.date) -> bool:
        """Whether `day` is worked: override, then swapped working day, then holiday, then weekday."""
        forced = self._overrides.get(day)
        if forced is not None:
            return forced
        if day in self._holidays.on:
            return True
        if day in self._holidays.off:
            return False
        return day.weekday() < 5

    def has_holiday_data(self, year: int) -> bool:
        """Whether `year`'s statutory holidays are known (from the data or confirmed by an admin)."""
        return year in self._quiet_years

    def is_estimate(self, instant: dt.datetime) -> bool:
        """Whether `instant` falls in a year without holiday data (its date is a weekends-only guess)."""
        year = instant.year
        quiet = self._quiet_years
        if year in quiet and year - 1 in quiet and year + 1 in quiet:
            return False
        return self.local_date(instant).year not in quiet

    def warnings_for(self, year: int) -> tuple[str, ...]:
        """Warnings to show wherever a date in `year` was computed; empty when the year is known."""
        if self.has_holiday_data(year):
            return ()
        return (
            f"No statutory holiday data for {year}: working days count weekends only. "
            f"Enter {year}'s holidays and swapped working days as calendar overrides.",
        )

    def add_working_days(self, day: dt.date, days: int) -> dt.date:
        """The `days`-th working day after `day` (before it when negative); `day` itself for 0."""
        if days == 0:
            return day
        step = self._day_seconds
        while True:
            line, index = self._day_index(day)
            starts = line.starts
            if days > 0:
                # the first day j > index with `days` working days in (index, j]
                target = starts[index + 1] + days * step
                found = bisect.bisect_left(starts, target) - 1
                if target <= starts[-1]:
                    return dt.date.fromordinal(line.base_ordinal + found)
            else:
                # the last working day j < index with -days working days in [j, index)
                target = starts[index] + days * step
                found = bisect.bisect_right(starts, target) - 1
                if target >= 0 and found < line.days:
                    return dt.date.fromordinal(line.base_ordinal + found)
            self._extend(day + dt.timedelta(days=days * 2 + (10 if days > 0 else -10)))

    def local_date(self, instant: dt.datetime) -> dt.date:
        """The calendar date of `instant` in the calendar's timezone."""
        line, index, _ = self._locate(_aware(instant).timestamp())
        return dt.date.fromordinal(line.base_ordinal + index)

    def opening(self, day: dt.date, tz: dt.tzinfo | None = None) -> dt.datetime:
        """When work starts on `day`, working day or not; in `tz` (default: the calendar's)."""
        return self._wall_clock(day, self._periods[0][0], tz or self.timezone)

    def closing(self, day: dt.date, tz: dt.tzinfo | None = None) -> dt.datetime:
        """When work ends on `day`, working day or not; in `tz` (default: the calendar's)."""
        return self._wall_clock(day, self._periods[-1][1], tz or self.timezone)

    # -- hours --------------------------------------------------------------------------

    def add_working_hours(self, start: dt.datetime, hours: float) -> dt.datetime:
        """The instant `hours` working hours after `start` (before it when negative).

        From outside working time the count starts at the next working period: 1 hour from
        Friday 20:00 is Monday 10:00 (on an ordinary week).
        """
        if hours == 0:
            return start
        tz = _aware(start).tzinfo
        assert tz is not None
        return self._instant(self._position(start.timestamp()) + hours * 3600.0, tz)

    def add_working_hours_each(self, start: dt.datetime, hours: Iterable[float]) -> tuple[dt.datetime, ...]:
        """`add_working_hours(start, h)` for each h, locating `start` once (repeats are reused)."""
        tz = _aware(start).tzinfo
        assert tz is not None
        position = self._position(start.timestamp())
        results = []
        last_hours, last = 0.0, start
        for h in hours:
            if h != last_hours:
                last_hours, last = h, (self._instant(position + h * 3600.0, tz) if h else start)
            results.append(last)
        return tuple(results)

    def working_hours_between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Working hours from `start` to `end`; negative when `end` is earlier."""
        return (self._position(_aware(end).timestamp()) - self._position(_aware(start).timestamp())) / 3600.0

    # -- the line of working seconds ----------------------------------------------------

    def _locate(self, stamp: float) -> tuple[_Line, int, float]:
        """(line, day index, local seconds into that day) of a POSIX timestamp."""
        while True:
            line = self._line
            guess = int((stamp + line.offsets[0] - line.base_stamp) // 86400)
            if 0 <= guess < line.days:
                local = stamp + line.offsets[guess] - line.base_stamp
                index = int(local // 86400)
                if 0 <= index < line.days:
                    return line, index, local - index * 86400
            day = dt.date.fromordinal(line.base_ordinal) + dt.timedelta(days=guess)
            self._extend(day)

    def _day_index(self, day: dt.date) -> tuple[_Line, int]:
        line = self._line
        index = day.toordinal() - line.base_ordinal
        if 0 <= index < line.days:
            return line, index
        line = self._extend(day)
        return line, day.toordinal() - line.base_ordinal

    def _position(self, stamp: float) -> float:
        line, index, clock = self._locate(stamp)
        position = line.starts[index]
        if line.starts[index + 1] == position:  # not a working day
            return position
        for start, end in self._periods:
            if clock <= start:
                break
            position += (clock if clock < end else end) - start
        return position

    def _instant(self, position: float, tz: dt.tzinfo) -> dt.datetime:
        line = self._line
        index = bisect.bisect_left(line.starts, position) - 1
        while not 0 <= index < line.days:
            line = self._extend(line.base + dt.timedelta(days=-1 if index < 0 else line.days))
            index = bisect.bisect_left(line.starts, position) - 1
        remaining = position - line.starts[index]
        clock: float = self._periods[-1][1]
        for start, length in self._spans:
            if remaining <= length:
                clock = start + remaining
                break
            remaining -= length
        return dt.datetime.fromtimestamp(line.base_stamp + index * 86400 + clock - line.offsets[index], tz)

    def _wall_clock(self, day: dt.date, seconds: int, tz: dt.tzinfo) -> dt.datetime:
        line, index = self._day_index(day)
        stamp = line.base_stamp + index * 86400 + seconds - line.offsets[index]
        return dt.datetime.fromtimestamp(stamp, tz)

    def _extend(self, day: dt.date) -> _Line:
        """Rebuild the line to cover `day` with a margin on both sides (and all it covered)."""
        line = self._line
        first = min(day, line.base) - dt.timedelta(days=_MARGIN_DAYS)
        last = max(day, line.base + dt.timedelta(days=line.days)) + dt.timedelta(days=_MARGIN_DAYS)
        self._line = self._build(first, last)
        return self._line

    def _build(self, first: dt.date, last: dt.date) -> _Line:
        days = (last - first).days
        starts = [0.0] * (days + 1)
        offsets = [0.0] * days
        total = 0.0
        for index in range(days):
            current = first + dt.timedelta(days=index)
            starts[index] = total
            noon = dt.datetime(current.year, current.month, current.day, 12, tzinfo=self.timezone)
            offsets[index] = noon.utcoffset().total_seconds()  # type: ignore[union-attr]
            if self.is_working_day(current):
                total += self._day_seconds
        starts[days] = total
        return _Line(first, starts, offsets)


def _seconds(clock: dt.time) -> int:
    return clock.hour * 3600 + clock.minute * 60 + clock.second


def _aware(instant: dt.datetime) -> dt.datetime:
    if instant.tzinfo is None:
        raise ValueError("business calendar needs timezone-aware datetimes")
    return instant
