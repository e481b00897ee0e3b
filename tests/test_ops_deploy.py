"""The deployment files agree with the code.  No Docker engine runs in CI here, so the image is
not built; instead every name the Dockerfile, docker-compose.yml, .env.example and
deploy/README.md use is checked against the settings, the command line and the routes."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

from api.cli import build_parser
from api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SETTINGS = {"CELEDGER_" + name.upper() for name in Settings.model_fields}


def _parses(argv: list[str]) -> None:
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"`celedger {' '.join(argv)}` does not parse (exit {exc.code})")


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    assert not pending, "a continuation line ends the Dockerfile"
    out = []
    for line in lines:
        op, _, rest = line.partition(" ")
        out.append((op.upper(), rest.strip()))
    return out


def test_dockerfile_is_multistage_non_root_and_runs_a_real_command() -> None:
    steps = _dockerfile()
    froms = [rest for op, rest in steps if op == "FROM"]
    assert len(froms) >= 2 and any(" AS build" in f for f in froms)
    assert any(op == "COPY" and rest.startswith("--from=build ") for op, rest in steps)
    (user,) = [rest for op, rest in steps if op == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    entry = json.loads(next(rest for op, rest in steps if op == "ENTRYPOINT"))
    cmd = json.loads(next(rest for op, rest in steps if op == "CMD"))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entry == ["celedger"] and scripts["celedger"] == "api.cli:main"
    _parses(cmd)
    assert cmd[0] == "serve" and int(cmd[cmd.index("--workers") + 1]) > 1
    # Every CELEDGER_ variable the image sets is a setting.
    env = " ".join(rest for op, rest in steps if op == "ENV")
    names = set(re.findall(r"\b(CELEDGER_[A-Z0-9_]+)=", env))
    assert names and names <= SETTINGS, names - SETTINGS
    assert "CELEDGER_ENVIRONMENT=production" in env
    # What the build stage copies exists, and the .dockerignore lets it through.
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for op, rest in steps:
        if op == "COPY" and not rest.startswith("--from"):
            *sources, _dest = rest.split()
            for src in sources:
                assert (ROOT / src).exists(), src
                assert f"!{src}" in ignore or f"!{src}/" in ignore, src
    health = next(rest for op, rest in steps if op == "HEALTHCHECK")
    assert "http://127.0.0.1:8000/healthz" in health and '--port", "8000"' in json.dumps(cmd)


def test_the_healthcheck_path_is_a_route(tmp_path: Path) -> None:
    from litestar.testing import TestClient

    from api.app import create_app

    s = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    with TestClient(app=create_app(s)) as tc:
        assert tc.get("/healthz").status_code == 200


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return data


def test_compose_uses_only_known_settings_and_real_commands() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"db", "api", "publisher"} <= set(services)
    example = dotenv_values(DEPLOY / ".env.example")
    for name, svc in services.items():
        for key in svc.get("environment") or {}:
            if key.startswith("CELEDGER_"):
                assert key in SETTINGS, (name, key)
        if svc.get("image", "").startswith("celedger"):
            assert svc["env_file"] == ".env"
            _parses(svc["command"])
            assert svc.get("read_only") is True and "/tmp" in svc["tmpfs"]
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in compose["volumes"], (name, source)
    # Variables compose interpolates are defined in .env.example (which compose reads as .env).
    text = (DEPLOY / "docker-compose.yml").read_text()
    for var in re.findall(r"\$\{([A-Z0-9_]+)", text):
        assert var in example, var
    api = services["api"]
    assert (ROOT / api["build"]["dockerfile"]).is_file() and api["build"]["context"] == ".."
    assert (
        api["command"][0] == "serve"
        and int(api["command"][api["command"].index("--workers") + 1]) > 1
    )
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    # The publisher writes where the static server reads.
    out = services["publisher"]["command"][services["publisher"]["command"].index("--to") + 1]
    assert any(v.endswith(":" + out) for v in services["publisher"]["volumes"])
    assert any(v.startswith("tiles:" + out) for v in services["tiles"]["volumes"])
    assert f"root {out};" in (DEPLOY / "nginx-tiles.conf").read_text()
    # pg_dump in the image is Debian 12's (15): the server must not be newer.
    assert services["db"]["image"].startswith("postgres:15")


def test_env_example_holds_only_settings_and_loads() -> None:
    example = dotenv_values(DEPLOY / ".env.example")
    assert set(example) <= SETTINGS, set(example) - SETTINGS
    needed = {
        "CELEDGER_ENVIRONMENT", "CELEDGER_DATABASE_URL", "CELEDGER_DATABASE_PASSWORD",
        "CELEDGER_ORIGIN", "CELEDGER_PUBLIC_URL", "CELEDGER_PII_KEY",
        "CELEDGER_KEY_ENCRYPTION_KEY", "CELEDGER_PDF_SIGNER_P12",
    }  # fmt: skip
    assert needed <= set(example)
    s = Settings(_env_file=DEPLOY / ".env.example")  # type: ignore[call-arg]
    assert s.environment == "production" and s.log_format == "json"


def test_readme_commands_and_metrics_are_real() -> None:
    readme = (DEPLOY / "README.md").read_text()
    assert "not built" in readme  # says plainly the image was not built here
    commands = re.findall(r"docker compose run --rm (?:api|publisher) ([^\n`|>#]+)", readme)
    commands += re.findall(r"^\s*celedger ([^\n`|>#]+)", readme, flags=re.M)
    assert len(commands) >= 8
    for line in commands:
        _parses(shlex.split(line.strip()))
    from api import ops

    source = Path(ops.__file__).read_text()
    for name in set(re.findall(r"\bceledger_[a-z_]+", readme)):
        base = re.sub(r"_(total|count|sum|bucket)$", "", name)
        assert f'"{base}' in source, name
    for name in set(re.findall(r"\bCELEDGER_[A-Z0-9_]+", readme)):
        assert name in SETTINGS, name
