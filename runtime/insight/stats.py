"""Order statistics and rates, exact on the values given (no interpolation surprises).

The median of an even count is the mean of the two middle values. The 90th percentile is
the nearest-rank one: the smallest value with at least 90 % of the values at or below it
(for 10 values the 9th, for 5 values the 5th). Figures are rounded to 2 decimals (36 s).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

PLACES = 2


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return round(ordered[middle], PLACES)
    return round((ordered[middle - 1] + ordered[middle]) / 2, PLACES)


def percentile(values: Sequence[float], percent: float) -> float | None:
    """The nearest-rank `percent`-th percentile (0 < percent <= 100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return round(ordered[rank - 1], PLACES)


def rate(part: int, whole: int) -> float | None:
    """part / whole rounded to 4 places; None when there is nothing to count."""
    if whole <= 0:
        return None
    return round(part / whole, 4)
