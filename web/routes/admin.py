"""The organisation and the audit trail: admin pages and their JSON API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import get, patch, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream, Template

from runtime.insight.cells import BOM, CsvLine, cell
from storage import audit, audit_search
from storage.access import Permission, Principal, scope_filter
from storage.audit_search import AuditFilter
from storage.database import icontains, write_transaction
from storage.org import (
    DepartmentDraft,
    OrgError,
    PersonDraft,
    department_nodes,
    upsert_department,
    upsert_person,
)
from storage.tables import AuditEntry, Person
from web.auth.guards import needs
from web.auth.passwords import MIN_PASSWORD_LENGTH, hash_password
from web.context import AnyRequest, RowId, actor_of, principal_of

PAGE_SIZE = 50
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class PersonOut(msgspec.Struct, kw_only=True):
    id: int
    employee_no: str
    name: str
    email: str
    phone: str
    department_id: int | None
    department: str | None
    position: str | None
    manager_id: int | None
    active: bool
    last_login_at: str | None


class PersonIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    employee_no: Code
    name: Name
    email: Annotated[str, msgspec.Meta(max_length=254)] = ""
    phone: Annotated[str, msgspec.Meta(max_length=32)] = ""
    department: Code | None = None
    position: Code | None = None
    manager: Code | None = None
    password: Annotated[str, msgspec.Meta(min_length=MIN_PASSWORD_LENGTH, max_length=200)] | None = None
    active: bool = True


class DepartmentIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    code: Code
    name_zh: Name
    name_en: Annotated[str, msgspec.Meta(max_length=100)] = ""
    parent: Code | None = None
    head: Code | None = None
    leader: Code | None = None


class Page(msgspec.Struct, kw_only=True):
    items: list[Any]
    total: int
    page: int
    page_size: int


def _person_query(principal: Principal, q: str) -> Any:
    query = Person.select(
        Person.id,
        Person.employee_no,
        Person.name,
        Person.email,
        Person.phone,
        Person.department.as_alias("department_id"),
        Person.department.name_zh.as_alias("department"),
        Person.position.name_zh.as_alias("position"),
        Person.manager_id,
        Person.active,
        Person.last_login_at,
    )
    where = scope_filter(principal, Permission.ORG_VIEW, Person.id, Person.department)
    if q:
        match = icontains(Person.name, q) | icontains(Person.employee_no, q)
        where = match if where is None else where & match
    return query, where


async def people_page(principal: Principal, q: str, page: int) -> Page:
    query, where = _person_query(principal, q)
    count = Person.count()
    if where is not None:
        query = query.where(where)
        count = count.where(where)
    rows = await query.order_by(Person.employee_no).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    items = [
        PersonOut(**{**r, "last_login_at": r["last_login_at"].isoformat() if r["last_login_at"] else None})
        for r in rows
    ]
    return Page(items=items, total=await count, page=page, page_size=PAGE_SIZE)


PageNo = Annotated[int, QueryParameter(ge=1, le=100_000)]
Search = Annotated[str, QueryParameter(max_length=100)]


@get("/admin", opt=needs(Permission.ORG_MANAGE))
async def org_page(request: AnyRequest, q: Search = "", page: PageNo = 1) -> Template:
    principal = principal_of(request)
    people = await people_page(principal, q.strip(), page)
    departments = await department_nodes()
    template = "admin/_people.html" if request.headers.get("hx-request") else "admin/org.html"
    return Template(
        template, context={"section": "admin", "people": people, "departments": departments, "q": q}
    )


AuditDay = Annotated[date | None, QueryParameter(required=False)]


def _audit_filter(who: str, action: str, target: str, since: date | None, until: date | None) -> AuditFilter:
    if since and until and since > until:
        raise ClientException(detail="since: the first day comes after the last", status_code=400)
    return AuditFilter(
        who=who.strip(), action=action.strip(), target=target.strip(), since=since, until=until
    )


@get("/admin/audit", opt=needs(Permission.AUDIT_VIEW))
async def audit_page(
    request: AnyRequest,
    page: PageNo = 1,
    who: Search = "",
    action: Search = "",
    target: Search = "",
    since: AuditDay = None,
    until: AuditDay = None,
) -> Template:
    """The audit trail, newest first, filtered by person, action, target and days (UTC)."""
    selected = _audit_filter(who, action, target, since, until)
    rows, total = await audit_search.search(selected, page=page, page_size=PAGE_SIZE)
    query = urlencode({k: v for k, v in msgspec.structs.asdict(selected).items() if v})
    return Template(
        "admin/audit.html",
        context={
            "section": "admin",
            "entries": rows,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "total": total,
            "filter": selected,
            "query": query,
        },
    )


@get("/admin/audit/export.csv", opt=needs(Permission.AUDIT_VIEW))
async def audit_export(
    request: AnyRequest,
    who: Search = "",
    action: Search = "",
    target: Search = "",
    since: AuditDay = None,
    until: AuditDay = None,
) -> Stream:
    """The filtered trail as CSV, streamed in batches; formula-like text opens as text."""
    selected = _audit_filter(who, action, target, since, until)
    async with write_transaction(AuditEntry._meta.db):
        await audit.record(
            "audit.exported",
            actor_of(request),
            target_type="audit",
            after=msgspec.structs.asdict(selected) | {"since": str(since or ""), "until": str(until or "")},
        )

    async def lines() -> AsyncIterator[str]:
        line = CsvLine()
        yield BOM + line(
            ["id", "at (UTC)", "who", "action", "target type", "target id", "ip", "request id", "hash"]
        )
        async for batch in audit_search.stream(selected):
            for entry in batch:
                yield line(
                    cell(value, UTC)
                    for value in (
                        entry["id"],
                        entry["at"],
                        entry["actor_name"],
                        entry["action"],
                        entry["target_type"],
                        entry["target_id"],
                        entry["ip"],
                        entry["request_id"],
                        entry["hash"],
                    )
                )

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return Stream(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )


@post("/admin/audit/verify", opt=needs(Permission.AUDIT_VIEW), status_code=200)
async def audit_verify_fragment() -> Template:
    report = await audit.verify_chain()
    return Template("admin/_verify.html", context={"report": report})


@get("/api/v1/me", opt=needs(Permission.SIGNED_IN), sync_to_thread=False)
def me(request: AnyRequest) -> dict[str, Any]:
    principal = principal_of(request)
    return {
        "id": principal.id,
        "employee_no": principal.employee_no,
        "name": principal.name,
        "department_id": principal.department_id,
        "roles": sorted(principal.roles),
    }


@get("/api/v1/people", opt=needs(Permission.ORG_VIEW))
async def list_people(request: AnyRequest, q: Search = "", page: PageNo = 1) -> Page:
    """People within the caller's reach: themselves, their departments, or everyone for admins."""
    return await people_page(principal_of(request), q.strip(), page)


@get("/api/v1/people/{person_id:int}", opt=needs(Permission.ORG_VIEW))
async def get_person(request: AnyRequest, person_id: RowId) -> PersonOut:
    principal = principal_of(request)
    query, where = _person_query(principal, "")
    clause = Person.id == person_id
    row = await query.where(clause if where is None else clause & where).first()
    if row is None:
        raise NotFoundException(f"person {person_id} not found or outside your reach")
    row["last_login_at"] = row["last_login_at"].isoformat() if row["last_login_at"] else None
    return PersonOut(**row)


@get("/api/v1/departments", opt=needs(Permission.SIGNED_IN))
async def list_departments() -> list[dict[str, Any]]:
    return [msgspec.structs.asdict(n) for n in await department_nodes()]


@post("/api/v1/departments", opt=needs(Permission.ORG_MANAGE), status_code=201)
async def save_department(request: AnyRequest, data: JSONBody[DepartmentIn]) -> dict[str, Any]:
    """Create a department, or update the one with this code."""
    draft = DepartmentDraft(
        code=data.code,
        name_zh=data.name_zh,
        name_en=data.name_en,
        parent_code=data.parent,
        head_employee_no=data.head,
        leader_employee_no=data.leader,
    )
    async with write_transaction(Person._meta.db):
        try:
            dept_id, before, after = await upsert_department(draft)
        except OrgError as exc:
            raise ClientException(str(exc), status_code=422) from exc
        await audit.record(
            "org.department_saved",
            actor_of(request),
            target_type="department",
            target_id=dept_id,
            before=before,
            after=after,
        )
    return {"id": dept_id}


@post("/api/v1/people", opt=needs(Permission.ORG_MANAGE), status_code=201)
async def save_person(request: AnyRequest, data: JSONBody[PersonIn]) -> dict[str, Any]:
    """Create a person, or update the one with this employee number."""
    return await _save_person(request, data)


@patch("/api/v1/people/{employee_no:str}", opt=needs(Permission.ORG_MANAGE))
async def update_person(
    request: AnyRequest, employee_no: FromPath[str], data: JSONBody[PersonIn]
) -> dict[str, Any]:
    if data.employee_no != employee_no:
        raise ClientException("employee_no in the body must match the path", status_code=422)
    exists = await Person.exists().where(Person.employee_no == employee_no)
    if not exists:
        raise NotFoundException(f"person {employee_no} not found")
    return await _save_person(request, data)


async def _save_person(request: AnyRequest, data: PersonIn) -> dict[str, Any]:
    draft = PersonDraft(
        employee_no=data.employee_no,
        name=data.name,
        email=data.email,
        phone=data.phone,
        department_code=data.department,
        position_code=data.position,
        manager_employee_no=data.manager,
        password_hash=hash_password(data.password) if data.password else None,
        active=data.active,
    )
    async with write_transaction(Person._meta.db):
        try:
            person_id, before, after = await upsert_person(draft)
        except OrgError as exc:
            raise ClientException(str(exc), status_code=422) from exc
        await audit.record(
            "org.person_saved",
            actor_of(request),
            target_type="person",
            target_id=person_id,
            before=before,
            after=after,
        )
    return {"id": person_id}


@get("/api/v1/audit", opt=needs(Permission.AUDIT_VIEW))
async def list_audit(
    page: PageNo = 1,
    who: Search = "",
    action: Search = "",
    target: Search = "",
    since: AuditDay = None,
    until: AuditDay = None,
) -> Page:
    """Audit entries, newest first; `action` ending in "." matches every action under it."""
    selected = _audit_filter(who, action, target, since, until)
    rows, total = await audit_search.search(selected, page=page, page_size=PAGE_SIZE)
    items = [{**r, "at": r["at"].isoformat()} for r in rows]
    return Page(items=items, total=total, page=page, page_size=PAGE_SIZE)


ROUTES = [
    org_page,
    audit_page,
    audit_export,
    audit_verify_fragment,
    me,
    list_people,
    get_person,
    list_departments,
    save_department,
    save_person,
    update_person,
    list_audit,
]
