"""Piccolo's SQLite engine, run on the caller's thread over kept connections.

Piccolo's `SQLiteEngine` opens an aiosqlite connection (a thread of its own, the file, four
pragmas) for every transaction and for every statement outside one, and runs each statement
as four hand-offs to that thread. A command's dozen statements cost more in hand-offs and
thread switches than in SQLite, which answers most of them in tens of microseconds.

`InlineSQLiteEngine` keeps idle `sqlite3` connections (`IDLE_CONNECTIONS` at most) and runs a
statement on the calling thread, as SQLite's own C API does. The pragmas are set once per
connection by its factory (`storage.database.TunedSQLiteConnection`, foreign keys included).

Because a statement now holds the thread, a writer must never wait for SQLite's write lock
while a transaction on the same event loop holds it: that transaction could not go on, and
the busy timeout would run out. So every transaction, and every statement outside one that
may write, first takes the loop's writer lock (an `asyncio.Lock`, one per event loop): the
loop's writers queue on it, and the loop goes on serving reads, which WAL never blocks. A
transaction on another loop or thread (the embedded worker's), or another process, waits on
SQLite's busy timeout as before, holding only its own thread.

A connection goes back to the pool only after a clean COMMIT or ROLLBACK; one whose
transaction ended in an error is closed, so no pooled connection is ever mid-transaction.

Checkpoints (copying the WAL back into the database file, with its fsyncs) would otherwise run
inside whichever COMMIT crossed SQLite's 1,000-page mark, a few milliseconds every hundred
commands. `Checkpointer`, a daemon thread with a connection of its own, runs a PASSIVE
checkpoint a moment after writes instead; the connections' own automatic checkpoint stays as a
backstop at `BACKSTOP_PAGES`. `close_connection_pool` closes the idle connections and stops the
checkpointer (the tests do before they copy a fresh database file in place); both come back
with the next statement.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import weakref
from typing import Any

from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory

IDLE_CONNECTIONS = 8
CHECKPOINT_DELAY = 0.5
"""Seconds between a write and the checkpoint that follows it."""
BACKSTOP_PAGES = 10_000
"""The WAL size (pages of 4 KiB) at which a committing connection checkpoints by itself."""
READS = ("select", "pragma", "explain")
"""Statements outside a transaction that run without the writer lock (by their first word)."""


def _reads_only(query: str) -> bool:
    return query.lstrip(" \n\t(").lower().startswith(READS)


class InlineConnection:
    """A kept `sqlite3` connection, with the awaitable `execute` Piccolo's transaction calls."""

    __slots__ = ("raw",)

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    async def execute(self, sql: str, parameters: Any = ()) -> None:
        self.raw.execute(sql, parameters)

    def fetch(self, sql: str, parameters: Any) -> list[Any]:
        return self.raw.execute(sql, parameters).fetchall()

    async def close(self) -> None:
        self.raw.close()


class Checkpointer(threading.Thread):
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` after writes, off the writers' thread."""

    def __init__(self, connect: Any) -> None:
        super().__init__(name="sqlite-checkpointer", daemon=True)
        self._connect = connect
        self._written = threading.Event()
        self._stopping = threading.Event()

    def written(self) -> None:
        self._written.set()

    def run(self) -> None:
        raw = self._connect()
        try:
            while not self._stopping.is_set():
                self._written.wait()
                if self._stopping.wait(CHECKPOINT_DELAY):
                    break
                self._written.clear()
                try:
                    raw.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    continue  # the next write tries again; the backstop checkpoint still holds
        finally:
            raw.close()

    def stop(self) -> None:
        self._stopping.set()
        self._written.set()
        self.join()


class InlineSQLiteTransaction(SQLiteTransaction):
    """A transaction on a pooled connection, holding the loop's writer lock until it ends."""

    engine: InlineSQLiteEngine
    connection: InlineConnection

    async def __aenter__(self) -> SQLiteTransaction:
        if self._parent is not None:
            return self._parent
        self._writer = self.engine.writer()
        await self._writer.acquire()
        raw: sqlite3.Connection | None = None
        try:
            raw = self.engine.borrow()
            self.connection = InlineConnection(raw)
            await self.begin()
        except BaseException:
            if raw is not None:
                self.engine.give_back(raw, reuse=False)
            self._writer.release()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

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
            self.engine.give_back(self.connection.raw, reuse=clean)
            self._writer.release()
            self.engine.written()
        return exception is None


class InlineSQLiteEngine(SQLiteEngine):
    """`SQLiteEngine` with kept connections, statements on the caller's thread, writers queued per loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._checkpointer: Checkpointer | None = None

    def writer(self) -> asyncio.Lock:
        """The running loop's writer lock."""
        loop = asyncio.get_running_loop()
        with self._lock:
            lock = self._writers.get(loop)
            if lock is None:
                lock = self._writers[loop] = asyncio.Lock()
        return lock

    def borrow(self) -> sqlite3.Connection:
        """An idle connection, or a new one."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _connect(self) -> sqlite3.Connection:
        raw = sqlite3.connect(**self.connection_kwargs, check_same_thread=False)
        raw.row_factory = dict_factory
        raw.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        return raw

    def written(self) -> None:
        """Something was written: checkpoint a moment later."""
        checkpointer = self._checkpointer
        if checkpointer is None:
            with self._lock:
                if self._checkpointer is None:
                    self._checkpointer = Checkpointer(self._connect)
                    self._checkpointer.start()
                checkpointer = self._checkpointer
        checkpointer.written()

    def give_back(self, raw: sqlite3.Connection, *, reuse: bool = True) -> None:
        """Keep `raw` for the next borrower, or close it (not `reuse`, or the pool is full)."""
        if reuse and not raw.in_transaction:
            with self._lock:
                if len(self._idle) < IDLE_CONNECTIONS:
                    self._idle.append(raw)
                    return
        raw.close()

    async def get_connection(self) -> InlineConnection:  # type: ignore[override]
        return InlineConnection(self.borrow())

    async def start_connection_pool(self, **_: Any) -> None:
        """Connections are kept from the first statement on; nothing to start."""

    async def close_connection_pool(self) -> None:
        """Close the idle connections and stop the checkpointer (both come back when next needed)."""
        with self._lock:
            idle, self._idle = self._idle, []
            checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.stop()
        for raw in idle:
            raw.close()

    def _run_now(self, query: str, args: list[Any]) -> list[Any]:
        raw = self.borrow()
        try:
            rows = raw.execute(query, args).fetchall()
        finally:
            self.give_back(raw)  # autocommit: a failed statement leaves the connection as it was
        return rows

    async def _run_in_new_connection(
        self,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> Any:
        if _reads_only(query):
            return self._run_now(query, args or [])
        async with self.writer():
            rows = self._run_now(query, args or [])
        self.written()
        return rows

    async def _run_in_existing_connection(
        self,
        connection: Any,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> Any:
        return connection.fetch(query, args or [])

    def transaction(
        self, transaction_type: TransactionType = TransactionType.deferred, allow_nested: bool = True
    ) -> InlineSQLiteTransaction:
        return InlineSQLiteTransaction(
            engine=self, transaction_type=transaction_type, allow_nested=allow_nested
        )
