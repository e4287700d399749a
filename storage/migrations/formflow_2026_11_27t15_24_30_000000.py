"""The indexes of insight: the rollup's and analytics' (first made by the rollup migration of
2026-11-27T12:58, which now only creates its tables), the kept figures', a viewer's own rows in
the rollup, and the requests in flight that analytics reads live (their deadlines and counted
events, read from the index alone).

Written by hand (composite, partial and covering indexes are beyond the auto migrations);
`IF NOT EXISTS` makes every statement safe to run again.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-27T15:24:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "indexes of insight: rollup, kept figures, own rows, requests in flight"

STATEMENTS = (
    # the rollup finds what closed since its last run; monitoring pages open tasks oldest first
    'CREATE INDEX IF NOT EXISTS task_closed_at ON "task" ("closed_at", "id")',
    'CREATE INDEX IF NOT EXISTS instance_closed_at ON "instance" ("closed_at", "id")',
    'CREATE INDEX IF NOT EXISTS task_status_created ON "task" ("status", "created_at", "id")',
    'CREATE INDEX IF NOT EXISTS instance_status_template ON "instance" ("status", "template_key")',
    # the reports: the largest overspends, the most sent-back requests
    'CREATE INDEX IF NOT EXISTS request_stat_deviation ON "request_stat" ("deviation") WHERE "deviation" IS NOT NULL',
    'CREATE INDEX IF NOT EXISTS request_stat_sent_back ON "request_stat" (("returns" + "rejections"))',
    # a group's kept figures are upserted by kind, scope and key
    'CREATE UNIQUE INDEX IF NOT EXISTS insight_figure_group ON "insight_figure" ("kind", "scope", "key")',
    # a viewer who sees their own requests only, and the check for a head's own requests elsewhere
    'CREATE INDEX IF NOT EXISTS task_stat_initiator ON "task_stat" ("initiator_id", "department_id")',
    'CREATE INDEX IF NOT EXISTS request_stat_initiator ON "request_stat" ("initiator_id", "department_id")',
    # requests in flight: which have a task past its deadline, how often each was sent back
    'CREATE INDEX IF NOT EXISTS task_instance_deadline ON "task" ("instance", "due_at", "closed_at")'
    ' WHERE "due_at" IS NOT NULL',
    'CREATE INDEX IF NOT EXISTS instance_event_instance_kind ON "instance_event" ("instance", "kind")',
)
POSTGRES_STATEMENTS = (
    # covering, partial indexes: aggregates of decided tasks per step and per week read the index
    # alone, already sorted by duration
    "CREATE INDEX IF NOT EXISTS task_stat_step_hours ON task_stat (template_key, node_id, working_hours)"
    " INCLUDE (department_id, initiator_id, submitted_at, created_at, has_due, late, returned, rejected, step)"
    " WHERE working_hours IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS task_stat_week_hours ON task_stat (closed_week, working_hours)"
    " INCLUDE (department_id, initiator_id, submitted_at, template_key, node_id)"
    " WHERE working_hours IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS task_stat_remaining ON task_stat (template_key, node_id, remaining_hours)"
    " INCLUDE (department_id, initiator_id) WHERE remaining_hours IS NOT NULL",
)
SQLITE_STATEMENTS = (
    "CREATE INDEX IF NOT EXISTS task_stat_step ON task_stat (template_key, node_id)",
    "CREATE INDEX IF NOT EXISTS task_stat_week ON task_stat (closed_week)",
)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="formflow", description=DESCRIPTION)

    async def create() -> None:
        from storage.tables import InsightFigure

        postgres = InsightFigure._meta.db.engine_type == "postgres"
        for statement in STATEMENTS + (POSTGRES_STATEMENTS if postgres else SQLITE_STATEMENTS):
            await InsightFigure.raw(statement)

    manager.add_raw(create)
    return manager
