"""The org directory is cached per process and reloaded exactly when the organisation changes:
changes made straight in the tables (no command involved) show at once, unrelated updates keep
the cache, and an unchanged organisation costs one small query."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.service import CreateRequest, create_instance, load_org_directory
from storage.tables import Department, OrgRevision, Person, Position
from tests.service.support import Clock, caller, department_id, marketing_data, open_task, person_id


async def token() -> int | None:
    row = await OrgRevision.select(OrgRevision.token).where(OrgRevision.id == 1).first()
    return None if row is None else int(row["token"])


@pytest.fixture()
def queries(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The SQL of every statement run through the engine while the test runs."""
    engine_class = type(Person._meta.db)  # PostgresEngine has slots: patch the class
    seen: list[str] = []
    run = engine_class.run_querystring

    async def counted(engine: Any, querystring: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(querystring))
        return await run(engine, querystring, *args, **kwargs)

    monkeypatch.setattr(engine_class, "run_querystring", counted)
    yield seen


async def test_an_unchanged_organisation_is_served_from_the_cache_with_one_query(
    db: None, queries: list[str]
) -> None:
    first = await load_org_directory()
    queries.clear()
    again = await load_org_directory()
    assert again is first
    assert len(queries) == 1 and "org_revision" in queries[0]


async def test_a_new_department_head_shows_at_once(db: None) -> None:
    before = await load_org_directory()
    marketing, new_head = await department_id("MKT"), await person_id("e2002")
    assert before.departments[marketing].head_id == await person_id("e2001")
    await Department.update({Department.head_id: new_head}).where(Department.id == marketing)
    after = await load_org_directory()
    assert after.departments[marketing].head_id == new_head
    assert "department_head" not in after.people[await person_id("e2001")].roles


async def test_a_deactivated_person_leaves_the_directory_at_once(db: None) -> None:
    leaver = await person_id("e1002")
    assert leaver in (await load_org_directory()).people
    await Person.update({Person.active: False}).where(Person.id == leaver)
    assert leaver not in (await load_org_directory()).people


async def test_new_position_roles_show_at_once(db: None) -> None:
    finance = await person_id("e4001")
    assert (await load_org_directory()).role_members["finance_specialist"] == (finance,)
    await Position.update({Position.roles: ["employee"]}).where(Position.code == "finance-specialist")
    org = await load_org_directory()
    assert "finance_specialist" not in org.role_members
    assert org.people[finance].roles == ("employee",)


async def test_a_new_person_shows_at_once(db: None) -> None:
    await load_org_directory()
    await Person.insert(
        Person(employee_no="e9001", name="新同事", department=await department_id("MKT"), active=True)
    )
    newcomer = await person_id("e9001")
    assert (await load_org_directory()).people[newcomer].name == "新同事"


async def test_sign_in_bookkeeping_keeps_the_token_and_the_cache(db: None) -> None:
    cached = await load_org_directory()
    kept = await token()
    assert kept is not None
    someone = await person_id("e1001")
    await Person.update(
        {Person.last_login_at: dt.datetime.now(dt.UTC), Person.failed_logins: 2, Person.locked_until: None}
    ).where(Person.id == someone)
    assert await token() == kept
    assert await load_org_directory() is cached
    await Person.update({Person.name: "张伟伟"}).where(Person.id == someone)
    assert await token() != kept


async def test_without_a_token_row_every_call_reads_the_tables(db: None) -> None:
    await OrgRevision.delete(force=True)
    first = await load_org_directory()
    assert await load_org_directory() is not first
    await Department.update({Department.name_zh: "市场营销部"}).where(Department.code == "MKT")
    assert await token() is not None, "the next change brings the row back"
    renamed = await load_org_directory()
    assert renamed.departments[await department_id("MKT")].name == "市场营销部"
    assert await load_org_directory() is renamed


async def test_the_head_task_goes_to_the_new_department_head(db: None) -> None:
    clock = Clock()
    applicant = await caller("e1001")
    request = CreateRequest(template="marketing-activity", data=marketing_data(), submit=True)
    earlier = await create_instance(applicant, request, clock())
    await open_task(earlier.id, "e2001", "dept_head")
    await Department.update({Department.head_id: await person_id("e2002")}).where(Department.code == "MKT")
    later = await create_instance(applicant, request, clock.advance(minutes=1))
    task = await open_task(later.id, "e2002", "dept_head")
    assert task["reason"] == {"rule": "department_head", "department": "市场部"}
