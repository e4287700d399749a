"""Assignee rules: who an approval, a work stage or a CC goes to (a tagged union on "kind").

The rules are data; `runtime.flow.assignees.resolve` turns one into people and the reason
that is shown with each task ("why this approver").
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from runtime.flow.shape import Shape

FieldKey = Annotated[str, Meta(min_length=1, max_length=64)]


class _Rule(Shape, tag_field="kind", frozen=True, kw_only=True):
    """Base of the assignee rules."""


class PeopleRule(_Rule, tag="people", frozen=True, kw_only=True):
    """Named people (指定成员), in the order given (the order of a sequential approval)."""

    ids: Annotated[tuple[int, ...], Meta(min_length=1)]


class RoleRule(_Rule, tag="role", frozen=True, kw_only=True):
    """Everyone holding a role, e.g. `finance_specialist` (角色)."""

    role: Annotated[str, Meta(min_length=1, max_length=64)]


class DepartmentHeadRule(_Rule, tag="department_head", frozen=True, kw_only=True):
    """The head of the initiator's department (部门负责人)."""


class HeadAboveRule(_Rule, tag="head_above", frozen=True, kw_only=True):
    """The head of the department `levels` above the initiator's (1 = the parent department)."""

    levels: Annotated[int, Meta(ge=1, le=10)] = 1


class NamedDepartmentHeadRule(_Rule, tag="department_head_of", frozen=True, kw_only=True):
    """The head of a fixed department, named by its code (e.g. "HR" for onboarding)."""

    department: Annotated[str, Meta(min_length=1, max_length=64)]


class SupervisingLeaderRule(_Rule, tag="supervising_leader", frozen=True, kw_only=True):
    """The supervising leader (分管领导) of the initiator's department, or of its nearest ancestor."""


class PersonFieldRule(_Rule, tag="person_field", frozen=True, kw_only=True):
    """The person (or people) chosen in a person field of the form."""

    field: FieldKey


class DepartmentFieldHeadRule(_Rule, tag="department_field_head", frozen=True, kw_only=True):
    """The head of the department chosen in a department field of the form."""

    field: FieldKey


class InitiatorChoiceRule(_Rule, tag="initiator_choice", frozen=True, kw_only=True):
    """People the initiator picks when submitting (发起人自选); `Submit.chosen[node_id]`."""


class InitiatorRule(_Rule, tag="initiator", frozen=True, kw_only=True):
    """The initiator themself (发起人自己), e.g. the owner of a work stage."""


AssigneeRule = (
    PeopleRule
    | RoleRule
    | DepartmentHeadRule
    | HeadAboveRule
    | NamedDepartmentHeadRule
    | SupervisingLeaderRule
    | PersonFieldRule
    | DepartmentFieldHeadRule
    | InitiatorChoiceRule
    | InitiatorRule
)
