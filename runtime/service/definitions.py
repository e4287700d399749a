"""Published template versions, decoded and compiled once per process.

A published version is immutable (`storage.templates`), so its decoded form schema, compiled
validator and flow graph are cached for the life of the process, by the version's row id
together with its `published_at` (a database emptied and filled again, as tests do, may give
the same id to another version; it cannot give it the same publication instant).
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import msgspec

from forms import CompiledForm, FormSchema, compile_form, load_schema
from runtime.flow import FlowGraph, graph_from_dict
from runtime.service.errors import TemplateHasNoFlow, TemplateNotFound
from storage.raw_sql import fetch
from storage.tables import TemplateVersion

_CACHE_LIMIT = 1_024


class Definition(NamedTuple):
    """One template version as the service uses it. `version_id` is the row id instances pin."""

    version_id: int
    published_at: dt.datetime
    key: str
    version: int
    name_zh: str
    name_en: str
    schema: FormSchema
    form: CompiledForm
    flow: FlowGraph | None

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" and self.name_en else self.name_zh

    def runnable_flow(self) -> FlowGraph:
        if self.flow is None:
            raise TemplateHasNoFlow(self.key, self.version)
        return self.flow


_cache: dict[int, Definition] = {}


async def definition(version_id: int, published_at: dt.datetime) -> Definition:
    """The definition of a template version by its row id (from the cache when seen before)."""
    cached = _cache.get(version_id)
    if cached is not None and cached.published_at == published_at:
        return cached
    row = await (
        TemplateVersion.select(
            TemplateVersion.id,
            TemplateVersion.published_at,
            TemplateVersion.version,
            TemplateVersion.form,
            TemplateVersion.flow,
            TemplateVersion.template.key.as_alias("key"),
            TemplateVersion.template.name_zh.as_alias("name_zh"),
            TemplateVersion.template.name_en.as_alias("name_en"),
        )
        .where(TemplateVersion.id == version_id)
        .first()
    )
    if row is None:
        raise LookupError(f"template version {version_id} is missing")  # pinned rows are never deleted
    schema = load_schema(_as_bytes(row["form"]))
    flow = graph_from_dict(msgspec.json.decode(_as_bytes(row["flow"]))) if row["flow"] else None
    loaded = Definition(
        version_id=row["id"],
        published_at=row["published_at"],
        key=row["key"],
        version=row["version"],
        name_zh=row["name_zh"],
        name_en=row["name_en"],
        schema=schema,
        form=compile_form(schema),
        flow=flow,
    )
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[version_id] = loaded
    return loaded


async def definition_in_effect(key: str, now: dt.datetime) -> Definition:
    """The newest version of template `key` whose `effective_from` has passed at `now`."""
    rows = await fetch(TemplateVersion, _IN_EFFECT, key, now)
    if not rows:
        raise TemplateNotFound(key)
    return await definition(rows[0]["id"], rows[0]["published_at"])


_IN_EFFECT = (
    'SELECT "template_version"."id", "template_version"."published_at" FROM "template_version" '
    'JOIN "process_template" ON "process_template"."id" = "template_version"."template" '
    'WHERE "process_template"."key" = {} AND "template_version"."effective_from" <= {} '
    'ORDER BY "template_version"."version" DESC LIMIT 1'
)


def _as_bytes(value: str | bytes | dict[str, object]) -> bytes:
    """JSON columns come back as text (or, on some drivers, already parsed)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return msgspec.json.encode(value)
