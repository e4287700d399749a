"""The append-only, hash-chained audit trail.

Every entry stores the SHA-256 of the previous entry (`prev_hash`) and its own `hash`, computed
over `prev_hash` and a canonical encoding of the entry (msgspec JSON, keys sorted, timestamps as
UTC ISO-8601 with microseconds). Changing, deleting or inserting a row in the middle breaks the
chain at that row or the next one; `verify_chain` names the first broken entry.

`record` must run inside the caller's write transaction, so an action and its audit entry
commit together. Appends are serialised: by the IMMEDIATE transaction on SQLite, by a
transaction-scoped advisory lock on PostgreSQL, taken together with the read of the last hash
(`formflow_audit_head`).

No function here deletes entries but `purge_before`, which refuses anything younger than the
retention period (never below `MIN_RETENTION_DAYS`) and appends an `audit.purged` entry naming
the first remaining entry and its link: verification accepts a first entry that does not link
to the genesis hash only when such an anchor vouches for it, so deleting the oldest entries by
hand is detected like any other deletion.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from piccolo.engine.postgres import PostgresEngine

from storage.raw_sql import WriteBatch, fetch, insert_sql
from storage.tables import AuditEntry

GENESIS_HASH = "0" * 64
MIN_RETENTION_DAYS = 180
PURGE_ACTION = "audit.purged"
_ADVISORY_LOCK_KEY = 0x466F726D  # "Form"
_ENCODER = msgspec.json.Encoder(order="sorted")
_COLUMNS = (
    "at",
    "actor_id",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "ip",
    "request_id",
    "before",
    "after",
)
# SQL text, not the query builder: every command appends an entry, and building the two
# statements cost more than running them
_LAST_HASH = 'SELECT "hash" FROM "audit_entry" ORDER BY "id" DESC LIMIT 1'
_LOCKED_HEAD = 'SELECT formflow_audit_head({}) AS "hash"'
"""PostgreSQL: the chain's advisory lock, then the last hash (a function, so the read sees what
the previous holder committed; see migration 2026-11-27T18:40)."""
_INSERT = insert_sql("audit_entry", (*_COLUMNS, "prev_hash", "hash"), 1)


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who did it and from where; anonymous for failed sign-ins of unknown names."""

    id: int | None = None
    name: str = ""
    ip: str = ""
    request_id: str = ""


class BrokenEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    reason: str


class ChainReport(msgspec.Struct, frozen=True, kw_only=True):
    checked: int
    broken: BrokenEntry | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


def canonical_bytes(entry: dict[str, Any]) -> bytes:
    """The bytes that are hashed: every audited column but `id`, `prev_hash` and `hash`."""
    at = entry["at"]
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    body = {
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": entry["actor_id"],
        "actor_name": entry["actor_name"],
        "action": entry["action"],
        "target_type": entry["target_type"],
        "target_id": entry["target_id"],
        "ip": entry["ip"],
        "request_id": entry["request_id"],
        "before": _loaded(entry["before"]),
        "after": _loaded(entry["after"]),
    }
    return _ENCODER.encode(body)


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical_bytes(entry)).hexdigest()


async def record(
    action: str,
    actor: Actor,
    *,
    target_type: str = "",
    target_id: str | int = "",
    before: Any = None,
    after: Any = None,
    now: datetime | None = None,
    writes: WriteBatch | None = None,
) -> None:
    """Append one entry. Call inside the write transaction of the change it records.
    With `writes`, the entry's INSERT is added to that batch for the caller to flush."""
    if isinstance(AuditEntry._meta.db, PostgresEngine):
        head = await fetch(AuditEntry, _LOCKED_HEAD, _ADVISORY_LOCK_KEY)
        prev_hash = head[0]["hash"] or GENESIS_HASH
    else:
        last = await fetch(AuditEntry, _LAST_HASH)
        prev_hash = last[0]["hash"] if last else GENESIS_HASH
    row: dict[str, Any] = {
        "at": (now or datetime.now(UTC)).astimezone(UTC),
        "actor_id": actor.id,
        "actor_name": actor.name[:100],
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "ip": actor.ip[:64],
        "request_id": actor.request_id[:64],
        "before": _plain(before),
        "after": _plain(after),
    }
    values = (*(row[column] for column in _COLUMNS), prev_hash, entry_hash(prev_hash, row))
    if writes is not None:
        await writes.write(_INSERT, *values)
    else:
        await fetch(AuditEntry, _INSERT, *values)


async def verify_chain(batch_size: int = 2000) -> ChainReport:
    """Walk the whole chain in id order; report the first entry whose link or hash is wrong."""
    checked = 0
    previous: str | None = None
    last_id = 0
    while True:
        rows = (
            await AuditEntry.select().where(AuditEntry.id > last_id).order_by(AuditEntry.id).limit(batch_size)
        )
        if not rows:
            return ChainReport(checked=checked)
        for row in rows:
            if previous is None and row["prev_hash"] != GENESIS_HASH and not await _purge_vouches_for(row):
                return ChainReport(
                    checked=checked,
                    broken=BrokenEntry(id=row["id"], reason="the entries before it were deleted"),
                )
            if previous is not None and row["prev_hash"] != previous:
                return ChainReport(
                    checked=checked,
                    broken=BrokenEntry(id=row["id"], reason="prev_hash does not match the previous entry"),
                )
            if entry_hash(row["prev_hash"], row) != row["hash"]:
                return ChainReport(
                    checked=checked,
                    broken=BrokenEntry(
                        id=row["id"], reason="content does not match its hash (row was altered)"
                    ),
                )
            previous = row["hash"]
            checked += 1
        last_id = rows[-1]["id"]


async def _purge_vouches_for(first: dict[str, Any]) -> bool:
    """True when a (chained, so itself verified) purge entry names this first entry and its link."""
    anchors = await AuditEntry.select(AuditEntry.after).where(AuditEntry.action == PURGE_ACTION)
    for anchor in anchors:
        after = _loaded(anchor["after"]) or {}
        if after.get("first_id") == first["id"] and after.get("first_prev_hash") == first["prev_hash"]:
            return True
    return False


class RetentionError(ValueError):
    """A purge would delete entries younger than the retention minimum."""


async def purge_before(cutoff: datetime, retention_days: int, now: datetime | None = None) -> int:
    """Delete entries older than `cutoff`, which must itself be older than the retention period.

    Call inside a write transaction. Appends an `audit.purged` anchor for the first entry that
    remains, so the shortened chain still verifies.
    """
    now = now or datetime.now(UTC)
    if retention_days < MIN_RETENTION_DAYS:
        raise RetentionError(
            f"the retention period is at least {MIN_RETENTION_DAYS} days, not {retention_days}"
        )
    if cutoff > now - timedelta(days=retention_days):
        raise RetentionError(
            f"entries younger than {retention_days} days must be kept; cutoff {cutoff.date()} is too recent"
        )
    doomed = await AuditEntry.count().where(AuditEntry.at < cutoff)
    if not doomed:
        return 0
    await AuditEntry.delete().where(AuditEntry.at < cutoff)
    first = await AuditEntry.select(AuditEntry.id, AuditEntry.prev_hash).order_by(AuditEntry.id).first()
    await record(
        PURGE_ACTION,
        Actor(name="formflow"),
        after={
            "cutoff": cutoff.isoformat(),
            "deleted": doomed,
            "first_id": first["id"] if first else None,
            "first_prev_hash": first["prev_hash"] if first else None,
        },
        now=now,
    )
    return doomed


def _plain(value: Any) -> str | None:
    """Audit payloads as JSON text (Structs, dates and Decimals become JSON)."""
    if value is None:
        return None
    return _ENCODER.encode(value).decode()


def _loaded(value: str | None) -> Any:
    return None if value is None else json.loads(value)
