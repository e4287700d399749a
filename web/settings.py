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

from runtime.broker import BrokerURLError, redis_options
from storage.audit import MIN_RETENTION_DAYS as MIN_AUDIT_RETENTION_DAYS
from storage.database import DEFAULT_DATABASE_URL
from web.auth.oidc_config import OidcConfigError, parse_providers

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
    # Sign-in: password, single sign-on (OpenID Connect) and passkeys (WebAuthn).
    password_login: bool = True
    oidc_providers: str = ""  # JSON list of identity providers, see web/auth/oidc_config.py
    sso_unknown_people: Literal["refuse", "create"] = "refuse"
    sso_default_department: str = ""  # department code for people created at their first SSO sign-in
    passkeys_required_for_admins: bool = False
    webauthn_rp_id: str = ""  # default: the host of base_url
    webauthn_origin: str = ""  # default: the scheme, host and port of base_url
    # Step plugins' side effects (web and worker alike): secrets by name, e-mail. Callbacks and
    # links use base_url.
    plugin_secrets: str = ""  # JSON object {"crm": "<webhook signing key>", "mkt-robot": "<robot URL>"}
    smtp_host: str = ""  # empty: e-mail steps skip e-mail
    smtp_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_sender: str = ""  # the From address; required with smtp_host
    smtp_security: Literal["none", "starttls", "ssl"] = "none"  # ssl: TLS from the start (port 465)

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
    if settings.broker_url.startswith(("redis://", "rediss://")):
        try:
            redis_options(settings.broker_url)
        except BrokerURLError as exc:
            raise SettingsError(f"{variable_for('broker_url')}: {exc}") from exc
    _check_sign_in(settings)
    plugin_secrets(settings)
    if settings.smtp_host and "@" not in settings.smtp_sender:
        raise SettingsError(
            f"{variable_for('smtp_sender')}: an e-mail address is required with FORMFLOW_SMTP_HOST"
        )
    return settings


SecretNames = dict[
    Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_\-]*$")], str
]


def plugin_secrets(settings: Settings) -> dict[str, str]:
    """`FORMFLOW_PLUGIN_SECRETS` as name -> value; the message of a bad value never shows a value."""
    if not settings.plugin_secrets.strip():
        return {}
    try:
        return msgspec.json.decode(settings.plugin_secrets, type=SecretNames)
    except msgspec.DecodeError as exc:
        raise SettingsError(
            f"{variable_for('plugin_secrets')}: expected a JSON object of secret names "
            f"(lower-case letters, digits, _ and -) and their values: {exc}"
        ) from exc


def _check_sign_in(settings: Settings) -> None:
    try:
        providers = parse_providers(settings.oidc_providers)
    except OidcConfigError as exc:
        raise SettingsError(f"{variable_for('oidc_providers')}: {exc}") from exc
    if settings.sso_unknown_people == "create" and not settings.sso_default_department:
        raise SettingsError(
            f"{variable_for('sso_default_department')}: required when FORMFLOW_SSO_UNKNOWN_PEOPLE=create"
        )
    if not settings.password_login and not providers:
        raise SettingsError(
            f"{variable_for('password_login')}: password sign-in can only be switched off "
            "when FORMFLOW_OIDC_PROVIDERS names an identity provider"
        )
    if settings.mode == "production" and providers and not settings.base_url:
        raise SettingsError(f"{variable_for('base_url')}: required in production mode for single sign-on")


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
