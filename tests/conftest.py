"""Shared fixtures: a migrated database per session, emptied and re-seeded per test.

The database is a temporary SQLite file unless `FORMFLOW_TEST_DATABASE_URL` names a
PostgreSQL database (CI sets it; the schema there is dropped and recreated per session).
`FORMFLOW_TEST_REDIS_URL` switches the broker to Redis. Tests that need a component that is
absent skip with the reason on a laptop and fail when `CI=true`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="formflow-tests-"))
TEST_DATABASE_URL = os.environ.get("FORMFLOW_TEST_DATABASE_URL") or f"sqlite:///{_TMP}/test.sqlite3"
TEST_BROKER_URL = os.environ.get("FORMFLOW_TEST_REDIS_URL") or "memory://"
# Must be set before anything imports storage: Piccolo builds the engine on first use.
os.environ["FORMFLOW_DATABASE_URL"] = TEST_DATABASE_URL
os.environ["FORMFLOW_VAR_DIR"] = str(_TMP)
os.environ["FORMFLOW_STORAGE_PATH"] = str(_TMP / "attachments")
os.environ["FORMFLOW_BROKER_URL"] = TEST_BROKER_URL
os.environ["FORMFLOW_IN_PROCESS_WORKER"] = "false"
os.environ["FORMFLOW_DATABASE_POOL_SIZE"] = "0"  # the test client runs the app on another loop
os.environ.setdefault("FORMFLOW_LOG_LEVEL", "WARNING")

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
    import asyncio

    from storage.migrate import migrate
    from storage.tables import Person

    async def setup() -> None:
        if ON_POSTGRES:
            await Person.raw("DROP SCHEMA IF EXISTS public CASCADE")
            await Person.raw("CREATE SCHEMA public")
        await migrate()

    asyncio.run(setup())
    yield


@pytest.fixture()
async def db(_schema: None) -> AsyncIterator[None]:
    """An empty database holding only the demo organisation."""
    from storage.tables import ALL_TABLES, Department
    from web.demo import seed_demo

    names = ", ".join(t._meta.tablename for t in ALL_TABLES)
    if ON_POSTGRES:
        await ALL_TABLES[0].raw(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    else:
        await Department.update({Department.parent: None}, force=True)
        for table in reversed(ALL_TABLES):
            await table.delete(force=True)
    await seed_demo()
    yield
