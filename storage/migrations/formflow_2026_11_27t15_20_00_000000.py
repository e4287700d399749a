"""Triggers that give `org_revision.token` a fresh random value whenever the organisation changes.

`runtime.service.org_directory` caches the org directory and `storage.org.load_principal` the
principals per process, and reload only when the token differs from the one they cached, so the
triggers fire on every insert or delete of a person, department or position, and on updates of
the columns either reads (sign-in bookkeeping such as `last_login_at` leaves the token alone). The token is random, never a
counter: a restored older database must not repeat a token that went with other contents.

Each trigger upserts the single row (id 1), so a missing row is recreated by the next change
(PostgreSQL's TRUNCATE removes it; the cache treats a missing row as "unknown" and reloads).
The row is also created here, so an upgraded database caches from its first command.
`IF NOT EXISTS` / `OR REPLACE` / `DO NOTHING` make every statement safe to run again.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-27T15:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "org revision triggers"

# The columns of each organisation table that the org directory or a principal reads
# (`storage.org.load_principal`; foreign keys are the columns "department", "position" and
# "parent").
WATCHED = {
    "person": ("employee_no", "name", "department", "position", "manager_id", "active", "locale"),
    "department": ("code", "name_zh", "parent", "head_id", "leader_id"),
    "position": ("code", "roles"),
}


def _columns(table: str) -> str:
    return ", ".join(f'"{column}"' for column in WATCHED[table])


SQLITE_BUMP = 'INSERT OR REPLACE INTO "org_revision" ("id", "token") VALUES (1, random());'
SQLITE_STATEMENTS = [
    'INSERT OR IGNORE INTO "org_revision" ("id", "token") VALUES (1, random())',
    *(
        f'CREATE TRIGGER IF NOT EXISTS "org_revision_{table}_{event.split()[0].lower()}"'
        f' AFTER {event} ON "{table}" BEGIN {SQLITE_BUMP} END'
        for table in WATCHED
        for event in ("INSERT", "DELETE", f"UPDATE OF {_columns(table)}")
    ),
]

POSTGRES_STATEMENTS = [
    """CREATE OR REPLACE FUNCTION org_revision_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "org_revision" ("id", "token") VALUES (1, (random() * 9e18)::bigint)
    ON CONFLICT ("id") DO UPDATE SET "token" = EXCLUDED."token";
    RETURN NULL;
END
$$""",
    'INSERT INTO "org_revision" ("id", "token") VALUES (1, (random() * 9e18)::bigint)'
    ' ON CONFLICT ("id") DO NOTHING',
    *(
        f'CREATE OR REPLACE TRIGGER "org_revision_{table}"'
        f' AFTER INSERT OR DELETE OR UPDATE OF {_columns(table)} ON "{table}"'
        " FOR EACH STATEMENT EXECUTE FUNCTION org_revision_bump()"
        for table in WATCHED
    ),
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="formflow", description=DESCRIPTION)

    async def create() -> None:
        from storage.tables import OrgRevision

        postgres = OrgRevision._meta.db.engine_type == "postgres"
        for statement in POSTGRES_STATEMENTS if postgres else SQLITE_STATEMENTS:
            await OrgRevision.raw(statement)

    manager.add_raw(create)
    return manager
