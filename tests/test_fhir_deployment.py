"""docker-compose.yml and the Dockerfile name what the engine needs (no Docker engine here to run them)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from engine.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def _expand(value: str) -> str:
    """Compose's ``${VAR:-default}`` with nothing set: the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def test_mongo_is_a_one_node_replica_set_with_volume_and_healthcheck() -> None:
    compose = _compose()
    mongo = compose["services"]["mongo"]
    command = mongo["command"]
    assert command[command.index("--replSet") + 1] == "rs0"
    assert any(v.endswith(":/data/db") for v in mongo["volumes"])
    volume = next(v for v in mongo["volumes"] if v.endswith(":/data/db")).split(":")[0]
    assert volume in compose["volumes"]
    probe = " ".join(mongo["healthcheck"]["test"])
    assert "rs.initiate" in probe and "rs0" in probe and "mongo:27017" in probe and "isWritablePrimary" in probe


def test_engine_is_built_here_and_configured_by_huren_variables() -> None:
    compose = _compose()
    engine = compose["services"]["engine"]
    assert engine["build"]["context"] == "." and (ROOT / engine["build"]["dockerfile"]).is_file()
    assert engine["depends_on"]["mongo"]["condition"] == "service_healthy"
    env = {k: _expand(v) for k, v in engine["environment"].items()}
    assert all(k.startswith("HUREN_") for k in env)
    settings = Settings.from_env(env)  # every name must be a real setting (unknown ones raise)
    assert settings.mongodb_uri and "replicaSet=rs0" in settings.mongodb_uri
    assert settings.mongodb_uri.startswith("mongodb://mongo:27017")
    assert settings.http_host == "0.0.0.0" and settings.mllp_host == "0.0.0.0"
    published = {p.split(":")[1] for p in engine["ports"]}
    assert {str(settings.http_port), str(settings.mllp_port)} <= published
    assert any(v.endswith(":" + str(settings.data_dir)) for v in engine["volumes"])
    assert str(settings.http_port) in " ".join(engine["healthcheck"]["test"]) and "/fhir/metadata" in " ".join(
        engine["healthcheck"]["test"])


def test_dockerfile_installs_every_package_and_runs_huren_serve() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11", text, re.M)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    for package in packages:
        assert re.search(rf"^COPY {package} ", text, re.M), f"the image lacks {package}/"
    assert "pip install ." in text
    assert re.search(r"^EXPOSE 8080 2575$", text, re.M)
    assert re.search(r"^USER huren$", text, re.M)  # not root
    cmd = re.search(r"^CMD (.+)$", text, re.M)
    assert cmd and "huren serve" in cmd.group(1) and "keys init" in cmd.group(1)
    assert "huren = " in (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # the console script exists


def test_every_huren_command_in_the_image_and_makefile_parses() -> None:
    """The container's CMD and ``make run`` call real verbs and options (a typo would only show at start)."""
    import json
    import shlex

    from engine.cli import build_parser

    docker = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    cmd = json.loads(re.search(r"^CMD (\[.+\])$", docker, re.M).group(1))  # exec form: ["sh", "-c", "..."]
    lines = [cmd[-1], *re.findall(r"\$\(BIN\)/(huren .+?)(?:\s*\\)?$", (ROOT / "Makefile").read_text(), re.M)]
    calls = [part.strip() for line in lines for part in re.split(r"&&|\|", line) if "huren " in part]
    assert len(calls) >= 4
    for call in calls:
        words = shlex.split(call.replace("exec ", ""))
        assert words[0] == "huren", call
        build_parser().parse_args(words[1:])  # SystemExit on an unknown verb or option
