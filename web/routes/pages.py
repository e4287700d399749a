"""The signed-in shell: the home page, and the old monitoring address.

The inbox and "my requests" are work pages (`web.routes.work`)."""

from __future__ import annotations

from litestar import get
from litestar.response import Redirect, Template

from storage.access import Permission
from web.auth.guards import needs
from web.context import AnyRequest


@get("/", opt=needs(Permission.SIGNED_IN), sync_to_thread=False)
def home(request: AnyRequest) -> Template:
    return Template("home.html", context={"section": "home"})


@get("/monitor", opt=needs(Permission.MONITOR_VIEW), sync_to_thread=False)
def monitor(request: AnyRequest) -> Redirect:
    """Monitoring lives with the other insight pages; old links land there."""
    return Redirect("/insight", status_code=301)


ROUTES = [home, monitor]
