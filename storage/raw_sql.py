"""Hand-written SQL on the hot paths, without Piccolo's per-call query building.

`Table.raw(template, *args)` parses its `{}` template with `string.Formatter`, wraps every
argument and builds a query object on every call: tens of microseconds per statement, more
than SQLite takes to run most of a command's statements. `fetch` compiles a template once per
engine type (`?` for SQLite, `$1..$n` for PostgreSQL) and hands it straight to the engine,
which runs it on the current transaction's connection, a pooled one, or a new one, exactly as
for `Table.raw`. Rows come back as dicts, as from `Table.raw`.

    rows = await fetch(Task, 'SELECT "id" FROM "task" WHERE "task_key" = {}', key)

Arguments are values only (no columns or nested query strings), as in every template here.
"""

from __future__ import annotations

import functools
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
