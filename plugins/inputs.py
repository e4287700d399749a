"""The one frozen input each hook receives.

`StepInput` is what `decide` sees: the step (node id, title, typed config), the request's
data through the step's field mask, the initiator, look-ups in the organisation, the business
calendar and the time. `CallInput` is what `perform` sees: the same step input plus the call
(its id, the idempotency key to send along, the attempt number) and the host's secrets, mail
server and contacts. Neither holds a database session; `decide` must not do I/O at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from forms.permissions import PermissionMask, mask_for_read
from plugins.config import StepConfig
from plugins.settings import SmtpSettings
from runtime.calendar import BusinessCalendar
from runtime.flow.assignees import RuleInput, resolve
from runtime.flow.effects import Reason
from runtime.flow.org import Department, OrgDirectory, Person
from runtime.flow.plugins import PluginContext
from runtime.flow.rules import AssigneeRule

C = TypeVar("C", bound=StepConfig)


class Initiator(msgspec.Struct, frozen=True, kw_only=True):
    """The person who started the request, with the attributes CEL conditions read as
    `initiator.<attribute>`."""

    id: int
    name: str = ""
    department: str = ""
    department_id: int | None = None
    department_code: str = ""
    position: str = ""
    roles: tuple[str, ...] = ()
    manager_id: int | None = None

    def as_cel(self) -> dict[str, Any]:
        """The attributes as a CEL condition's `initiator` variable sees them."""
        values = msgspec.structs.asdict(self)
        values["roles"] = list(self.roles)
        return values


class Directory:
    """Read-only look-ups in the organisation (a snapshot of active people and departments)."""

    __slots__ = ("_initiator", "_org")

    def __init__(self, org: OrgDirectory, initiator: int) -> None:
        self._org = org
        self._initiator = initiator

    def person(self, person_id: int) -> Person | None:
        return self._org.people.get(person_id)

    def department(self, department_id: int) -> Department | None:
        return self._org.departments.get(department_id)

    def department_by_code(self, code: str) -> Department | None:
        return next((d for d in self._org.departments.values() if d.code == code), None)

    def department_of(self, person_id: int) -> Department | None:
        return self._org.department_of(person_id)

    def manager_of(self, person_id: int) -> int | None:
        return self._org.manager_of(person_id)

    def members(self, role: str) -> tuple[int, ...]:
        """The active people holding `role`, ids ascending."""
        return self._org.role_members.get(role, ())

    @property
    def process_admins(self) -> tuple[int, ...]:
        return tuple(p for p in self._org.process_admins if p in self._org.people)

    def resolve(
        self, rule: AssigneeRule, form: Mapping[str, Any] | None = None
    ) -> tuple[tuple[int, ...], Reason]:
        """The people an assignee rule designates for this request, and why (as the engine
        resolves it); `form` is needed by rules that read a form field."""
        people, reason = resolve(rule, RuleInput(self._org, self._initiator, form or {}))
        return people, reason


class StepInput(msgspec.Struct, Generic[C], frozen=True, kw_only=True):
    """What `decide` reads. `instance`: the request's number (e.g. "FL202406001"). `data`:
    field key -> value (amounts as `Decimal`, dates as `date`) without the fields the step's
    mask hides; read-only. `urgent`: the request is urgent (加急)."""

    instance: str
    node_id: str
    title: str
    config: C
    data: Mapping[str, Any]
    initiator: Initiator
    directory: Directory
    calendar: BusinessCalendar
    now: dt.datetime
    urgent: bool = False


class Contacts(Protocol):
    """Contact details the host looks up for side-effect hooks."""

    async def emails(self, people: Sequence[int]) -> dict[int, str]:
        """Person id -> e-mail address, for those of `people` who have one."""
        ...


class NoContacts:
    """Contacts for a host that has none: nobody has an e-mail address."""

    async def emails(self, people: Sequence[int]) -> dict[int, str]:
        return {}


class CallInput(msgspec.Struct, Generic[C], frozen=True, kw_only=True):
    """What `perform` reads: the step's input and the call.

    `call_id` identifies the call (an outside system answers `accept_callback` with it);
    `idempotency_key` is unique per call and the same on every retry: send it along (an
    `Idempotency-Key` header) so that the receiver can drop repeats. `attempt` counts from 0.
    `secrets`: name -> value as the host configured them. `smtp`: None when e-mail is not set
    up. `public_url`: the app's base URL.
    """

    step: StepInput[C]
    call_id: str
    idempotency_key: str
    attempt: int = 0
    secrets: Mapping[str, str] = {}
    smtp: SmtpSettings | None = None
    contacts: Contacts = NoContacts()
    public_url: str = ""

    @property
    def config(self) -> C:
        return self.step.config

    @property
    def data(self) -> Mapping[str, Any]:
        return self.step.data

    def secret(self, name: str) -> str | None:
        """The value of the secret named `name`, None when the host has none by that name."""
        return self.secrets.get(name)


def initiator_of(org: OrgDirectory, person_id: int) -> Initiator:
    person = org.people.get(person_id)
    department = org.department_of(person_id)
    return Initiator(
        id=person_id,
        name=person.name if person else "",
        department=department.name if department else "",
        department_id=department.id if department else None,
        department_code=department.code if department else "",
        position=person.position if person else "",
        roles=person.roles if person else (),
        manager_id=org.manager_of(person_id),
    )


def masked(form: Mapping[str, Any], config: StepConfig) -> Mapping[str, Any]:
    """The form data without the fields the config's `field_permissions` hide, read-only."""
    if not config.field_permissions:
        return MappingProxyType(dict(form))
    mask = PermissionMask(fields=dict(config.field_permissions))
    return MappingProxyType(mask_for_read(dict(form), mask))


def step_input(
    config: C,
    context: PluginContext,
    *,
    title: str,
    calendar: BusinessCalendar,
) -> StepInput[C]:
    """The input of `decide` for an engine context."""
    return StepInput(
        instance=context.instance_id,
        node_id=context.node_id,
        title=title,
        config=config,
        data=masked(context.form, config),
        initiator=initiator_of(context.org, context.initiator),
        directory=Directory(context.org, context.initiator),
        calendar=calendar,
        now=context.now,
        urgent=context.urgent,
    )
