"""The signed-in shell: home and the navigation sections later features fill.

The inbox and "my requests" are work pages (`web.routes.work`)."""

from __future__ import annotations

from litestar import get
from litestar.response import Template

from storage.access import Permission
from web.auth.guards import needs
from web.context import AnyRequest


@get("/", opt=needs(Permission.SIGNED_IN), sync_to_thread=False)
def home(request: AnyRequest) -> Template:
    return Template("home.html", context={"section": "home"})


@get("/monitor", opt=needs(Permission.MONITOR_VIEW), sync_to_thread=False)
def monitor(request: AnyRequest) -> Template:
    return Template("section.html", context={"section": "monitor"})


ROUTES = [home, monitor]
