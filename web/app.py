"""The Litestar application: the composition root that wires every package together."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from litestar import Litestar, Router
from litestar.config.csrf import CSRFConfig
from litestar.middleware.base import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.plugins.prometheus import PrometheusConfig
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from storage.access import Permission
from storage.objects import object_store
from web import background, i18n
from web.auth.guards import PERMISSION_KEY, needs, permission_guard
from web.auth.middleware import AuthenticationMiddleware, CSRFMiddleware
from web.errors import EXCEPTION_HANDLERS
from web.observability import RequestLogMiddleware, configure_logging
from web.routes import (
    admin,
    attachments,
    auth,
    designer,
    flow_designer,
    health,
    insight,
    instances,
    pages,
    plugin_calls,
    profile,
    reviews,
    suggestions,
    templates,
    work,
)
from web.settings import Settings, load_settings, secret_key
from web.templating import configure_environment

HERE = Path(__file__).parent
CSRF_HEADER = "x-csrftoken"


def _template_engine(engine: JinjaTemplateEngine) -> None:
    configure_environment(engine.engine)


def _open_automatic_options(app: Litestar) -> None:
    """Litestar answers OPTIONS on every path by itself (204 + Allow, no data): declare it public."""
    for route in app.routes:
        handlers = getattr(route, "route_handler_map", {})
        entry = handlers.get("OPTIONS")
        handler = entry[0] if isinstance(entry, tuple) else entry
        if handler is not None and handler.fn.__name__ == "options_handler":
            handler.opt.setdefault(PERMISSION_KEY, Permission.PUBLIC)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_json)
    background.configure_plugins(settings)
    csrf = CSRFConfig(
        secret=secret_key(settings),
        cookie_secure=not settings.dev,
        cookie_samesite="lax",
        header_name=CSRF_HEADER,
        exclude=["/api/v1/auth/token", "/health", "/metrics", plugin_calls.PATH],
    )
    store = object_store(settings)
    readiness: dict[str, Callable[[], Awaitable[Any]]] = background.readiness_probes(store)
    static = create_static_files_router(
        path="/static", directories=[HERE / "static"], opt=needs(Permission.PUBLIC), include_in_schema=False
    )
    prometheus = PrometheusConfig(
        app_name="formflow", prefix="formflow", group_path=True, exclude=["/static"]
    )
    app = Litestar(
        route_handlers=[
            *auth.ROUTES,
            *pages.ROUTES,
            *profile.ROUTES,
            *admin.ROUTES,
            *reviews.ROUTES,
            *suggestions.ROUTES,
            *attachments.ROUTES,
            *templates.ROUTES,
            *instances.ROUTES,
            *work.ROUTES,
            *insight.ROUTES,
            *designer.ROUTES,
            *flow_designer.ROUTES,
            *plugin_calls.ROUTES,
            *health.ROUTES,
            static,
        ],
        guards=[permission_guard],
        middleware=[
            prometheus.middleware,
            DefineMiddleware(i18n.LocaleMiddleware, default_locale=settings.default_locale),
            DefineMiddleware(CSRFMiddleware, config=csrf),
            AuthenticationMiddleware,
        ],
        template_config=TemplateConfig(
            directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=_template_engine
        ),
        plugins=[HTMXPlugin()],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        openapi_config=OpenAPIConfig(
            title="Formflow API",
            version="1",
            render_plugins=[JsonRenderPlugin()],
            openapi_router=Router(path="/schema", route_handlers=[], opt=needs(Permission.PUBLIC)),
        ),
        on_startup=[background.on_startup],
        on_shutdown=[background.on_shutdown],
        debug=False,
        logging_config=None,
    )
    _open_automatic_options(app)
    # Outermost, so that requests no route matches (404, 405) get a request id and a log line too.
    app.asgi_handler = RequestLogMiddleware(app.asgi_handler)
    app.state.settings = settings
    app.state.readiness_probes = readiness
    app.state.object_store = store
    return app
