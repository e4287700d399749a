"""Resolving an assignee rule to people, with the reason shown as "why this approver".

Resolution is pure: it reads the `OrgDirectory` snapshot, the initiator and the form data.
People absent from the directory (inactive, unknown) are dropped; duplicates are dropped
keeping the first. The reason names the rule and what it was applied to, e.g.
{"rule": "department_head", "department": "市场部"}; the UI words it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from runtime.flow.effects import Reason
from runtime.flow.org import Department, OrgDirectory
from runtime.flow.rules import (
    AssigneeRule,
    DepartmentFieldHeadRule,
    DepartmentHeadRule,
    HeadAboveRule,
    InitiatorChoiceRule,
    InitiatorRule,
    NamedDepartmentHeadRule,
    PeopleRule,
    PersonFieldRule,
    RoleRule,
    SupervisingLeaderRule,
)


class Resolution(NamedTuple):
    people: tuple[int, ...]
    reason: Reason


class RuleInput(NamedTuple):
    """What a rule may read. `chosen`: the people the initiator picked for this node."""

    org: OrgDirectory
    initiator: int
    form: Mapping[str, Any]
    chosen: tuple[int, ...] = ()


def resolve(rule: AssigneeRule, given: RuleInput) -> Resolution:
    """The people `rule` designates for this instance, and why."""
    return _RESOLVERS[type(rule)](rule, given)


def _people(rule: Any, given: RuleInput) -> Resolution:
    return Resolution(_known(given.org, rule.ids), {"rule": "people"})


def _role(rule: Any, given: RuleInput) -> Resolution:
    return Resolution(
        _known(given.org, given.org.role_members.get(rule.role, ())), {"rule": "role", "role": rule.role}
    )


def _department_head(rule: Any, given: RuleInput) -> Resolution:
    department = given.org.department_of(given.initiator)
    return _head(given.org, department, {"rule": "department_head"})


def _head_above(rule: Any, given: RuleInput) -> Resolution:
    own = given.org.department_of(given.initiator)
    lineage = list(given.org.lineage(own.id if own else None))
    target = lineage[rule.levels] if len(lineage) > rule.levels else None
    return _head(given.org, target, {"rule": "head_above", "levels": rule.levels})


def _named_department_head(rule: Any, given: RuleInput) -> Resolution:
    department = _department(given.org, rule.department)
    return _head(given.org, department, {"rule": "department_head_of"})


def _supervising_leader(rule: Any, given: RuleInput) -> Resolution:
    own = given.org.department_of(given.initiator)
    reason: Reason = {"rule": "supervising_leader", "department": own.name if own else ""}
    for department in given.org.lineage(own.id if own else None):
        if department.leader_id is not None and department.leader_id in given.org.people:
            if own is not None and department.id != own.id:
                reason["via"] = department.name
            return Resolution((department.leader_id,), reason)
    return Resolution((), reason)


def _person_field(rule: Any, given: RuleInput) -> Resolution:
    ids = _ids(given.form.get(rule.field))
    return Resolution(_known(given.org, ids), {"rule": "person_field", "field": rule.field})


def _department_field_head(rule: Any, given: RuleInput) -> Resolution:
    value = given.form.get(rule.field)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    department = _department(given.org, value)
    return _head(given.org, department, {"rule": "department_field_head", "field": rule.field})


def _initiator_choice(rule: Any, given: RuleInput) -> Resolution:
    return Resolution(_known(given.org, given.chosen), {"rule": "initiator_choice"})


def _initiator(rule: Any, given: RuleInput) -> Resolution:
    return Resolution(_known(given.org, (given.initiator,)), {"rule": "initiator"})


_RESOLVERS: dict[type, Callable[[Any, RuleInput], Resolution]] = {
    PeopleRule: _people,
    RoleRule: _role,
    DepartmentHeadRule: _department_head,
    HeadAboveRule: _head_above,
    NamedDepartmentHeadRule: _named_department_head,
    SupervisingLeaderRule: _supervising_leader,
    PersonFieldRule: _person_field,
    DepartmentFieldHeadRule: _department_field_head,
    InitiatorChoiceRule: _initiator_choice,
    InitiatorRule: _initiator,
}


def _head(org: OrgDirectory, department: Department | None, reason: Reason) -> Resolution:
    reason["department"] = department.name if department else ""
    if department is None or department.head_id is None:
        return Resolution((), reason)
    return Resolution(_known(org, (department.head_id,)), reason)


def _known(org: OrgDirectory, ids: Iterable[int]) -> tuple[int, ...]:
    people = org.people
    seen: dict[int, None] = {}
    for person_id in ids:
        if person_id in people:
            seen.setdefault(person_id, None)
    return tuple(seen)


def _ids(value: Any) -> list[int]:
    values = value if isinstance(value, list | tuple) else [value]
    ids = []
    for item in values:
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            ids.append(item)
        elif isinstance(item, str) and item.isdigit():
            ids.append(int(item))
    return ids


def _department(org: OrgDirectory, value: Any) -> Department | None:
    """A department named by id (int or digits) or by code."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return org.departments.get(value)
    if isinstance(value, str):
        if value.isdigit() and int(value) in org.departments:
            return org.departments[int(value)]
        return next((d for d in org.departments.values() if d.code == value), None)
    return None
