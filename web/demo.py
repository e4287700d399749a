"""The demo organisation that `make run` seeds (password `formflow` for everyone).

These are demo credentials: never seed them into a production database.
"""

from __future__ import annotations

from datetime import UTC, datetime

from builder.demo_templates import seed_demo_templates
from storage import audit
from storage.access import Role
from storage.database import write_transaction
from storage.org import DepartmentDraft, PersonDraft
from storage.org_import import ImportPlan, apply_plan
from storage.tables import Person, Position
from web.auth.passwords import hash_password

DEMO_PASSWORD = "formflow"

POSITIONS = [
    ("staff", "员工", "Staff", []),
    ("manager", "部门经理", "Department manager", []),
    ("vice-president", "分管副总", "Vice president", []),
    ("finance-specialist", "财务专员", "Finance specialist", [Role.FINANCE_SPECIALIST]),
    ("system-admin", "系统管理员", "System administrator", [Role.SYSTEM_ADMIN, Role.PROCESS_ADMIN]),
]

# code, Chinese name, English name, parent, head, supervising leader
DEPARTMENTS = [
    ("HQ", "总公司", "Headquarters", None, None, None),
    ("MKT", "市场部", "Marketing", "HQ", "e2001", "e3001"),
    ("PRD", "产品部", "Product", "HQ", "e2002", "e3001"),
    ("FIN", "财务部", "Finance", "HQ", "e4002", None),
    ("HR", "人力资源部", "Human Resources", "HQ", "e2003", None),
    ("ADM", "行政部", "Administration", "HQ", "e2004", None),
    ("PUR", "采购部", "Procurement", "HQ", "e2005", None),
]

# employee number, name, department, position, manager
PEOPLE = [
    ("admin", "系统管理员", "HQ", "system-admin", None),
    ("e3001", "李强", "HQ", "vice-president", None),
    ("e2001", "王芳", "MKT", "manager", "e3001"),
    ("e1001", "张伟", "MKT", "staff", "e2001"),
    ("e2002", "赵敏", "PRD", "manager", "e3001"),
    ("e1002", "杨磊", "PRD", "staff", "e2002"),
    ("e4002", "陈静", "FIN", "manager", None),
    ("e4001", "刘洋", "FIN", "finance-specialist", "e4002"),
    ("e2003", "黄丽", "HR", "manager", None),
    ("e2004", "周杰", "ADM", "manager", None),
    ("e2005", "吴刚", "PUR", "manager", None),
]


async def seed_demo() -> bool:
    """Create the demo organisation and templates once; returns False when already there."""
    async with write_transaction(Person._meta.db):
        if await Person.exists().where(Person.employee_no == "admin"):
            await seed_demo_templates(datetime.now(UTC))
            return False
        for code, zh, en, roles in POSITIONS:
            await Position.insert(Position(code=code, name_zh=zh, name_en=en, roles=[str(r) for r in roles]))
        password = hash_password(DEMO_PASSWORD)
        plan = ImportPlan(
            departments=[
                DepartmentDraft(
                    code=code,
                    name_zh=zh,
                    name_en=en,
                    parent_code=parent,
                    head_employee_no=head,
                    leader_employee_no=leader,
                )
                for code, zh, en, parent, head, leader in DEPARTMENTS
            ],
            people=[
                PersonDraft(
                    employee_no=employee_no,
                    name=name,
                    email=f"{employee_no}@demo.formflow.local",
                    department_code=dept,
                    position_code=position,
                    manager_employee_no=manager,
                    password_hash=password,
                )
                for employee_no, name, dept, position, manager in PEOPLE
            ],
        )
        await apply_plan(plan)  # the import's order resolves heads, leaders and managers
        templates = await seed_demo_templates(datetime.now(UTC))
        await audit.record(
            "org.demo_seeded",
            audit.Actor(name="formflow seed-demo"),
            after={"departments": len(DEPARTMENTS), "people": len(PEOPLE), "templates": templates},
        )
    return True
