"""The database engine: SQLite (embedded default) or PostgreSQL, chosen by URL.

The URL comes from `FORMFLOW_DATABASE_URL`; `storage.piccolo_conf` builds the engine from it
once, before the first query. SQLite connections run in WAL mode with a 30 s busy timeout, are
kept between statements (`storage.sqlite_engine`), and every write transaction is opened
IMMEDIATE (see `write_transaction`) so two writers queue instead of failing with "database is
locked" on a read-to-write upgrade.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from storage.sqlite_engine import InlineSQLiteEngine

DEFAULT_DATABASE_URL = "sqlite:///var/formflow.sqlite3"
DATABASE_URL_VARIABLE = "FORMFLOW_DATABASE_URL"


class TunedSQLiteConnection(sqlite3.Connection):
    """A connection with the pragmas every Formflow SQLite connection needs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA journal_mode=WAL")
        self.execute("PRAGMA synchronous=NORMAL")
        self.execute("PRAGMA busy_timeout=30000")
        self.execute("PRAGMA foreign_keys=ON")


class TunedPostgresEngine(PostgresEngine):
    """Piccolo's PostgreSQL engine, its pool without asyncpg's reset query on every release.

    asyncpg resets a connection coming back to its pool with a round trip (`RESET ALL`,
    `UNLISTEN *`, advisory unlocks), and Piccolo borrows one for every transaction and every
    statement outside one. Formflow sets no session state, listens to nothing and takes only
    transaction-scoped advisory locks, so the reset only cost a round trip. An open
    transaction is still rolled back by asyncpg before the reset hook runs.
    """

    async def start_connection_pool(self, **kwargs: Any) -> None:
        kwargs.setdefault("reset", _keep_session)
        await super().start_connection_pool(**kwargs)


async def _keep_session(connection: Any) -> None:
    """Nothing to reset (see `TunedPostgresEngine`)."""


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def sqlite_path(url: str) -> Path:
    """`sqlite:///var/x.db` is relative to the working directory, `sqlite:////abs/x.db` absolute."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URL: {url!r} (expected sqlite:///relative/path or sqlite:////abs)")
    return Path(url.removeprefix("sqlite:///"))


def engine_for(url: str) -> Engine:
    """Build the Piccolo engine for a database URL."""
    if is_postgres_url(url):
        parts = urlparse(url)
        return TunedPostgresEngine(
            config={
                "host": parts.hostname or "127.0.0.1",
                "port": parts.port or 5432,
                "user": unquote(parts.username or "postgres"),
                "password": unquote(parts.password or ""),
                "database": parts.path.lstrip("/") or "postgres",
            },
            log_queries=False,
        )
    path = sqlite_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    return InlineSQLiteEngine(path=str(path), timeout=30, factory=TunedSQLiteConnection)


def configured_url() -> str:
    return os.environ.get(DATABASE_URL_VARIABLE) or DEFAULT_DATABASE_URL


def write_transaction(engine: Engine) -> Any:
    """A transaction that takes the write lock at BEGIN on SQLite; a plain one on PostgreSQL."""
    if isinstance(engine, SQLiteEngine):
        return engine.transaction(transaction_type=TransactionType.immediate)
    return engine.transaction()


def icontains(column: Any, text: str) -> Any:
    """A case-insensitive "contains" clause: ILIKE on PostgreSQL, LIKE (already so) on SQLite.

    `%` and `_` typed by a user act as wildcards, as in any LIKE search; they only widen it.
    """
    pattern = f"%{text}%"
    if isinstance(column._meta.table._meta.db, SQLiteEngine):
        return column.like(pattern)
    return column.ilike(pattern)
