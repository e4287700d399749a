"""The shape every command shares: decide, then write the step, link the uploads it names,
audit it and remember its answer for the Idempotency-Key, in one write transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, NamedTuple

from forms import FieldError
from runtime.flow.events import Event
from runtime.service.caller import Caller
from runtime.service.effects import CommandRecord
from runtime.service.errors import FormInvalid
from runtime.service.idempotency import IdempotencyKey, remember
from runtime.service.org_directory import load_org_directory
from runtime.service.pipeline import LoadedInstance, current_step, decide, write_step
from runtime.service.views import CommandResult
from storage import attachments, audit
from storage.database import write_transaction
from storage.raw_sql import WriteBatch
from storage.tables import Instance


class Links(NamedTuple):
    """Uploads a command references: uid -> path in the request, and whose uploads they are."""

    refs: Mapping[str, str]
    owner_id: int


async def run_command(
    caller: Caller,
    loaded: LoadedInstance,
    event: Event,
    record: CommandRecord,
    now: dt.datetime,
    *,
    action: str,
    idempotency: IdempotencyKey | None,
    data: dict[str, Any] | None = None,
    links: Links | None = None,
) -> CommandResult:
    """Decide `event`, then write it with `record`, the links, the audit entry and the
    idempotency record in one write transaction (nothing when the engine changes nothing)."""
    step = decide(loaded, event, now, await load_org_directory(loaded.org_token))
    if step.state is loaded.state:
        return unchanged(loaded)
    async with write_transaction(Instance._meta.db):
        writes = WriteBatch(Instance)  # the step's last effect rows go out with the audit entry
        result = await write_step(loaded, step, [record], now, data=data, writes=writes)
        if links is not None:
            await link_uploads(links.refs, instance_id=loaded.id, owner_id=links.owner_id, now=now)
        detail = {"node": record.node_id} if record.node_id else None
        await finish(
            caller,
            action,
            result,
            before=loaded.status,
            now=now,
            idempotency=idempotency,
            detail=detail,
            writes=writes,
        )
        await writes.flush()
    return result


def unchanged(loaded: LoadedInstance) -> CommandResult:
    """The result of a command that changed nothing: the instance as it is."""
    return CommandResult(
        id=loaded.id,
        number=loaded.number,
        status=loaded.status,
        current_step=current_step(loaded.definition, loaded.state),
        row_version=loaded.row_version,
    )


async def link_uploads(refs: Mapping[str, str], *, instance_id: int, owner_id: int, now: dt.datetime) -> None:
    """Link the uploads named in `refs` (uid -> path in the request) to the instance.

    An upload that is not the owner's, is gone, or belongs to another request is reported as a
    field error at its path, so the client sees which file is wrong.
    """
    if not refs:
        return
    try:
        await attachments.link(list(refs), instance_id=instance_id, owner_id=owner_id, now=now)
    except attachments.AttachmentError as exc:
        uid = str(exc.params.get("uid", ""))
        raise FormInvalid([FieldError(path=refs.get(uid, "attachments"), message=str(exc))]) from exc


async def finish(
    caller: Caller,
    action: str,
    result: CommandResult,
    *,
    before: str | None,
    now: dt.datetime,
    idempotency: IdempotencyKey | None,
    detail: Mapping[str, object] | None = None,
    writes: WriteBatch | None = None,
) -> None:
    """The audit entry (`instance.<action>`, before/after status) and the idempotency record
    (with `writes`, the audit entry's INSERT is left pending in that batch)."""
    after: dict[str, object] = {"status": result.status, **(detail or {})}
    await audit.record(
        f"instance.{action}",
        caller.audit_actor(),
        target_type="instance",
        target_id=result.number,
        before=None if before is None else {"status": before},
        after=after,
        now=now,
        writes=writes,
    )
    if idempotency is not None:
        await remember(caller.id, idempotency, result, now)
