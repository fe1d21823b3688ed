"""docker-compose.yml and Dockerfile: schema-valid and consistent with each other and the repo.

No Docker engine is needed: the schema is checked with the `compose_spec` package (whose
parser rejects unknown keys and wrong types but does not resolve references), and the
cross-references (services, volumes, build context, database host) are checked here.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict) and found, "docker-compose.yml declares no services"
    return found


def build_context(service: dict[str, Any]) -> tuple[Path, str]:
    """The build context directory and Dockerfile name of a service with `build:`."""
    build = service["build"]
    if isinstance(build, str):
        return ROOT / build, "Dockerfile"
    return ROOT / build.get("context", "."), build.get("dockerfile", "Dockerfile")


def named_volumes(service: dict[str, Any]) -> list[str]:
    """Volume sources of a service that are named volumes rather than host paths."""
    names = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source = volume.split(":", 1)[0] if ":" in volume else None
        else:
            source = volume.get("source") if volume.get("type", "volume") == "volume" else None
        if source and not source.startswith((".", "/", "~", "$")):
            names.append(source)
    return names


def test_compose_file_is_schema_valid() -> None:
    compose_spec = pytest.importorskip("compose_spec")
    # from_yaml raises ValueError on unknown keys or wrong types; to_spec re-validates
    # the result against the pydantic models of the full specification.
    parsed = compose_spec.PyCompose.from_yaml(COMPOSE_FILE.read_text(encoding="utf-8"))
    parsed.validate()
    parsed.validate_volumes()
    spec = parsed.to_spec()
    assert set(spec.services or {}) == {"db", "init", "ingest", "worker"}


def test_schema_validator_rejects_a_broken_file() -> None:
    """Guards the test above: the validator really does reject bad input."""
    compose_spec = pytest.importorskip("compose_spec")
    with pytest.raises(ValueError):
        compose_spec.PyCompose.from_yaml("services:\n  db:\n    image: x\n    bogus: 1\n")


def test_depends_on_names_declared_services(compose: dict[str, Any]) -> None:
    declared = set(services(compose))
    for name, service in services(compose).items():
        depends = service.get("depends_on", [])
        missing = set(depends) - declared
        assert not missing, f"service {name} depends on undeclared {sorted(missing)}"


def test_healthy_dependencies_have_a_healthcheck(compose: dict[str, Any]) -> None:
    for service in services(compose).values():
        depends = service.get("depends_on", {})
        if isinstance(depends, dict):
            for target, rule in depends.items():
                if rule.get("condition") == "service_healthy":
                    assert "healthcheck" in services(compose)[target]


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used = {v for s in services(compose).values() for v in named_volumes(s)}
    assert used, "expected named volumes (database data, model cache)"
    assert used <= declared, f"undeclared volumes: {sorted(used - declared)}"


def test_database_service(compose: dict[str, Any]) -> None:
    db = services(compose)["db"]
    assert db["image"] == "pgvector/pgvector:pg17"
    assert "pgdata" in named_volumes(db)
    assert any(str(p).split(":")[-1] == "5432" for p in db["ports"])
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    env = db["environment"]
    assert env["POSTGRES_USER"] == env["POSTGRES_PASSWORD"] == env["POSTGRES_DB"] == "pgcontext"


@pytest.mark.parametrize("name", ["init", "ingest", "worker"])
def test_database_url_points_at_a_service(compose: dict[str, Any], name: str) -> None:
    service = services(compose)[name]
    url = urlsplit(service["environment"]["PGCONTEXT_DATABASE_URL"])
    assert url.hostname in services(compose)
    db_env = services(compose)[url.hostname]["environment"]
    assert url.username == db_env["POSTGRES_USER"]
    assert url.password == db_env["POSTGRES_PASSWORD"]
    assert url.path.lstrip("/") == db_env["POSTGRES_DB"]
    assert service["depends_on"][url.hostname]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ["ingest", "worker"])
def test_model_users_keep_a_model_cache(compose: dict[str, Any], name: str) -> None:
    service = services(compose)[name]
    assert named_volumes(service), f"{name} needs a named volume for the model cache"
    assert service["environment"]["HF_HOME"].startswith("/models/")


def test_build_context_has_a_dockerfile(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        if "build" in service:
            context, dockerfile = build_context(service)
            assert (context / dockerfile).is_file(), f"service {name}: no {dockerfile} in {context}"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the root Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def test_dockerfile_installs_cpu_torch_then_the_package() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = [args for op, args in instructions if op == "RUN"]
    torch = next(i for i, r in enumerate(runs) if "torch==" in r)
    package = next(i for i, r in enumerate(runs) if re.search(r"pip install \.(\s|$)", r))
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch]
    assert torch < package


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    [entrypoint] = [args for op, args in dockerfile_instructions() if op == "ENTRYPOINT"]
    assert yaml.safe_load(entrypoint) == ["pgcontext"]
    assert "pgcontext" in scripts


def test_dockerfile_copies_only_existing_paths() -> None:
    """`COPY` of a missing file fails the build (hatchling also needs the README)."""
    for op, args in dockerfile_instructions():
        if op == "COPY":
            *sources, _ = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_the_worker_works_the_queue_after_the_schema_is_made(compose: dict[str, Any]) -> None:
    worker = services(compose)["worker"]
    assert worker["command"] == ["worker"]
    assert worker["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert services(compose)["init"]["command"] == ["db", "upgrade"]


def test_data_is_queued_into_docs_as_the_header_says(compose: dict[str, Any]) -> None:
    """The header promises ./data ingested into "docs": the ingest service queues exactly
    that (read-only), after the schema exists, and the worker embeds what it queued."""
    header = COMPOSE_FILE.read_text(encoding="utf-8").split("services:")[0]
    assert 'ingest of ./data into collection "docs"' in header
    ingest = services(compose)["ingest"]
    assert "./data:/data:ro" in ingest["volumes"]
    command = ingest["command"]
    assert command[:2] == ["ingest", "/data"] and "--enqueue" in command
    assert command[command.index("--collection") + 1] == "docs"
    assert ingest["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert services(compose)["worker"]["command"] == ["worker"]  # works every queued job
