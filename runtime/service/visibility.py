"""Which instances a person may see, as a SQL clause (deny by default, never filtered in Python).

A person sees an instance when the data scope of `process.view` reaches it (own / their
departments / all, `storage.access.scope_filter`), or when they hold or held a task on it
(an approver from another department, such as finance). Drafts stay private to their
initiator. `storage.attachments.may_read` applies the same rule to attachments.
"""

from __future__ import annotations

from typing import Any

from runtime.flow import Status
from storage.access import Permission, Principal, scope_filter
from storage.tables import Instance, Task


def visible_instances(principal: Principal) -> Any:
    """A Piccolo WHERE clause on `Instance` for the instances `principal` may see."""
    not_a_draft_of_others = (Instance.status != Status.DRAFT.value) | (Instance.initiator == principal.id)
    scoped = scope_filter(principal, Permission.PROCESS_VIEW, Instance.initiator, Instance.department_id)
    if scoped is None:
        return not_a_draft_of_others
    involved = Instance.id.is_in(Task.select(Task.instance).where(Task.assignee == principal.id))
    return not_a_draft_of_others & (scoped | involved)
