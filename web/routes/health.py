"""Liveness, readiness (database, broker, storage) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response, get
from litestar.plugins.prometheus import PrometheusController

from storage.access import Permission
from storage.tables import Person
from web.auth.guards import needs
from web.context import AnyRequest


@get("/health/live", opt=needs(Permission.PUBLIC), sync_to_thread=False, media_type=MediaType.JSON)
def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", opt=needs(Permission.PUBLIC), media_type=MediaType.JSON)
async def ready(request: AnyRequest) -> Response[Any]:
    checks: dict[str, str] = {}
    try:
        await Person.raw("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    for name, probe in request.app.state.readiness_probes.items():
        try:
            await probe()
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}: {exc}"[:200]
    healthy = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status_code=200 if healthy else 503
    )


class MetricsController(PrometheusController):
    path = "/metrics"
    opt = needs(Permission.PUBLIC)


ROUTES = [live, ready, MetricsController]
