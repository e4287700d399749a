"""PostgreSQL: `formflow_audit_head(key)`, the audit chain's lock and last hash in one round trip.

An append takes the chain's transaction-scoped advisory lock, then reads the last entry's hash.
Sent as one plain statement the read would use the snapshot taken before the lock was granted
and could miss the entry the previous holder just committed; in a VOLATILE PL/pgSQL function
each statement takes a fresh snapshot (READ COMMITTED), so the read comes after the lock.
SQLite needs nothing: its write transaction is the lock.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-27T18:40:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "audit chain head: lock and last hash in one call (PostgreSQL)"

FUNCTION = """
CREATE OR REPLACE FUNCTION formflow_audit_head(lock_key bigint) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN (SELECT "hash" FROM "audit_entry" ORDER BY "id" DESC LIMIT 1);
END
$$
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="formflow", description=DESCRIPTION)

    async def create() -> None:
        from storage.tables import AuditEntry

        if AuditEntry._meta.db.engine_type == "postgres":
            await AuditEntry.raw(FUNCTION)

    manager.add_raw(create)
    return manager
