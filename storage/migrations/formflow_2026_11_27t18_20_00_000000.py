"""The urgent requests, indexed alone: an inbox puts tasks of urgent requests first, and asks of
each of its open tasks whether its request is urgent. Without this index PostgreSQL answers by
reading the whole instance table; with it, by reading the few urgent ids.

Written by hand (partial indexes are beyond the auto migrations); `IF NOT EXISTS` makes it safe
to run again.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-27T18:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "index of urgent requests, for the inbox order"


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="formflow", description=DESCRIPTION)

    async def create() -> None:
        from storage.tables import Instance

        await Instance.raw('CREATE INDEX IF NOT EXISTS instance_urgent ON "instance" ("id") WHERE "urgent"')

    manager.add_raw(create)
    return manager
