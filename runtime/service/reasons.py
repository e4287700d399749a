""" "Why this approver": the engine's reason records worded for people, in Chinese or English.

A reason names the rule and what it was applied to (`runtime.flow.assignees`), plus the
service-side rules of transfers, escalations and added signers. A step plugin that opens tasks
adds why it asked for them ("why_zh" / "why_en", e.g. the amount over the finance co-review
threshold), which follows the rule in brackets. People in a reason are ids; `names` turns them
into names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_ROLES_ZH = {
    "employee": "员工",
    "department_head": "部门负责人",
    "supervising_leader": "分管领导",
    "finance_specialist": "财务专员",
    "process_admin": "流程管理员",
    "system_admin": "系统管理员",
}
_POSITIONS_ZH = {"before": "前加签", "after": "后加签", "alongside": "并加签"}

_ZH: dict[str, str] = {
    "people": "流程指定的审批人",
    "role": "角色：{role_name}",
    "department_head": "{department}负责人",
    "head_above": "{department}负责人（上 {levels} 级部门）",
    "department_head_of": "{department}负责人",
    "supervising_leader": "{department}的分管领导",
    "person_field": "表单字段“{field}”所选人员",
    "department_field_head": "表单字段“{field}”所选部门（{department}）的负责人",
    "initiator_choice": "发起人自选",
    "initiator": "发起人本人",
    "process_admin": "流程管理员（规则“{tried}”未找到审批人）",
    "transfer": "{from_name} 转交",
    "escalation": "{from_name} 超时未处理，升级至其上级",
    "add_signer": "{by_name} 加签（{position_name}）",
}
_EN: dict[str, str] = {
    "people": "named in the flow",
    "role": "holds the role {role}",
    "department_head": "head of {department}",
    "head_above": "head of {department} ({levels} level(s) up)",
    "department_head_of": "head of {department}",
    "supervising_leader": "supervising leader of {department}",
    "person_field": "chosen in the form field {field}",
    "department_field_head": "head of {department}, the department chosen in the form field {field}",
    "initiator_choice": "chosen by the initiator",
    "initiator": "the initiator",
    "process_admin": "process admin (the rule {tried} found nobody)",
    "transfer": "transferred by {from_name}",
    "escalation": "escalated: {from_name} let the deadline pass",
    "add_signer": "added by {by_name} ({position})",
}


def why(reason: Mapping[str, Any], names: Mapping[int, str], locale: str = "zh-CN") -> str:
    """The reason in words; an unknown rule falls back to its name."""
    rule = str(reason.get("rule", ""))
    english = locale == "en"
    template = (_EN if english else _ZH).get(rule)
    if template is None:
        return rule
    values = {key: value for key, value in reason.items() if key != "rule"}
    values.setdefault("department", "")
    values["role_name"] = _ROLES_ZH.get(str(reason.get("role", "")), reason.get("role", ""))
    values["position_name"] = _POSITIONS_ZH.get(str(reason.get("position", "")), reason.get("position", ""))
    for key in ("from", "by"):
        person = reason.get(key)
        values[f"{key}_name"] = names.get(person, str(person)) if isinstance(person, int) else ""
    text = template.format_map(_Blank(values))
    via = reason.get("via")
    if rule == "supervising_leader" and via:
        text += f" (via {via})" if english else f"（经由{via}）"
    if reason.get("for") == "change_request":
        text += " (change request)" if english else "（变更审批）"
    because = reason.get("why_en" if english else "why_zh")
    if isinstance(because, str) and because:
        text += f" ({because})" if english else f"（{because}）"
    return text


def people_in(reason: Mapping[str, Any]) -> list[int]:
    """Person ids a reason mentions (to look their names up)."""
    return [value for key in ("from", "by") if isinstance(value := reason.get(key), int)]


class _Blank(dict[str, Any]):
    """Formatting values where a missing key reads as empty, not as an error."""

    def __missing__(self, key: str) -> str:
        return ""
