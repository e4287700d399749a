"""Piccolo's SQLite engine with its connections kept: one hop to the driver's thread per statement.

Piccolo's `SQLiteEngine` opens an aiosqlite connection (a thread of its own, the file, four
pragmas) for every transaction and for every statement outside one, and runs each statement
as four hand-offs to that thread (a `PRAGMA foreign_keys`, the execute, the fetch, the cursor's
close). A command's dozen statements cost more in hand-offs and connects than in SQLite.

`PooledSQLiteEngine` keeps idle connections (`IDLE_CONNECTIONS` at most) and runs a statement
as one `execute_fetchall`. The pragmas are set once per connection by its factory
(`storage.database.TunedSQLiteConnection`, foreign keys included). A connection goes back to
the pool only after a clean COMMIT or ROLLBACK; one whose transaction ended in an error is
closed, so no pooled connection is ever mid-transaction. aiosqlite resolves each call on the
caller's event loop, so one pool serves the app's loop and the embedded worker's threads.

Kept connections also keep SQLite from checkpointing the WAL (and syncing the file) each time
the last connection closes; checkpoints run as the WAL grows. `close_connection_pool` closes
the idle ones (the tests do before they copy a fresh database file in place).
"""

from __future__ import annotations

import threading
from typing import Any

import aiosqlite
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory

IDLE_CONNECTIONS = 8


class PooledSQLiteTransaction(SQLiteTransaction):
    """A transaction on a pooled connection, handed back when it ends cleanly."""

    engine: PooledSQLiteEngine

    async def get_connection(self) -> aiosqlite.Connection:
        return await self.engine.borrow()

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent:
            return exception is None
        clean = False
        try:
            if exception:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
            clean = True
        finally:
            self.engine.current_transaction.reset(self.context)
            await self.engine.give_back(self.connection, reuse=clean)
        return exception is None


class PooledSQLiteEngine(SQLiteEngine):
    """`SQLiteEngine` with kept connections and one hand-off per statement."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idle: list[aiosqlite.Connection] = []
        self._lock = threading.Lock()

    async def borrow(self) -> aiosqlite.Connection:
        """An idle connection, or a new one."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return await self.get_connection()

    async def give_back(self, connection: aiosqlite.Connection, *, reuse: bool = True) -> None:
        """Keep `connection` for the next borrower, or close it (not `reuse`, or the pool is full)."""
        if reuse:
            with self._lock:
                if len(self._idle) < IDLE_CONNECTIONS:
                    self._idle.append(connection)
                    return
        await connection.close()

    async def get_connection(self) -> aiosqlite.Connection:
        connection = aiosqlite.connect(**self.connection_kwargs)
        # A kept connection's thread must not hold the interpreter open at exit (commits are
        # already in the WAL; the next opening of the file recovers it).
        connection._thread.daemon = True
        await connection
        connection.row_factory = dict_factory  # type: ignore[assignment]
        return connection

    async def start_connection_pool(self, **_: Any) -> None:
        """Connections are kept from the first statement on; nothing to start."""

    async def close_connection_pool(self) -> None:
        """Close the idle connections (those in use close when they come back, if the pool is full)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()

    async def _run_in_new_connection(
        self,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> Any:
        connection = await self.borrow()
        clean = False
        try:
            rows = await connection.execute_fetchall(query, args or [])
            clean = True
        except aiosqlite.Error:
            clean = True  # the statement failed; the connection, in autocommit mode, is fine
            raise
        finally:
            await self.give_back(connection, reuse=clean)
        return rows

    async def _run_in_existing_connection(
        self,
        connection: Any,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> Any:
        return await connection.execute_fetchall(query, args or [])

    def transaction(
        self, transaction_type: TransactionType = TransactionType.deferred, allow_nested: bool = True
    ) -> PooledSQLiteTransaction:
        return PooledSQLiteTransaction(
            engine=self, transaction_type=transaction_type, allow_nested=allow_nested
        )
