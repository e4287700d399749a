"""The budget-check step with Formflow's test kit: plain pytest, no database, server or broker."""

from __future__ import annotations

from decimal import Decimal

import pytest
from formflow_budget_check import BudgetCheck

from plugins import Complete, OpenTasks, Outcome
from plugins.testing import FINANCE, MARKETING, StepKit
from runtime.flow import Status

CONFIG = {"amount_field": "budget", "budgets": {"MKT": 1_000_000}, "spent": {"MKT": 650_000}}


@pytest.fixture()
def kit() -> StepKit:
    return StepKit(BudgetCheck())  # the initiator is a marketing employee (MKT)


def test_within_the_budget_the_step_passes(kit: StepKit) -> None:
    decision = kit.decide(CONFIG, data={"budget": Decimal("300000")})
    assert isinstance(decision, Complete) and decision.outcome == Outcome.CONTINUE
    assert decision.output == {"department": "MKT", "amount": "300,000.00", "left": "350,000.00"}


def test_over_the_budget_reviewers_decide(kit: StepKit) -> None:
    decision = kit.decide(CONFIG, data={"budget": Decimal("400000")})
    assert isinstance(decision, OpenTasks)
    assert decision.why["because"] == "over_yearly_budget" and decision.why["left"] == "350,000.00"


def test_over_the_budget_the_request_can_be_rejected(kit: StepKit) -> None:
    decision = kit.decide({**CONFIG, "over_budget": "reject"}, data={"budget": Decimal("400000")})
    assert isinstance(decision, Complete) and decision.outcome == Outcome.REJECT


def test_the_department_can_come_from_a_form_field(kit: StepKit) -> None:
    config = {**CONFIG, "department_field": "department"}
    decision = kit.decide(config, data={"budget": Decimal("400000"), "department": MARKETING})
    assert isinstance(decision, OpenTasks)
    unknown = kit.decide(config, data={"budget": Decimal("400000"), "department": 999})
    assert isinstance(unknown, Complete) and "未设年度预算" in unknown.note


@pytest.mark.parametrize(
    ("config", "fields", "problems"),
    [
        (CONFIG, {"budget": "money"}, []),
        ({**CONFIG, "budgets": {}}, None, ["config.budgets: expected `object` of length >= 1"]),
        ({**CONFIG, "budgets": {"MKT": -1}}, None, ["config.budgets[...]: expected `float` >= 0.0"]),
        (CONFIG, {"budget": "text"}, ["config.amount_field: 'budget' is not an amount field of the form"]),
        (
            {**CONFIG, "department_field": "budget"},
            {"budget": "money"},
            ["config.department_field: 'budget' is not a department field of the form"],
        ),
    ],
)
def test_config_problems(kit: StepKit, config: dict, fields: dict | None, problems: list[str]) -> None:
    assert kit.check(config, fields=fields) == problems


def test_inside_a_flow_through_the_engine(kit: StepKit) -> None:
    run = kit.run(CONFIG, data={"budget": Decimal("400000")}, title="预算校验")
    assert run.status is Status.IN_APPROVAL and run.assignees() == [FINANCE]
    run.approve(FINANCE)
    assert run.status is Status.ARCHIVED
