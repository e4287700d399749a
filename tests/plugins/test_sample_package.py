"""The example plugin package, installed (`pip install -e examples/step-plugin-sample`):
discovered through its entry point, its config validated, running inside a flow."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import msgspec
import pytest

from plugins import GROUP, discover, validate_plugin_nodes
from runtime.flow import FlowGraph, Status
from runtime.flow.events import Approve, Submit
from runtime.flow.graph import Edge, PluginNode
from tests.conftest import require
from tests.plugins.marketing import FLOW, FORM
from tests.runtime.driver import Driver
from tests.runtime.org import FINANCE, MKT_HEAD, MONDAY, STAFF, VP, env, marketing_form

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "step-plugin-sample"
BUDGET = {"amount_field": "budget", "budgets": {"MKT": 1_000_000}, "spent": {"MKT": 900_000}}


@pytest.fixture(scope="module")
def registry() -> Any:
    installed = any(point.name == "budget-check" for point in entry_points(group=GROUP))
    require("the example plugin", installed, "run `.venv/bin/pip install -e examples/step-plugin-sample`")
    return discover()


def with_budget_check(config: dict[str, Any]) -> FlowGraph:
    """The marketing flow with a budget check between the leader and finance."""
    node = PluginNode(id="budget", title="预算校验", plugin="budget-check", config=config)
    edges = [e for e in FLOW.edges if (e.source, e.target) != ("leader", "finance")]
    edges += [Edge(source="leader", target="budget"), Edge(source="budget", target="finance")]
    return msgspec.structs.replace(FLOW, nodes=(*FLOW.nodes, node), edges=tuple(edges))


def test_it_is_discovered_through_its_entry_point(registry: Any) -> None:
    step = registry.get("budget-check")
    assert step is not None and step.source == "formflow-budget-check"
    assert step.title.zh == "预算校验" and registry.problems == []


def test_its_config_is_validated_when_the_flow_is_saved(registry: Any) -> None:
    assert validate_plugin_nodes(with_budget_check(BUDGET), FORM, registry=registry) == []
    bad = with_budget_check({**BUDGET, "amount_field": "venue", "budgets": {"MKT": "lots"}})
    assert [(p.node_id, p.message) for p in validate_plugin_nodes(bad, FORM, registry=registry)] == [
        ("budget", "config.budgets[...]: expected `float`, got `str`")
    ]
    bad = with_budget_check({**BUDGET, "amount_field": "venue"})
    assert [(p.node_id, p.message) for p in validate_plugin_nodes(bad, FORM, registry=registry)] == [
        ("budget", "config.amount_field: 'venue' is not an amount field of the form")
    ]


@pytest.mark.parametrize(("budget", "reviewers"), [(50_000, []), (200_000, [FINANCE])])
def test_it_runs_inside_a_flow(registry: Any, budget: int, reviewers: list[int]) -> None:
    driver = Driver(
        with_budget_check(BUDGET), env(marketing_form(budget), plugins=registry.engine_plugins()), MONDAY
    )
    driver.apply(Submit(actor=STAFF))
    for person in (MKT_HEAD, VP):
        driver.apply(Approve(actor=person, task_id=driver.task_of(person).id))
    # within the 100,000 left the budget check passes; over it finance approves the overrun
    # (and then, as the amount exceeds 50,000, co-reviews it as well)
    assert [t.node for t in driver.tasks()] == (["budget"] if reviewers else ["venue"])
    if reviewers:
        task = driver.task_of(FINANCE, "budget")
        assert task.reason["because"] == "over_yearly_budget" and task.reason["left"] == "100,000.00"
        driver.apply(Approve(actor=FINANCE, task_id=task.id))
        assert driver.assignees("finance") == [FINANCE]


def test_rejecting_over_budget_ends_the_request(registry: Any) -> None:
    flow = with_budget_check({**BUDGET, "over_budget": "reject"})
    driver = Driver(flow, env(marketing_form(200_000), plugins=registry.engine_plugins()), MONDAY)
    driver.apply(Submit(actor=STAFF))
    for person in (MKT_HEAD, VP):
        driver.apply(Approve(actor=person, task_id=driver.task_of(person).id))
    assert driver.status is Status.REJECTED


def test_its_own_tests_pass_with_plain_pytest(registry: Any) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE)],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
