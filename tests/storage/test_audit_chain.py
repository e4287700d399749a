"""The audit trail is a hash chain: `formflow audit verify` passes on an intact chain and names the
first broken entry after a raw UPDATE or DELETE; nothing younger than the retention period is purged."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from storage import audit
from storage.database import write_transaction
from storage.tables import AuditEntry
from web import cli
from web.settings import SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]
TESTER = audit.Actor(id=7, name="测试员", ip="10.0.0.7", request_id="req-1")


async def record_entries(count: int, at: datetime | None = None) -> list[int]:
    """Append `count` entries in one transaction; returns the ids of every entry, oldest first."""
    async with write_transaction(AuditEntry._meta.db):
        for n in range(count):
            await audit.record(
                "test.changed",
                TESTER,
                target_type="thing",
                target_id=n,
                before={"amount": n},
                after={"amount": n + 1, "note": "审批通过"},
                now=at,
            )
    return [row["id"] for row in await AuditEntry.select(AuditEntry.id).order_by(AuditEntry.id)]


async def run_verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`formflow audit verify` in a thread (the CLI runs its own event loop); exit code and output."""
    capsys.readouterr()
    code = await asyncio.to_thread(cli.main, ["audit", "verify"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


async def set_column(entry_id: int, column: str, value: str) -> None:
    await AuditEntry.raw(f'UPDATE audit_entry SET "{column}" = {{}} WHERE id = {{}}', value, entry_id)


# --- the chain ------------------------------------------------------------------------------------


async def test_each_entry_carries_the_hash_of_the_previous_one(db: None) -> None:
    await record_entries(4)
    rows = await AuditEntry.select().order_by(AuditEntry.id)
    assert len(rows) == 5  # the demo seed's entry and ours
    assert rows[0]["prev_hash"] == audit.GENESIS_HASH
    for previous, row in itertools.pairwise(rows):
        assert row["prev_hash"] == previous["hash"]
    for row in rows:
        expected = hashlib.sha256(row["prev_hash"].encode() + b"\n" + audit.canonical_bytes(row)).hexdigest()
        assert row["hash"] == expected
    assert len({row["hash"] for row in rows}) == 5


async def test_concurrent_appends_each_link_to_the_entry_committed_before_them(db: None) -> None:
    """Twelve transactions appending at once (own connections on PostgreSQL, queued on SQLite):
    each waits for the chain's lock and links to the entry the one before it committed."""

    async def append(n: int) -> None:
        async with write_transaction(AuditEntry._meta.db):
            await audit.record("test.concurrent", TESTER, target_type="thing", target_id=n)
            await asyncio.sleep(0.01)  # hold the lock while the others queue

    before = await AuditEntry.count()
    await asyncio.gather(*(append(n) for n in range(12)))
    rows = await AuditEntry.select(AuditEntry.prev_hash, AuditEntry.hash).order_by(AuditEntry.id)
    assert len(rows) == before + 12
    assert [row["prev_hash"] for row in rows] == [audit.GENESIS_HASH] + [row["hash"] for row in rows[:-1]]
    assert (await audit.verify_chain()).ok


async def test_an_entry_records_who_what_when_where_and_before_after(db: None) -> None:
    [_, entry_id] = await record_entries(1)
    row = await AuditEntry.select().where(AuditEntry.id == entry_id).first().output(load_json=True)
    assert (row["actor_id"], row["actor_name"], row["ip"], row["request_id"]) == (
        7,
        "测试员",
        "10.0.0.7",
        "req-1",
    )
    assert (row["action"], row["target_type"], row["target_id"]) == ("test.changed", "thing", "0")
    assert row["before"] == {"amount": 0} and row["after"] == {"amount": 1, "note": "审批通过"}
    assert datetime.now(UTC) - row["at"] < timedelta(minutes=1)


async def test_verify_passes_on_an_intact_chain(db: None, capsys: pytest.CaptureFixture[str]) -> None:
    await record_entries(4)
    code, output = await run_verify(capsys)
    assert code == 0
    assert "audit chain intact: 5 entries verified" in output


# --- tampering ------------------------------------------------------------------------------------

ALTERED = "content does not match its hash (row was altered)"
RELINKED = "prev_hash does not match the previous entry"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("after", '{"amount": 1000000, "note": "审批通过"}'),
        ("before", "null"),
        ("actor_name", "mallory"),
        ("action", "test.viewed"),
        ("ip", "203.0.113.9"),
        ("target_id", "99"),
    ],
)
async def test_verify_names_a_row_changed_by_a_raw_update(
    db: None, capsys: pytest.CaptureFixture[str], column: str, value: str
) -> None:
    ids = await record_entries(4)
    await set_column(ids[2], column, value)
    code, output = await run_verify(capsys)
    assert code == 1
    assert f"audit chain BROKEN at entry {ids[2]}: {ALTERED} (2 entries before it verified)" in output


async def test_verify_names_the_entry_after_a_deleted_middle_row(
    db: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = await record_entries(4)
    await AuditEntry.delete().where(AuditEntry.id == ids[2])
    code, output = await run_verify(capsys)
    assert code == 1
    assert f"audit chain BROKEN at entry {ids[3]}: {RELINKED}" in output


async def test_rehashing_an_altered_row_breaks_the_link_to_the_next(
    db: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forger who also recomputes the altered row's own hash is caught at the next entry."""
    ids = await record_entries(4)
    await set_column(ids[1], "actor_name", "mallory")
    row = await AuditEntry.select().where(AuditEntry.id == ids[1]).first()
    await set_column(ids[1], "hash", audit.entry_hash(row["prev_hash"], row))
    code, output = await run_verify(capsys)
    assert code == 1
    assert f"audit chain BROKEN at entry {ids[2]}: {RELINKED}" in output


async def test_verify_notices_a_deleted_first_entry_younger_than_retention(
    db: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = await record_entries(3)
    await AuditEntry.delete().where(AuditEntry.id == ids[0])
    code, _output = await run_verify(capsys)
    assert code == 1


async def test_the_formflow_command_exits_1_on_a_tampered_chain(db: None) -> None:
    ids = await record_entries(2)
    await set_column(ids[1], "actor_name", "mallory")
    formflow = Path(sys.executable).parent / "formflow"
    result = await asyncio.to_thread(
        subprocess.run,
        [str(formflow), "audit", "verify"],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert f"BROKEN at entry {ids[1]}" in result.stderr


# --- retention ------------------------------------------------------------------------------------

THREE_YEARS = 3 * 365


async def only_entries(old: int, new: int) -> datetime:
    """Replace the trail with `old` entries from five years ago and `new` ones from now."""
    await AuditEntry.delete(force=True)
    now = datetime.now(UTC)
    await record_entries(old, at=now - timedelta(days=5 * 365))
    await record_entries(new, at=now)
    return now


@pytest.mark.parametrize("age_days", [0, 10, 179, THREE_YEARS - 1])
async def test_purge_refuses_a_cutoff_younger_than_the_retention_period(db: None, age_days: int) -> None:
    now = await only_entries(old=2, new=2)
    with pytest.raises(audit.RetentionError, match=f"younger than {THREE_YEARS} days must be kept"):
        await audit.purge_before(now - timedelta(days=age_days), THREE_YEARS, now=now)
    assert await AuditEntry.count() == 4


async def test_purge_of_old_entries_keeps_the_rest_verifiable(
    db: None, capsys: pytest.CaptureFixture[str]
) -> None:
    now = await only_entries(old=2, new=3)
    assert await audit.purge_before(now - timedelta(days=THREE_YEARS + 1), THREE_YEARS, now=now) == 2
    assert await AuditEntry.count() == 3 + 1, "the young entries and the purge's own anchor remain"
    assert await AuditEntry.exists().where(AuditEntry.action == audit.PURGE_ACTION)
    code, output = await run_verify(capsys)
    assert code == 0, output
    assert "4 entries verified" in output


async def test_purge_refuses_a_retention_below_the_minimum(db: None) -> None:
    await AuditEntry.delete(force=True)
    now = datetime.now(UTC)
    await record_entries(1, at=now - timedelta(days=60))
    with pytest.raises(audit.RetentionError):
        await audit.purge_before(now - timedelta(days=40), 30, now=now)
    assert await AuditEntry.count() == 1


@pytest.mark.parametrize(
    ("days", "error"),
    [("30", True), ("179", True), ("180", False), ("1095", False)],
)
def test_settings_refuse_a_retention_below_180_days(days: str, error: bool) -> None:
    env: dict[str, Any] = {"FORMFLOW_AUDIT_RETENTION_DAYS": days}
    if not error:
        assert load_settings(env).audit_retention_days == int(days)
        return
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    assert str(raised.value).startswith("FORMFLOW_AUDIT_RETENTION_DAYS: ")
    assert "180" in str(raised.value)
