"""The organisation: departments (a tree), people, positions, and who reaches what.

Reads here build the `Principal` that authorization uses; writes check the person ids that
are kept as plain integers (heads, leaders, managers), see `storage.tables`.

`org_token` is the organisation's revision: triggers on `person`, `department` and `position`
give `org_revision.token` a fresh random value whenever a row is inserted or deleted or a
column read here or by `runtime.service.org_directory` changes (migration "org revision
triggers"). Principals are cached per process while it is unchanged, so a request pays one
small query for who its caller is, not the person and the department tree. `for_revision`
keeps any such value (the engine's org directory too).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, TypeVar, cast

import msgspec

from storage.access import Principal, roles_from
from storage.raw_sql import fetch
from storage.tables import Department, OrgRevision, Person, Position

KEPT_PER_REVISION = 10_000
"""Values `for_revision` keeps per process (principals, the org directory) for one revision."""
_T = TypeVar("_T")


class OrgError(ValueError):
    """An organisation change refers to something that does not exist or would break the tree."""


class DepartmentNode(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    code: str
    name_zh: str
    name_en: str
    parent_id: int | None
    head_id: int | None
    leader_id: int | None


async def department_nodes() -> list[DepartmentNode]:
    rows = await Department.select(
        Department.id,
        Department.code,
        Department.name_zh,
        Department.name_en,
        Department.parent.as_alias("parent_id"),
        Department.head_id,
        Department.leader_id,
    ).order_by(Department.id)
    return [DepartmentNode(**row) for row in rows]


def subtree(nodes: Iterable[DepartmentNode], roots: Iterable[int]) -> frozenset[int]:
    """The given departments and every department below them."""
    children: dict[int | None, list[int]] = {}
    for node in nodes:
        children.setdefault(node.parent_id, []).append(node.id)
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(children.get(current, ()))
    return frozenset(seen)


ORG_TOKEN_SQL = 'SELECT "token" FROM "org_revision" WHERE "id" = 1'
"""The token as a query; a command's first read carries it as a scalar subquery."""


async def org_token() -> int | None:
    """The organisation's current revision token; None when unknown (no row: do not cache)."""
    rows = await fetch(OrgRevision, ORG_TOKEN_SQL)
    return int(rows[0]["token"]) if rows else None


# (token, values by key), replaced as a whole when the token changes
_kept: tuple[int | None, dict[Hashable, Any]] = (None, {})


async def for_revision(key: Hashable, load: Callable[[], Awaitable[_T]], token: int | None = None) -> _T:
    """`load()`, kept per process under `key` while the organisation's token is unchanged
    (loaded every time while the token is unknown). `token`: the token as the caller's own
    query just read it, in the same transaction (read here when not given)."""
    if token is None:
        token = await org_token()
    kept_token, kept = _kept
    if token is not None and token == kept_token and key in kept:
        return cast(_T, kept[key])
    value = await load()
    if token is not None:
        _keep(token, key, value)
    return value


def _keep(token: int, key: Hashable, value: Any) -> None:
    global _kept
    kept_token, kept = _kept
    if kept_token != token or len(kept) >= KEPT_PER_REVISION:
        kept = {}
        _kept = (token, kept)
    kept[key] = value


async def load_principal(person_id: int) -> Principal | None:
    """The active person with their roles and reach, or None when unknown or deactivated
    (kept while the organisation is unchanged)."""
    return await for_revision(("principal", person_id), lambda: _read_principal(person_id))


async def _read_principal(person_id: int) -> Principal | None:
    row = await (
        Person.select(
            Person.id,
            Person.employee_no,
            Person.name,
            Person.department.as_alias("department_id"),
            Person.locale,
            Person.position.roles.as_alias("position_roles"),
        )
        .where((Person.id == person_id) & (Person.active.eq(True)))
        .first()
        .output(load_json=True)
    )
    if row is None:
        return None
    nodes = await department_nodes()
    headed = [n.id for n in nodes if n.head_id == person_id]
    supervised = [n.id for n in nodes if n.leader_id == person_id]
    return Principal(
        id=row["id"],
        employee_no=row["employee_no"],
        name=row["name"],
        department_id=row["department_id"],
        roles=roles_from(row["position_roles"] or [], bool(headed), bool(supervised)),
        reach=subtree(nodes, headed + supervised),
        locale=row["locale"] or "zh-CN",
    )


async def person_id_by_employee_no(employee_no: str) -> int | None:
    row = await Person.select(Person.id).where(Person.employee_no == employee_no).first()
    return row["id"] if row else None


async def position_id_by_code(code: str) -> int | None:
    row = await Position.select(Position.id).where(Position.code == code).first()
    return row["id"] if row else None


async def department_id_by_code(code: str) -> int | None:
    row = await Department.select(Department.id).where(Department.code == code).first()
    return row["id"] if row else None


class PersonDraft(msgspec.Struct, frozen=True, kw_only=True):
    """A person as an admin or an import describes them (references by code)."""

    employee_no: str
    name: str
    email: str = ""
    phone: str = ""
    department_code: str | None = None
    position_code: str | None = None
    manager_employee_no: str | None = None
    password_hash: str | None = None
    active: bool = True


class DepartmentDraft(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name_zh: str
    name_en: str = ""
    parent_code: str | None = None
    head_employee_no: str | None = None
    leader_employee_no: str | None = None


async def upsert_department(
    draft: DepartmentDraft,
) -> tuple[int, dict[str, object] | None, dict[str, object]]:
    """Create or update a department by code; returns (id, before, after). Call in a transaction."""
    parent_id = await _required(department_id_by_code, draft.parent_code, "parent department")
    head_id = await _required(person_id_by_employee_no, draft.head_employee_no, "head")
    leader_id = await _required(person_id_by_employee_no, draft.leader_employee_no, "supervising leader")
    values: dict[str, Any] = {
        "name_zh": draft.name_zh,
        "name_en": draft.name_en or draft.name_zh,
        "head_id": head_id,
        "leader_id": leader_id,
    }
    existing = await Department.select().where(Department.code == draft.code).first()
    if existing is None:
        rows = await Department.insert(Department(code=draft.code, parent=parent_id, **values)).returning(
            Department.id
        )
        return int(rows[0]["id"]), None, {"code": draft.code, "parent_id": parent_id, **values}
    if parent_id is not None:
        nodes = await department_nodes()
        if parent_id in subtree(nodes, [existing["id"]]):
            raise OrgError(f"department {draft.code}: parent {draft.parent_code} is inside it (a cycle)")
    await Department.update(
        {Department.parent: parent_id, **{getattr(Department, k): v for k, v in values.items()}}
    ).where(Department.id == existing["id"])
    before = {k: existing[k] for k in values} | {"parent_id": existing["parent"]}
    return int(existing["id"]), before, {"parent_id": parent_id, **values}


async def upsert_person(draft: PersonDraft) -> tuple[int, dict[str, object] | None, dict[str, object]]:
    """Create or update a person by employee number; returns (id, before, after)."""
    department_id = await _required(department_id_by_code, draft.department_code, "department")
    position_id = await _required(position_id_by_code, draft.position_code, "position")
    manager_id = await _required(person_id_by_employee_no, draft.manager_employee_no, "manager")
    values: dict[str, Any] = {
        "name": draft.name,
        "email": draft.email,
        "phone": draft.phone,
        "department": department_id,
        "position": position_id,
        "manager_id": manager_id,
        "active": draft.active,
    }
    existing = (
        await Person.select(*(getattr(Person, k) for k in values), Person.id)
        .where(Person.employee_no == draft.employee_no)
        .first()
    )
    if existing is None:
        person = Person(employee_no=draft.employee_no, password_hash=draft.password_hash or "", **values)
        rows = await Person.insert(person).returning(Person.id)
        return int(rows[0]["id"]), None, {"employee_no": draft.employee_no, **values}
    changes = {getattr(Person, k): v for k, v in values.items()}
    if draft.password_hash:
        changes[Person.password_hash] = draft.password_hash
    await Person.update(changes).where(Person.id == existing["id"])
    before = {k: existing[k] for k in values}
    return int(existing["id"]), before, values


async def _required(lookup, code: str | None, what: str) -> int | None:  # type: ignore[no-untyped-def]
    if not code:
        return None
    found = await lookup(code)
    if found is None:
        raise OrgError(f"{what} {code!r} does not exist")
    return int(found)
