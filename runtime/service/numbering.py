"""Instance numbers: "FL" + year and month in Shanghai + a per-month sequence, e.g. FL202406001.

The sequence row is bumped with one upsert inside the creating transaction, so numbers are
unique and, as long as creations commit, gapless; a rolled-back creation gives its number back.
The sequence has at least three digits (FL202406999 is followed by FL2024061000).
"""

from __future__ import annotations

import datetime as dt

from runtime.service.caller import BUSINESS_TZ
from storage.raw_sql import fetch
from storage.tables import InstanceCounter

_NEXT = (
    "INSERT INTO instance_counter (month, last) VALUES ({}, 1) "
    "ON CONFLICT (month) DO UPDATE SET last = instance_counter.last + 1 RETURNING last"
)


async def next_number(now: dt.datetime) -> str:
    """The next instance number for the month of `now`; call inside the write transaction."""
    month = now.astimezone(BUSINESS_TZ).strftime("%Y%m")
    rows = await fetch(InstanceCounter, _NEXT, month)
    return f"FL{month}{rows[0]['last']:03d}"
