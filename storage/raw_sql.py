"""Hand-written SQL on the hot paths, without Piccolo's per-call query building.

`Table.raw(template, *args)` parses its `{}` template with `string.Formatter`, wraps every
argument and builds a query object on every call: tens of microseconds per statement, more
than SQLite takes to run most of a command's statements. `fetch` compiles a template once per
engine type (`?` for SQLite, `$1..$n` for PostgreSQL) and hands it straight to the engine,
which runs it on the current transaction's connection, a pooled one, or a new one, exactly as
for `Table.raw`. Rows come back as dicts, as from `Table.raw`.

    rows = await fetch(Task, 'SELECT "id" FROM "task" WHERE "task_key" = {}', key)

Arguments are values only (no columns or nested query strings), as in every template here.
`WriteBatch` sends several writes in one statement on PostgreSQL.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Iterable
from typing import Any, cast

from piccolo.querystring import QueryString
from piccolo.table import Table


@functools.cache
def compiled(template: str, engine_type: str) -> str:
    """`template` with its `{}` placeholders numbered for `engine_type`."""
    parts = template.replace("{{", "\0(").replace("}}", "\0)").split("{}")
    if engine_type == "sqlite":
        sql = "?".join(parts)
    else:
        sql = parts[0] + "".join(f"${index}{part}" for index, part in enumerate(parts[1:], start=1))
    return sql.replace("\0(", "{").replace("\0)", "}")


@functools.cache
def insert_sql(table: str, columns: tuple[str, ...], rows: int, tail: str = "") -> str:
    """`INSERT INTO table (columns) VALUES (...), ...` with `{}` placeholders for `fetch`."""
    row = "(" + ", ".join(["{}"] * len(columns)) + ")"
    names = ", ".join(f'"{column}"' for column in columns)
    return f'INSERT INTO "{table}" ({names}) VALUES {", ".join([row] * rows)}{tail}'


class _Compiled:
    """What an engine's `run_querystring` reads from a query string, already compiled."""

    __slots__ = ("args", "sql")
    query_type = "generic"
    table = None

    def __init__(self, sql: str, args: tuple[Any, ...]) -> None:
        self.sql = sql
        self.args = args

    def compile_string(self, engine_type: str = "postgres") -> tuple[str, list[Any]]:
        return self.sql, list(self.args)

    def __str__(self) -> str:  # what an engine logs when it logs queries
        return f"{self.sql} {self.args!r}"


async def fetch(table: type[Table], template: str, *args: Any) -> list[dict[str, Any]]:
    """Run `template` with `args` on `table`'s engine; the rows as dicts."""
    engine = table._meta.db
    query = _Compiled(compiled(template, engine.engine_type), args)
    results = await engine.run_querystring(cast(QueryString, query))
    return engine.transform_response_to_dicts(results) if results else []


class WriteBatch:
    """Writes whose results nobody reads, sent together: one statement on PostgreSQL.

    On PostgreSQL the pending writes become data-modifying CTEs of the statement `flush`
    sends (`WITH w1 AS (INSERT ...), w2 AS (UPDATE ...) <last statement>`), one round trip for
    all of them; on SQLite, where a statement costs no round trip, they run one by one. The
    parts of one PostgreSQL statement share a snapshot and cannot see each other's rows, so a
    write that names a row an earlier pending write also names (`touches`: any hashable keys,
    such as ("timer", key)) first flushes what is pending: the order of effects on one row is
    kept.

        batch = WriteBatch(Task)
        await batch.write(CLOSE_TASKS, "closed", key, touches=[("task", key)])
        rows = await batch.flush('INSERT INTO "task" ... RETURNING "id"', *values)
    """

    def __init__(self, table: type[Table]) -> None:
        self.table = table
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._touched: set[Any] = set()

    async def write(self, template: str, *args: Any, touches: Iterable[Hashable] = ()) -> None:
        """Add a write (flushing first when it names a row a pending write names)."""
        keys = set(touches)
        if keys & self._touched:
            await self.flush()
        self._pending.append((template, args))
        self._touched |= keys

    async def flush(self, template: str | None = None, *args: Any) -> list[dict[str, Any]]:
        """Send the pending writes, then `template` (if any); `template`'s rows."""
        pending, self._pending, self._touched = self._pending, [], set()
        if template is not None:
            pending.append((template, args))
        if not pending:
            return []
        if self.table._meta.db.engine_type == "sqlite" or len(pending) == 1:
            rows: list[dict[str, Any]] = []
            for written, written_values in pending:
                rows = await fetch(self.table, written, *written_values)
            return rows if template is not None else []
        writes = tuple(written for written, _ in pending)
        values = [value for _, written_values in pending for value in written_values]
        if template is not None:
            return await fetch(self.table, _combined(writes[:-1], template), *values)
        return await fetch(self.table, _combined(writes, None), *values)


@functools.cache
def _combined(templates: tuple[str, ...], last: str | None) -> str:
    parts = ", ".join(f"w{index} AS ({written})" for index, written in enumerate(templates, start=1))
    return f"WITH {parts} {last if last is not None else 'SELECT 1'}"
