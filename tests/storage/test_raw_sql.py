"""Hand-written SQL without the query builder: placeholders numbered per database, and batched
writes that keep the order of writes to one row (one statement on PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from storage.raw_sql import WriteBatch, compiled
from storage.tables import Incident

NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
INSERT = (
    'INSERT INTO "incident" ("created_at", "source", "key", "message", "payload") '
    "VALUES ({}, 'test', {}, {}, '{{}}')"
)
RENAME = 'UPDATE "incident" SET "message" = {} WHERE "key" = {}'


def test_placeholders_are_numbered_for_each_database() -> None:
    template = "SELECT {} AS a, {} AS b, '{{\"x\": 1}}' AS c"
    assert compiled(template, "postgres") == "SELECT $1 AS a, $2 AS b, '{\"x\": 1}' AS c"
    assert compiled(template, "sqlite") == "SELECT ? AS a, ? AS b, '{\"x\": 1}' AS c"


async def _messages() -> dict[str, str]:
    rows = await Incident.select(Incident.key, Incident.message)
    return {row["key"]: row["message"] for row in rows}


async def test_a_batch_writes_everything_and_returns_the_last_statement_s_rows(db: None) -> None:
    batch = WriteBatch(Incident)
    await batch.write(INSERT, NOW, "a", "first")
    await batch.write(INSERT, NOW, "b", "second")
    rows = await batch.flush(INSERT + ' RETURNING "key"', NOW, "c", "third")
    assert rows == [{"key": "c"}]
    assert await _messages() == {"a": "first", "b": "second", "c": "third"}
    assert await batch.flush() == []  # nothing pending: nothing written twice
    assert len(await _messages()) == 3


async def test_a_write_to_a_row_a_pending_write_touched_comes_after_it(db: None) -> None:
    batch = WriteBatch(Incident)
    await batch.write(INSERT, NOW, "a", "created", touches=[("incident", "a")])
    await batch.write(RENAME, "renamed", "a", touches=[("incident", "a")])
    await batch.write(RENAME, "renamed again", "a", touches=[("incident", "a")])
    await batch.flush()
    assert await _messages() == {"a": "renamed again"}
