"""自动审批 (auto-decide): approve or reject when a CEL condition holds, e.g. small amounts.

`when` is a CEL condition over `form.<field>` and `initiator.<attribute>`, compiled and
evaluated by the engine's own branch-condition code (`runtime.flow.conditions`): it reads
only what the step's mask shows, and a condition that cannot be evaluated counts as false.
When it holds, the step approves (the request goes on) or rejects (the request ends), with
`note` in the timeline. Otherwise the step opens tasks per `otherwise` (an approval the
condition spares people from), or simply passes when `otherwise` is not set.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from typing import Annotated

import msgspec
from msgspec import Meta

from plugins.config import Expression, StepConfig
from plugins.decisions import Complete, Decision, OpenTasks, Outcome
from plugins.inputs import StepInput
from plugins.step import NodeSite, Step, Text
from runtime.flow.conditions import INITIATOR_ATTRIBUTES, Condition, ConditionSyntaxError
from runtime.flow.graph import DEFAULT_ACTIONS, Action, ApprovalMode, Sla
from runtime.flow.plugins import RejectAction
from runtime.flow.rules import AssigneeRule


class Verdict(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class Approvers(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The approval that runs when the condition does not hold."""

    assignees: AssigneeRule
    mode: ApprovalMode = ApprovalMode.ANY
    sla: Sla = Sla()
    on_reject: RejectAction = RejectAction.REJECT
    actions: tuple[Action, ...] = DEFAULT_ACTIONS


class AutoDecideConfig(StepConfig, frozen=True, kw_only=True):
    when: Expression
    then: Verdict = Verdict.APPROVE
    note: Annotated[str, Meta(max_length=500)] = ""
    otherwise: Approvers | None = None


class AutoDecide(Step[AutoDecideConfig]):
    name = "auto-decide"
    title = Text(zh="自动审批", en="Auto-decide")
    description = Text(
        zh="条件（CEL）成立时自动通过或驳回，例如小额申请；否则转人工审批或直接通过。",
        en="Approves or rejects when a CEL condition holds (e.g. small amounts); otherwise people "
        "approve, or the step passes.",
    )
    config_type = AutoDecideConfig

    def decide(self, step: StepInput[AutoDecideConfig]) -> Decision:
        config = step.config
        if compiled(config.when).holds(step.data, step.initiator.as_cel):
            outcome = Outcome.CONTINUE if config.then == Verdict.APPROVE else Outcome.REJECT
            default = "条件成立，自动通过" if outcome == Outcome.CONTINUE else "条件成立，自动驳回"
            return Complete(outcome=outcome, note=config.note or default, output={"condition": config.when})
        if config.otherwise is None:
            return Complete(note="条件不成立，继续流程", output={"condition": config.when, "held": False})
        people = config.otherwise
        return OpenTasks(
            assignees=people.assignees,
            mode=people.mode,
            sla=people.sla,
            on_reject=people.on_reject,
            actions=people.actions,
            why={"because": "condition_not_met"},
            note="条件不成立，转人工审批",
        )

    def check(self, config: AutoDecideConfig, site: NodeSite) -> Iterable[str]:
        try:
            condition = compiled(config.when)
        except ConditionSyntaxError as exc:
            yield f"config.when: condition does not parse: {exc}"
            return
        for name in sorted(condition.unknown_names):
            yield f"config.when: unknown name {name!r}"
        for attribute in condition.attributes:
            if attribute not in INITIATOR_ATTRIBUTES:
                yield f"config.when: unknown initiator attribute {attribute!r}"
        if site.fields is not None:
            for field in condition.fields:
                if field not in site.fields:
                    yield f"config.when: unknown field {field!r}"


@functools.lru_cache(maxsize=512)
def compiled(source: str) -> Condition:
    """The condition compiled once per source (raises `ConditionSyntaxError`)."""
    return Condition(source)
