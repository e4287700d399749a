"""The signed-in shell: home and the navigation sections later features fill."""

from __future__ import annotations

from litestar import get
from litestar.response import Template

from storage.access import Permission
from web.auth.guards import needs
from web.context import AnyRequest


@get("/", opt=needs(Permission.SIGNED_IN), sync_to_thread=False)
def home(request: AnyRequest) -> Template:
    return Template("home.html", context={"section": "home"})


@get("/inbox", opt=needs(Permission.TASK_ACT), sync_to_thread=False)
def inbox(request: AnyRequest) -> Template:
    return Template("section.html", context={"section": "inbox"})


@get("/my-requests", opt=needs(Permission.PROCESS_START), sync_to_thread=False)
def my_requests(request: AnyRequest) -> Template:
    return Template("section.html", context={"section": "my-requests"})


@get("/monitor", opt=needs(Permission.MONITOR_VIEW), sync_to_thread=False)
def monitor(request: AnyRequest) -> Template:
    return Template("section.html", context={"section": "monitor"})


ROUTES = [home, inbox, my_requests, monitor]
