"""The organisation as the engine sees it, cached per process; and people's names for views.

`load_org_directory` reads the organisation tables in two queries and keeps the result while
`org_revision.token` is unchanged (`storage.org.for_revision`): database triggers on `person`,
`department` and `position` set that token to a fresh random value whenever a row is inserted
or deleted or a column the directory reads is updated, in any process. Each call reads the
token first (one tiny query), so a kept directory is never older than its token. No token row
(e.g. after a TRUNCATE) means unknown: reload, keep nothing.

Roles follow `storage.access`: the roles of a person's position, plus department_head for
heads and supervising_leader for supervising leaders. Process admins are the people holding
the process_admin role. Only active people are in the directory, so a rule naming someone
who left resolves to nobody for them (and the node's empty policy applies).
"""

from __future__ import annotations

from collections.abc import Iterable

from runtime.flow import Department, OrgDirectory, Person
from storage.access import Role, roles_from
from storage.org import for_revision
from storage.tables import Department as DepartmentRow
from storage.tables import Person as PersonRow


async def load_org_directory(token: int | None = None) -> OrgDirectory:
    """The current organisation: kept while `org_revision.token` is unchanged (`token`: as the
    caller's transaction just read it, e.g. with the instance row; read here when not given)."""
    return await for_revision("org directory", _read_org_directory, token)


async def _read_org_directory() -> OrgDirectory:
    departments = await DepartmentRow.select(
        DepartmentRow.id,
        DepartmentRow.code,
        DepartmentRow.name_zh,
        DepartmentRow.parent.as_alias("parent_id"),
        DepartmentRow.head_id,
        DepartmentRow.leader_id,
    )
    people = await (
        PersonRow.select(
            PersonRow.id,
            PersonRow.name,
            PersonRow.department.as_alias("department_id"),
            PersonRow.manager_id,
            PersonRow.position.code.as_alias("position"),
            PersonRow.position.roles.as_alias("position_roles"),
        )
        .where(PersonRow.active.eq(True))
        .output(load_json=True)
    )
    heads = {row["head_id"] for row in departments if row["head_id"] is not None}
    leaders = {row["leader_id"] for row in departments if row["leader_id"] is not None}
    directory_people = []
    for row in people:
        roles = roles_from(row["position_roles"] or [], row["id"] in heads, row["id"] in leaders)
        directory_people.append(
            Person(
                id=row["id"],
                name=row["name"],
                department_id=row["department_id"],
                manager_id=row["manager_id"],
                position=row["position"] or "",
                roles=tuple(sorted(str(role) for role in roles)),
            )
        )
    directory_departments = [
        Department(
            id=row["id"],
            name=row["name_zh"],
            code=row["code"],
            parent_id=row["parent_id"],
            head_id=row["head_id"],
            leader_id=row["leader_id"],
        )
        for row in departments
    ]
    admins = sorted(p.id for p in directory_people if Role.PROCESS_ADMIN in p.roles)
    return OrgDirectory.build(directory_departments, directory_people, process_admins=admins)


async def person_names(ids: Iterable[int]) -> dict[int, str]:
    """Names by person id (inactive people included: history keeps their names)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await PersonRow.select(PersonRow.id, PersonRow.name).where(PersonRow.id.is_in(wanted))
    return {row["id"]: row["name"] for row in rows}
