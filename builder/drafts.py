"""Designing a template: drafts saved on every change, undo and redo, checks, publishing, history.

    draft = await open_draft("marketing-activity", now)              # from the version in effect
    saved = await save_draft(key, edit, row_version=draft.row_version, actor=actor, now=now)
    saved.problems                                                   # every problem, with its path
    await undo(key, row_version=saved.row_version, actor=actor, now=now)
    version = await publish(key, PublishRequest(change_note="...", effective_from=now), ...)

A draft may hold problems (a designer saves half-made work); publishing refuses while any
remain, and refuses changes that would break drafts of the template until the designer accepts
them (`accept_breaking`). A published version is immutable; publishing an old version again is
a rollback. Every change is audited. Checks of plugin steps come in as `flow_checks`, so this
package needs no plugin registry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from piccolo.query.functions.aggregate import Count

from builder.bundle import BundleError, BundleProblem, FlowCheck, check_design
from builder.versions import BreakingChange, VersionDiff, breaking_changes, diff_versions
from forms import load_schema
from forms import model as m
from forms.errors import SchemaError
from runtime.flow import decode_graph
from runtime.flow.errors import GraphDecodeError
from storage import audit
from storage.database import write_transaction
from storage.tables import (
    Instance,
    Notification,
    Person,
    ProcessTemplate,
    TemplateDraft,
    TemplateDraftRevision,
    TemplateVersion,
)
from storage.templates import publish_version, version_in_effect

KEPT_REVISIONS = 100
DRAFT_STATUS = "draft"


class DesignError(Exception):
    """Base of what a designer is told when a design command is refused."""


class DraftNotFound(DesignError):
    pass


class DraftConflict(DesignError):
    """Someone else saved the draft since it was loaded: reload and redo the change."""


class TemplateExists(DesignError):
    pass


class NothingToUndo(DesignError):
    pass


class PublishRefused(DesignError):
    """The draft has problems, or breaking changes the designer has not accepted."""

    def __init__(self, problems: list[BundleProblem], breaking: list[BreakingChange]) -> None:
        self.problems = problems
        self.breaking = breaking
        what = (
            f"{len(problems)} problem(s)" if problems else f"{len(breaking)} breaking change(s) not accepted"
        )
        super().__init__(f"cannot publish: {what}")


class DraftMeta(msgspec.Struct, frozen=True, kw_only=True):
    category: str = "general"
    name_zh: str
    name_en: str = ""
    description_zh: str = ""
    description_en: str = ""


class DraftEdit(msgspec.Struct, frozen=True, kw_only=True):
    """The whole design as the designer holds it; `label` says what the change was ("moved budget")."""

    form: dict[str, Any]
    flow: dict[str, Any] | None
    meta: DraftMeta | None = None
    label: str = ""


class Draft(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    meta: DraftMeta
    form: dict[str, Any]
    flow: dict[str, Any] | None
    revision: int
    row_version: int
    updated_at: datetime
    can_undo: bool
    can_redo: bool
    problems: list[BundleProblem]
    published_version: int | None


class PublishRequest(msgspec.Struct, frozen=True, kw_only=True):
    change_note: str
    effective_from: datetime
    accept_breaking: bool = False


class VersionInfo(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    change_note: str
    effective_from: datetime
    published_at: datetime
    published_by: str
    in_effect: bool
    requests: int


# -- reading --------------------------------------------------------------------------------


async def open_draft(
    key: str, now: datetime, *, flow_checks: Sequence[FlowCheck] = (), locale: str = "zh-CN"
) -> Draft:
    """The template's draft; one is made from the version in effect when there is none yet."""
    row = await _draft_row(key)
    if row is None:
        published = await version_in_effect(key, now)
        template = await ProcessTemplate.select().where(ProcessTemplate.key == key).first()
        if published is None or template is None:
            raise DraftNotFound(f"no template {key!r}")
        meta = DraftMeta(
            category=template["category"],
            name_zh=template["name_zh"],
            name_en=template["name_en"],
            description_zh=template["description_zh"],
            description_en=template["description_en"],
        )
        async with write_transaction(TemplateDraft._meta.db):
            if await _draft_row(key) is None:
                await _insert_draft(
                    key, meta, published.form, published.flow, None, now, "opened from the published version"
                )
        row = await _draft_row(key)
        assert row is not None
    return await _view(row, flow_checks, locale)


async def list_versions(key: str, now: datetime) -> list[VersionInfo]:
    rows = await (
        TemplateVersion.select(
            TemplateVersion.version,
            TemplateVersion.change_note,
            TemplateVersion.effective_from,
            TemplateVersion.published_at,
            TemplateVersion.published_by,
        )
        .where(TemplateVersion.template.key == key)
        .order_by(TemplateVersion.version, ascending=False)
    )
    if not rows:
        raise DraftNotFound(f"no template {key!r}")
    names = await _names({row["published_by"] for row in rows if row["published_by"]})
    current = await version_in_effect(key, now)
    counts = {
        row["version"]: row["requests"]
        for row in await Instance.select(Instance.version, Count(alias="requests"))
        .where(Instance.template_key == key)
        .group_by(Instance.version)
    }
    return [
        VersionInfo(
            version=row["version"],
            change_note=row["change_note"],
            effective_from=row["effective_from"],
            published_at=row["published_at"],
            published_by=names.get(row["published_by"], ""),
            in_effect=current is not None and current.version == row["version"],
            requests=counts.get(row["version"], 0),
        )
        for row in rows
    ]


async def diff_published(key: str, old: int, new: int) -> VersionDiff:
    """What changed from version `old` to version `new` of a template."""
    before = await version_in_effect(key, datetime.max, old)
    after = await version_in_effect(key, datetime.max, new)
    if before is None or after is None:
        raise DraftNotFound(f"{key!r} has no version {old if before is None else new}")
    return diff_versions(_form(before.form), _flow(before.flow), _form(after.form), _flow(after.flow))


async def diff_draft(key: str, now: datetime) -> VersionDiff | None:
    """What the draft changes against the version in effect (None for a never-published template)."""
    row = await _draft_row(key)
    if row is None:
        raise DraftNotFound(f"no draft of {key!r}")
    published = await version_in_effect(key, now)
    if published is None:
        return None
    try:
        return diff_versions(
            _form(published.form), _flow(published.flow), _form(row["form"]), _flow(row["flow"])
        )
    except (SchemaError, GraphDecodeError):
        return None


# -- changing -------------------------------------------------------------------------------


async def create_template(key: str, meta: DraftMeta, *, actor: audit.Actor, now: datetime) -> None:
    """A new template's first draft: an empty form and a flow of one department-head approval."""
    async with write_transaction(TemplateDraft._meta.db):
        if await _draft_row(key) is not None or await ProcessTemplate.exists().where(
            ProcessTemplate.key == key
        ):
            raise TemplateExists(f"a template {key!r} exists already")
        form = {"key": key, "version": 1, "title": {"zh": meta.name_zh, "en": meta.name_en}, "fields": []}
        flow = starter_flow(key, meta.name_zh)
        await _insert_draft(key, meta, form, flow, actor.id, now, "created")
        await audit.record(
            "template.created",
            actor,
            target_type="template",
            target_id=key,
            after=msgspec.to_builtins(meta),
            now=now,
        )


def starter_flow(key: str, title: str) -> dict[str, Any]:
    return {
        "key": key,
        "title": title,
        "nodes": [
            {"type": "start", "id": "start", "title": "发起"},
            {
                "type": "approval",
                "id": "head",
                "title": "部门负责人审批",
                "assignees": {"kind": "department_head"},
            },
            {"type": "end", "id": "end", "title": "结束"},
        ],
        "edges": [{"from": "start", "to": "head"}, {"from": "head", "to": "end"}],
    }


async def save_draft(
    key: str,
    edit: DraftEdit,
    *,
    row_version: int,
    actor: audit.Actor,
    now: datetime,
    flow_checks: Sequence[FlowCheck] = (),
    locale: str = "zh-CN",
) -> Draft:
    """Store the design as the new current revision (redo history after it is dropped)."""
    async with write_transaction(TemplateDraft._meta.db):
        row = await _locked(key, row_version)
        revision = row["revision"] + 1
        await TemplateDraftRevision.delete().where(
            (TemplateDraftRevision.draft == row["id"]) & (TemplateDraftRevision.revision >= revision)
        )
        await TemplateDraftRevision.insert(
            TemplateDraftRevision(
                draft=row["id"],
                revision=revision,
                form=edit.form,
                flow=edit.flow,
                label=edit.label[:200],
                created_at=now,
                created_by=actor.id,
            )
        )
        await TemplateDraftRevision.delete().where(
            (TemplateDraftRevision.draft == row["id"])
            & (TemplateDraftRevision.revision <= revision - KEPT_REVISIONS)
        )
        values: dict[Any, Any] = {
            TemplateDraft.form: edit.form,
            TemplateDraft.flow: edit.flow,
            TemplateDraft.revision: revision,
            TemplateDraft.row_version: row["row_version"] + 1,
            TemplateDraft.updated_at: now,
            TemplateDraft.updated_by: actor.id,
        }
        if edit.meta is not None:
            values.update(_meta_values(edit.meta))
        await TemplateDraft.update(values).where(TemplateDraft.id == row["id"])
        await audit.record(
            "template.draft_saved",
            actor,
            target_type="template",
            target_id=key,
            after={"revision": revision, "change": edit.label},
            now=now,
        )
    return await open_draft(key, now, flow_checks=flow_checks, locale=locale)


async def undo(
    key: str, *, row_version: int, actor: audit.Actor, now: datetime, flow_checks: Sequence[FlowCheck] = ()
) -> Draft:
    return await _step(key, -1, row_version=row_version, actor=actor, now=now, flow_checks=flow_checks)


async def redo(
    key: str, *, row_version: int, actor: audit.Actor, now: datetime, flow_checks: Sequence[FlowCheck] = ()
) -> Draft:
    return await _step(key, +1, row_version=row_version, actor=actor, now=now, flow_checks=flow_checks)


async def publish(
    key: str,
    request: PublishRequest,
    *,
    row_version: int,
    actor: audit.Actor,
    now: datetime,
    flow_checks: Sequence[FlowCheck] = (),
    locale: str = "zh-CN",
) -> int:
    """Publish the draft as the next version, in effect from `request.effective_from`."""
    async with write_transaction(TemplateDraft._meta.db):
        row = await _locked(key, row_version)
        try:
            form, _ = check_design(key, row["form"], row["flow"], locale, flow_checks=flow_checks)
        except BundleError as exc:
            raise PublishRefused(exc.problems, []) from exc
        breaking: list[BreakingChange] = []
        published = await version_in_effect(key, now)
        if published is not None:
            breaking = breaking_changes(_form(published.form), form, await draft_values(key))
        if breaking and not request.accept_breaking:
            raise PublishRefused([], breaking)
        number = await publish_version(
            key=key,
            category=row["category"],
            name_zh=row["name_zh"],
            name_en=row["name_en"],
            description_zh=row["description_zh"],
            description_en=row["description_en"],
            form=row["form"],
            flow=row["flow"],
            change_note=request.change_note,
            effective_from=request.effective_from,
            now=now,
            published_by=actor.id,
        )
        await ProcessTemplate.update(_template_values(row)).where(ProcessTemplate.key == key)
        await TemplateDraft.update({TemplateDraft.row_version: row["row_version"] + 1}).where(
            TemplateDraft.id == row["id"]
        )
        await audit.record(
            "template.published",
            actor,
            target_type="template",
            target_id=key,
            after={
                "version": number,
                "change_note": request.change_note,
                "effective_from": request.effective_from.isoformat(),
                "breaking_accepted": [change.key for change in breaking],
            },
            now=now,
        )
        await _announce(key, row["name_zh"], number, now)
    return number


async def rollback(
    key: str, version: int, *, actor: audit.Actor, now: datetime, change_note: str = ""
) -> int:
    """Publish an earlier version's form and flow again, as the newest version, in effect now."""
    old = await version_in_effect(key, now, version)
    if old is None:
        raise DraftNotFound(f"{key!r} has no version {version}")
    template = await ProcessTemplate.select().where(ProcessTemplate.key == key).first()
    assert template is not None
    async with write_transaction(TemplateVersion._meta.db):
        number = await publish_version(
            key=key,
            category=template["category"],
            name_zh=template["name_zh"],
            name_en=template["name_en"],
            form=old.form,
            flow=old.flow,
            change_note=change_note or f"回退到 V{version} / rolled back to V{version}",
            effective_from=now,
            now=now,
            published_by=actor.id,
            description_zh=template["description_zh"],
            description_en=template["description_en"],
        )
        draft = await _draft_row(key)
        if draft is not None:
            await TemplateDraft.update(
                {
                    TemplateDraft.form: old.form,
                    TemplateDraft.flow: old.flow,
                    TemplateDraft.row_version: draft["row_version"] + 1,
                }
            ).where(TemplateDraft.id == draft["id"])
        await audit.record(
            "template.rolled_back",
            actor,
            target_type="template",
            target_id=key,
            after={"version": number, "from": version},
            now=now,
        )
    return number


async def replace_draft(
    key: str,
    meta: DraftMeta,
    form: dict[str, Any],
    flow: dict[str, Any] | None,
    *,
    actor: audit.Actor,
    now: datetime,
    label: str,
) -> None:
    """An imported design becomes the draft of `key` (created when new), as one undoable change."""
    row = await _draft_row(key)
    if row is None:
        async with write_transaction(TemplateDraft._meta.db):
            await _insert_draft(key, meta, form, flow, actor.id, now, label)
            await audit.record(
                "template.imported",
                actor,
                target_type="template",
                target_id=key,
                after={"change": label},
                now=now,
            )
        return
    await save_draft(
        key,
        DraftEdit(form=form, flow=flow, meta=meta, label=label),
        row_version=row["row_version"],
        actor=actor,
        now=now,
    )


async def draft_values(key: str) -> dict[str, dict[str, int]]:
    """Field key -> value -> how many draft requests of the template hold it (the breaking-change check)."""
    counts: dict[str, Counter[str]] = {}
    rows = (
        await Instance.select(Instance.data)
        .where((Instance.template_key == key) & (Instance.status == DRAFT_STATUS))
        .output(load_json=True)
    )
    for row in rows:
        data = row["data"] if isinstance(row["data"], dict) else {}
        for field, value in data.items():
            if value in (None, "", [], {}):
                continue
            values = (
                value if isinstance(value, list) and all(not isinstance(v, dict) for v in value) else [value]
            )
            counter = counts.setdefault(field, Counter())
            for item in values:
                counter[str(item) if not isinstance(item, dict | list) else "*"] += 1
    return {field: dict(counter) for field, counter in counts.items()}


# -- internals ------------------------------------------------------------------------------


async def _step(
    key: str,
    direction: int,
    *,
    row_version: int,
    actor: audit.Actor,
    now: datetime,
    flow_checks: Sequence[FlowCheck],
) -> Draft:
    async with write_transaction(TemplateDraft._meta.db):
        row = await _locked(key, row_version)
        target = row["revision"] + direction
        revision = await (
            TemplateDraftRevision.select(
                TemplateDraftRevision.form, TemplateDraftRevision.flow, TemplateDraftRevision.label
            )
            .where((TemplateDraftRevision.draft == row["id"]) & (TemplateDraftRevision.revision == target))
            .output(load_json=True)
            .first()
        )
        if revision is None:
            raise NothingToUndo("nothing to undo" if direction < 0 else "nothing to redo")
        await TemplateDraft.update(
            {
                TemplateDraft.form: revision["form"],
                TemplateDraft.flow: revision["flow"],
                TemplateDraft.revision: target,
                TemplateDraft.row_version: row["row_version"] + 1,
                TemplateDraft.updated_at: now,
                TemplateDraft.updated_by: actor.id,
            }
        ).where(TemplateDraft.id == row["id"])
        await audit.record(
            "template.draft_undone" if direction < 0 else "template.draft_redone",
            actor,
            target_type="template",
            target_id=key,
            after={"revision": target},
            now=now,
        )
    return await open_draft(key, now, flow_checks=flow_checks)


async def _draft_row(key: str) -> dict[str, Any] | None:
    row: dict[str, Any] | None = (
        await TemplateDraft.select().where(TemplateDraft.key == key).output(load_json=True).first()
    )
    return row


async def _locked(key: str, row_version: int) -> dict[str, Any]:
    row = await _draft_row(key)
    if row is None:
        raise DraftNotFound(f"no draft of {key!r}")
    if row["row_version"] != row_version:
        raise DraftConflict("the draft was changed by someone else; reload it")
    return row


async def _insert_draft(
    key: str,
    meta: DraftMeta,
    form: dict[str, Any],
    flow: dict[str, Any] | None,
    person: int | None,
    now: datetime,
    label: str,
) -> None:
    rows = await TemplateDraft.insert(
        TemplateDraft(
            key=key,
            form=form,
            flow=flow,
            revision=1,
            row_version=1,
            updated_at=now,
            updated_by=person,
            **_meta_kwargs(meta),
        )
    ).returning(TemplateDraft.id)
    await TemplateDraftRevision.insert(
        TemplateDraftRevision(
            draft=rows[0]["id"],
            revision=1,
            form=form,
            flow=flow,
            label=label,
            created_at=now,
            created_by=person,
        )
    )


async def _view(row: dict[str, Any], flow_checks: Sequence[FlowCheck], locale: str) -> Draft:
    problems: list[BundleProblem] = []
    try:
        check_design(row["key"], row["form"], row["flow"], locale, flow_checks=flow_checks)
    except BundleError as exc:
        problems = exc.problems
    revisions = {
        r["revision"]
        for r in await TemplateDraftRevision.select(TemplateDraftRevision.revision).where(
            TemplateDraftRevision.draft == row["id"]
        )
    }
    latest = await (
        TemplateVersion.select(TemplateVersion.version)
        .where(TemplateVersion.template.key == row["key"])
        .order_by(TemplateVersion.version, ascending=False)
        .first()
    )
    return Draft(
        key=row["key"],
        meta=DraftMeta(
            category=row["category"],
            name_zh=row["name_zh"],
            name_en=row["name_en"],
            description_zh=row["description_zh"],
            description_en=row["description_en"],
        ),
        form=row["form"],
        flow=row["flow"],
        revision=row["revision"],
        row_version=row["row_version"],
        updated_at=row["updated_at"],
        can_undo=row["revision"] - 1 in revisions,
        can_redo=row["revision"] + 1 in revisions,
        problems=problems,
        published_version=latest["version"] if latest else None,
    )


async def _announce(key: str, name: str, version: int, now: datetime) -> None:
    """Tell the people holding drafts of the template that a new version is out."""
    holders = {
        row["initiator"]
        for row in await Instance.select(Instance.initiator).where(
            (Instance.template_key == key) & (Instance.status == DRAFT_STATUS)
        )
    }
    if not holders:
        return
    await Notification.insert(
        *(
            Notification(
                key=f"template_published:{key}:{version}:{person}",
                person=person,
                kind="template_published",
                title=f"流程模板已更新：{name} V{version}"[:200],
                body="",
                link=f"/process-center/{key}",
                created_at=now,
            )
            for person in sorted(holders)
        )
    ).on_conflict(target=Notification.key, action="DO NOTHING")


async def _names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {
        row["id"]: row["name"]
        for row in await Person.select(Person.id, Person.name).where(Person.id.is_in(list(ids)))
    }


def _meta_values(meta: DraftMeta) -> dict[Any, Any]:
    return {
        TemplateDraft.category: meta.category,
        TemplateDraft.name_zh: meta.name_zh,
        TemplateDraft.name_en: meta.name_en,
        TemplateDraft.description_zh: meta.description_zh,
        TemplateDraft.description_en: meta.description_en,
    }


def _meta_kwargs(meta: DraftMeta) -> dict[str, Any]:
    return {
        "category": meta.category,
        "name_zh": meta.name_zh,
        "name_en": meta.name_en,
        "description_zh": meta.description_zh,
        "description_en": meta.description_en,
    }


def _template_values(row: dict[str, Any]) -> dict[Any, Any]:
    return {
        ProcessTemplate.category: row["category"],
        ProcessTemplate.name_zh: row["name_zh"],
        ProcessTemplate.name_en: row["name_en"],
        ProcessTemplate.description_zh: row["description_zh"],
        ProcessTemplate.description_en: row["description_en"],
    }


def _form(data: dict[str, Any]) -> m.FormSchema:
    return load_schema(msgspec.json.encode(data))


def _flow(data: dict[str, Any] | None):  # type: ignore[no-untyped-def]
    return decode_graph(msgspec.json.encode(data)) if data else None
