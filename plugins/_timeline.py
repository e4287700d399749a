"""What happens to a plugin call outside the engine, written into the request's timeline.

The engine records what it decides (`plugin_continued`, `plugin_result`, ...). Some facts
about a call happen beside it: the step now waits for an outside system's callback, the call
failed for good (an incident), an admin queued it again. `note` appends such a fact to the
instance's event log, after its last event, so that the timeline tells the whole story:

    plugin_waiting   the call was received; the step waits for the callback     {plugin, call_id, note}
    plugin_incident  the call failed for good; an admin sees the incident        {plugin, call_id, incident}
    plugin_retried   an admin retried the incident: the call runs again          {plugin, call_id, incident}

(An admin's skip is the engine's `plugin_result` with `output.skipped_by`.) Everyone who
sees the request reads its timeline, so an incident's reason (which may name hosts) stays on
the incident, for admins. Call inside a write transaction; with `once`, a fact already noted
for the same call is not noted again (a message delivered twice).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from storage.tables import InstanceEvent

WAITING = "plugin_waiting"
INCIDENT = "plugin_incident"
RETRIED = "plugin_retried"


async def note(
    instance_id: int,
    kind: str,
    node_id: str,
    data: dict[str, Any],
    now: dt.datetime,
    *,
    actor: int | None = None,
    once: bool = False,
) -> None:
    """Append the event `kind` to the instance's log (see the module)."""
    if once:
        noted = await (
            InstanceEvent.select(InstanceEvent.data)
            .where((InstanceEvent.instance == instance_id) & (InstanceEvent.kind == kind))
            .output(load_json=True)
        )
        if any(_call(row["data"]) == data.get("call_id") for row in noted):
            return
    last = await (
        InstanceEvent.select(InstanceEvent.seq)
        .where(InstanceEvent.instance == instance_id)
        .order_by(InstanceEvent.seq, ascending=False)
        .first()
    )
    seq = last["seq"] if last else 0
    await InstanceEvent.insert(
        InstanceEvent(
            instance=instance_id,
            seq=seq + 1,
            at=now,
            actor_id=actor,
            kind=kind,
            node_id=node_id,
            data=msgspec.json.encode(data).decode(),
        )
    )


def _call(data: Any) -> Any:
    if isinstance(data, str | bytes):
        data = msgspec.json.decode(data)
    return data.get("call_id") if isinstance(data, dict) else None
