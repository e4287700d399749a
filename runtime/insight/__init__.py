"""Process insight: working-hour durations, rates, rankings, trends and charts, from rows.

    from runtime.insight import step_stats, bottlenecks

    stats = step_stats(task_records, calendar)      # median / p90 hours, return and reject rates
    slowest = bottlenecks(stats)                     # the slowest steps first

Pure: no database, no clock, no network. `runtime.service.insight` reads the rows (scoped to
the viewer) and passes `now` in; the pages and exports turn the Structs into tables, SVG
charts (`charts`) and CSV/XLSX cells (`cells`).
"""

from runtime.insight.analysis import (
    FINISHED,
    bottlenecks,
    completion_estimates,
    cost_deviations,
    expected_completion,
    is_overdue,
    repeated_rejections,
    step_stats,
    task_hours,
    template_stats,
    waited_hours,
    week_of,
    weekly_trends,
)
from runtime.insight.records import (
    DECIDED,
    CostDeviation,
    Estimate,
    RepeatedRejection,
    RequestRecord,
    StepStats,
    TaskRecord,
    TemplateStats,
    WeekStats,
)
from runtime.insight.stats import median, percentile, rate

__all__ = [
    "DECIDED",
    "FINISHED",
    "CostDeviation",
    "Estimate",
    "RepeatedRejection",
    "RequestRecord",
    "StepStats",
    "TaskRecord",
    "TemplateStats",
    "WeekStats",
    "bottlenecks",
    "completion_estimates",
    "cost_deviations",
    "expected_completion",
    "is_overdue",
    "median",
    "percentile",
    "rate",
    "repeated_rejections",
    "step_stats",
    "task_hours",
    "template_stats",
    "waited_hours",
    "week_of",
    "weekly_trends",
]
