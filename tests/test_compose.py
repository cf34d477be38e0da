"""docker-compose.yml is valid and registers exactly the search attributes the workflows upsert."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain import search_attributes as sa
from tests.support import in_ci

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV = {
    **os.environ,
    "TRLGATE_JWT_SECRET": "test",
    "POSTGRES_PASSWORD": "test",
    "TRLGATE_CODEC_KEYS": "k1=test",
    "TRLGATE_AUDIT_KEY": "test",
}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_docker_compose_config_validates() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        if in_ci():
            pytest.fail("docker-compose is not installed; .ci/run installs Debian's package")
        pytest.skip("docker-compose not installed (CI installs it)")
    result = subprocess.run([tool, "-f", str(COMPOSE), "config", "-q"], env=ENV, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for secret in ("TRLGATE_JWT_SECRET", "TRLGATE_CODEC_KEYS", "TRLGATE_AUDIT_KEY"):  # no default for any
        missing = subprocess.run(
            [tool, "-f", str(COMPOSE), "config", "-q"],
            env={k: v for k, v in ENV.items() if k != secret},
            capture_output=True,
            text=True,
        )
        assert missing.returncode != 0 and secret in missing.stderr


def test_search_attributes_match_the_code() -> None:
    setup = compose()["services"]["temporal-setup"]["environment"]["TRLGATE_SEARCH_ATTRIBUTES"]
    declared = dict(pair.split("=") for pair in setup.split())
    expected = {key.name: sa.CLI_TYPE_NAMES[key.indexed_value_type.name] for key in sa.ALL}
    assert declared == expected
    # and the dev server gets the same ones
    flags = sa.cli_flags()
    assert dict(f.split("=") for f in flags[1::2]) == expected


def test_topology() -> None:
    services = compose()["services"]
    assert {"postgresql", "temporal", "temporal-ui", "api", "worker", "temporal-schema", "temporal-setup"} <= set(
        services
    )
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert "DB" in services["temporal"]["environment"] and services["temporal"]["environment"]["DB"] == "postgres12"
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    for script in ("setup-schema.sh", "setup-namespace.sh"):
        assert (ROOT / "deploy" / "temporal" / script).exists()
