"""Apply Piccolo migrations from code (the `formflow migrate` command and test fixtures)."""

from __future__ import annotations

from piccolo.apps.migrations.commands.forwards import run_forwards


class MigrationError(RuntimeError):
    """A migration failed; the database keeps the state of the last migration that succeeded."""


async def migrate() -> None:
    """Run every pending migration of Formflow's tables."""
    result = await run_forwards("formflow")
    if not result.success:
        raise MigrationError(result.message)
