"""Indexes for the queries every page makes: a person's inbox, their requests, the event log.

Written by hand (composite indexes are beyond the auto migrations); the same statements run on
SQLite and PostgreSQL, and `IF NOT EXISTS` makes them safe to run again.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-27T13:35:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "indexes for inboxes, my requests and the event log"

STATEMENTS = (
    # the inbox: a person's open tasks by deadline
    'CREATE INDEX IF NOT EXISTS task_assignee_status_due ON "task" ("assignee", "status", "due_at")',
    # my requests: a person's requests by status, newest first
    'CREATE INDEX IF NOT EXISTS instance_initiator_status_updated ON "instance" ("initiator", "status", "updated_at")',
    # each command reads the last event number of its request
    'CREATE INDEX IF NOT EXISTS instance_event_instance_seq ON "instance_event" ("instance", "seq")',
    # copies (cc_sent), returns and summaries are found by kind
    'CREATE INDEX IF NOT EXISTS instance_event_kind ON "instance_event" ("kind")',
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="formflow", description=DESCRIPTION)

    async def create() -> None:
        from storage.tables import Task

        for statement in STATEMENTS:
            await Task.raw(statement)

    manager.add_raw(create)
    return manager
