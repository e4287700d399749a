"""Who would approve a draft, and by when (预览流程), for the template version in effect.

The draft is checked as a draft (types, not completeness), then `runtime.flow.preview_route`
walks the flow with it: the same branches, rules, skips and deadlines the engine would use.
Dates in a year without holiday data are estimates; the preview says so in `warnings`.
"""

from __future__ import annotations

import datetime as dt

from runtime.flow import Environment, preview_route
from runtime.service import reasons
from runtime.service.caller import Caller
from runtime.service.definitions import definition_in_effect
from runtime.service.form_data import engine_form, validated
from runtime.service.org_directory import load_org_directory
from runtime.service.pipeline import CALENDAR, step_plugins
from runtime.service.requests import PreviewRequest
from runtime.service.views import PersonRef, RoutePreview, RouteStepView


async def preview(caller: Caller, template: str, request: PreviewRequest, now: dt.datetime) -> RoutePreview:
    definition = await definition_in_effect(template, now)
    flow = definition.runnable_flow()
    data = validated(definition, request.data, caller.validation_context(now), "draft")
    org = await load_org_directory()
    env = Environment(
        org=org,
        calendar=CALENDAR,
        initiator=caller.id,
        form=engine_form(definition.schema, data),
        urgent=request.urgent or data.get("urgent") is True,
        plugins=step_plugins(),
    )
    names = {person.id: person.name for person in org.people.values()}
    steps = [
        RouteStepView(
            node_id=step.node_id,
            title=step.title,
            kind=step.kind,
            assignees=[PersonRef(id=person, name=names.get(person, "")) for person in step.assignees],
            why=[reasons.why(reason, names, caller.locale) for reason in step.reasons],
            reasons=[dict(reason) for reason in step.reasons],
            due_at=step.due_at,
            due_is_estimate=step.due_is_estimate,
            skipped=step.skipped,
            problem=step.problem,
        )
        for step in preview_route(flow, env, now)
    ]
    years = sorted({step.due_at.year for step in steps if step.due_at is not None and step.due_is_estimate})
    warnings = [warning for year in years for warning in CALENDAR.warnings_for(year)]
    return RoutePreview(steps=steps, warnings=warnings)
