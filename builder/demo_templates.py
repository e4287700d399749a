"""The demo templates `make run` publishes: the guide's processes, one JSON file per form/flow.

Files live in `builder/demo/<key>.form.json` (and `<key>.flow.json` once a flow exists). Each
form is checked with `forms.check_schema` before it is published; a demo file with a problem
stops the seed with the problem's path, so a broken demo never reaches a user.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import msgspec

from forms import check_schema, load_schema
from storage.tables import ProcessTemplate
from storage.templates import publish_version

DEMO_DIR = Path(__file__).parent / "demo"


class DemoTemplate(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    category: str
    description_zh: str
    description_en: str


DEMO_TEMPLATES = [
    DemoTemplate(
        key="marketing-activity",
        category="marketing",
        description_zh="市场活动的预算、方案与执行审批：部门负责人、分管领导审批，超预算权限时财务联审。",
        description_en="Budget, plan and execution of a marketing activity: department head and supervising "
        "leader approve; finance co-reviews large budgets.",
    ),
    DemoTemplate(
        key="expense-reimbursement",
        category="finance",
        description_zh="员工费用报销，附发票，经部门负责人与财务审核。",
        description_en="Employee expense claims with invoices, checked by the department head and finance.",
    ),
    DemoTemplate(
        key="fixed-asset-request",
        category="administration",
        description_zh="固定资产（电脑、设备等）申领。",
        description_en="Requests for fixed assets such as computers and equipment.",
    ),
    DemoTemplate(
        key="supplier-onboarding",
        category="procurement",
        description_zh="新供应商准入审核。",
        description_en="Vetting and admission of a new supplier.",
    ),
    DemoTemplate(
        key="new-employee-onboarding",
        category="hr",
        description_zh="新员工入职：资料提交、设备申请、入职培训、试用期评估。",
        description_en="Onboarding: documents, equipment, training and probation assessment.",
    ),
    DemoTemplate(
        key="cross-department-project",
        category="projects",
        description_zh="跨部门项目协作：需求调研、方案评审、资源协调、进度反馈与验收。",
        description_en="Cross-department projects: research, proposal review, resources, progress and acceptance.",
    ),
    DemoTemplate(
        key="optimization-suggestion",
        category="general",
        description_zh="对流程提出优化建议（流程优化建议表）。",
        description_en="Suggest an improvement to a process (the optimization suggestion sheet).",
    ),
]


class DemoTemplateError(ValueError):
    """A demo file does not load or check cleanly."""


async def seed_demo_templates(now: datetime) -> int:
    """Publish each demo template that does not exist yet; returns how many were published.

    Call inside a write transaction.
    """
    published = 0
    for demo in DEMO_TEMPLATES:
        if await ProcessTemplate.exists().where(ProcessTemplate.key == demo.key):
            continue
        form_path = DEMO_DIR / f"{demo.key}.form.json"
        schema = load_schema(form_path)
        problems = check_schema(schema)
        if problems:
            raise DemoTemplateError(f"{form_path.name}: {problems[0].path}: {problems[0].message}")
        flow_path = DEMO_DIR / f"{demo.key}.flow.json"
        flow = msgspec.json.decode(flow_path.read_bytes()) if flow_path.exists() else None
        await publish_version(
            key=demo.key,
            category=demo.category,
            name_zh=schema.title.zh,
            name_en=schema.title.en,
            description_zh=demo.description_zh,
            description_en=demo.description_en,
            form=msgspec.to_builtins(schema),
            flow=flow,
            change_note="V1.0 demo template",
            effective_from=now,
            now=now,
            published_by=None,
        )
        published += 1
    return published
