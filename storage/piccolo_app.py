"""Piccolo app config: the tables and migrations of Formflow."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from storage.tables import ALL_TABLES

APP_CONFIG = AppConfig(
    app_name="formflow",
    migrations_folder_path=Path(__file__).parent / "migrations",
    table_classes=ALL_TABLES,
)
