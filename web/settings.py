"""Settings: one msgspec Struct read from `FORMFLOW_*` environment variables.

Every field's variable is `FORMFLOW_` + the field name in upper case. The defaults give the
embedded mode: SQLite under `var/`, attachments in `var/attachments`, an in-memory broker with an
in-process worker and scheduler. A bad value stops start-up with `SettingsError` naming the
variable and the reason.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from storage.audit import MIN_RETENTION_DAYS as MIN_AUDIT_RETENTION_DAYS
from storage.database import DEFAULT_DATABASE_URL

PREFIX = "FORMFLOW_"

Positive = Annotated[int, msgspec.Meta(ge=1)]


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    mode: Literal["dev", "production"] = "dev"
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    web_workers: Positive = 1
    base_url: str = ""
    database_url: str = DEFAULT_DATABASE_URL
    # PostgreSQL connections per process; 0 opens one per query (tests, one-off commands).
    database_pool_size: Annotated[int, msgspec.Meta(ge=0, le=200)] = 10
    broker_url: str = "memory://"
    in_process_worker: bool | None = None
    storage_backend: Literal["local", "s3"] = "local"
    storage_path: str = "var/attachments"
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "formflow"
    s3_region: str = "us-east-1"
    s3_secure: bool = False
    secret_key: str = ""
    var_dir: str = "var"
    default_locale: Literal["zh-CN", "en"] = "zh-CN"
    session_hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 30)] = 12
    login_max_failures: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    login_lockout_minutes: Annotated[int, msgspec.Meta(ge=1, le=24 * 60)] = 15
    login_ip_failures_per_10min: Annotated[int, msgspec.Meta(ge=1)] = 30
    password_hash_time_cost: Annotated[int, msgspec.Meta(ge=1, le=20)] = 3
    password_hash_memory_kib: Annotated[int, msgspec.Meta(ge=1024, le=4 * 1024 * 1024)] = 64 * 1024
    audit_retention_days: Annotated[int, msgspec.Meta(ge=MIN_AUDIT_RETENTION_DAYS)] = 3 * 365
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False

    @property
    def dev(self) -> bool:
        return self.mode == "dev"

    @property
    def runs_worker_in_process(self) -> bool:
        """The worker and scheduler run inside `serve` unless a real broker is configured."""
        if self.in_process_worker is not None:
            return self.in_process_worker
        return self.broker_url.startswith("memory://")


def variable_for(field: str) -> str:
    return PREFIX + field.upper()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from the environment; raise `SettingsError` naming the bad variable."""
    env = os.environ if environ is None else environ
    known = {f: variable_for(f) for f in Settings.__struct_fields__}
    unknown = sorted(k for k in env if k.startswith(PREFIX) and k not in known.values() and not _ignored(k))
    if unknown:
        raise SettingsError(f"{unknown[0]}: unknown setting (known: {', '.join(sorted(known.values()))})")
    raw = {field: env[var] for field, var in known.items() if var in env and env[var] != ""}
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_name_variable(str(exc))) from exc
    if settings.mode == "production" and not settings.secret_key:
        raise SettingsError(
            f"{variable_for('secret_key')}: required in production mode (32+ random characters)"
        )
    if settings.secret_key and len(settings.secret_key) < 32:
        raise SettingsError(f"{variable_for('secret_key')}: must be at least 32 characters")
    if settings.storage_backend == "s3" and not settings.s3_endpoint:
        raise SettingsError(f"{variable_for('s3_endpoint')}: required when FORMFLOW_STORAGE_BACKEND=s3")
    if not settings.broker_url.startswith(("memory://", "redis://", "rediss://", "amqp://")):
        raise SettingsError(f"{variable_for('broker_url')}: expected memory://, redis://... or amqp://...")
    return settings


# Variables read by other tools (test fixtures, the CI script), not by the app itself.
_IGNORED_PREFIXES = ("FORMFLOW_TEST_",)


def _ignored(name: str) -> bool:
    return name.startswith(_IGNORED_PREFIXES)


def _name_variable(message: str) -> str:
    match = re.search(r"at `\$\.(\w+)`", message)
    if not match:
        return message
    reason = message[: match.start()].rstrip(" -")
    return f"{variable_for(match.group(1))}: {reason}"


def secret_key(settings: Settings) -> str:
    """The configured secret, or in dev mode one generated once and kept in `var/secret.key`."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.var_dir) / "secret.key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key
