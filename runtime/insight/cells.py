"""Export cells: values as a spreadsheet shows them, with formula injection neutralised.

A text cell starting with `=`, `+`, `-`, `@` (or a tab or carriage return, which some
spreadsheet programs skip before reading a formula) is prefixed with `'`, so that it opens
as text and never runs. Numbers stay numbers; instants become local wall-clock text.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | Decimal | None


def neutralise(value: str) -> str:
    """`value` made safe to open in a spreadsheet: a leading formula character gets a `'`."""
    return "'" + value if value.startswith(_TRIGGERS) else value


def cell(value: Any, tz: dt.tzinfo) -> Cell:
    """One exported value: numbers as they are, instants in `tz`, everything else as safe text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, dt.datetime):
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return neutralise(str(value))


class CsvLine:
    """Formats one row as a CSV line (RFC 4180, CRLF) at a time, so that exports stream."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def __call__(self, values: Iterable[Cell]) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(["" if v is None else v for v in values])
        return self._buffer.getvalue()


BOM = "\ufeff"
"""Written before the header, so that spreadsheet programs read the CSV as UTF-8."""


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Cell]]) -> Iterator[str]:
    """CSV text one line at a time, the byte-order mark and the header first."""
    line = CsvLine()
    yield BOM + line(neutralise(h) for h in header)
    for row in rows:
        yield line(row)
