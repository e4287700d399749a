"""compose.yaml and the Dockerfile, checked offline (there is no Docker engine in CI).

The compose-spec JSON Schema (through check-jsonschema) catches unknown keys and wrong types;
the tests below add the cross-references a schema cannot see: dependencies on services that
exist, `FORMFLOW_*` variables that are real settings, named volumes that are declared, health
checks where `depends_on` waits for them. See ../shared/notes/stack-check.md, section 6.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from web.settings import Settings, SettingsError, load_settings, variable_for

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")

FORMFLOW_PROCESSES = {"app": "serve", "worker": "worker", "scheduler": "scheduler", "migrate": "migrate"}
STATEFUL = ("postgres", "redis", "minio")
SETTING_VARIABLES = {variable_for(field) for field in Settings.__struct_fields__}
_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    """`depends_on` in either syntax, as {service: condition}."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _command(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _interpolate(value: str, host_env: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}` and `$$`."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = host_env.get(name)
        unset_or_empty = not current if op and op.startswith(":") else current is None
        if op in (":-", "-") and unset_or_empty:
            return arg
        if op in (":?", "?") and unset_or_empty:
            raise KeyError(f"{name}: {arg}")
        return current or ""

    return _INTERPOLATION.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def _named_volumes(service: Mapping[str, Any]) -> list[str]:
    names = []
    for mount in service.get("volumes") or []:
        if isinstance(mount, str):
            source = mount.split(":", 1)[0] if ":" in mount else ""
        else:
            source = mount.get("source", "") if mount.get("type", "volume") == "volume" else ""
        if source and not source.startswith((".", "/", "~", "$")):
            names.append(source)
    return names


def test_compose_file_matches_the_compose_spec_schema() -> None:
    assert CHECK_JSONSCHEMA.exists(), f"{CHECK_JSONSCHEMA} is missing: install requirements-dev.lock"
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_uses_the_spec_format_without_a_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose


def test_the_whole_stack_is_defined(services: dict[str, dict[str, Any]]) -> None:
    expected = {"app", "worker", "scheduler", "migrate", "postgres", "redis", "minio", "minio-init"}
    assert expected <= services.keys()


def test_every_dependency_is_a_defined_service(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target in _depends_on(service):
            assert target in services, f"{name} depends on undefined service {target!r}"
            assert target != name, f"{name} depends on itself"


def test_waiting_for_health_needs_a_health_check_and_waiting_for_completion_a_one_shot(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for target, condition in _depends_on(service).items():
            if condition == "service_healthy":
                check = services[target].get("healthcheck") or {}
                assert check.get("test") and not check.get("disable"), f"{name} waits for {target}'s health"
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} must run once"


def test_the_app_starts_after_migrations_and_healthy_backing_services(
    services: dict[str, dict[str, Any]],
) -> None:
    deps = _depends_on(services["app"])
    assert deps["migrate"] == "service_completed_successfully"
    assert deps["minio-init"] == "service_completed_successfully"
    for backing in STATEFUL:
        assert deps[backing] == "service_healthy"
    for process in ("worker", "scheduler"):
        assert _depends_on(services[process])["migrate"] == "service_completed_successfully"
    assert _depends_on(services["migrate"])["postgres"] == "service_healthy"


def test_formflow_processes_run_their_formflow_command(services: dict[str, dict[str, Any]]) -> None:
    for name, subcommand in FORMFLOW_PROCESSES.items():
        assert _command(services[name])[:2] == ["formflow", subcommand], name
    assert "seed-demo" not in str(services["migrate"]), "demo data is opt-in, not part of migrate"
    app_command = _command(services["app"])
    assert app_command[app_command.index("--host") + 1] == "0.0.0.0"


def test_formflow_processes_share_one_image(services: dict[str, dict[str, Any]]) -> None:
    images = {services[name].get("image") for name in FORMFLOW_PROCESSES}
    assert len(images) == 1 and None not in images, images
    assert all(services[name].get("build") for name in FORMFLOW_PROCESSES)


def test_every_formflow_variable_in_compose_is_a_real_setting() -> None:
    used = set(re.findall(r"\bFORMFLOW_[A-Z0-9_]+", COMPOSE_FILE.read_text()))
    assert used, "compose.yaml configures Formflow through FORMFLOW_* variables"
    unknown = sorted(used - SETTING_VARIABLES)
    assert not unknown, f"not fields of web.settings.Settings: {unknown}"


@pytest.mark.parametrize("name", sorted(FORMFLOW_PROCESSES))
def test_compose_environment_is_accepted_by_load_settings(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    host_env = {"FORMFLOW_SECRET_KEY": "s" * 40}
    env = {key: _interpolate(value, host_env) for key, value in _environment(services[name]).items()}
    settings = load_settings(env)
    assert settings.mode == "production"
    assert settings.database_url.startswith("postgresql://")
    assert settings.broker_url.startswith("redis://")
    assert settings.storage_backend == "s3"
    assert settings.s3_endpoint and settings.s3_access_key and settings.s3_secret_key
    assert settings.log_json is True
    assert not settings.runs_worker_in_process, "worker and scheduler are separate services"
    if name == "app":
        assert settings.web_workers == 2


def test_compose_refuses_to_start_without_a_secret_key(services: dict[str, dict[str, Any]]) -> None:
    raw = _environment(services["app"])["FORMFLOW_SECRET_KEY"]
    with pytest.raises(KeyError, match="FORMFLOW_SECRET_KEY"):
        _interpolate(raw, {})
    with pytest.raises(SettingsError, match="FORMFLOW_SECRET_KEY"):
        load_settings({"FORMFLOW_MODE": "production", "FORMFLOW_SECRET_KEY": "too-short"})


def test_the_bucket_minio_init_creates_is_the_configured_one(services: dict[str, dict[str, Any]]) -> None:
    bucket = _environment(services["app"])["FORMFLOW_S3_BUCKET"]
    script = " ".join(_command(services["minio-init"]))
    assert re.search(rf"mc mb --ignore-existing \w+/{re.escape(bucket)}\b", script), script
    minio, init, app = (_environment(services[name]) for name in ("minio", "minio-init", "app"))
    assert init["MINIO_ROOT_USER"] == minio["MINIO_ROOT_USER"] == app["FORMFLOW_S3_ACCESS_KEY"]
    assert init["MINIO_ROOT_PASSWORD"] == minio["MINIO_ROOT_PASSWORD"] == app["FORMFLOW_S3_SECRET_KEY"]
    assert _command(services["minio"])[:2] == ["server", "/data"]


def test_named_volumes_are_declared_and_state_is_kept_in_them(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in _named_volumes(service):
            assert volume in declared, f"{name} mounts undeclared volume {volume!r}"
    for name in STATEFUL:
        assert _named_volumes(compose["services"][name]), f"{name} keeps its data in a named volume"


def test_health_checks(services: dict[str, dict[str, Any]]) -> None:
    for name in (*STATEFUL, "app"):
        check = services[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    assert "pg_isready" in str(services["postgres"]["healthcheck"]["test"])
    assert "ping" in str(services["redis"]["healthcheck"]["test"])
    assert "/health/ready" in str(services["app"]["healthcheck"]["test"])
    # The image's HEALTHCHECK probes HTTP; processes that serve none must switch it off.
    for name in ("worker", "scheduler", "migrate"):
        assert services[name].get("healthcheck", {}).get("disable") is True, name


def test_dockerfile_installs_the_lock_then_the_project_and_serves() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^COPY\s+requirements\.lock\b", text, re.M)
    assert re.search(r"pip install\s+-r\s+\S*requirements\.lock", text)
    assert "--no-deps" in text
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r'^CMD \["formflow", "serve"', text, re.M)
    assert re.search(r"^EXPOSE 8000$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*/health/live", text, re.M)
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and user[-1] not in {"root", "0"}, "the app runs as a non-root user"
    unknown = sorted(set(re.findall(r"\bFORMFLOW_[A-Z0-9_]+", text)) - SETTING_VARIABLES)
    assert not unknown, f"Dockerfile sets variables that are not settings: {unknown}"


def test_dockerfile_builds_the_same_assets_as_the_makefile() -> None:
    makefile = (ROOT / "Makefile").read_text()
    dockerfile = DOCKERFILE.read_text()
    assets = re.findall(r"node_modules/\S+\.js", makefile)
    assert assets, "the Makefile's assets target copies files out of node_modules"
    for asset in assets:
        assert asset in dockerfile, f"Dockerfile does not copy {asset}"
    assert "npm ci" in dockerfile and "package-lock.json" in dockerfile


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    entries = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".git", ".venv", "node_modules", "var"} <= entries
