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
from typing import Any

import anyio
import dramatiq
from litestar import Litestar

from plugins import DeliverySettings, SmtpSettings, configure_delivery
from runtime.actors import broker_sender, register_actors
from runtime.broker import configure_broker, ping
from runtime.relay import relay_outbox
from runtime.scheduler import PeriodicJob, Scheduler
from runtime.service.insight_rollup import refresh_estimates, roll_up
from runtime.service.pipeline import CALENDAR
from runtime.service.timers import fire_due_timers
from storage.attachments import purge_unreferenced
from storage.database import is_postgres_url
from storage.objects import ObjectStore, ObjectStoreError
from storage.tables import Person
from web.auth.sessions import purge_expired_sessions
from web.settings import Settings, plugin_secrets

log = logging.getLogger("formflow.background")
ROLLUP_PER_RUN = 50_000
"""Closed tasks (and requests) one insight-rollup run reads; a backlog is caught up run by run."""


def start_broker(settings: Settings) -> dramatiq.Broker:
    """The broker with Formflow's actors declared on it: call before sending or working."""
    broker = configure_broker(settings.broker_url)
    register_actors(broker)
    return broker


def configure_plugins(settings: Settings) -> None:
    """Give step plugins' side effects (webhooks, e-mail, robots, callbacks) their secrets, mail
    server and public URL: call at start-up in every process that serves or works."""
    smtp = None
    if settings.smtp_host:
        smtp = SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_sender,
            username=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_security == "starttls",
            ssl=settings.smtp_security == "ssl",
        )
    configure_delivery(
        DeliverySettings(secrets=plugin_secrets(settings), smtp=smtp, public_url=settings.base_url)
    )


def periodic_jobs(broker: dramatiq.Broker, store: ObjectStore) -> list[PeriodicJob]:
    """Everything the scheduler runs, with how often (seconds)."""
    send = broker_sender(broker)

    async def timers(now: datetime) -> None:
        await fire_due_timers(now)

    async def outbox(now: datetime) -> None:
        await relay_outbox(send, now)

    async def sessions(now: datetime) -> None:
        await purge_expired_sessions(now)

    async def uploads(now: datetime) -> None:
        await purge_unreferenced(store, now)

    async def insight_rollup(now: datetime) -> None:
        await roll_up(CALENDAR, limit=ROLLUP_PER_RUN)
        await refresh_estimates(now, CALENDAR)

    return [
        PeriodicJob(name="fire-due-timers", every_seconds=5, run=timers),
        PeriodicJob(name="relay-outbox", every_seconds=1, run=outbox),
        PeriodicJob(name="purge-expired-sessions", every_seconds=600, run=sessions),
        PeriodicJob(name="purge-unreferenced-uploads", every_seconds=3600, run=uploads),
        PeriodicJob(name="insight-rollup", every_seconds=60, run=insight_rollup),
    ]


def readiness_probes(store: ObjectStore) -> dict[str, Callable[[], Awaitable[Any]]]:
    async def broker() -> None:
        await anyio.to_thread.run_sync(ping, dramatiq.get_broker())

    return {"broker": broker, "storage": store.ping}


async def on_startup(app: Litestar) -> None:
    settings: Settings = app.state.settings
    if _pooled(settings):
        await Person._meta.db.start_connection_pool(min_size=1, max_size=settings.database_pool_size)
    await _prepare_storage(app.state.object_store)
    broker = start_broker(settings)
    if not settings.runs_worker_in_process:
        return
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    scheduler = Scheduler(periodic_jobs(broker, app.state.object_store))
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
    if _pooled(app.state.settings) or not is_postgres_url(app.state.settings.database_url):
        await Person._meta.db.close_connection_pool()  # SQLite keeps its connections always


async def _prepare_storage(store: ObjectStore) -> None:
    """Create the attachments folder or bucket when missing; a failure leaves readiness failing."""
    try:
        await store.prepare()
    except ObjectStoreError as exc:
        log.error("object store %s is not ready: %s", store.name, exc)


def _pooled(settings: Settings) -> bool:
    return is_postgres_url(settings.database_url) and settings.database_pool_size > 0
