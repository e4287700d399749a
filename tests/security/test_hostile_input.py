"""Hostile input beyond tests/web/test_bad_input.py and tests/forms/test_hostile_input.py.

- Markup in a form label, the template's name, a field value, an attachment's file name, a comment
  and a return note is shown as text (escaped) on the request page, the print page, the inbox,
  my requests and the notifications; formula-like text is neutralised in CSV and XLSX exports.
- JSON nested 10,000 deep and 20 MB bodies get a 4xx on the instance, task, designer and page
  routes, and write nothing.
- A session id planted before sign-in is never the one after it; a wrong CSRF token is refused and
  writes nothing; failed token requests count towards the same lockout as the login page.
- CEL expressions that would run long or build huge values are bounded: refused at design time
  with a message, or failing fast at run time.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import openpyxl
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from forms import check_schema, compile_form
from forms.context import ValidationContext
from forms.expressions import FAILED, Expression
from runtime.flow.conditions import Condition, ConditionSyntaxError
from runtime.notifications import deliver
from storage.database import write_transaction
from storage.tables import ALL_TABLES, Department, OutboxMessage, UserSession
from storage.templates import publish_version
from tests.forms.conftest import field, schema
from tests.service.api_client import ApiUser, api_user, ok
from tests.service.support import DEMO_DIR, Clock, demo_flow, marketing_data
from tests.web.session import Client, sign_in
from tests.web.test_attachments import pdf

BASE_URL = "http://testserver.local"
HTML = {"accept": "text/html"}
TEMPLATE = "hostile-activity"

SCRIPT = '<script>alert("xss")</script>'
IMG = "<img src=x onerror=alert(2)>"
SVG = "<svg onload=alert(3)>"
FORMULA = '=HYPERLINK("http://evil.example","点我")'
TITLE = f"{FORMULA}{SCRIPT}"  # the request's title: shown on pages, in notifications and exports
FILE_NAME = f"{IMG}.pdf"  # no slash: a path separator would cut the name
LABEL = f"活动名称{SVG}"
RAW = (SCRIPT, IMG, SVG)


def escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def assert_inert(page: str, *expected: str) -> None:
    """No payload is in the page as markup; each `expected` payload is there as text."""
    for raw in RAW:
        assert raw not in page, f"{raw!r} is rendered as markup"
    for raw in expected:
        start = escaped(raw.split('"')[0])
        assert start in page, f"{raw!r} is not shown as text"


async def publish_hostile_template() -> None:
    form = json.loads((DEMO_DIR / "marketing-activity.form.json").read_text())
    for item in form["fields"]:
        if item["key"] == "activity_name":
            item["label"] = {"zh": LABEL, "en": LABEL}
    now = dt.datetime.now(dt.UTC)
    async with write_transaction(Department._meta.db):
        await publish_version(
            key=TEMPLATE,
            category="test",
            name_zh=f"恶意模板{SCRIPT}",
            name_en=f"Hostile {SCRIPT}",
            form={**form, "key": TEMPLATE},
            flow={**demo_flow(), "key": TEMPLATE},
            change_note="test",
            effective_from=now,
            now=now,
            published_by=None,
        )


async def deliver_notifications() -> None:
    now = dt.datetime.now(dt.UTC)
    rows = (
        await OutboxMessage.select(OutboxMessage.key, OutboxMessage.payload)
        .where(OutboxMessage.actor == "notify")
        .output(load_json=True)
    )
    for row in rows:
        await deliver(row["key"], row["payload"], now)


@dataclass
class Story:
    instance: int
    browsers: dict[str, Client]
    inbox_before_return: str


@pytest.fixture()
async def story(app: Litestar) -> AsyncIterator[Story]:
    """张伟 files a hostile request (title, goal, file name) and comments; 王芳 sees it in her inbox
    and returns it with a hostile note; the notifications are delivered."""
    app.state.clock = Clock()
    await publish_hostile_template()
    async with contextlib.AsyncExitStack() as stack:
        api = await stack.enter_async_context(AsyncTestClient(app=app, base_url=BASE_URL))
        applicant, head = await api_user(api, "e1001"), await api_user(api, "e2001")
        content = pdf()
        upload = await api.post(
            "/api/v1/attachments",
            files={"file": (FILE_NAME, content, "application/pdf")},
            headers=applicant.headers,
        )
        uid = ok(upload, 201)["id"]
        files = [{"id": uid, "name": FILE_NAME, "size": len(content), "content_type": "application/pdf"}]
        data = marketing_data(activity_name=TITLE, goal=SCRIPT, venue=IMG, attachments=files)
        created = ok(
            await applicant.post("/api/v1/instances", {"template": TEMPLATE, "data": data, "submit": True}),
            201,
        )
        instance = created["id"]
        ok(await applicant.post(f"/api/v1/instances/{instance}/comment", {"text": IMG}))
        browsers = {}
        for who in ("e1001", "e2001", "admin"):
            browsers[who] = await stack.enter_async_context(AsyncTestClient(app=app, base_url=BASE_URL))
            await sign_in(browsers[who], who)
        inbox = await page(browsers["e2001"], "/inbox")
        task = await head.my_task(instance)
        ok(await head.act(task["id"], "return", note=SVG))
        await deliver_notifications()
        yield Story(instance, browsers, inbox)


async def page(client: Client, path: str) -> str:
    response = await client.get(path, headers=HTML)
    assert response.status_code == 200, f"{path}: {response.status_code}"
    return response.text


# -- markup is shown as text everywhere ----------------------------------------------------------


async def test_the_request_page_shows_every_payload_as_text(story: Story) -> None:
    for who in ("e1001", "e2001"):
        html = await page(story.browsers[who], f"/instances/{story.instance}")
        assert_inert(html, SCRIPT, IMG, SVG)


async def test_the_print_page_shows_every_payload_as_text(story: Story) -> None:
    html = await page(story.browsers["e1001"], f"/instances/{story.instance}/print")
    assert_inert(html, SCRIPT, SVG)


async def test_the_edit_page_shows_the_hostile_label_and_values_as_text(story: Story) -> None:
    html = await page(story.browsers["e1001"], f"/instances/{story.instance}/edit")
    assert_inert(html, SVG, SCRIPT)


async def test_lists_and_notifications_show_the_title_as_text(story: Story) -> None:
    assert_inert(story.inbox_before_return, SCRIPT)
    assert_inert(await page(story.browsers["e1001"], "/my-requests"), SCRIPT)
    notices = await page(story.browsers["e1001"], "/notifications")
    assert_inert(notices, SCRIPT, SVG)
    assert_inert(await page(story.browsers["e1001"], "/process-center"), SCRIPT)


async def exported(client: Client, kind: str, fmt: str) -> list[list[str]]:
    response = await client.get(f"/insight/exports/{kind}?format={fmt}")
    assert response.status_code == 200, response.text[:300]
    if fmt == "csv":
        return [row for row in csv.reader(io.StringIO(response.text))]
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    return [
        ["" if value is None else str(value) for value in row]
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
    ]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_exports_neutralise_formulas_and_keep_markup_as_plain_text(story: Story, fmt: str) -> None:
    found = 0
    for kind in ("requests", "tasks", "records"):
        for row in await exported(story.browsers["admin"], kind, fmt):
            for cell in row:
                if "HYPERLINK" in cell:
                    found += 1
                    assert cell.startswith("'="), f"{kind}.{fmt}: {cell!r} would run as a formula"
    assert found, "the hostile title is in the exports"


# -- oversized and deeply nested bodies -------------------------------------------------------------

DEEP = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
HUGE = 20 * 1024 * 1024


async def row_counts() -> dict[str, int]:
    return {table._meta.tablename: await table.count() for table in ALL_TABLES}


@pytest.fixture()
async def bearer(client: Client) -> dict[str, ApiUser]:
    users = {who: await api_user(client, who) for who in ("e1001", "e2001", "admin")}
    client.cookies.clear()
    return users


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["array", "object"])
@pytest.mark.parametrize(
    ("who", "method", "path"),
    [
        ("e1001", "POST", "/api/v1/instances"),
        ("e1001", "POST", "/api/v1/templates/marketing-activity/preview-route"),
        ("e2001", "POST", "/api/v1/tasks/1/actions"),
        ("admin", "PUT", "/api/v1/designer/templates/marketing-activity/draft"),
        ("e1001", "POST", "/api/v1/suggestions"),
    ],
)
async def test_json_nested_ten_thousand_deep_is_a_4xx(
    bearer: dict[str, ApiUser], who: str, method: str, path: str, body: bytes
) -> None:
    before = await row_counts()
    response = await bearer[who].send(method, path, body, "application/json")
    assert 400 <= response.status_code < 500, response.text[:300]
    assert await row_counts() == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/instances"),
        ("PUT", "/api/v1/designer/templates/marketing-activity/draft"),
        ("POST", "/api/v1/templates/marketing-activity/validate"),
    ],
)
async def test_a_twenty_megabyte_json_body_is_413(bearer: dict[str, ApiUser], method: str, path: str) -> None:
    before = await row_counts()
    body = json.dumps({"template": "marketing-activity", "data": {"goal": "x" * HUGE}}).encode()
    response = await bearer["admin"].send(method, path, body, "application/json")
    assert response.status_code == 413, response.text[:300]
    assert await row_counts() == before


@pytest.mark.parametrize(
    "path",
    ["/process-center/marketing-activity/submit", "/process-center/marketing-activity/draft", "/login"],
)
async def test_a_twenty_megabyte_form_post_is_413(client: Client, path: str) -> None:
    token = await sign_in(client, "e1001")
    before = await row_counts()
    response = await client.post(
        path,
        content=f"_csrf_token={token}&activity_name={'x' * HUGE}".encode(),
        headers={"content-type": "application/x-www-form-urlencoded", "x-csrftoken": token, **HTML},
    )
    assert response.status_code == 413, response.text[:300]
    assert await row_counts() == before


# -- sessions, CSRF and brute force ---------------------------------------------------------------


async def test_a_session_id_planted_before_sign_in_is_not_the_one_after(
    client: Client, other_client: Client
) -> None:
    planted = "a" * 43
    client.cookies.set("formflow_session", planted, domain="testserver.local", path="/")
    await sign_in(client, "e1001")
    issued = client.cookies.get("formflow_session")
    assert issued and issued != planted
    other_client.cookies.set("formflow_session", planted, domain="testserver.local", path="/")
    assert (await other_client.get("/api/v1/me")).status_code == 401, "the planted id signs nobody in"
    assert (await client.get("/api/v1/me")).json()["employee_no"] == "e1001"


@pytest.mark.parametrize("token", ["", "wrong-token", "x" * 5000])
@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/api/v1/instances", "json"),
        ("/process-center/marketing-activity/draft", "form"),
        ("/profile/tokens/1/revoke", "form"),
    ],
)
async def test_a_missing_or_wrong_csrf_token_is_403_and_writes_nothing(
    client: Client, path: str, kind: str, token: str
) -> None:
    await sign_in(client, "e1001")
    before = await row_counts()
    headers = {"x-csrftoken": token} if token else {}
    if kind == "json":
        response = await client.post(path, json={"template": "marketing-activity"}, headers=headers)
    else:
        response = await client.post(
            path, data={"_csrf_token": token, "activity_name": "x"}, headers={**headers, **HTML}
        )
    assert response.status_code == 403, response.text[:300]
    assert await row_counts() == before


async def test_failed_token_requests_lock_the_account_for_the_login_page_too(client: Client) -> None:
    for attempt in range(5):
        response = await client.post(
            "/api/v1/auth/token", json={"username": "e1001", "password": f"guess-{attempt}"}
        )
        assert response.status_code in (401, 423)
    right = await client.post("/api/v1/auth/token", json={"username": "e1001", "password": "formflow"})
    assert right.status_code in (401, 423), "a locked account refuses the right password on the API"
    page = await client.get("/login", headers=HTML)
    token = page.cookies.get("csrftoken") or client.cookies["csrftoken"]
    login = await client.post(
        "/login",
        data={"username": "e1001", "password": "formflow", "_csrf_token": token},
        follow_redirects=False,
    )
    assert login.status_code == 423
    assert await UserSession.count() == 0


# -- CEL is bounded -------------------------------------------------------------------------------


def test_comprehensions_nested_three_deep_are_refused_at_design_time() -> None:
    deep = "lines.all(a, lines.all(b, lines.all(c, a.amount + b.amount + c.amount > 0)))"
    lines = field("detail_table", "lines", columns=[field("money", "amount")])
    found = [
        (p.path, p.code)
        for p in check_schema(schema(lines, field("computed", "c", formula=f"{deep} ? 1 : 0")), "en")
    ]
    assert found == [("fields[1].formula", "expression_syntax")]
    [problem] = check_schema(schema(lines, field("computed", "c", formula=f"{deep} ? 1 : 0")), "en")
    assert "nest at most 2 deep" in problem.message


@pytest.mark.parametrize(
    "source",
    [
        "lists.range(1000000000).size()",
        "lists.range(n).size()",
        "s.replace('a', s).replace('a', s).size()",
        "[s, s, s, s, s, s, s, s, s, s].map(x, s).join('').replace('a', s).size()",
        "base64.encode(s.replace('a', s)).size()",
    ],
)
def test_expressions_that_would_build_huge_values_fail_fast(source: str) -> None:
    assert Expression(source).run({"n": 10**12, "s": "a" * 5_000}) is FAILED


def test_a_formula_that_would_build_a_huge_list_leaves_the_field_empty() -> None:
    form = compile_form(
        schema(field("number", "n"), field("computed", "c", formula="lists.range(n).size()"), key="bounded")
    )
    result = form.validate({"n": 10**12}, ValidationContext(today=dt.date(2027, 3, 1)), mode="draft")
    assert result.data["c"] is None
    small = form.validate({"n": 3}, ValidationContext(today=dt.date(2027, 3, 1)), mode="draft")
    assert small.data["c"] == 3


def test_flow_conditions_nested_three_deep_are_refused() -> None:
    with pytest.raises(ConditionSyntaxError, match="nest at most 2 deep"):
        Condition("form.lines.all(a, form.lines.all(b, form.lines.all(c, a + b + c > 0)))")
    assert Condition("form.lines.all(a, form.lines.all(b, a + b > 0))").holds({"lines": [1, 2]}, dict)
