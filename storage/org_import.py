"""Importing departments and people from a CSV or XLSX file, all or nothing.

One sheet, one header row, a row per department or person (`type` column):

    type,code,name,name_en,parent,head,leader,email,phone,department,position,manager
    department,MKT,市场部,Marketing,HQ,e2001,e3001,,,,,
    person,e1001,张伟,,,,,zhang@example.com,13800000000,MKT,staff,e2001

A department row: `code`, `name` (Chinese), `name_en`, `parent` (a department code), `head` and
`leader` (employee numbers). A person row: `code` is the employee number; `department`,
`position` (a position code) and `manager` (an employee number). References may point at rows
of the same file or at what is already in the database; existing codes are updated.

Every row is checked before anything is written; a file with any bad row imports nothing and
the report names each bad row and the reason.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import msgspec

from storage.org import (
    DepartmentDraft,
    PersonDraft,
    upsert_department,
    upsert_person,
)
from storage.tables import Department, Person, Position

COLUMNS = (
    "type",
    "code",
    "name",
    "name_en",
    "parent",
    "head",
    "leader",
    "email",
    "phone",
    "department",
    "position",
    "manager",
)
_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 -]{5,20}$")
MAX_ROWS = 100_000


class RowError(msgspec.Struct, frozen=True):
    row: int  # 1-based line number in the file, the header being row 1
    column: str
    reason: str


class ImportFileError(ValueError):
    """The file cannot be read at all (format, encoding, header)."""


class ImportPlan(msgspec.Struct, frozen=True, kw_only=True):
    departments: list[DepartmentDraft]
    people: list[PersonDraft]


class ImportResult(msgspec.Struct, frozen=True, kw_only=True):
    departments: int
    people: int


def read_rows(path: Path) -> list[dict[str, str]]:
    """The file's rows as dicts of stripped strings, keyed by lower-case header."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        table = list(csv.reader(io.StringIO(text)))
    elif suffix == ".xlsx":
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:
            raise ImportFileError(f"{path.name}: not a readable XLSX workbook ({exc})") from exc
        sheet = workbook.worksheets[0]
        table = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        workbook.close()
    else:
        raise ImportFileError(f"{path.name}: expected a .csv or .xlsx file")
    if not table:
        raise ImportFileError(f"{path.name}: the file is empty")
    header = [h.strip().lower() for h in table[0]]
    missing = [c for c in ("type", "code", "name") if c not in header]
    if missing:
        raise ImportFileError(f"{path.name}: header lacks the column(s) {', '.join(missing)}")
    unknown = [h for h in header if h and h not in COLUMNS]
    if unknown:
        raise ImportFileError(
            f"{path.name}: unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}"
        )
    if len(table) - 1 > MAX_ROWS:
        raise ImportFileError(f"{path.name}: more than {MAX_ROWS} rows")
    rows = []
    for values in table[1:]:
        row = {h: (values[i].strip() if i < len(values) else "") for i, h in enumerate(header) if h}
        rows.append(row)
    return rows


def plan_import(
    rows: list[dict[str, str]],
    existing_departments: Mapping[str, str | None],
    existing_people: Iterable[str],
    existing_positions: Iterable[str],
) -> tuple[ImportPlan | None, list[RowError]]:
    """Check every row against the file and the database; a plan only when there is no error.

    `existing_departments` maps each department code in the database to its parent's code, so
    a file cannot hang a department below one of its own descendants either.
    """
    errors: list[RowError] = []
    dept_codes = set(existing_departments)
    person_codes = set(existing_people)
    positions = set(existing_positions)
    seen: dict[tuple[str, str], int] = {}
    for line, row in enumerate(rows, start=2):
        kind = row.get("type", "").lower()
        code = row.get("code", "")
        if kind not in ("department", "person"):
            if any(row.values()):
                errors.append(RowError(line, "type", f"must be 'department' or 'person', not {kind!r}"))
            continue
        if (kind, code) in seen:
            errors.append(RowError(line, "code", f"{code!r} already appears on row {seen[kind, code]}"))
        seen[kind, code] = line
        (dept_codes if kind == "department" else person_codes).add(code)

    departments: list[DepartmentDraft] = []
    people: list[PersonDraft] = []
    for line, row in enumerate(rows, start=2):
        kind = row.get("type", "").lower()
        if kind not in ("department", "person"):
            continue
        get = row.get
        code = get("code", "")
        if not _CODE.match(code):
            errors.append(RowError(line, "code", "required: 1-32 letters, digits, '.', '_' or '-'"))
        if not get("name"):
            errors.append(RowError(line, "name", "required"))
        elif len(get("name", "")) > 100:
            errors.append(RowError(line, "name", "longer than 100 characters"))
        if kind == "department":
            for column, known, what in (
                ("parent", dept_codes, "department"),
                ("head", person_codes, "person"),
                ("leader", person_codes, "person"),
            ):
                if get(column) and get(column) not in known:
                    errors.append(
                        RowError(
                            line, column, f"{what} {get(column)!r} is neither in the file nor in the system"
                        )
                    )
            if len(get("name_en", "")) > 100:
                errors.append(RowError(line, "name_en", "longer than 100 characters"))
            if get("parent") == code:
                errors.append(RowError(line, "parent", "a department cannot be its own parent"))
            departments.append(
                DepartmentDraft(
                    code=code,
                    name_zh=get("name", ""),
                    name_en=get("name_en", ""),
                    parent_code=get("parent") or None,
                    head_employee_no=get("head") or None,
                    leader_employee_no=get("leader") or None,
                )
            )
        else:
            for column, limit in (("email", 254), ("phone", 32), ("name_en", 100)):
                if len(get(column, "")) > limit:
                    errors.append(RowError(line, column, f"{column} is longer than {limit} characters"))
            if get("email") and not _EMAIL.match(get("email", "")):
                errors.append(RowError(line, "email", f"{get('email')!r} is not an e-mail address"))
            if get("phone") and not _PHONE.match(get("phone", "")):
                errors.append(RowError(line, "phone", f"{get('phone')!r} is not a phone number"))
            for column, known, what in (
                ("department", dept_codes, "department"),
                ("position", positions, "position"),
                ("manager", person_codes, "person"),
            ):
                if get(column) and get(column) not in known:
                    errors.append(
                        RowError(
                            line, column, f"{what} {get(column)!r} is neither in the file nor in the system"
                        )
                    )
            if get("manager") == code:
                errors.append(RowError(line, "manager", "a person cannot be their own manager"))
            people.append(
                PersonDraft(
                    employee_no=code,
                    name=get("name", ""),
                    email=get("email", ""),
                    phone=get("phone", ""),
                    department_code=get("department") or None,
                    position_code=get("position") or None,
                    manager_employee_no=get("manager") or None,
                )
            )
    errors.extend(_parent_cycles(departments, rows, existing_departments))
    if errors:
        return None, sorted(errors, key=lambda e: (e.row, e.column))
    return ImportPlan(departments=_parents_first(departments), people=people), []


async def existing_codes() -> tuple[dict[str, str | None], list[str], list[str]]:
    departments = {
        r["code"]: r["parent_code"]
        for r in await Department.select(Department.code, Department.parent.code.as_alias("parent_code"))
    }
    people = [r["employee_no"] for r in await Person.select(Person.employee_no)]
    positions = [r["code"] for r in await Position.select(Position.code)]
    return departments, people, positions


async def apply_plan(plan: ImportPlan, progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Write the plan. Call inside one write transaction: a failure leaves nothing behind.

    Order resolves references inside the file: departments without heads, then people without
    managers, then people with managers, then departments with heads and leaders.
    """
    total = len(plan.departments) * 2 + len(plan.people) * 2
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    for draft in plan.departments:
        # New departments first appear without head and leader: those people may not exist
        # yet. Existing ones keep theirs until the last pass sets the file's values.
        if not await Department.exists().where(Department.code == draft.code):
            await upsert_department(
                msgspec.structs.replace(draft, head_employee_no=None, leader_employee_no=None)
            )
        step()
    for draft in plan.people:
        exists = await Person.exists().where(Person.employee_no == draft.employee_no)
        if not exists:
            await upsert_person(msgspec.structs.replace(draft, manager_employee_no=None))
        step()
    for draft in plan.people:
        await upsert_person(draft)
        step()
    for draft in plan.departments:
        await upsert_department(draft)
        step()
    return ImportResult(departments=len(plan.departments), people=len(plan.people))


def _parents_first(departments: list[DepartmentDraft]) -> list[DepartmentDraft]:
    by_code = {d.code: d for d in departments}
    ordered: list[DepartmentDraft] = []
    placed: set[str] = set()

    def place(draft: DepartmentDraft) -> None:
        if draft.code in placed:
            return
        placed.add(draft.code)
        if draft.parent_code in by_code:
            place(by_code[draft.parent_code])
        ordered.append(draft)

    for draft in departments:
        place(draft)
    return ordered


def _parent_cycles(
    departments: list[DepartmentDraft], rows: list[dict[str, str]], existing: Mapping[str, str | None]
) -> list[RowError]:
    """Rows whose parent chain, through the file and the database, comes back to them."""
    parent = dict(existing) | {d.code: d.parent_code for d in departments}
    line_of = {
        row.get("code"): i
        for i, row in enumerate(rows, start=2)
        if row.get("type", "").lower() == "department"
    }
    errors = []
    for draft in departments:
        start = draft.code
        chain = [start]
        current = parent.get(start)
        while current is not None and current not in chain[1:]:
            chain.append(current)
            if current == start:
                loop = " → ".join(chain)
                errors.append(
                    RowError(
                        line_of[start], "parent", f"the parent chain loops back to this department: {loop}"
                    )
                )
                break
            current = parent.get(current)
    return errors
