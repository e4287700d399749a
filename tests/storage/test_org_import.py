"""`formflow import-org FILE`: a CSV or XLSX of departments and people is imported all or nothing;
one bad row imports nothing and the report names its row, column and reason."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from storage.tables import AuditEntry, Department, Person
from web import cli

HEADER = ["type", "code", "name", "name_en", "parent", "head", "leader"]
HEADER += ["email", "phone", "department", "position", "manager"]


def department(code: str, name: str, parent: str = "", head: str = "", leader: str = "") -> list[str]:
    return ["department", code, name, "", parent, head, leader, "", "", "", "", ""]


def person(
    code: str,
    name: str,
    dept: str,
    position: str = "staff",
    manager: str = "",
    email: str = "",
    phone: str = "",
) -> list[str]:
    return ["person", code, name, "", "", "", "", email, phone, dept, position, manager]


# Rows 2-6 of a valid file. Forward references: AI's parent RND is on row 3, its head e5002 on
# row 4, RND's head e5001 and e5002's manager e5001 on row 5. HQ, MKT, e3001, e2001 already exist.
VALID_ROWS = [
    department("AI", "人工智能组", parent="RND", head="e5002"),
    department("RND", "研发部", parent="HQ", head="e5001", leader="e3001"),
    person("e5002", "孙悦", "AI", manager="e5001", email="sun@example.com", phone="13800000002"),
    person("e5001", "钱进", "RND", "manager", manager="e3001", phone="+86 138-0000-0001"),
    person("e1001", "张伟", "MKT", manager="e2001", email="zhang.wei@example.com"),  # an update
]


def write_csv(path: Path, rows: list[list[str]], header: list[str] | None = HEADER) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as f:  # Excel's UTF-8 CSV has a BOM
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list[str]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    for row in rows:
        sheet.append([value or None for value in row])
    workbook.save(path)
    return path


async def import_org(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `formflow import-org ...` (in a thread: the CLI runs its own event loop)."""
    capsys.readouterr()
    code = await asyncio.to_thread(cli.main, ["import-org", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def org_snapshot() -> dict[str, Any]:
    """Everything an import may change: departments, people and the audit trail."""
    return {
        "departments": await Department.select().order_by(Department.id),
        "people": await Person.select().order_by(Person.id),
        "audit": await AuditEntry.count(),
    }


async def ids_by_number() -> dict[str, int]:
    return {r["employee_no"]: r["id"] for r in await Person.select(Person.employee_no, Person.id)}


async def department_row(code: str) -> dict[str, Any]:
    return (
        await Department.select(
            Department.parent.code.as_alias("parent"), Department.head_id, Department.leader_id
        )
        .where(Department.code == code)
        .first()
    )


async def person_row(employee_no: str) -> dict[str, Any]:
    return (
        await Person.select(
            Person.department.code.as_alias("department"),
            Person.position.code.as_alias("position"),
            Person.manager_id,
            Person.email,
            Person.phone,
        )
        .where(Person.employee_no == employee_no)
        .first()
    )


# --- a valid file ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("writer", "name"), [(write_csv, "org.csv"), (write_xlsx, "org.xlsx")])
async def test_a_valid_file_imports_every_row_with_forward_references(
    db: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], writer: Any, name: str
) -> None:
    path = writer(tmp_path / name, VALID_ROWS)
    code, out, err = await import_org(capsys, str(path))
    assert code == 0, err
    assert "imported 2 departments and 3 people" in out
    assert "10/10" in err, "a progress bar counts the writes"

    assert await Department.count() == 7 + 2
    assert await Person.count() == 11 + 2
    ids = await ids_by_number()
    assert await department_row("RND") == {"parent": "HQ", "head_id": ids["e5001"], "leader_id": ids["e3001"]}
    assert await department_row("AI") == {"parent": "RND", "head_id": ids["e5002"], "leader_id": None}
    assert await person_row("e5002") == {
        "department": "AI",
        "position": "staff",
        "manager_id": ids["e5001"],
        "email": "sun@example.com",
        "phone": "13800000002",
    }
    assert (await person_row("e5001"))["manager_id"] == ids["e3001"]
    assert (await person_row("e1001"))["email"] == "zhang.wei@example.com"

    entry = (
        await AuditEntry.select().where(AuditEntry.action == "org.imported").first().output(load_json=True)
    )
    assert entry["after"] == {"departments": ["RND", "AI"], "people": ["e5002", "e5001", "e1001"]}


async def test_dry_run_checks_the_file_and_writes_nothing(
    db: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await org_snapshot()
    code, out, _err = await import_org(capsys, str(write_csv(tmp_path / "org.csv", VALID_ROWS)), "--dry-run")
    assert code == 0
    assert "org.csv is valid: 2 departments, 3 people" in out
    assert await org_snapshot() == before


# --- one bad row imports nothing ------------------------------------------------------------------

BAD_ROW = len(VALID_ROWS) + 2  # the header is row 1

ONE_BAD_ROW = [
    pytest.param(
        person("e5003", "周七", "NOPE"),
        "department",
        "department 'NOPE' is neither in the file nor in the system",
        id="unknown department",
    ),
    pytest.param(
        person("e5003", "周七", "RND", position="ceo"),
        "position",
        "position 'ceo' is neither in the file nor in the system",
        id="unknown position",
    ),
    pytest.param(
        person("e5003", "周七", "RND", manager="e0000"),
        "manager",
        "person 'e0000' is neither in the file nor in the system",
        id="unknown manager",
    ),
    pytest.param(
        person("e5003", "周七", "RND", email="zhou.example.com"),
        "email",
        "'zhou.example.com' is not an e-mail address",
        id="bad e-mail",
    ),
    pytest.param(
        person("e5003", "周七", "RND", phone="call me"),
        "phone",
        "'call me' is not a phone number",
        id="bad phone",
    ),
    pytest.param(
        person("e5001", "钱进二", "RND"), "code", "'e5001' already appears on row 5", id="duplicate code"
    ),
    pytest.param(person("e 5003", "周七", "RND"), "code", "required: 1-32 letters", id="bad code"),
    pytest.param(person("e5003", "", "RND"), "name", "required", id="missing name"),
    pytest.param(
        ["staff", "e5003", "周七", *[""] * 9], "type", "must be 'department' or 'person'", id="bad type"
    ),
    pytest.param(
        department("LOOP", "环", parent="LOOP"),
        "parent",
        "a department cannot be its own parent",
        id="own parent",
    ),
    pytest.param(
        department("HQ", "总公司", parent="MKT"),
        "parent",
        "MKT",
        id="parent cycle through the existing tree",
    ),
    pytest.param(
        person("e5003", "周七", "RND", email="z" * 250 + "@example.com"),
        "email",
        "email",
        id="e-mail over 254 characters",
    ),
]


@pytest.mark.parametrize(("bad_row", "column", "reason"), ONE_BAD_ROW)
async def test_one_bad_row_imports_nothing_and_is_reported(
    db: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], bad_row: list[str], column: str, reason: str
) -> None:
    before = await org_snapshot()
    path = write_csv(tmp_path / "org.csv", [*VALID_ROWS, bad_row])
    code, _out, err = await import_org(capsys, str(path))
    assert code == 1
    assert "org.csv: " in err and "nothing was imported" in err
    assert f"row {BAD_ROW}, column {column}: " in err
    assert reason in err.split(f"row {BAD_ROW}, column {column}: ", 1)[1]
    assert await org_snapshot() == before


async def test_a_parent_cycle_inside_the_file_names_every_row_on_it(
    db: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        department("A", "甲", parent="B"),
        department("B", "乙", parent="C"),
        department("C", "丙", parent="A"),
    ]
    before = await org_snapshot()
    code, _out, err = await import_org(capsys, str(write_csv(tmp_path / "org.csv", rows)))
    assert code == 1
    for row in (2, 3, 4):
        assert f"row {row}, column parent: the parent chain loops back to this department" in err
    assert await org_snapshot() == before


async def test_the_report_lists_every_bad_row_in_order(
    db: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [person("e5003", "周七", "NOPE"), *VALID_ROWS, person("e5004", "吴八", "RND", email="bad")]
    code, _out, err = await import_org(capsys, str(write_csv(tmp_path / "org.csv", rows)))
    assert code == 1
    assert "2 problem(s)" in err
    assert err.index("row 2, column department") < err.index("row 8, column email")


# --- files that cannot be read ----------------------------------------------------------------------


def text_file(name: str, content: bytes) -> Any:
    def make(tmp_path: Path) -> Path:
        path = tmp_path / name
        path.write_bytes(content)
        return path

    return make


def headerless_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "org.csv", VALID_ROWS, header=None)


CSV_TEXT = ",".join(HEADER).encode() + b"\n" + ",".join(VALID_ROWS[1]).encode()

UNREADABLE_FILES = [
    pytest.param(text_file("org.txt", CSV_TEXT), "expected a .csv or .xlsx file", id="a .txt file"),
    pytest.param(text_file("org.xls", CSV_TEXT), "expected a .csv or .xlsx file", id="an old .xls name"),
    pytest.param(headerless_csv, "header lacks the column(s) type, code, name", id="no header"),
    pytest.param(text_file("org.csv", b""), "the file is empty", id="empty"),
    pytest.param(
        text_file("org.csv", b"type,code,name,salary\n"), "unknown column(s) salary", id="unknown column"
    ),
    pytest.param(
        text_file("org.csv", ",".join(HEADER).encode() + "\nperson,e5009,钱九".encode("gbk")),
        "not UTF-8 text",
        id="GBK-encoded CSV",
    ),
    pytest.param(text_file("org.xlsx", CSV_TEXT), "not a readable XLSX workbook", id="text named .xlsx"),
    pytest.param(lambda tmp_path: tmp_path / "missing.csv", "does not exist", id="missing"),
]


@pytest.mark.parametrize(("make_file", "message"), UNREADABLE_FILES)
async def test_an_unreadable_file_is_refused_with_exit_2(
    db: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], make_file: Any, message: str
) -> None:
    before = await org_snapshot()
    code, _out, err = await import_org(capsys, str(make_file(tmp_path)))
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert await org_snapshot() == before
