"""Settings from `FORMFLOW_*` variables: defaults give the embedded mode; a bad value is refused with
a message that starts with the variable's name; the `formflow` command then exits 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from web import cli
from web.settings import Settings, SettingsError, load_settings

SECRET = "s" * 32


def test_defaults_give_the_embedded_mode() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert (settings.mode, settings.host, settings.port) == ("dev", "127.0.0.1", 8000)
    assert settings.database_url == "sqlite:///var/formflow.sqlite3"
    assert settings.broker_url == "memory://"
    assert (settings.storage_backend, settings.storage_path) == ("local", "var/attachments")
    assert settings.runs_worker_in_process is True
    assert settings.audit_retention_days == 3 * 365
    assert settings.dev is True


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"FORMFLOW_PORT": "9000"}, "port", 9000),
        ({"FORMFLOW_PORT": ""}, "port", 8000),  # empty means the default
        ({"FORMFLOW_IN_PROCESS_WORKER": "false"}, "runs_worker_in_process", False),
        ({"FORMFLOW_BROKER_URL": "redis://127.0.0.1:6379/0"}, "runs_worker_in_process", False),
        ({"FORMFLOW_DEFAULT_LOCALE": "en"}, "default_locale", "en"),
        ({"FORMFLOW_MODE": "production", "FORMFLOW_SECRET_KEY": SECRET}, "dev", False),
        ({"FORMFLOW_TEST_DATABASE_URL": "postgres://x"}, "database_url", "sqlite:///var/formflow.sqlite3"),
        ({"HOME": "/root", "PATH": "/bin"}, "port", 8000),  # other variables are not ours
    ],
)
def test_good_values(env: dict[str, str], field: str, value: Any) -> None:
    assert getattr(load_settings(env), field) == value


BAD = [
    ({"FORMFLOW_PORT": "abc"}, "FORMFLOW_PORT", "Expected `int`"),
    ({"FORMFLOW_PORT": "0"}, "FORMFLOW_PORT", ">= 1"),
    ({"FORMFLOW_PORT": "70000"}, "FORMFLOW_PORT", "<= 65535"),
    ({"FORMFLOW_MODE": "prod"}, "FORMFLOW_MODE", "prod"),
    ({"FORMFLOW_FOO": "1"}, "FORMFLOW_FOO", "unknown setting"),
    ({"FORMFLOW_MODE": "production"}, "FORMFLOW_SECRET_KEY", "required in production mode"),
    ({"FORMFLOW_SECRET_KEY": "short"}, "FORMFLOW_SECRET_KEY", "at least 32 characters"),
    ({"FORMFLOW_STORAGE_BACKEND": "s3"}, "FORMFLOW_S3_ENDPOINT", "required"),
    ({"FORMFLOW_STORAGE_BACKEND": "ftp"}, "FORMFLOW_STORAGE_BACKEND", "ftp"),
    ({"FORMFLOW_BROKER_URL": "http://broker"}, "FORMFLOW_BROKER_URL", "expected memory://"),
    ({"FORMFLOW_IN_PROCESS_WORKER": "maybe"}, "FORMFLOW_IN_PROCESS_WORKER", "Expected `bool"),
    ({"FORMFLOW_SESSION_HOURS": "1.5"}, "FORMFLOW_SESSION_HOURS", "Expected `int`"),
    ({"FORMFLOW_LOGIN_MAX_FAILURES": "0"}, "FORMFLOW_LOGIN_MAX_FAILURES", ">= 1"),
    ({"FORMFLOW_AUDIT_RETENTION_DAYS": "30"}, "FORMFLOW_AUDIT_RETENTION_DAYS", ">= 180"),
    ({"FORMFLOW_LOG_LEVEL": "LOUD"}, "FORMFLOW_LOG_LEVEL", "LOUD"),
]


@pytest.mark.parametrize(("env", "variable", "reason"), BAD)
def test_a_bad_value_is_refused_naming_the_variable(env: dict[str, str], variable: str, reason: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    message = str(raised.value)
    assert message.startswith(f"{variable}: "), message
    assert reason in message


def test_the_command_exits_2_naming_a_bad_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORMFLOW_PORT", "abc")
    assert cli.main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: FORMFLOW_PORT: ")


def test_the_installed_formflow_script_exits_2_naming_a_bad_variable() -> None:
    formflow = Path(sys.executable).parent / "formflow"
    env = {**os.environ, "FORMFLOW_MODE": "prod"}
    result = subprocess.run(
        [str(formflow), "audit", "verify"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: FORMFLOW_MODE: ")
    assert result.stdout == ""
