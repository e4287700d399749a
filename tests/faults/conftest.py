"""Fixtures of the fault tests: a migrated and seeded scratch database per session, copied for
each test, a private redis-server and a `formflow serve` subprocess per test.

The process tests run in the PostgreSQL pass (`FORMFLOW_TEST_DATABASE_URL`) on the same server,
in databases of their own (`formflow_faults_<pid>_*`), created and dropped here, never the
suite's. `test_timer_races.py` and `test_broker_options.py` run in-process on the suite's fixtures.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import ON_POSTGRES, TEST_DATABASE_URL, require
from tests.faults.processes import Cluster, RedisServer, admin_execute, database_url, free_port

PREFIX = f"formflow_faults_{os.getpid()}"
_numbers = itertools.count(1)


_failed = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether the test body failed, so the cluster fixture prints the process logs."""
    report = yield
    if report.when == "call":
        item.stash[_failed] = report.failed
    return report


def _server_reachable() -> bool:
    async def probe() -> None:
        connection = await asyncpg.connect(database_url(TEST_DATABASE_URL, "postgres"), timeout=5)
        await connection.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


@pytest.fixture(scope="session")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated with `formflow migrate` and seeded with `formflow seed-demo`."""
    if not ON_POSTGRES:
        # Not a missing component: this is the SQLite pass; `.ci/run` runs the suite again on PostgreSQL.
        pytest.skip("runs in the PostgreSQL pass (FORMFLOW_TEST_DATABASE_URL)")
    require("PostgreSQL", _server_reachable(), f"cannot connect to {TEST_DATABASE_URL.split('@')[-1]}")
    require(
        "redis-server", shutil.which("redis-server") is not None, "the redis-server binary is not installed"
    )
    name = f"{PREFIX}_seed"
    asyncio.run(admin_execute(TEST_DATABASE_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    asyncio.run(admin_execute(TEST_DATABASE_URL, f"CREATE DATABASE {name}"))
    try:
        workdir = tmp_path_factory.mktemp("faults-seed")
        seeding = Cluster(
            database_url(TEST_DATABASE_URL, name), RedisServer(0, workdir / "redis.log"), workdir
        )
        seeding.command("migrate")
        assert "demo organisation created" in seeding.command("seed-demo")
        yield name
    finally:
        asyncio.run(admin_execute(TEST_DATABASE_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture()
async def cluster(
    seeded_database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Cluster]:
    """A fresh copy of the seeded database, a private Redis and `formflow serve` on both.

    Workers and schedulers are the test's to start (`cluster.worker()`, `cluster.scheduler()`);
    every process is stopped afterwards and the database dropped.
    """
    name = f"{PREFIX}_{next(_numbers)}"
    await admin_execute(TEST_DATABASE_URL, f"CREATE DATABASE {name} TEMPLATE {seeded_database}")
    redis = RedisServer(free_port(), tmp_path / "redis.log")
    redis.start()
    cluster = Cluster(database_url(TEST_DATABASE_URL, name), redis, tmp_path)
    ready = False
    try:
        await cluster.serve()
        ready = True
        yield cluster
    finally:
        await cluster.close()
        redis.stop()
        if not ready or request.node.stash.get(_failed, False):
            print(cluster.logs())
        await admin_execute(TEST_DATABASE_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
