"""Roles, permissions and data scopes: least privilege, bound to positions.

The tables below are the single source that guards, pages, tests and the docs read.

    role                 grants
    employee             start processes; see own requests
    department_head      + approve; see the departments they head (and their sub-departments)
    supervising_leader   + approve; see the departments they supervise
    finance_specialist   + approve finance reviews
    process_admin        + design and publish templates; monitor every process
    system_admin         + manage the organisation, tokens of others, the audit trail

A data scope says which rows a permission reaches: OWN (rows the person owns), DEPARTMENT
(rows whose department is in the person's reach) or ALL. Scopes are turned into SQL `WHERE`
clauses (`scope_filter`), never applied by filtering in templates.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

import msgspec


class Role(enum.StrEnum):
    EMPLOYEE = "employee"
    DEPARTMENT_HEAD = "department_head"
    SUPERVISING_LEADER = "supervising_leader"
    FINANCE_SPECIALIST = "finance_specialist"
    PROCESS_ADMIN = "process_admin"
    SYSTEM_ADMIN = "system_admin"


class Permission(enum.StrEnum):
    PUBLIC = "public"  # no sign-in needed: login page, health, static files
    SIGNED_IN = "signed_in"  # any active person: home page, own profile and tokens
    PROCESS_START = "process.start"
    PROCESS_VIEW = "process.view"
    TASK_ACT = "task.act"
    MONITOR_VIEW = "monitor.view"
    INSIGHT_VIEW = "insight.view"  # monitoring, analytics and exports of processes
    TEMPLATE_MANAGE = "template.manage"
    ORG_VIEW = "org.view"
    ORG_MANAGE = "org.manage"
    AUDIT_VIEW = "audit.view"


class Scope(enum.IntEnum):
    NONE = 0
    OWN = 1
    DEPARTMENT = 2
    ALL = 3


_APPROVER = {
    Permission.SIGNED_IN: Scope.ALL,
    Permission.PROCESS_START: Scope.OWN,
    Permission.PROCESS_VIEW: Scope.DEPARTMENT,
    Permission.TASK_ACT: Scope.OWN,
    Permission.MONITOR_VIEW: Scope.DEPARTMENT,
    Permission.INSIGHT_VIEW: Scope.DEPARTMENT,
    Permission.ORG_VIEW: Scope.DEPARTMENT,
}

ROLE_PERMISSIONS: dict[Role, dict[Permission, Scope]] = {
    Role.EMPLOYEE: {
        Permission.SIGNED_IN: Scope.ALL,
        Permission.PROCESS_START: Scope.OWN,
        Permission.PROCESS_VIEW: Scope.OWN,
        Permission.TASK_ACT: Scope.OWN,
        Permission.ORG_VIEW: Scope.OWN,
    },
    Role.DEPARTMENT_HEAD: _APPROVER,
    Role.SUPERVISING_LEADER: _APPROVER,
    Role.FINANCE_SPECIALIST: {
        Permission.SIGNED_IN: Scope.ALL,
        Permission.PROCESS_START: Scope.OWN,
        Permission.PROCESS_VIEW: Scope.OWN,
        Permission.TASK_ACT: Scope.OWN,
        Permission.ORG_VIEW: Scope.OWN,
    },
    Role.PROCESS_ADMIN: {
        Permission.SIGNED_IN: Scope.ALL,
        Permission.PROCESS_START: Scope.OWN,
        Permission.PROCESS_VIEW: Scope.ALL,
        Permission.TASK_ACT: Scope.OWN,
        Permission.MONITOR_VIEW: Scope.ALL,
        Permission.INSIGHT_VIEW: Scope.ALL,
        Permission.TEMPLATE_MANAGE: Scope.ALL,
        Permission.ORG_VIEW: Scope.ALL,
    },
    Role.SYSTEM_ADMIN: {
        Permission.SIGNED_IN: Scope.ALL,
        Permission.PROCESS_START: Scope.OWN,
        Permission.PROCESS_VIEW: Scope.ALL,
        Permission.TASK_ACT: Scope.OWN,
        Permission.MONITOR_VIEW: Scope.ALL,
        Permission.INSIGHT_VIEW: Scope.ALL,
        Permission.ORG_VIEW: Scope.ALL,
        Permission.ORG_MANAGE: Scope.ALL,
        Permission.AUDIT_VIEW: Scope.ALL,
    },
}


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """The signed-in person as authorization sees them; built once per request."""

    id: int
    employee_no: str
    name: str
    department_id: int | None
    roles: frozenset[Role]
    # Departments this person heads or supervises, with all their sub-departments.
    reach: frozenset[int] = frozenset()
    locale: str = "zh-CN"

    def scope(self, permission: Permission) -> Scope:
        if permission is Permission.PUBLIC:
            return Scope.ALL
        return max((ROLE_PERMISSIONS[r].get(permission, Scope.NONE) for r in self.roles), default=Scope.NONE)

    def can(self, permission: Permission) -> bool:
        return self.scope(permission) > Scope.NONE

    def is_admin(self) -> bool:
        return bool(self.roles & {Role.PROCESS_ADMIN, Role.SYSTEM_ADMIN})


def scope_filter(
    principal: Principal, permission: Permission, owner_column: Any, department_column: Any
) -> Any:
    """A Piccolo WHERE clause limiting rows to what `principal` may reach under `permission`.

    Returns None when every row is allowed. A principal without the permission gets a clause
    that matches nothing (deny by default).
    """
    scope = principal.scope(permission)
    if scope is Scope.ALL:
        return None
    if scope is Scope.DEPARTMENT and principal.reach:
        return (owner_column == principal.id) | department_column.is_in(sorted(principal.reach))
    if scope >= Scope.OWN:
        return owner_column == principal.id
    return owner_column == -1


def roles_from(position_roles: Iterable[str], heads: bool, supervises: bool) -> frozenset[Role]:
    roles = {Role(r) for r in position_roles if r in Role._value2member_map_}
    roles.add(Role.EMPLOYEE)
    if heads:
        roles.add(Role.DEPARTMENT_HEAD)
    if supervises:
        roles.add(Role.SUPERVISING_LEADER)
    return frozenset(roles)
