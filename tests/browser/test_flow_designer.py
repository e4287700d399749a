"""A process admin builds the marketing flow in the flow designer, by mouse and keyboard, until it validates.

The template and its form come in through the designer's API (the form designer has its own
test); the flow is built from the starter flow in the browser only. The designer must end with
no problems, and the saved flow must be the marketing shape: head -> leader -> finance
co-review -> execution -> summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.browser.designer_support import (  # noqa: F401  (fixtures)
    csrf,
    designer_browser,
    designer_server,
    sign_in_desktop,
)
from tests.browser.flow_steps import build_marketing_flow, designer

KEY = "marketing-flow-built"
FORM = Path(__file__).parents[2] / "builder" / "demo" / "marketing-activity.form.json"


def _api(page: Any, method: str, path: str, body: Any = None) -> Any:
    response = page.request.fetch(
        path,
        method=method,
        data=json.dumps(body) if body is not None else None,
        headers={"content-type": "application/json", "x-csrftoken": csrf(page)},
    )
    assert response.ok, f"{method} {path}: {response.status} {response.text()}"
    return response.json()


def test_the_marketing_flow_is_built_in_the_designer(
    designer_server: str,  # noqa: F811
    designer_browser: Any,  # noqa: F811
) -> None:
    page = sign_in_desktop(designer_browser, designer_server, "admin")
    base = designer_server
    page.goto(f"{base}/designer")
    draft = _api(
        page, "POST", f"{base}/api/v1/designer/templates", {"key": KEY, "name_zh": "市场活动（流程设计）"}
    )
    form = {**json.loads(FORM.read_text()), "key": KEY}
    _api(
        page,
        "PUT",
        f"{base}/api/v1/designer/templates/{KEY}/draft",
        {"form": form, "flow": draft["flow"], "row_version": draft["row_version"]},
    )

    build_marketing_flow(page, base, KEY)

    status = designer(page).get_by_role("status")
    assert "没有问题" in status.inner_text()
    flow = _api(page, "GET", f"{base}/api/v1/designer/templates/{KEY}/draft")["flow"]
    order, node = [], "start"
    by_id = {n["id"]: n for n in flow["nodes"]}
    while node != "end":
        node = next(e["to"] for e in flow["edges"] if e["from"] == node)
        order.append(by_id[node])
    assert [n["type"] for n in order] == ["approval", "approval", "plugin", "task", "task", "end"]
    leader, finance, summary = order[1], order[2], order[4]
    assert leader["assignees"] == {"kind": "supervising_leader"}
    assert finance["plugin"] == "finance-co-review" and finance["config"]["threshold"] == 50000
    assert summary["purpose"] == "summary"
    page.context.close()
