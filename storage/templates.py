"""Process templates and their published versions.

A version is immutable once published: its form schema (and later its flow graph) is stored as
JSON and never updated; publishing again writes a new version with a higher number. The
version in effect at a moment is the newest one whose `effective_from` has passed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from storage.database import icontains
from storage.tables import ProcessTemplate, TemplateVersion


class TemplateSummary(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    category: str
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    version: int | None


class PublishedVersion(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    version: int
    form: dict[str, Any]
    flow: dict[str, Any] | None
    change_note: str
    effective_from: datetime
    published_at: datetime


async def list_templates(now: datetime, search: str = "") -> list[TemplateSummary]:
    """Templates with a version in effect at `now`, by category then key."""
    query = ProcessTemplate.select().order_by(ProcessTemplate.category).order_by(ProcessTemplate.key)
    if search:
        query = query.where(
            icontains(ProcessTemplate.name_zh, search)
            | icontains(ProcessTemplate.name_en, search)
            | icontains(ProcessTemplate.key, search)
        )
    templates = await query
    versions = await TemplateVersion.select(TemplateVersion.template, TemplateVersion.version).where(
        TemplateVersion.effective_from <= now
    )
    current: dict[int, int] = {}
    for row in versions:
        current[row["template"]] = max(current.get(row["template"], 0), row["version"])
    return [
        TemplateSummary(
            key=t["key"],
            category=t["category"],
            name_zh=t["name_zh"],
            name_en=t["name_en"],
            description_zh=t["description_zh"],
            description_en=t["description_en"],
            version=current[t["id"]],
        )
        for t in templates
        if t["id"] in current
    ]


async def version_in_effect(key: str, now: datetime, version: int | None = None) -> PublishedVersion | None:
    """The given version of a template, or the newest one in effect at `now`."""
    query = (
        TemplateVersion.select(
            TemplateVersion.version,
            TemplateVersion.form,
            TemplateVersion.flow,
            TemplateVersion.change_note,
            TemplateVersion.effective_from,
            TemplateVersion.published_at,
        )
        .where(TemplateVersion.template.key == key)
        .order_by(TemplateVersion.version, ascending=False)
        .output(load_json=True)
    )
    if version is not None:
        query = query.where(TemplateVersion.version == version)
    else:
        query = query.where(TemplateVersion.effective_from <= now)
    row = await query.first()
    if row is None:
        return None
    return PublishedVersion(
        key=key,
        version=row["version"],
        form=dict(row["form"]),
        flow=dict(row["flow"]) if row["flow"] else None,
        change_note=row["change_note"],
        effective_from=row["effective_from"],
        published_at=row["published_at"],
    )


async def publish_version(
    *,
    key: str,
    category: str,
    name_zh: str,
    name_en: str,
    form: dict[str, Any],
    flow: dict[str, Any] | None,
    change_note: str,
    effective_from: datetime,
    now: datetime,
    published_by: int | None,
    description_zh: str = "",
    description_en: str = "",
) -> int:
    """Create the template if needed and add the next version. Call in a write transaction.

    The form's own `version` field is set to the number given here, so a stored schema always
    names the version it belongs to.
    """
    template = await ProcessTemplate.select(ProcessTemplate.id).where(ProcessTemplate.key == key).first()
    if template is None:
        rows = await ProcessTemplate.insert(
            ProcessTemplate(
                key=key,
                category=category,
                name_zh=name_zh,
                name_en=name_en,
                description_zh=description_zh,
                description_en=description_en,
            )
        ).returning(ProcessTemplate.id)
        template_id = rows[0]["id"]
    else:
        template_id = template["id"]
    last = await (
        TemplateVersion.select(TemplateVersion.version)
        .where(TemplateVersion.template == template_id)
        .order_by(TemplateVersion.version, ascending=False)
        .first()
    )
    number = (last["version"] if last else 0) + 1
    await TemplateVersion.insert(
        TemplateVersion(
            template=template_id,
            version=number,
            form={**form, "version": number},
            flow=flow,
            change_note=change_note,
            effective_from=effective_from,
            published_at=now,
            published_by=published_by,
        )
    )
    return number
