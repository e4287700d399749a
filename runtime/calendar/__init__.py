"""The business calendar: working days and hours, China's holidays, admin overrides.

Pure: reads no clock and no database. `BusinessCalendar` answers "is this a working day",
"what instant is N working hours after this one" and "how many working hours lie between".
"""

from runtime.calendar.business import DEFAULT_PERIODS, DEFAULT_TIMEZONE, BusinessCalendar
from runtime.calendar.holidays import HolidayData, statutory_holidays

__all__ = ["DEFAULT_PERIODS", "DEFAULT_TIMEZONE", "BusinessCalendar", "HolidayData", "statutory_holidays"]
