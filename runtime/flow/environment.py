"""The frozen input `advance` reads besides the definition, the state and the event.

Everything the engine would otherwise fetch: the organisation, the business calendar, the
form data, the initiator, and how new ids are minted. New ids are a deterministic function
of (instance id, sequence number), so replaying an event log mints the same ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from runtime.calendar import BusinessCalendar
from runtime.flow.org import OrgDirectory
from runtime.flow.plugins import StepPlugin

IdFactory = Callable[[str, int], str]


def sequential_id(instance_id: str, seq: int) -> str:
    """The default id of the `seq`-th thing an instance creates: "<instance>-<seq>"."""
    return f"{instance_id}-{seq}"


class Environment(msgspec.Struct, frozen=True, kw_only=True):
    """`form`: the instance's current form data (field key -> value). `urgent`: the request is
    urgent (加急) as the service knows it; the engine also honours `InstanceState.urgent`.
    `plugins`: step plugins by name. `new_id`: mints task, timer and token ids."""

    org: OrgDirectory
    calendar: BusinessCalendar
    initiator: int
    form: Mapping[str, Any] = {}
    urgent: bool = False
    plugins: Mapping[str, StepPlugin] = {}
    new_id: IdFactory = sequential_id
