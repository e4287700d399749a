"""Who an approval node goes to, after the skip rules and the empty policy.

Shared by the engine (entering the node) and `preview_route` (predicting it).
"""

from __future__ import annotations

from typing import NamedTuple

from runtime.flow.assignees import RuleInput, resolve
from runtime.flow.effects import Reason
from runtime.flow.errors import NoAssigneeError
from runtime.flow.graph import ApprovalNode, EmptyPolicy


class ApproverPlan(NamedTuple):
    """`skipped`: why the node is skipped; it then counts as approved by `people`.
    `auto_approved`: nobody resolved and the policy approves automatically."""

    people: tuple[int, ...]
    reason: Reason
    skipped: str | None = None
    auto_approved: bool = False


def plan_approvers(node: ApprovalNode, given: RuleInput, previous: tuple[int, ...] | None) -> ApproverPlan:
    """Apply the rule, then skip-if-initiator, skip-if-approved-previous, the empty policy.

    `previous`: who approved the approval step decided just before (None if none was).
    """
    people, reason = resolve(node.assignees, given)
    if node.skip_if_initiator and given.initiator in people:
        people = tuple(p for p in people if p != given.initiator)
        if not people:
            return ApproverPlan((given.initiator,), reason, skipped="approver_is_initiator")
    if node.skip_if_approved_previous and previous and people:
        remaining = tuple(p for p in people if p not in previous)
        if not remaining:
            return ApproverPlan(people, reason, skipped="approved_previous_step")
        people = remaining
    if people:
        return ApproverPlan(people, reason)
    if node.empty_policy == EmptyPolicy.AUTO_APPROVE:
        return ApproverPlan((), reason, auto_approved=True)
    people, reason = fallback(given, node.id, node.empty_policy, reason)
    return ApproverPlan(people, reason)


def fallback(
    given: RuleInput, node_id: str, policy: EmptyPolicy, reason: Reason
) -> tuple[tuple[int, ...], Reason]:
    """Nobody resolved: the process admins, unless the policy is "error" or there are none."""
    org = given.org
    admins = tuple(p for p in org.process_admins if p in org.people)
    if policy != EmptyPolicy.ERROR and admins:
        return admins, {"rule": "process_admin", "because": "no_assignee", "tried": reason["rule"]}
    raise NoAssigneeError(node_id, reason)
