"""Shared fixtures: a migrated database per session, emptied and re-seeded per test.

The database is a temporary SQLite file unless `FORMFLOW_TEST_DATABASE_URL` names a
PostgreSQL database (CI sets it; the schema there is dropped and recreated per session).
`FORMFLOW_TEST_REDIS_URL` switches the broker to Redis. Tests that need a component that is
absent skip with the reason on a laptop and fail when `CI=true`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="formflow-tests-"))
_SQLITE_FILE = _TMP / "test.sqlite3"
_SQLITE_SEEDED = _TMP / "seeded.sqlite3"
TEST_DATABASE_URL = os.environ.get("FORMFLOW_TEST_DATABASE_URL") or f"sqlite:///{_SQLITE_FILE}"
TEST_BROKER_URL = os.environ.get("FORMFLOW_TEST_REDIS_URL") or "memory://"
# Must be set before anything imports storage: Piccolo builds the engine on first use.
os.environ["FORMFLOW_DATABASE_URL"] = TEST_DATABASE_URL
os.environ["FORMFLOW_VAR_DIR"] = str(_TMP)
os.environ["FORMFLOW_STORAGE_PATH"] = str(_TMP / "attachments")
os.environ["FORMFLOW_BROKER_URL"] = TEST_BROKER_URL
os.environ["FORMFLOW_IN_PROCESS_WORKER"] = "false"
os.environ["FORMFLOW_DATABASE_POOL_SIZE"] = "0"  # the test client runs the app on another loop
os.environ.setdefault("FORMFLOW_LOG_LEVEL", "WARNING")
# Cheap password hashes: sign-in is exercised hundreds of times; the cost itself is a setting.
os.environ["FORMFLOW_PASSWORD_HASH_TIME_COST"] = "1"
os.environ["FORMFLOW_PASSWORD_HASH_MEMORY_KIB"] = "1024"

IN_CI = os.environ.get("CI") == "true"
ON_POSTGRES = TEST_DATABASE_URL.startswith("postgres")


def require(component: str, available: bool, reason: str) -> None:
    """Skip a test whose component is missing, except in CI, where that is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{component} is required in CI: {reason}")
    pytest.skip(f"{component} unavailable: {reason}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"formflow database: {TEST_DATABASE_URL.split('@')[-1]}", f"formflow broker: {TEST_BROKER_URL}"]


@pytest.fixture(scope="session")
def _schema() -> Iterator[None]:
    """Migrate once per session; on SQLite also keep a seeded copy to restore before each test."""
    import asyncio

    from storage.migrate import migrate
    from storage.tables import Person
    from web.demo import seed_demo

    async def setup() -> None:
        if ON_POSTGRES:
            await Person.raw("DROP SCHEMA IF EXISTS public CASCADE")
            await Person.raw("CREATE SCHEMA public")
        await migrate()
        if not ON_POSTGRES:
            await seed_demo()
            await Person.raw("PRAGMA wal_checkpoint(TRUNCATE)")
            await Person._meta.db.close_connection_pool()

    asyncio.run(setup())
    if not ON_POSTGRES:
        shutil.copyfile(_SQLITE_FILE, _SQLITE_SEEDED)
    yield


async def reset_database() -> None:
    """Back to the demo organisation and the demo templates only.

    SQLite: the kept connections are closed and the seeded file is copied back. PostgreSQL:
    every table is truncated and re-seeded.
    """
    from storage.tables import ALL_TABLES
    from web.demo import seed_demo

    if ON_POSTGRES:
        names = ", ".join(t._meta.tablename for t in ALL_TABLES)
        await ALL_TABLES[0].raw(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        await seed_demo()
        return
    await ALL_TABLES[0]._meta.db.close_connection_pool()
    for suffix in ("-wal", "-shm"):
        Path(f"{_SQLITE_FILE}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(_SQLITE_SEEDED, _SQLITE_FILE)


@pytest.fixture()
async def db(_schema: None) -> AsyncIterator[None]:
    """A database holding only the demo organisation and the demo templates."""
    await reset_database()
    yield
