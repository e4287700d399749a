"""Optimization suggestions (流程优化建议): filed by anyone, decided by process admins, ranked monthly.

    suggestion_id = await file_suggestion(SuggestionIn(...), person_id, actor, now)
    await decide(suggestion_id, Decision(status="accepted", note="..."), actor, now)
    await decide(suggestion_id, Decision(status="done", version=3), actor, now)
    stars = await monthly_ranking(2026, 11)     # the month's 流程优化之星

A suggestion names a template and, optionally, one of its steps; `done` links the template
version that implemented it. Moves: open -> accepted | rejected, accepted -> done. Every change
is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from storage import audit
from storage.database import write_transaction
from storage.tables import Person, ProcessTemplate, Suggestion, TemplateVersion

STATUSES = ("open", "accepted", "rejected", "done")
MOVES = {"open": ("accepted", "rejected"), "accepted": ("done", "rejected")}
PAGE_SIZE = 20
Text = Annotated[str, Meta(min_length=1, max_length=4_000)]


class SuggestionError(ValueError):
    """Refused: the message names the field or the rule."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class SuggestionNotFound(LookupError):
    pass


class SuggestionIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    template: Annotated[str, Meta(min_length=1, max_length=64)]
    step: Annotated[str, Meta(max_length=64)] = ""
    problem: Text
    suggestion: Text
    expected_effect: Annotated[str, Meta(max_length=4_000)] = ""


class Decision(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    status: Literal["accepted", "rejected", "done"]
    note: Annotated[str, Meta(max_length=2_000)] = ""
    version: Annotated[int, Meta(ge=1)] | None = None


class SuggestionOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    template_key: str
    template_name: str
    node_id: str
    problem: str
    suggestion: str
    expected_effect: str
    status: str
    created_by: str
    created_at: datetime
    decided_at: datetime | None
    decision_note: str
    implemented_version: int | None


class Star(msgspec.Struct, frozen=True, kw_only=True):
    person_id: int
    name: str
    employee_no: str
    accepted: int


async def file_suggestion(data: SuggestionIn, person_id: int, actor: audit.Actor, now: datetime) -> int:
    template = (
        await ProcessTemplate.select(ProcessTemplate.id).where(ProcessTemplate.key == data.template).first()
    )
    if template is None:
        raise SuggestionError("template", f"no template {data.template!r}")
    if data.step:
        flow = await (
            TemplateVersion.select(TemplateVersion.flow)
            .where(TemplateVersion.template == template["id"])
            .order_by(TemplateVersion.version, ascending=False)
            .first()
            .output(load_json=True)
        )
        steps = {node.get("id") for node in ((flow or {}).get("flow") or {}).get("nodes", [])}
        if data.step not in steps:
            raise SuggestionError("step", f"the template has no step {data.step!r}")
    async with write_transaction(Suggestion._meta.db):
        rows = await Suggestion.insert(
            Suggestion(
                template_key=data.template,
                node_id=data.step,
                problem=data.problem.strip(),
                suggestion=data.suggestion.strip(),
                expected_effect=data.expected_effect.strip(),
                status="open",
                created_by=person_id,
                created_at=now,
            )
        ).returning(Suggestion.id)
        suggestion_id = int(rows[0]["id"])
        await audit.record(
            "suggestion.filed",
            actor,
            target_type="suggestion",
            target_id=suggestion_id,
            after={"template": data.template, "step": data.step},
            now=now,
        )
    return suggestion_id


async def decide(suggestion_id: int, decision: Decision, actor: audit.Actor, now: datetime) -> None:
    async with write_transaction(Suggestion._meta.db):
        row = (
            await Suggestion.select(Suggestion.status, Suggestion.template_key)
            .where(Suggestion.id == suggestion_id)
            .first()
        )
        if row is None:
            raise SuggestionNotFound(f"no suggestion {suggestion_id}")
        if decision.status not in MOVES.get(row["status"], ()):
            raise SuggestionError(
                "status", f"a suggestion that is {row['status']} cannot become {decision.status}"
            )
        if decision.status == "rejected" and not decision.note.strip():
            raise SuggestionError("note", "say why the suggestion is rejected")
        values: dict[Any, Any] = {
            Suggestion.status: decision.status,
            Suggestion.decided_by: actor.id,
            Suggestion.decided_at: now,
        }
        if decision.note.strip():
            values[Suggestion.decision_note] = decision.note.strip()
        if decision.status == "done":
            if decision.version is None:
                raise SuggestionError("version", "name the template version that implemented it")
            exists = await TemplateVersion.exists().where(
                (TemplateVersion.template.key == row["template_key"])
                & (TemplateVersion.version == decision.version)
            )
            if not exists:
                raise SuggestionError("version", f"{row['template_key']} has no version {decision.version}")
            values[Suggestion.implemented_version] = decision.version
        await Suggestion.update(values).where(Suggestion.id == suggestion_id)
        await audit.record(
            f"suggestion.{decision.status}",
            actor,
            target_type="suggestion",
            target_id=suggestion_id,
            before={"status": row["status"]},
            after=msgspec.to_builtins(decision),
            now=now,
        )


async def list_suggestions(
    *, status: str = "", template: str = "", page: int = 1
) -> tuple[list[SuggestionOut], int]:
    query = Suggestion.select(
        Suggestion.all_columns(),
        Suggestion.created_by.name.as_alias("created_by_name"),
    ).order_by(Suggestion.id, ascending=False)
    count = Suggestion.count()
    clauses = []
    if status:
        clauses.append(Suggestion.status == status)
    if template:
        clauses.append(Suggestion.template_key == template)
    for clause in clauses:
        query = query.where(clause)
        count = count.where(clause)
    rows = await query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    names = {
        t["key"]: t["name_zh"]
        for t in await ProcessTemplate.select(ProcessTemplate.key, ProcessTemplate.name_zh)
    }
    return [
        SuggestionOut(
            id=row["id"],
            template_key=row["template_key"],
            template_name=names.get(row["template_key"], row["template_key"]),
            node_id=row["node_id"],
            problem=row["problem"],
            suggestion=row["suggestion"],
            expected_effect=row["expected_effect"],
            status=row["status"],
            created_by=row["created_by_name"] or "",
            created_at=row["created_at"],
            decided_at=row["decided_at"],
            decision_note=row["decision_note"],
            implemented_version=row["implemented_version"],
        )
        for row in rows
    ], await count


async def monthly_ranking(year: int, month: int, limit: int = 10) -> list[Star]:
    """People by suggestions accepted (or done) that month, most first: the month's 流程优化之星."""
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    rows = await Suggestion.select(Suggestion.created_by).where(
        Suggestion.status.is_in(["accepted", "done"])
        & (Suggestion.decided_at >= start)
        & (Suggestion.decided_at < end)
    )
    counts: dict[int, int] = {}
    for row in rows:
        counts[row["created_by"]] = counts.get(row["created_by"], 0) + 1
    if not counts:
        return []
    people = {
        row["id"]: row
        for row in await Person.select(Person.id, Person.name, Person.employee_no).where(
            Person.id.is_in(list(counts))
        )
    }
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], people[pair[0]]["employee_no"]))
    return [
        Star(person_id=pid, name=people[pid]["name"], employee_no=people[pid]["employee_no"], accepted=n)
        for pid, n in ranked[:limit]
    ]
