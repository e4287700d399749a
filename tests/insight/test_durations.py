"""Working-hour medians, percentiles, rates and rankings on a history with known durations."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from runtime.insight import (
    bottlenecks,
    completion_estimates,
    cost_deviations,
    expected_completion,
    median,
    percentile,
    repeated_rejections,
    step_stats,
    task_hours,
    template_stats,
    waited_hours,
    weekly_trends,
)
from runtime.insight.cells import csv_lines, neutralise
from runtime.insight.charts import bar_chart
from tests.insight.history import CALENDAR, REQUESTS, TASKS, at

NOW = at(10, 16, 10)


def test_each_task_takes_its_working_hours_across_the_weekend_and_the_holiday() -> None:
    hours = [task_hours(t, CALENDAR) for t in TASKS]
    assert hours == [2.0, 4.0, 11.0, 4.0, 1.5, None, None, 16.0, 8.0, 6.0, 7.0]


@pytest.mark.parametrize(
    ("values", "mid", "p90"),
    [
        ([], None, None),
        ([5.0], 5.0, 5.0),
        ([1.0, 2.0], 1.5, 2.0),
        ([11.0, 2.0, 4.0, 1.5, 4.0], 4.0, 11.0),
        ([float(v) for v in range(1, 11)], 5.5, 9.0),
        ([float(v) for v in range(1, 12)], 6.0, 10.0),
    ],
)
def test_median_and_nearest_rank_p90(values: list[float], mid: float | None, p90: float | None) -> None:
    assert median(values) == mid
    assert percentile(values, 90) == p90


def test_step_figures() -> None:
    stats = {(s.template, s.node_id): s for s in step_stats(TASKS, CALENDAR)}
    assert list(stats) == [("purchase", "dept"), ("purchase", "finance"), ("leave", "head")]
    dept = stats[("purchase", "dept")]
    assert (dept.step, dept.decided, dept.median_hours, dept.p90_hours) == ("部门审批", 5, 4.0, 11.0)
    assert (dept.return_rate, dept.rejection_rate) == (0.2, 0.2)
    assert dept.overdue_rate == 0.6667  # two of the three with a deadline were decided late
    finance = stats[("purchase", "finance")]
    assert (finance.decided, finance.median_hours, finance.p90_hours) == (3, 8.0, 16.0)
    assert (finance.return_rate, finance.rejection_rate, finance.overdue_rate) == (0.0, 0.3333, None)
    head = stats[("leave", "head")]
    assert (head.decided, head.median_hours, head.p90_hours) == (1, 7.0, 7.0)


def test_bottlenecks_rank_the_slowest_median_first() -> None:
    ranked = bottlenecks(step_stats(TASKS, CALENDAR))
    assert [(s.template, s.node_id) for s in ranked] == [
        ("purchase", "finance"),
        ("leave", "head"),
        ("purchase", "dept"),
    ]
    assert [(s.node_id) for s in bottlenecks(step_stats(TASKS, CALENDAR), limit=1)] == ["finance"]


def test_template_figures() -> None:
    purchase, leave = sorted(
        template_stats(REQUESTS, TASKS, CALENDAR, NOW), key=lambda s: s.template != "purchase"
    )
    assert (purchase.requests, purchase.finished) == (5, 4)
    assert (purchase.median_hours, purchase.p90_hours) == (12.75, 29.0)  # of 18, 29, 4, 7.5
    assert purchase.return_rate == 0.2
    assert purchase.rejection_rate == 0.5
    assert purchase.overdue_rate == 0.4  # request 2 (decided late) and 5 (open past its deadline)
    assert purchase.resubmissions == 1
    assert (leave.requests, leave.median_hours, leave.return_rate, leave.resubmissions) == (1, 7.0, 1.0, 2)


def test_weekly_trends() -> None:
    weeks = weekly_trends(REQUESTS, TASKS, CALENDAR)
    assert [(w.week, w.submitted, w.finished, w.median_task_hours) for w in weeks] == [
        (dt.date(2025, 9, 22), 1, 0, 2.0),  # the swapped Sunday belongs to the week before
        (dt.date(2025, 9, 29), 1, 1, 16.0),
        (dt.date(2025, 10, 6), 1, 1, 7.0),  # tasks of 4, 11 and 7 hours
        (dt.date(2025, 10, 13), 3, 2, 6.0),  # tasks of 4 and 8 hours
        (dt.date(2025, 10, 20), 0, 1, 3.75),  # tasks of 1.5 and 6 hours
    ]


def test_waiting_and_expected_completion_in_working_hours() -> None:
    assert waited_hours(at(10, 14, 9), NOW, CALENDAR) == 17.0
    estimates = completion_estimates(TASKS, REQUESTS, CALENDAR)
    dept = estimates[("purchase", "dept")]
    assert (dept.median_hours, dept.samples) == (12.75, 4)  # 18, 19 (last visit), 4, 7.5
    # two working hours in: 10.75 to go, from Tuesday 11:00 to Wednesday 14:45
    assert expected_completion(at(10, 14, 9), at(10, 14, 11), dept, CALENDAR) == at(10, 15, 14, 45)
    assert expected_completion(at(10, 14, 9), NOW, dept, CALENDAR) == NOW  # late: any time now
    assert expected_completion(at(10, 14, 9), NOW, None, CALENDAR) is None


def test_repeatedly_sent_back_requests() -> None:
    assert [r.instance_id for r in repeated_rejections(REQUESTS)] == [6]
    assert [r.instance_id for r in repeated_rejections(REQUESTS, threshold=1)] == [6, 2, 3, 4]


def test_cost_deviation_largest_overspend_first() -> None:
    found = cost_deviations(REQUESTS)
    assert [(c.instance_id, c.deviation, c.ratio) for c in found] == [
        (1, Decimal("2000"), 0.2),
        (2, Decimal("-1000"), -0.2),
    ]


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
    ],
)
def test_formula_injection_is_neutralised(value: str, safe: str) -> None:
    assert neutralise(value) == safe


def test_csv_lines() -> None:
    lines = list(csv_lines(["no", "title"], [["1", "'=1+1"], [2, None]]))
    assert lines == ["\ufeffno,title\r\n", "1,'=1+1\r\n", "2,\r\n"]


def test_charts_escape_labels() -> None:
    svg = bar_chart("slowest <steps>", [("<b>", 3.0), ("ok", 1.5)], " h")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert bar_chart("empty", []) == ""
