"""Process insight pages and APIs: monitoring in flight, analytics, CSV and XLSX exports.

Everything reads through `runtime.service.insight`, which scopes every query to the viewer
(`insight.view`: their departments for a department head or leader, everything for admins).
The monitoring table refreshes itself every 30 seconds (htmx) and on every filter change.
Exports stream: CSV line by line as rows are read in batches; XLSX through openpyxl's
write-only workbook (rows go to a temporary file, never all into memory), then the file in
chunks.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio
from litestar import get
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream, Template
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from runtime.insight.cells import BOM, CsvLine, neutralise
from runtime.insight.charts import bar_chart, column_chart
from runtime.service import insight
from runtime.service.pipeline import CALENDAR
from storage.access import Permission
from web.auth.guards import needs
from web.context import AnyRequest, principal_of
from web.errors import request_now
from web.i18n import _, current_locale
from web.routes.attachments import content_disposition
from web.routes.instances import PageNo
from web.routes.work import local_time

CHUNK = 64 * 1024
_STEP = re.compile(r"^[A-Za-z0-9_.:-]{0,64}$")

TemplateKey = Annotated[str, QueryParameter(max_length=64, pattern=r"^[A-Za-z0-9_.-]*$")]
Text = Annotated[str, QueryParameter(max_length=64)]
DateText = Annotated[str, QueryParameter(max_length=10)]
Flag = Annotated[str, QueryParameter(max_length=5)]


def _filters(
    template: str, department: str, step: str, overdue: str, since: str, until: str
) -> insight.Filters:
    """The filters from query parameters; empty values mean "any". A bad value is a 400 naming it."""
    department_id = None
    if department:
        if not department.isdigit() or not 0 < int(department) < 2**31:
            raise ClientException("department: expected a department id", extra={"key": "department"})
        department_id = int(department)
    if not _STEP.match(step):
        raise ClientException("step: expected a step id", extra={"key": "step"})
    if overdue not in ("", "true", "false", "1", "0", "on"):
        raise ClientException("overdue: expected true or false", extra={"key": "overdue"})
    first, last = _date("since", since), _date("until", until)
    if first and last and last < first:
        raise ClientException("until: must not be before since", extra={"key": "until"})
    return insight.Filters(
        template=template or None,
        department_id=department_id,
        step=step or None,
        overdue=overdue in ("true", "1", "on"),
        since=first,
        until=last,
    )


def _date(name: str, value: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ClientException(f"{name}: expected a date like 2025-10-09", extra={"key": name}) from None


def _query(filters: insight.Filters, **more: Any) -> str:
    """The filters as a query string, for links that keep them (pages, exports)."""
    values = {
        "template": filters.template or "",
        "department": filters.department_id or "",
        "step": filters.step or "",
        "overdue": "true" if filters.overdue else "",
        "since": filters.since.isoformat() if filters.since else "",
        "until": filters.until.isoformat() if filters.until else "",
        **more,
    }
    return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _context(filters: insight.Filters, tab: str) -> dict[str, Any]:
    return {
        "section": "insight",
        "tab": tab,
        "filters": filters,
        "query": _query(filters),
        "local_time": local_time,
        "hours": _hours,
        "percent": _percent,
        "export_kinds": _export_labels(),
    }


def _export_labels() -> list[tuple[str, str]]:
    return [
        ("requests", _("Requests")),
        ("tasks", _("Tasks")),
        ("records", _("Execution records")),
        ("durations", _("Step durations")),
        ("costs", _("Cost deviation")),
    ]


# -- monitoring -------------------------------------------------------------------------------


@get("/insight", opt=needs(Permission.INSIGHT_VIEW))
async def monitor_page(
    request: AnyRequest,
    template: TemplateKey = "",
    department: Text = "",
    step: Text = "",
    overdue: Flag = "",
    page: PageNo = 1,
) -> Template:
    """流程监控: requests in flight, how long each has waited at its step, due and expected."""
    filters = _filters(template, department, step, overdue, "", "")
    principal, locale = principal_of(request), current_locale()
    found = await insight.monitor(
        principal, request_now(request), CALENDAR, filters, page=page, locale=locale
    )
    context = _context(filters, "monitor") | {
        "found": found,
        "pages": max(1, -(-found.total // found.page_size)),
        "options": await insight.filter_options(principal, filters, locale),
        "refreshed": local_time(request_now(request)),
    }
    name = "insight/_monitor_table.html" if request.headers.get("hx-request") else "insight/monitor.html"
    return Template(name, context=context)


@get("/api/v1/insight/monitor", opt=needs(Permission.INSIGHT_VIEW))
async def monitor_api(
    request: AnyRequest,
    template: TemplateKey = "",
    department: Text = "",
    step: Text = "",
    overdue: Flag = "",
    page: PageNo = 1,
) -> insight.MonitorPage:
    """Open tasks of requests in flight in the caller's scope, longest waiting first; hours are
    working hours, `expected_at` the expected closing from the step's history (UTC)."""
    filters = _filters(template, department, step, overdue, "", "")
    return await insight.monitor(
        principal_of(request), request_now(request), CALENDAR, filters, page=page, locale=current_locale()
    )


# -- analytics --------------------------------------------------------------------------------


@get("/insight/analytics", opt=needs(Permission.INSIGHT_VIEW))
async def analytics_page(
    request: AnyRequest,
    template: TemplateKey = "",
    department: Text = "",
    step: Text = "",
    since: DateText = "",
    until: DateText = "",
) -> Template:
    """Durations, rates, bottlenecks, weekly trends, repeatedly sent-back requests, cost deviation."""
    filters = _filters(template, department, step, "", since, until)
    principal, locale = principal_of(request), current_locale()
    found = await insight.analytics(principal, request_now(request), CALENDAR, filters, locale)
    unit = _(" h")
    charts = {
        "bottlenecks": bar_chart(
            _("Slowest steps (median working hours)"),
            [(f"{v.stats.step}", v.stats.median_hours or 0.0) for v in found.bottlenecks],
            unit,
        ),
        "weeks": column_chart(
            _("Requests submitted per week"),
            [(w.week.strftime("%m-%d"), float(w.submitted)) for w in found.weeks],
        ),
    }
    context = _context(filters, "analytics") | {
        "found": found,
        "charts": charts,
        "options": await insight.filter_options(principal, filters, locale),
    }
    return Template("insight/analytics.html", context=context)


@get("/api/v1/insight/analytics", opt=needs(Permission.INSIGHT_VIEW))
async def analytics_api(
    request: AnyRequest,
    template: TemplateKey = "",
    department: Text = "",
    step: Text = "",
    since: DateText = "",
    until: DateText = "",
) -> insight.Analytics:
    """Per template and step, in the caller's scope: counts, median and p90 working hours,
    return, rejection and overdue rates; bottlenecks; weekly trends (the last 26 weeks unless
    `since` is given); reports. `truncated` is true while work closed in the last minutes is
    still being rolled up."""
    filters = _filters(template, department, step, "", since, until)
    return await insight.analytics(
        principal_of(request), request_now(request), CALENDAR, filters, current_locale()
    )


# -- exports ----------------------------------------------------------------------------------


@get("/insight/exports/{kind:str}", opt=needs(Permission.INSIGHT_VIEW))
async def export_file(
    request: AnyRequest,
    kind: FromPath[str],
    format: Annotated[str, QueryParameter(max_length=4)] = "csv",
    template: TemplateKey = "",
    department: Text = "",
    step: Text = "",
    overdue: Flag = "",
    since: DateText = "",
    until: DateText = "",
) -> Stream:
    """One export (requests, tasks, records, durations, costs) as CSV or XLSX, in the caller's
    scope, sensitive fields masked, formula-like text cells prefixed with '."""
    if kind not in insight.EXPORT_KINDS:
        raise NotFoundException(f"no export named {kind!r}; one of {', '.join(insight.EXPORT_KINDS)}")
    if format not in ("csv", "xlsx"):
        raise ClientException("format: expected csv or xlsx", extra={"key": "format"})
    filters = _filters(template, department, step, overdue, since, until)
    now = request_now(request)
    found = await insight.export(kind, principal_of(request), now, CALENDAR, filters, current_locale())
    name = f"{kind}-{now.astimezone(CALENDAR.timezone).strftime('%Y%m%d-%H%M')}.{format}"
    headers = {"content-disposition": content_disposition(name, inline=False)}
    if format == "csv":
        return Stream(_csv(found), media_type="text/csv; charset=utf-8", headers=headers)
    path = await _xlsx(found, kind)
    headers["content-length"] = str(os.path.getsize(path))
    return Stream(
        _file_chunks(path),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=headers,
    )


async def _csv(found: insight.Export) -> AsyncIterator[bytes]:
    line = CsvLine()
    yield (BOM + line(neutralise(h) for h in found.header)).encode()
    async for row in found.rows:
        yield line(row).encode()


async def _xlsx(found: insight.Export, title: str) -> str:
    """The export written to a temporary .xlsx file (write-only: rows are not kept in memory)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31])
    sheet.append([_xlsx_text(h) for h in found.header])
    async for row in found.rows:
        sheet.append([_xlsx_text(v) if isinstance(v, str) else v for v in row])
    handle, path = tempfile.mkstemp(prefix="formflow-export-", suffix=".xlsx")
    os.close(handle)
    try:
        await anyio.to_thread.run_sync(book.save, path)
    except BaseException:
        os.unlink(path)
        raise
    return path


def _xlsx_text(value: str) -> str:
    # Control characters are not allowed in the XML of a workbook.
    return neutralise(ILLEGAL_CHARACTERS_RE.sub("", value))


def _file_chunks(path: str) -> AsyncIterator[bytes]:
    """The file's bytes in chunks. It is unlinked as soon as it is open, so it goes away with the
    handle even when the client leaves before the end."""
    handle = anyio.wrap_file(open(path, "rb"))  # noqa: SIM115 - closed by the generator below
    os.unlink(path)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while chunk := await handle.read(CHUNK):
                yield chunk
        finally:
            await handle.aclose()

    return chunks()


ROUTES = [monitor_page, monitor_api, analytics_page, analytics_api, export_file]
