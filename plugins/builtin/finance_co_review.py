"""财务联审 (finance co-review): finance reviews a request whose amount exceeds a threshold.

Over the threshold (strictly greater; 50,000 by default, set per template) the step opens
approval tasks for the reviewers (the role finance_specialist by default, or named people),
any one (或签) or all (会签) of them deciding, with an SLA; each task's reason says why. At or
under the threshold, or with the amount empty, the step passes at once. A rejection by finance
rejects the request or returns it to the applicant (`on_reject`); after a resubmission the
step is decided again with the new amount.

`placement` says where the review sits: "after" the leader's approval (the step follows an
approval step in the flow) or "alongside" it (the step is on a parallel branch beside that
approval step); the designer places the node accordingly and saving checks it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from msgspec import Meta

from plugins.config import FieldKey, StepConfig
from plugins.decisions import Complete, Decision, OpenTasks
from plugins.inputs import StepInput
from plugins.step import NodeSite, Step, Text
from runtime.flow.graph import Action, ApprovalMode, Sla
from runtime.flow.plugins import RejectAction
from runtime.flow.rules import PeopleRule, RoleRule

AMOUNT_TYPES = frozenset({"money", "number"})
REVIEW_ACTIONS = (Action.APPROVE, Action.REJECT, Action.RETURN, Action.TRANSFER, Action.COMMENT)


class ReviewMode(enum.StrEnum):
    ANY = "any"  # 或签: one reviewer decides
    ALL = "all"  # 会签: every reviewer must approve


class ReviewPlacement(enum.StrEnum):
    AFTER = "after"  # after the leader's approval
    ALONGSIDE = "alongside"  # at the same time as the leader's approval


class FinanceCoReviewConfig(StepConfig, frozen=True, kw_only=True):
    """`amount_field`: the money field compared with `threshold` (yuan). `reviewers`: a role
    or named people. `title`: the tasks' title (the node's title when empty)."""

    amount_field: FieldKey
    threshold: Annotated[float, Meta(ge=0, le=1e13)] = 50_000
    reviewers: RoleRule | PeopleRule = RoleRule(role="finance_specialist")
    mode: ReviewMode = ReviewMode.ANY
    placement: ReviewPlacement = ReviewPlacement.AFTER
    on_reject: RejectAction = RejectAction.REJECT
    sla: Sla = Sla()
    title: Annotated[str, Meta(max_length=200)] = ""
    actions: tuple[Action, ...] = REVIEW_ACTIONS


class FinanceCoReview(Step[FinanceCoReviewConfig]):
    name = "finance-co-review"
    title = Text(zh="财务联审", en="Finance co-review")
    description = Text(
        zh="金额超过阈值（默认 5 万元）时由财务专员联审；驳回时可终止申请或退回补充。",
        en="Finance specialists review requests whose amount exceeds a threshold (50,000 by default); "
        "their rejection ends the request or returns it to the applicant.",
    )
    config_type = FinanceCoReviewConfig

    def decide(self, step: StepInput[FinanceCoReviewConfig]) -> Decision:
        config = step.config
        amount = _amount(step.data.get(config.amount_field))
        threshold = Decimal(str(config.threshold))
        if amount is None:
            return Complete(note=f"{config.amount_field} 为空，无需财务联审", output={"reviewed": False})
        figures = {"amount": _yuan(amount), "threshold": _yuan(threshold)}
        if amount <= threshold:
            note = f"金额 {figures['amount']} 未超过财务联审金额 {figures['threshold']}，无需财务联审"
            return Complete(note=note, output={**figures, "reviewed": False})
        why_zh = f"金额 {figures['amount']} 超过财务联审金额 {figures['threshold']}"
        why_en = (
            f"the amount {figures['amount']} exceeds the finance co-review threshold {figures['threshold']}"
        )
        return OpenTasks(
            assignees=config.reviewers,
            mode=ApprovalMode(config.mode),
            sla=config.sla,
            on_reject=config.on_reject,
            title=config.title,
            actions=config.actions,
            why={
                "because": "amount_over_threshold",
                "field": config.amount_field,
                **figures,
                "why_zh": why_zh,
                "why_en": why_en,
            },
            note=why_zh,
        )

    def check(self, config: FinanceCoReviewConfig, site: NodeSite) -> Iterable[str]:
        field = config.amount_field
        if site.fields is not None:
            kind = site.fields.get(field)
            if kind is None:
                yield f"config.amount_field: unknown field {field!r}"
            elif kind not in AMOUNT_TYPES:
                yield f"config.amount_field: {field!r} is a {kind} field, not an amount"
        if config.placement == ReviewPlacement.AFTER and not site.after:
            yield "config.placement: 'after' needs an approval step before this step"
        if config.placement == ReviewPlacement.ALONGSIDE and not site.alongside:
            yield (
                "config.placement: 'alongside' needs this step on a parallel branch beside "
                "the approval step it reviews with"
            )
        if Action.APPROVE not in config.actions or Action.REJECT not in config.actions:
            yield "config.actions: reviewers must be able to approve and reject"


def _amount(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _yuan(amount: Decimal) -> str:
    return f"{amount:,.2f}"
