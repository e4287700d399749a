"""Background work wiring: the broker, the in-process worker and scheduler, readiness probes.

In the embedded mode (`FORMFLOW_BROKER_URL=memory://`) `serve` also runs a dramatiq worker
thread and the scheduler loop; in production they are the separate `formflow worker` and
`formflow scheduler` processes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import dramatiq
from litestar import Litestar

from runtime.broker import configure_broker, ping
from runtime.scheduler import PeriodicJob, Scheduler
from storage.database import is_postgres_url
from storage.tables import Person
from web.auth.sessions import purge_expired_sessions
from web.settings import Settings

log = logging.getLogger("formflow.background")


def periodic_jobs(settings: Settings) -> list[PeriodicJob]:
    async def sessions(now: datetime) -> None:
        await purge_expired_sessions(now)

    return [PeriodicJob(name="purge-expired-sessions", every_seconds=600, run=sessions)]


def readiness_probes(settings: Settings) -> dict[str, Callable[[], Awaitable[Any]]]:
    async def broker() -> None:
        await anyio.to_thread.run_sync(ping, dramatiq.get_broker())

    async def storage() -> None:
        await anyio.to_thread.run_sync(_check_storage, settings)

    return {"broker": broker, "storage": storage}


def _check_storage(settings: Settings) -> None:
    if settings.storage_backend == "local":
        folder = Path(settings.storage_path)
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".ready"
        probe.write_bytes(b"ok")
        probe.unlink()
        return
    from minio import Minio

    client = Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=settings.s3_secure,
        region=settings.s3_region,
    )
    if not client.bucket_exists(settings.s3_bucket):
        raise RuntimeError(f"bucket {settings.s3_bucket} is missing")


async def on_startup(app: Litestar) -> None:
    settings: Settings = app.state.settings
    if _pooled(settings):
        await Person._meta.db.start_connection_pool(min_size=1, max_size=settings.database_pool_size)
    broker = configure_broker(settings.broker_url)
    if not settings.runs_worker_in_process:
        return
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    scheduler = Scheduler(periodic_jobs(settings))
    app.state.worker = worker
    app.state.scheduler = scheduler
    app.state.scheduler_task = asyncio.create_task(scheduler.run_forever())


async def on_shutdown(app: Litestar) -> None:
    scheduler: Scheduler | None = getattr(app.state, "scheduler", None)
    if scheduler is not None:
        scheduler.stop()
        await app.state.scheduler_task
    worker: dramatiq.Worker | None = getattr(app.state, "worker", None)
    if worker is not None:
        await anyio.to_thread.run_sync(lambda: worker.stop(timeout=5000))
    if _pooled(app.state.settings):
        await Person._meta.db.close_connection_pool()


def _pooled(settings: Settings) -> bool:
    return is_postgres_url(settings.database_url) and settings.database_pool_size > 0
