"""Medians and nearest-rank 90th percentiles aggregated in the database, or over its rows.

On PostgreSQL the figures are ordered-set aggregates computed where the rows are:
`PERCENTILE_DISC(0.9)` is exactly the nearest-rank percentile of `runtime.insight.stats` (the
first value whose position reaches ceil(0.9 n)), and the median is the mean of
`PERCENTILE_DISC(0.5)` in ascending and in descending order (the two middle values, or the
middle one twice), so the figures equal the pure functions' to the last digit. SQLite has no
such aggregates: the durations are read and `runtime.insight.stats` computes them, which is
fine at the sizes an embedded installation holds.

Also the two small helpers every insight query module uses: `all_of` (WHERE clauses joined
with AND, None ones left out) and `date_of` (a date column's value on either engine).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from piccolo.querystring import QueryString

from runtime.insight.stats import PLACES, median, percentile


def all_of(*clauses: Any) -> Any:
    """The given WHERE clauses joined with AND, the None ones left out (None when all are)."""
    result = None
    for clause in clauses:
        if clause is not None:
            result = clause if result is None else result & clause
    return result


def date_of(value: Any) -> dt.date:
    """A date column's value (SQLite may hand back its ISO text)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


Figures = tuple[float | None, float | None, int]
"""(median, nearest-rank p90, count) of the durations of one group."""


def on_postgres(table: Any) -> bool:
    return bool(table._meta.db.engine_type == "postgres")


def percentile_columns(hours: Any) -> list[QueryString]:
    """The select columns `figures_of` reads (PostgreSQL only)."""
    return [
        QueryString("PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY {})", hours, alias="median_low"),
        QueryString("PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY {} DESC)", hours, alias="median_high"),
        QueryString("PERCENTILE_DISC(0.9) WITHIN GROUP (ORDER BY {})", hours, alias="p90"),
    ]


def figures_of(row: Mapping[str, Any], count: int) -> Figures:
    low, high, p90 = row["median_low"], row["median_high"], row["p90"]
    if low is None or high is None:
        return None, None, count
    return round((low + high) / 2, PLACES), round(p90, PLACES), count


async def hour_figures(
    table: Any, keys: Sequence[Any], hours: Any, where: Any
) -> dict[tuple[Any, ...], Figures]:
    """(median, p90, count) of the non-null `hours` per group of `keys`, over the rows `where`."""
    clause = hours.is_not_null() if where is None else where & hours.is_not_null()
    names = [k._meta.name for k in keys]
    if on_postgres(table):
        rows = await (
            table.select(*keys, QueryString("COUNT(*)", alias="n"), *percentile_columns(hours))
            .where(clause)
            .group_by(*keys)
        )
        return {tuple(r[n] for n in names): figures_of(r, r["n"]) for r in rows}
    values: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for r in await table.select(*keys, hours.as_alias("hours")).where(clause):
        values[tuple(r[n] for n in names)].append(r["hours"])
    return {key: (median(v), percentile(v, 90), len(v)) for key, v in values.items()}
