"""The template designer over HTTP: who may use it, each htmx action, conflicts, publishing, import."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from litestar import Litestar

from storage.tables import AuditEntry, TemplateVersion
from tests.web.session import Client, csrf_from
from web.routes.designer import CanvasState, canvas_changes

HX = {"hx-request": "true", "accept": "text/html"}
KEY = "team-dinner"


async def _admin(client: Client, login: Any) -> dict[str, str]:
    token = await login("admin")
    return {**HX, "x-csrftoken": token}


async def _create(client: Client, headers: dict[str, str], key: str = KEY) -> None:
    response = await client.post(
        "/designer",
        data={"key": key, "name_zh": "团建聚餐", "name_en": "Team dinner", "category": "hr"},
        headers={"x-csrftoken": headers["x-csrftoken"]},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/designer/{key}"


def _row_version(html: str) -> str:
    match = re.search(r'id="row-version" name="row_version" value="(\d+)"', html)
    assert match, "the workspace carries the draft's row version"
    return match.group(1)


async def _draft(client: Client, key: str = KEY) -> dict[str, Any]:
    response = await client.get(f"/api/v1/designer/templates/{key}/draft")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _act(client: Client, headers: dict[str, str], path: str, **values: Any) -> Any:
    draft = await _draft(client)
    data = {"row_version": str(draft["row_version"]), **{k: str(v) for k, v in values.items()}}
    return await client.post(f"/designer/{KEY}{path}", data=data, headers=headers)


def _routes(app: Litestar) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if not route.path.startswith(("/designer", "/api/v1/designer")):
            continue
        for method, entry in getattr(route, "route_handler_map", {}).items():
            handler = entry[0] if isinstance(entry, tuple) else entry
            if method not in ("OPTIONS", "HEAD") and handler.fn.__module__ == "web.routes.designer":
                found.append((method, route.path))
    return found


async def test_only_process_admins_reach_the_designer(app: Litestar, client: Client, login: Any) -> None:
    token = await login("e1001")
    routes = _routes(app)
    assert len(routes) >= 25
    for method, path in routes:
        url = path.replace("{key:str}", "marketing-activity")
        response = await client.request(
            method,
            url,
            headers={"x-csrftoken": token, "accept": "application/json"},
            params={"old": 1, "new": 1},
        )
        assert response.status_code == 403, (method, url, response.status_code)
    home = await client.get("/process-center", headers={"accept": "text/html"})
    assert "/designer" not in home.text


async def test_the_list_shows_templates_and_new_ones_get_clear_errors(client: Client, login: Any) -> None:
    headers = await _admin(client, login)
    page = await client.get("/designer", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "市场活动审批" in page.text and "已发布 V1" in page.text and 'href="/designer"' in page.text
    bad = await client.post(
        "/designer",
        data={"key": "Bad Key", "name_zh": "", "category": "hr"},
        headers={"x-csrftoken": headers["x-csrftoken"]},
    )
    assert bad.status_code == 422
    assert "以字母开头" in bad.text and "请填写模板的中文名称" in bad.text
    taken = await client.post(
        "/designer",
        data={"key": "marketing-activity", "name_zh": "重复", "category": "hr"},
        headers={"x-csrftoken": headers["x-csrftoken"]},
    )
    assert taken.status_code == 422 and "已存在使用此标识的模板" in taken.text
    await _create(client, headers)
    listed = await client.get("/designer?q=团建", headers={"accept": "text/html"})
    assert "团建聚餐" in listed.text and "从未发布" in listed.text and "市场活动审批" not in listed.text
    shell = await client.get(f"/designer/{KEY}", headers={"accept": "text/html"})
    assert shell.status_code == 200 and "字段类型" in shell.text and "/static/designer.js" in shell.text


async def test_each_designer_action_changes_the_draft_and_is_audited(client: Client, login: Any) -> None:
    headers = await _admin(client, login)
    await _create(client, headers)
    added = await _act(client, headers, "/fields", kind="text", index=0)
    assert added.status_code == 200 and 'data-ref="text_1"' in added.text
    assert 'name="label.zh"' in added.text  # the new field is chosen in the property panel
    await _act(client, headers, "/fields", kind="detail_table", index=1)
    await _act(client, headers, "/fields", kind="money", index=5, table="detail_table_1")
    renamed = await client.post(
        f"/designer/{KEY}/fields/property",
        data={
            "row_version": str((await _draft(client))["row_version"]),
            "ref": "text_1",
            "label.zh": "活动名称",
        },
        headers={**headers, "hx-trigger-name": "label.zh"},
    )
    assert renamed.status_code == 200 and "活动名称" in renamed.text
    await _act(client, headers, "/fields/property", ref="text_1", property="required", required="true")
    await _act(
        client, headers, "/fields/property", ref="detail_table_1.money_1", property="total", total="true"
    )
    await _act(client, headers, "/fields/move", ref="detail_table_1", index=0)
    form = (await _draft(client))["form"]
    assert [f["key"] for f in form["fields"]] == ["detail_table_1", "text_1"]
    table, text = form["fields"]
    assert [c["key"] for c in table["columns"]] == ["detail_table_1_item", "money_1"]
    assert table["totals"] == ["money_1"]
    assert text["label"]["zh"] == "活动名称" and text["required"] is True

    chosen = await client.get(f"/designer/{KEY}/fields/select", params={"ref": "text_1"}, headers=HX)
    moves = chosen.text.split('data-ref="text_1"', 1)[1].split("</li>", 1)[0]
    assert "移入…" in moves and "表格：明细" in moves  # the keyboard's way into the table
    into = await _act(client, headers, "/fields/move", ref="text_1", index=9, table="detail_table_1")
    assert 'data-ref="detail_table_1.text_1"' in into.text
    out = await _act(client, headers, "/fields/move", ref="detail_table_1.text_1", index=1)
    assert 'data-ref="text_1"' in out.text
    removed = await _act(client, headers, "/fields/remove", ref="text_1")
    assert 'data-ref="text_1"' not in removed.text
    undone = await _act(client, headers, "/undo")
    assert undone.status_code == 200 and 'data-ref="text_1"' in undone.text
    redone = await _act(client, headers, "/redo")
    assert 'data-ref="text_1"' not in redone.text
    assert (await _draft(client))["can_undo"] is True

    actions = {
        row["action"] for row in await AuditEntry.select(AuditEntry.action).where(AuditEntry.target_id == KEY)
    }
    assert {
        "template.created",
        "template.draft_saved",
        "template.draft_undone",
        "template.draft_redone",
    } <= actions


def _cards(html: str) -> set[str]:
    return set(re.findall(r'<li id="card-[^"]*" class="field-card[^"]*" data-ref="([^"]+)"', html))


async def test_an_action_answers_only_what_changed(client: Client, login: Any) -> None:
    """The panel, and out of band only the cards that look different; the canvas stays as it is."""
    headers = await _admin(client, login)
    await _create(client, headers)
    for index in range(3):
        await _act(client, headers, "/fields", kind="text", index=index)
    page = await client.get(f"/designer/{KEY}", headers={"accept": "text/html"})
    assert _cards(page.text) == {"text_1", "text_2", "text_3"}

    chosen = await client.get(
        f"/designer/{KEY}/fields/select", params={"ref": "text_2", "was": "text_3"}, headers=HX
    )
    assert chosen.status_code == 200
    assert chosen.text.lstrip().startswith('<aside id="designer-panel"') and 'name="label.zh"' in chosen.text
    assert _cards(chosen.text) == {"text_2", "text_3"}, "the mark moves from one card to the other"
    assert re.search(r'data-ref="text_2".*?aria-pressed="true"', chosen.text, re.S)

    renamed = await _act(
        client,
        headers,
        "/fields/property",
        ref="text_2",
        property="label.zh",
        was="text_2",
        **{"label.zh": "地点"},
    )
    assert _cards(renamed.text) == {"text_2"} and "地点" in renamed.text
    assert 'id="row-version" name="row_version"' in renamed.text and 'hx-swap-oob="true"' in renamed.text

    moved = await _act(client, headers, "/fields/move", ref="text_2", index=2, was="text_2")
    assert 'id="card-text_2" hx-swap-oob="delete"' in moved.text
    assert 'hx-swap-oob="afterend:#card-text_3"' in moved.text
    assert _cards(moved.text) == {"text_2", "text_3"}, "text_3 is last no more; text_1 is untouched"
    assert [f["key"] for f in (await _draft(client))["form"]["fields"]] == ["text_1", "text_3", "text_2"]

    await _act(
        client,
        headers,
        "/fields/property",
        ref="text_1",
        property="visible_when",
        was="text_2",
        visible_when='text_3 == "a"',
    )
    rekeyed = await _act(
        client, headers, "/fields/property", ref="text_3", property="key", key="place", was="text_3"
    )
    assert 'hx-swap-oob="outerHTML:#card-text_3"' in rekeyed.text
    assert _cards(rekeyed.text) == {"place", "text_1"}, "the condition on text_1 now names a missing field"
    assert "has-error" in rekeyed.text.split('data-ref="text_1"', 1)[0].rsplit("<li", 1)[1]


def _form(*fields: Any) -> dict[str, Any]:
    def field(spec: Any) -> dict[str, Any]:
        if isinstance(spec, tuple):
            key, columns = spec
            return {
                "type": "detail_table",
                "key": key,
                "columns": [{"type": "text", "key": c} for c in columns],
            }
        return {"type": "text", "key": spec}

    return {"fields": [field(spec) for spec in fields]}


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (
            _form("a", "b", "c", "d"),
            _form("a", "c", "d", "b"),
            ["delete b", "redraw d", "insert b"],  # d is last no more; c looks the same
        ),
        (_form("a", "b", "c"), _form("a", "c"), ["delete b"]),
        (_form("a", "b"), _form("a", "n", "b"), ["insert n"]),
        (
            _form(("t", ["x", "y"]), "a"),
            _form(("t", ["x"]), "a", "y"),
            ["delete t-y", "redraw t", "redraw a", "insert y"],
        ),
        (_form("a", "b", "c", "d"), _form("d", "c", "b", "a"), None),  # many moved: the whole canvas
        (_form("a"), _form(), None),
    ],
)
def test_the_canvas_changes_only_where_it_must(
    before: dict[str, Any], after: dict[str, Any], expected: list[str] | None
) -> None:
    changes = canvas_changes(CanvasState(before, {}, None), CanvasState(after, {}, None))
    found = None if changes is None else [f"{c['op']} {c['ref'].replace('.', '-')}" for c in changes]
    assert found == expected


async def test_refused_edits_and_a_stale_version_answer_in_place(client: Client, login: Any) -> None:
    headers = await _admin(client, login)
    await _create(client, headers)
    await _act(client, headers, "/fields", kind="detail_table", index=0)
    stale = await client.post(
        f"/designer/{KEY}/fields", data={"row_version": "1", "kind": "text", "index": "0"}, headers=headers
    )
    assert stale.status_code == 409
    assert "此草稿已被他人修改，请刷新" in stale.text
    assert stale.headers["hx-retarget"] == "#designer-message"
    last_column = await _act(client, headers, "/fields/remove", ref="detail_table_1.detail_table_1_item")
    assert last_column.status_code == 422 and "明细表至少保留一列" in last_column.text
    section_in_table = await _act(client, headers, "/fields", kind="section", index=0, table="detail_table_1")
    assert section_in_table.status_code == 422
    bad_number = await _act(
        client, headers, "/fields/property", ref="detail_table_1", property="max_rows", max_rows="lots"
    )
    assert bad_number.status_code == 422 and "not a number" in bad_number.text
    assert [f["key"] for f in (await _draft(client))["form"]["fields"]] == ["detail_table_1"]


async def test_problems_show_on_their_field_and_block_publishing(client: Client, login: Any) -> None:
    headers = await _admin(client, login)
    await _create(client, headers)
    await _act(client, headers, "/fields", kind="money", index=0)
    shown = await _act(
        client, headers, "/fields/property", ref="money_1", property="visible_when", visible_when="ghost > 1"
    )
    card = shown.text.split('data-ref="money_1"', 1)[1].split("</li>", 1)[0]
    assert "visible_when" in card and "ghost" in card
    versions = await client.get(f"/designer/{KEY}?tab=versions", headers={"accept": "text/html"})
    assert re.search(r'<button type="submit" class="primary" disabled>\s*发布', versions.text)
    refused = await client.post(
        f"/designer/{KEY}/publish",
        data={
            "row_version": str((await _draft(client))["row_version"]),
            "change_note": "首版",
            "effective": "now",
        },
        headers=headers,
    )
    assert refused.status_code == 422 and "ghost" in refused.text
    api = await client.post(
        f"/api/v1/designer/templates/{KEY}/publish",
        json={"change_note": "首版", "row_version": (await _draft(client))["row_version"]},
        headers={"x-csrftoken": headers["x-csrftoken"]},
    )
    assert api.status_code == 422
    assert any(e["path"] == "form.fields[0].visible_when" for e in api.json()["errors"])
    assert await TemplateVersion.count().where(TemplateVersion.template.key == KEY) == 0


async def test_publish_history_diff_rollback_and_preview(client: Client, login: Any) -> None:
    headers = await _admin(client, login)
    await _create(client, headers)
    await _act(client, headers, "/fields", kind="money", index=0)
    empty_note = await _act(client, headers, "/publish", change_note=" ", effective="now")
    assert empty_note.status_code == 422 and "请填写变更说明" in empty_note.text
    first = await _act(client, headers, "/publish", change_note="首版", effective="now")
    assert first.status_code == 200 and "已发布为 V1" in first.text
    await _act(client, headers, "/fields", kind="text", index=1)
    second = await _act(client, headers, "/publish", change_note="增加备注", effective="now")
    assert "已发布为 V2" in second.text and "增加备注" in second.text
    diff = await client.get(f"/designer/{KEY}/diff?old=1&new=2", headers=HX)
    assert diff.status_code == 200 and "新增" in diff.text and "text_1" in diff.text
    rolled = await _act(client, headers, "/rollback", version=1)
    assert rolled.status_code == 200 and "V1 已重新发布为 V3" in rolled.text
    assert [f["key"] for f in (await _draft(client))["form"]["fields"]] == ["money_1"]
    versions = (await client.get(f"/api/v1/designer/templates/{KEY}/versions")).json()
    assert [v["version"] for v in versions] == [3, 2, 1] and versions[0]["in_effect"] is True

    page = await client.get("/designer/marketing-activity?tab=preview", headers={"accept": "text/html"})
    assert page.status_code == 200 and "预览身份" in page.text and 'name="budget"' in page.text
    people = dict(re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', page.text))
    applicant = next(pid for pid, label in people.items() if "e1001" in label)
    route = await client.post(
        "/designer/marketing-activity/preview",
        data={
            "as_person": applicant,
            "activity_name": "新品推广会",
            "budget": "200000",
            "start_date": "2027-03-01",
            "end_date": "2027-03-03",
        },
        headers=headers,
    )
    assert route.status_code == 200, route.text
    assert "王芳" in route.text and "此环节可见" in route.text


async def test_import_and_export_bundles_and_bpmn(client: Client, login: Any) -> None:
    headers = await _admin(client, login)
    bundle = await client.get("/designer/marketing-activity/export.json")
    assert bundle.status_code == 200 and bundle.json()["format"] == "formflow-template"
    bpmn = await client.get("/designer/marketing-activity/export.bpmn")
    assert bpmn.status_code == 200 and "definitions" in bpmn.text
    await _create(client, headers)
    page = await client.get(f"/designer/{KEY}?tab=transfer", headers={"accept": "text/html"})
    token = csrf_from(page.text)
    imported = await client.post(
        f"/designer/{KEY}/import",
        files={"file": ("marketing.json", bundle.content, "application/json")},
        data={"_csrf_token": token},
    )
    assert imported.status_code == 200, imported.text
    assert "已从 marketing.json 导入模板" in imported.text
    assert any(f["key"] == "budget" for f in (await _draft(client))["form"]["fields"])

    broken = json.loads(bundle.content)
    index = next(i for i, f in enumerate(broken["form"]["fields"]) if f["key"] == "activity_name")
    broken["form"]["fields"][index]["visible_when"] = "ghost > 1"
    broken["flow"]["nodes"].append(
        {"type": "approval", "id": "lonely", "assignees": {"kind": "department_head"}}
    )
    refused = await client.post(
        f"/designer/{KEY}/import",
        files={"file": ("broken.json", json.dumps(broken).encode(), "application/json")},
        data={"_csrf_token": token},
    )
    assert refused.status_code == 422
    errors = refused.text.split("import-errors", 1)[1].split("</ul>", 1)[0]
    assert f"form.fields[{index}].visible_when" in errors and "flow:lonely" in errors, errors

    unsupported = bpmn.text.replace(
        "</bpmn:process>", '<bpmn:scriptTask id="script_1" name="脚本"/></bpmn:process>'
    )
    assert unsupported != bpmn.text
    api = await client.post(
        f"/api/v1/designer/templates/{KEY}/import",
        content=unsupported.encode(),
        headers={"content-type": "application/xml", "x-csrftoken": headers["x-csrftoken"]},
    )
    assert api.status_code == 422
    assert any(e["path"] == "scriptTask#script_1" for e in api.json()["errors"])
    good = await client.post(
        f"/api/v1/designer/templates/{KEY}/import",
        content=bpmn.content,
        headers={"content-type": "application/xml", "x-csrftoken": headers["x-csrftoken"]},
    )
    assert good.status_code == 200, good.text
    assert good.json()["draft"]["flow"]["key"] == KEY
    schema = await client.get("/api/v1/designer/bundle-schema")
    assert schema.status_code == 200 and schema.json()["title"] == "Formflow template bundle"


async def test_the_draft_api_saves_whole_designs_and_refuses_stale_ones(client: Client, login: Any) -> None:
    headers = {"x-csrftoken": (await _admin(client, login))["x-csrftoken"]}
    created = await client.post(
        "/api/v1/designer/templates", json={"key": KEY, "name_zh": "团建聚餐"}, headers=headers
    )
    assert created.status_code == 201 and created.json()["row_version"] == 1
    draft = created.json()
    form = {
        **draft["form"],
        "fields": [{"type": "text", "key": "place", "label": {"zh": "地点", "en": "Place"}}],
    }
    saved = await client.put(
        f"/api/v1/designer/templates/{KEY}/draft",
        json={"form": form, "flow": draft["flow"], "row_version": 1, "label": "place"},
        headers=headers,
    )
    assert saved.status_code == 200 and saved.json()["problems"] == []
    stale = await client.put(
        f"/api/v1/designer/templates/{KEY}/draft",
        json={"form": form, "flow": draft["flow"], "row_version": 1},
        headers=headers,
    )
    assert stale.status_code == 409 and stale.json()["code"] == "draft_conflict"
    unknown = await client.put(
        f"/api/v1/designer/templates/{KEY}/draft",
        json={"form": form, "row_version": 2, "colour": "red"},
        headers=headers,
    )
    assert unknown.status_code == 400 and "colour" in unknown.text
    published = await client.post(
        f"/api/v1/designer/templates/{KEY}/publish",
        json={"change_note": "首版", "row_version": saved.json()["row_version"]},
        headers=headers,
    )
    assert published.status_code == 201 and published.json() == {"version": 1}
    missing = await client.get("/api/v1/designer/templates/no-such/draft")
    assert missing.status_code == 404


@pytest.mark.parametrize("tab", ["form", "flow", "preview", "versions", "transfer"])
async def test_every_tab_of_a_demo_template_opens(client: Client, login: Any, tab: str) -> None:
    await login("admin")
    response = await client.get(f"/designer/marketing-activity?tab={tab}", headers={"accept": "text/html"})
    assert response.status_code == 200, response.text
    assert 'aria-current="page"' in response.text


async def test_breaking_changes_are_listed_and_publish_only_once_accepted(
    client: Client, other_client: Client, login: Any
) -> None:
    from tests.web.session import sign_in

    employee = await sign_in(other_client, "e1001")
    saved = await other_client.post(
        "/api/v1/instances",
        json={"template": "marketing-activity", "data": {"goal": "提升认知度"}},
        headers={"x-csrftoken": employee},
    )
    assert saved.status_code == 201, saved.text
    headers = await _admin(client, login)
    draft = await client.get("/api/v1/designer/templates/marketing-activity/draft")
    row_version = draft.json()["row_version"]
    removed = await client.post(
        "/designer/marketing-activity/fields/remove",
        data={"row_version": str(row_version), "ref": "goal"},
        headers=headers,
    )
    assert removed.status_code == 200
    row_version += 1
    refused = await client.post(
        "/designer/marketing-activity/publish",
        data={"row_version": str(row_version), "change_note": "去掉活动目标", "effective": "now"},
        headers=headers,
    )
    assert refused.status_code == 422
    assert "删除了草稿中已填写的字段" in refused.text and 'name="accept_breaking"' in refused.text
    accepted = await client.post(
        "/designer/marketing-activity/publish",
        data={
            "row_version": str(row_version),
            "change_note": "去掉活动目标",
            "effective": "now",
            "accept_breaking": "true",
        },
        headers=headers,
    )
    assert accepted.status_code == 200 and "已发布为 V2" in accepted.text


async def test_a_version_can_take_effect_later(client: Client, login: Any) -> None:
    headers = await _admin(client, login)
    draft = (await client.get("/api/v1/designer/templates/marketing-activity/draft")).json()
    later = await client.post(
        "/designer/marketing-activity/publish",
        data={
            "row_version": str(draft["row_version"]),
            "change_note": "下月生效",
            "effective": "later",
            "effective_from": "2099-01-01T09:00",
        },
        headers=headers,
    )
    assert later.status_code == 200 and "已发布为 V2" in later.text
    versions = (await client.get("/api/v1/designer/templates/marketing-activity/versions")).json()
    assert versions[0]["version"] == 2 and versions[0]["in_effect"] is False
    assert versions[0]["effective_from"].startswith("2099-01-01T01:00")
    assert versions[1]["in_effect"] is True
    bad = await client.post(
        "/designer/marketing-activity/publish",
        data={
            "row_version": str(draft["row_version"] + 1),
            "change_note": "日期不对",
            "effective": "later",
            "effective_from": "next week",
        },
        headers=headers,
    )
    assert bad.status_code == 422 and "请选择版本生效的日期和时间" in bad.text


async def test_the_designer_speaks_english_too(client: Client, login: Any) -> None:
    await login("admin")
    client.cookies.set("lang", "en")
    for tab in ("form", "preview", "versions", "transfer"):
        response = await client.get(
            f"/designer/marketing-activity?tab={tab}", headers={"accept": "text/html"}
        )
        assert response.status_code == 200, (tab, response.text)
    form = await client.get("/designer/marketing-activity?field=budget", headers={"accept": "text/html"})
    assert "Field types" in form.text and "Label (Chinese)" in form.text and "Budget" in form.text
