"""Principals are cached per process while the organisation is unchanged: a change to what a
principal holds (roles, reach, locale, being active) shows on the very next request."""

from __future__ import annotations

from storage.access import Role
from storage.org import load_principal, person_id_by_employee_no
from storage.tables import Department, Person, Position


async def _person(employee_no: str) -> int:
    person = await person_id_by_employee_no(employee_no)
    assert person is not None
    return person


async def test_an_unchanged_organisation_serves_the_same_principal(db: None) -> None:
    person = await _person("e1001")
    first = await load_principal(person)
    assert first is not None
    assert await load_principal(person) is first


async def test_becoming_a_head_gives_the_role_and_the_reach_at_once(db: None) -> None:
    person = await _person("e1001")
    before = await load_principal(person)
    assert before is not None and Role.DEPARTMENT_HEAD not in before.roles and not before.reach
    await Department.update({Department.head_id: person}).where(Department.code == "PRD")
    after = await load_principal(person)
    assert after is not None and Role.DEPARTMENT_HEAD in after.roles
    prd = await Department.select(Department.id).where(Department.code == "PRD").first()
    assert prd is not None and prd["id"] in after.reach


async def test_a_deactivated_person_has_no_principal_at_once(db: None) -> None:
    person = await _person("e1001")
    assert await load_principal(person) is not None
    await Person.update({Person.active: False}).where(Person.id == person)
    assert await load_principal(person) is None


async def test_a_changed_locale_and_position_roles_show_at_once(db: None) -> None:
    person = await _person("e4001")
    before = await load_principal(person)
    assert before is not None and Role.FINANCE_SPECIALIST in before.roles
    await Person.update({Person.locale: "en"}).where(Person.id == person)
    assert (await load_principal(person)).locale == "en"  # type: ignore[union-attr]
    row = await Person.select(Person.position).where(Person.id == person).first()
    assert row is not None
    await Position.update({Position.roles: []}).where(Position.id == row["position"])
    after = await load_principal(person)
    assert after is not None and Role.FINANCE_SPECIALIST not in after.roles


async def test_sign_in_bookkeeping_keeps_the_cache(db: None) -> None:
    person = await _person("e1001")
    first = await load_principal(person)
    await Person.update({Person.failed_logins: 3}).where(Person.id == person)
    assert await load_principal(person) is first
