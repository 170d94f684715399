"""docker-compose.yml, the Dockerfile and deploy/: checked without a Docker engine.

The structure is checked with PyYAML; the files are then validated by Debian's
``docker-compose config -q`` and by ``check-jsonschema --builtin-schema vendor.compose-spec``
(offline: the schema ships with check-jsonschema), each skipped when not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
CLUSTER = REPO / "deploy" / "compose.qdrant-cluster.yml"
CORE = {"api", "worker", "redis", "qdrant"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE)


def depends(service: dict[str, Any]) -> dict[str, str]:
    """``{dependency: condition}`` of a service (list or mapping form)."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def env(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {k: str(v) for k, v in raw.items()}


def test_the_five_services_exist(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert CORE | {"llm"} <= set(services)
    assert services["api"]["command"] == ["serve"]
    assert services["worker"]["command"] == ["worker"]
    assert services["api"]["image"] == services["worker"]["image"]
    assert services["qdrant"]["image"].startswith("${QDRANT_IMAGE:-qdrant/qdrant:v")
    assert "ghcr.io/ggml-org/llama.cpp:server" in services["llm"]["image"]


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name
        test = check["test"]
        assert isinstance(test, str) or test[0] in ("CMD", "CMD-SHELL"), name


def test_dependencies_exist_and_are_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dep, condition in depends(service).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert condition in CONDITIONS, (name, dep, condition)
            assert "healthcheck" in services[dep], f"{name} waits for {dep}, which has none"
            if services[dep].get("profiles"):  # an optional service is only needed by optional ones
                assert services[name].get("profiles"), f"{name} needs optional {dep}"
    for name in ("api", "worker"):
        assert depends(services[name]) == {
            "redis": "service_healthy",
            "qdrant": "service_healthy",
        }
    assert depends(services["llm"]) == {"llm-models": "service_completed_successfully"}


def test_the_llm_is_optional_and_the_workers_scale(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["llm"]["profiles"] == ["llm"]
    for name in CORE:
        assert not services[name].get("profiles"), name
        assert "container_name" not in services[name], name
    worker = services["worker"]
    assert "ports" not in worker  # any number of replicas: --scale worker=N
    assert services["api"]["ports"]


def test_named_volumes_hold_data_and_models(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    assert {"tandem-data", "qdrant-data", "redis-data", "models"} <= declared
    used: dict[str, set[str]] = {}
    for name, service in compose["services"].items():
        for mount in service.get("volumes") or []:
            source, target = str(mount).split(":")[:2]
            if not source.startswith((".", "/", "$")):
                assert source in declared, (name, source)
                used.setdefault(source, set()).add(f"{name}:{target}")
    assert used["tandem-data"] == {"api:/data", "worker:/data"}  # one data store, shared
    assert "llm:/models" in used["models"] and "qdrant:/qdrant/storage" in used["qdrant-data"]


def test_configuration_is_environment_variables_tandem_knows(compose: dict[str, Any]) -> None:
    fields = {f"TANDEM_{name.upper()}" for name in Settings.model_fields}
    for name in ("api", "worker"):
        variables = env(compose["services"][name])
        for key in ("TANDEM_REDIS_URL", "TANDEM_QDRANT_URL", "TANDEM_DATA_DIR"):
            assert key in variables, (name, key)
        assert variables["HF_HUB_OFFLINE"] == "1"
        unknown = {k for k in variables if k.startswith("TANDEM_")} - fields
        assert not unknown, f"{name}: not Tandem settings: {unknown}"
    llm = env(compose["services"]["llm"])
    assert llm["LLAMA_ARG_MODEL"].startswith("/models/") and llm["LLAMA_ARG_HOST"] == "0.0.0.0"
    text = COMPOSE.read_text()
    assert "TANDEM_API_KEYS: ${TANDEM_API_KEYS:?" in text  # no default key, ever
    example = (REPO / "deploy" / "tandem.env.example").read_text()
    for key in re.findall(r"^#?\s*(TANDEM_[A-Z_]+)=", example, flags=re.M):
        if key not in ("TANDEM_SOURCES_DIR", "TANDEM_BIND", "TANDEM_HTTP_PORT", "TANDEM_IMAGE"):
            assert key in fields or key == "TANDEM_API_WORKERS", key


def test_the_dockerfile() -> None:
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, flags=re.M | re.I)
    assert len(stages) >= 2 and stages[-1][1] == "runtime"  # multi-stage
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in text
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"HF_HUB_OFFLINE=1", text) and "load_embedder" in text  # baked, offline
    assert 'ENTRYPOINT ["tandem"]' in text and "HEALTHCHECK" in text
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "models", "tests"} <= set(ignored)


def test_stack_docs_have_their_sections() -> None:
    text = (REPO / "docs" / "stack.md").read_text()
    assert "## Run the stack" in text and "## Beyond one machine" in text
    assert "docker compose up" in text and "curl" in text and "/v1/jobs/" in text


def _compose_env() -> dict[str, str]:
    return {**os.environ, "TANDEM_API_KEYS": "compose-test-key"}


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
@pytest.mark.parametrize(
    "args",
    [
        ["-f", "docker-compose.yml"],
        ["-f", "docker-compose.yml", "--profile", "llm"],
        ["-f", "docker-compose.yml", "-f", "deploy/compose.qdrant-cluster.yml"],
    ],
    ids=["core", "llm", "qdrant-cluster"],
)
def test_docker_compose_config(args: list[str]) -> None:
    cmd = ["docker-compose", *args, "config", "-q"]
    done = subprocess.run(cmd, cwd=REPO, env=_compose_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # without API keys the stack refuses to start
    bare = {k: v for k, v in _compose_env().items() if k != "TANDEM_API_KEYS"}
    done = subprocess.run(cmd, cwd=REPO, env=bare, capture_output=True, text=True)
    assert done.returncode != 0 and "TANDEM_API_KEYS" in done.stderr


def _check_jsonschema() -> list[str] | None:
    exe = Path(sys.executable).with_name("check-jsonschema")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("check-jsonschema")
    return [found] if found else None


@pytest.mark.skipif(_check_jsonschema() is None, reason="check-jsonschema not installed")
@pytest.mark.parametrize("path", [COMPOSE, CLUSTER], ids=["compose", "qdrant-cluster"])
def test_compose_spec_schema(path: Path) -> None:
    exe = _check_jsonschema()
    assert exe is not None
    done = subprocess.run(
        [*exe, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
