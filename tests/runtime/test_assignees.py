"""Every assignee rule, with the reason shown as "why this approver"."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.flow.assignees import RuleInput, resolve
from runtime.flow.effects import CreateTask
from runtime.flow.events import Submit
from runtime.flow.org import Department, OrgDirectory, Person
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
from tests.runtime.driver import Driver
from tests.runtime.graphs import approval, chain
from tests.runtime.org import (
    FIN,
    FIN_HEAD,
    FINANCE,
    HQ,
    HR_HEAD,
    MKT,
    MKT_HEAD,
    MONDAY,
    ORG,
    PRD_HEAD,
    PRD_STAFF,
    STAFF,
    VP,
    env,
)

# A deeper tree for "N levels up": 总公司 > 市场中心 > 市场部 > 品牌组.
TEAM, CENTER, CENTER_HEAD, TEAM_HEAD, DESIGNER = 200, 201, 50, 51, 52
DEEP = OrgDirectory.build(
    [
        *ORG.departments.values(),
        Department(id=CENTER, name="市场中心", code="MKC", parent_id=HQ, head_id=CENTER_HEAD, leader_id=VP),
        Department(id=TEAM, name="品牌组", code="BRD", parent_id=MKT, head_id=TEAM_HEAD),
    ],
    [
        *ORG.people.values(),
        Person(id=CENTER_HEAD, name="孙总", department_id=CENTER),
        Person(id=TEAM_HEAD, name="钱组长", department_id=TEAM),
        Person(id=DESIGNER, name="冯设计", department_id=TEAM, manager_id=TEAM_HEAD),
    ],
    process_admins=ORG.process_admins,
)

CASES: list[tuple[str, AssigneeRule, dict[str, Any], tuple[int, ...], dict[str, Any]]] = [
    ("named people", PeopleRule(ids=(VP, 999, VP, FINANCE)), {}, (VP, FINANCE), {"rule": "people"}),
    (
        "role",
        RoleRule(role="finance_specialist"),
        {},
        (FINANCE,),
        {"rule": "role", "role": "finance_specialist"},
    ),
    ("role nobody holds", RoleRule(role="auditor"), {}, (), {"rule": "role", "role": "auditor"}),
    (
        "department head",
        DepartmentHeadRule(),
        {},
        (MKT_HEAD,),
        {"rule": "department_head", "department": "市场部"},
    ),
    (
        "supervising leader",
        SupervisingLeaderRule(),
        {},
        (VP,),
        {"rule": "supervising_leader", "department": "市场部"},
    ),
    (
        "person field",
        PersonFieldRule(field="reviewer"),
        {"reviewer": PRD_HEAD},
        (PRD_HEAD,),
        {"rule": "person_field", "field": "reviewer"},
    ),
    (
        "person field, several, as strings",
        PersonFieldRule(field="reviewers"),
        {"reviewers": [str(PRD_HEAD), "x", True, FINANCE]},
        (PRD_HEAD, FINANCE),
        {"rule": "person_field", "field": "reviewers"},
    ),
    (
        "person field left empty",
        PersonFieldRule(field="reviewer"),
        {},
        (),
        {"rule": "person_field", "field": "reviewer"},
    ),
    (
        "department field head (id)",
        DepartmentFieldHeadRule(field="department"),
        {"department": FIN},
        (FIN_HEAD,),
        {"rule": "department_field_head", "field": "department", "department": "财务部"},
    ),
    (
        "department field head (code, in a list)",
        DepartmentFieldHeadRule(field="department"),
        {"department": ["HR"]},
        (HR_HEAD,),
        {"rule": "department_field_head", "field": "department", "department": "人力资源部"},
    ),
    (
        "department field head, department without head",
        DepartmentFieldHeadRule(field="department"),
        {"department": HQ},
        (),
        {"rule": "department_field_head", "field": "department", "department": "总公司"},
    ),
    (
        "named department head",
        NamedDepartmentHeadRule(department="HR"),
        {},
        (HR_HEAD,),
        {"rule": "department_head_of", "department": "人力资源部"},
    ),
    ("initiator", InitiatorRule(), {}, (STAFF,), {"rule": "initiator"}),
    ("initiator's choice", InitiatorChoiceRule(), {}, (PRD_STAFF, VP), {"rule": "initiator_choice"}),
]


@pytest.mark.parametrize(("name", "rule", "form", "people", "reason"), CASES, ids=[c[0] for c in CASES])
def test_rules(
    name: str, rule: AssigneeRule, form: dict[str, Any], people: tuple[int, ...], reason: dict[str, Any]
) -> None:
    resolution = resolve(rule, RuleInput(ORG, STAFF, form, (PRD_STAFF, VP)))
    assert resolution.people == people
    assert resolution.reason == reason


DEEP_CASES = [
    (HeadAboveRule(levels=1), (MKT_HEAD,), {"rule": "head_above", "levels": 1, "department": "市场部"}),
    (HeadAboveRule(levels=2), (), {"rule": "head_above", "levels": 2, "department": "总公司"}),
    (HeadAboveRule(levels=3), (), {"rule": "head_above", "levels": 3, "department": ""}),
    (DepartmentHeadRule(), (TEAM_HEAD,), {"rule": "department_head", "department": "品牌组"}),
    (SupervisingLeaderRule(), (VP,), {"rule": "supervising_leader", "department": "品牌组", "via": "市场部"}),
]


@pytest.mark.parametrize(("rule", "people", "reason"), DEEP_CASES)
def test_rules_in_a_deeper_tree(rule: AssigneeRule, people: tuple[int, ...], reason: dict[str, Any]) -> None:
    resolution = resolve(rule, RuleInput(DEEP, DESIGNER, {}, ()))
    assert (resolution.people, resolution.reason) == (people, reason)


def test_manager_of() -> None:
    assert DEEP.manager_of(DESIGNER) == TEAM_HEAD  # manager_id
    assert DEEP.manager_of(TEAM_HEAD) == MKT_HEAD  # no manager: the nearest head above who is not them
    assert ORG.manager_of(HR_HEAD) is None  # heads HR, and HQ has no head
    assert ORG.manager_of(12345) is None


def test_the_task_carries_the_reason() -> None:
    driver = Driver(chain(approval("dept", rule=DepartmentHeadRule())), env(), MONDAY)
    driver.apply(Submit(actor=STAFF))
    (created,) = driver.of_type(CreateTask)
    assert created.assignee == MKT_HEAD
    assert created.reason == {"rule": "department_head", "department": "市场部"}
    assert driver.task_of(MKT_HEAD).reason == created.reason


def test_initiator_choice_comes_with_the_submission() -> None:
    flow = chain(approval("picked", rule=InitiatorChoiceRule(), mode="all"))
    driver = Driver(flow, env(), MONDAY)
    driver.apply(Submit(actor=STAFF, chosen={"picked": (PRD_HEAD, FINANCE)}))
    assert driver.assignees("picked") == [PRD_HEAD, FINANCE]
    assert {t.reason["rule"] for t in driver.tasks()} == {"initiator_choice"}
