"""The quarterly permission review (权限复核): start one, decide each finding, complete it.

Pages for system admins over `storage.permission_review`; a decision is an htmx post that
re-renders its row, and revoking asks for confirmation first (it switches the account off).
"""

from __future__ import annotations

import datetime as dt

from litestar import get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from storage import permission_review as reviews
from storage.access import Permission
from web.auth.guards import needs
from web.context import AnyRequest, RowId, actor_of
from web.errors import refusal
from web.i18n import _


def _kind_labels() -> dict[str, str]:
    return {
        "dormant": _("No sign-in for 90 days"),
        "role_change": _("Roles changed since the last review"),
        "department_move": _("Moved to another department since the last review"),
        "outlived_position": _("Access that outlived the position"),
    }


@get("/admin/permission-reviews", opt=needs(Permission.ORG_MANAGE))
async def reviews_page() -> Template:
    return Template(
        "admin/reviews.html", context={"section": "admin", "reviews": await reviews.list_reviews()}
    )


@post("/admin/permission-reviews", opt=needs(Permission.ORG_MANAGE), status_code=303)
async def start_review(request: AnyRequest) -> Redirect | Template:
    try:
        review_id = await reviews.start_review(actor_of(request), dt.datetime.now(dt.UTC))
    except reviews.ReviewOpen:
        return refusal(409, _("A review is already in progress: finish it first."))
    return Redirect(f"/admin/permission-reviews/{review_id}", status_code=303)


@get("/admin/permission-reviews/{review_id:int}", opt=needs(Permission.ORG_MANAGE))
async def review_page(review_id: RowId) -> Template:
    try:
        report = await reviews.review_report(review_id)
    except reviews.ReviewNotFound as exc:
        raise NotFoundException(str(exc)) from exc
    return Template(
        "admin/review.html", context={"section": "admin", "report": report, "kinds": _kind_labels()}
    )


@post("/admin/permission-reviews/items/{item_id:int}", opt=needs(Permission.ORG_MANAGE), status_code=200)
async def decide_item(request: AnyRequest, item_id: RowId) -> Template:
    form = await request.form()
    try:
        item = await reviews.decide(
            item_id, str(form.get("decision", "")), actor_of(request), dt.datetime.now(dt.UTC)
        )
    except reviews.ReviewNotFound as exc:
        raise NotFoundException(str(exc)) from exc
    except reviews.ReviewError as exc:
        return refusal(422, str(exc))
    return Template("admin/_review_item.html", context={"item": item, "kinds": _kind_labels(), "open": True})


@post("/admin/permission-reviews/{review_id:int}/complete", opt=needs(Permission.ORG_MANAGE), status_code=303)
async def complete_review(request: AnyRequest, review_id: RowId) -> Redirect | Template:
    try:
        await reviews.complete_review(review_id, actor_of(request), dt.datetime.now(dt.UTC))
    except reviews.ReviewNotFound as exc:
        raise NotFoundException(str(exc)) from exc
    except reviews.ReviewIncomplete as exc:
        return refusal(409, _("Decide every item first ({detail}).").format(detail=str(exc)))
    except reviews.ReviewError as exc:
        return refusal(409, str(exc))
    return Redirect(f"/admin/permission-reviews/{review_id}", status_code=303)


ROUTES = [reviews_page, start_review, review_page, decide_item, complete_review]
