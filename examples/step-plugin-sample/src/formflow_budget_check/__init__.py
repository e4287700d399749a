"""预算校验 (budget-check): a request's amount against its department's yearly budget.

The department is the one chosen in `department_field` (a department field of the form), or
the initiator's when that is not set. What is left of its yearly budget is
`budgets[code] - spent.get(code, 0)` (yuan, by department code). Within it the step passes;
over it the step rejects the request (`over_budget="reject"`) or asks `reviewers` to approve
the overrun (`over_budget="review"`, the default). A department without a budget passes, with
a note in the timeline.

Flow JSON:

    {"type": "plugin", "id": "budget", "title": "预算校验", "plugin": "budget-check",
     "config": {"amount_field": "budget", "budgets": {"MKT": 1000000}, "spent": {"MKT": 650000}}}
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from msgspec import Meta

from plugins import (
    AssigneeRule,
    Complete,
    Decision,
    FieldKey,
    NodeSite,
    OpenTasks,
    Outcome,
    RoleRule,
    Step,
    StepConfig,
    StepInput,
    Text,
)

DepartmentCode = Annotated[str, Meta(min_length=1, max_length=64)]
Yuan = Annotated[float, Meta(ge=0, le=1e13)]


class OverBudget(enum.StrEnum):
    REJECT = "reject"
    REVIEW = "review"


class BudgetCheckConfig(StepConfig, frozen=True, kw_only=True):
    amount_field: FieldKey = "budget"
    department_field: FieldKey | None = None
    budgets: Annotated[dict[DepartmentCode, Yuan], Meta(min_length=1)]
    spent: dict[DepartmentCode, Yuan] = {}
    over_budget: OverBudget = OverBudget.REVIEW
    reviewers: AssigneeRule = RoleRule(role="finance_specialist")


class BudgetCheck(Step[BudgetCheckConfig]):
    name = "budget-check"
    title = Text(zh="预算校验", en="Budget check")
    description = Text(
        zh="按部门年度预算校验申请金额：预算内通过，超出则驳回或转审。",
        en="Checks the amount against the department's yearly budget: within it the request goes "
        "on; over it, it is rejected or sent for review.",
    )
    config_type = BudgetCheckConfig

    def decide(self, step: StepInput[BudgetCheckConfig]) -> Decision:
        config = step.config
        code, name = _department(step)
        budget = config.budgets.get(code)
        if budget is None:
            return Complete(note=f"{name or '未知部门'}未设年度预算，跳过预算校验")
        amount = _decimal(step.data.get(config.amount_field)) or Decimal(0)
        left = Decimal(str(budget)) - Decimal(str(config.spent.get(code, 0)))
        figures = {"department": code, "amount": f"{amount:,.2f}", "left": f"{left:,.2f}"}
        if amount <= left:
            return Complete(
                note=f"{name}年度预算剩余 {figures['left']}，本次 {figures['amount']}", output=figures
            )
        why = f"本次 {figures['amount']} 超出{name}年度预算剩余 {figures['left']}"
        if config.over_budget == OverBudget.REJECT:
            return Complete(outcome=Outcome.REJECT, note=why, output=figures)
        return OpenTasks(
            assignees=config.reviewers,
            title="超预算审批",
            why={"because": "over_yearly_budget", **figures},
            note=why,
        )

    def check(self, config: BudgetCheckConfig, site: NodeSite) -> Iterable[str]:
        if site.fields is None:
            return
        if site.fields.get(config.amount_field) not in ("money", "number"):
            yield f"config.amount_field: {config.amount_field!r} is not an amount field of the form"
        field = config.department_field
        if field is not None and site.fields.get(field) != "department":
            yield f"config.department_field: {field!r} is not a department field of the form"


def _department(step: StepInput[BudgetCheckConfig]) -> tuple[str, str]:
    """(code, name) of the department the request is for."""
    field = step.config.department_field
    if field is None:
        return step.initiator.department_code, step.initiator.department
    value: Any = step.data.get(field)
    department = None
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        department = step.directory.department(int(value))
    elif isinstance(value, str):
        department = step.directory.department_by_code(value)
    return (department.code, department.name) if department else ("", "")


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None and value != "" else None
    except InvalidOperation:
        return None
