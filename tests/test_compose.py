"""The production topology (docker-compose.yml, deploy/, Dockerfile, requirements.lock): valid,
pinned, healthchecked, its secrets in files, its telemetry wired, its image locked."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import asyncpg
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from domain import search_attributes as sa
from tests.api_stack import free_port
from tests.support import in_ci

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
TELEMETRY = {"prometheus", "grafana", "jaeger"}
# An exact release (at least major.minor.patch, an optional v and suffix such as -bookworm), or a
# digest: never latest, a major or major.minor alone, or a tag an environment variable chooses.
EXACT_IMAGE = re.compile(r"^[a-z0-9./-]+(:v?\d+\.\d+\.\d+([-.][a-z0-9.]+)*)?(@sha256:[0-9a-f]{64})?$")
# PostgreSQL numbers a release major.minor since version 10 (15.20 is one exact release).
EXACT_POSTGRES = re.compile(r"^postgres:\d+\.\d+(-[a-z0-9.]+)*(@sha256:[0-9a-f]{64})?$")


def exact(image: str) -> bool:
    return "$" not in image and bool(EXACT_IMAGE.match(image) or EXACT_POSTGRES.match(image))


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The secret files as an operator makes them (deploy/make-secrets.sh)."""
    folder = tmp_path_factory.mktemp("compose") / "secrets"
    subprocess.run(["sh", str(ROOT / "deploy" / "make-secrets.sh"), str(folder)], check=True, capture_output=True)
    return folder


@functools.cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    return {str(k): str(v) for k, v in env.items()}


def test_docker_compose_config_validates(secrets_dir: Path) -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        if in_ci():
            pytest.fail("docker-compose is not installed; .ci/run installs Debian's package")
        pytest.skip("docker-compose not installed (CI installs it)")
    env = {**os.environ, "TRLGATE_SECRETS_DIR": str(secrets_dir)}
    for profile in ([], ["--profile", "telemetry"]):
        result = subprocess.run(
            [tool, "-f", str(COMPOSE), *profile, "config", "-q"], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr


def test_every_image_is_an_exact_release() -> None:
    for name, service in services().items():
        image = service["image"]
        assert exact(image) and ":" in image.split("/")[-1], f"{name}: {image}"
    version = PYPROJECT["project"]["version"]
    assert {s["image"] for s in services().values() if s["image"].startswith("trlgate:")} == {f"trlgate:{version}"}
    base = re.search(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert base and exact(base.group(1)), "the application image's base is not exact"
    assert not exact("postgres:15") and not exact("temporalio/server:1.32") and not exact("grafana/grafana:latest")


def test_every_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    # The one-shot jobs are waited for by completion, the services by health.
    for name, service in services().items():
        for needed, condition in service.get("depends_on", {}).items():
            one_shot = str(services()[needed].get("restart", "no")).startswith(("on-failure", "no"))
            expected = "service_completed_successfully" if one_shot else "service_healthy"
            assert condition["condition"] == expected, f"{name} waits for {needed} wrongly"
    # The application image has no curl: its checks are Python's urllib on the contract's endpoints.
    assert "http://127.0.0.1:8000/health/live" in services()["api"]["healthcheck"]["test"][-1]
    assert "http://127.0.0.1:9464/health/ready" in services()["worker"]["healthcheck"]["test"][-1]


def file_settings(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in environment(service).items():
        if key.endswith("_FILE") or key.endswith("__FILE"):
            yield key, value


def test_secrets_come_from_files(secrets_dir: Path) -> None:
    declared = set(compose()["secrets"])
    assert {p.name for p in secrets_dir.iterdir()} == declared  # make-secrets.sh makes each one
    assert all(s["file"].endswith(f"/{name}") for name, s in compose()["secrets"].items())
    secret_like = re.compile(r"(PASSWORD|PASSWD|PWD|SECRET|_KEY|_KEYS)$")
    for name, service in services().items():
        env = environment(service)
        plain = {k for k in env if secret_like.search(k)}
        assert plain == set(), f"{name} takes {plain} from its environment"
        assert ":" not in env.get("TRLGATE_DATABASE_URL", "x@").split("@")[0].split("//")[-1], "a password in the URL"
        for key, path in file_settings(service):
            secret = path.removeprefix("/run/secrets/")
            assert path.startswith("/run/secrets/") and secret in service.get("secrets", []), f"{name}: {key}"
    # trlgate reads each of these through TRLGATE_<NAME>_FILE (config.FILE_SETTINGS)
    api = environment(services()["api"])
    for setting in ("JWT_SECRET", "CODEC_KEYS", "AUDIT_KEY", "DATABASE_PASSWORD", "SMTP_PASSWORD"):
        assert f"TRLGATE_{setting}_FILE" in api


def test_each_database_role_owns_only_its_databases() -> None:
    init = (ROOT / "deploy" / "postgres-init.sh").read_text()
    owners = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+);", init))
    assert owners == {"temporal": "temporal", "temporal_visibility": "temporal", "trlgate": "trlgate"}
    assert "REVOKE ALL ON DATABASE temporal, temporal_visibility, trlgate, postgres FROM PUBLIC" in init
    assert environment(services()["temporal"])["POSTGRES_USER"] == "temporal"
    assert "//trlgate@postgresql:5432/trlgate" in environment(services()["api"])["TRLGATE_DATABASE_URL"]


def test_telemetry_is_a_profile_and_scrapes_every_part() -> None:
    for name, service in services().items():
        assert (service.get("profiles") == ["telemetry"]) == (name in TELEMETRY), name
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    targets = {
        job["job_name"]: [t for c in job.get("static_configs", []) for t in c["targets"]]
        + [f"{n}:{c['port']}" for c in job.get("dns_sd_configs", []) for n in c["names"]]
        for job in scrape
    }
    worker = environment(services()["worker"])
    assert targets["trlgate-api"] == ["api:8000"]
    assert targets["trlgate-worker"] == [f"worker:{worker['TRLGATE_WORKER_PORT']}"]
    assert targets["temporal-sdk"] == [f"worker:{worker['TRLGATE_WORKER_SDK_METRICS_PORT']}"]
    assert targets["temporal-server"] == ["temporal:8000"]
    assert environment(services()["temporal"])["PROMETHEUS_ENDPOINT"] == "0.0.0.0:8000"
    grafana = services()["grafana"]["volumes"]
    assert "./deploy/grafana/dashboards:/etc/grafana/dashboards:ro" in grafana
    provider = yaml.safe_load(
        (ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "dashboards.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"


def test_search_attributes_match_the_code() -> None:
    setup = services()["temporal-setup"]["environment"]["TRLGATE_SEARCH_ATTRIBUTES"]
    declared = dict(pair.split("=") for pair in setup.split())
    expected = {key.name: sa.CLI_TYPE_NAMES[key.indexed_value_type.name] for key in sa.ALL}
    assert declared == expected
    # and the dev server gets the same ones
    flags = sa.cli_flags()
    assert dict(f.split("=") for f in flags[1::2]) == expected


def test_topology() -> None:
    found = services()
    assert {"postgresql", "temporal", "temporal-ui", "api", "worker", "temporal-schema", "temporal-setup"} <= set(found)
    assert found["worker"]["deploy"]["replicas"] >= 2
    assert environment(found["temporal"])["DB"] == "postgres12"
    for name, service in found.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    for script in ("setup-schema.sh", "setup-namespace.sh", "start-server.sh"):
        assert (ROOT / "deploy" / "temporal" / script).exists()


def locked() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\$", text, re.M))
    blocks = re.split(r"\n(?=[A-Za-z0-9._-]+==)", text.split("\n", 6)[-1])
    assert all("--hash=sha256:" in block for block in blocks if "==" in block), "a pin without a hash"
    return {canonicalize_name(name): version for name, version in pins.items()}


def test_the_lock_pins_every_runtime_dependency() -> None:
    pins = locked()
    for line in PYPROJECT["project"]["dependencies"]:
        wanted = Requirement(line)
        name = canonicalize_name(wanted.name)
        assert name in pins, f"{wanted.name} is not in requirements.lock: run scripts/lock.sh"
        assert wanted.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} breaks {wanted}"
    for build in PYPROJECT["build-system"]["requires"]:  # the image builds the project offline
        wanted = Requirement(build)
        assert wanted.specifier.contains(pins[canonicalize_name(wanted.name)])


def test_the_image_installs_the_lock_then_the_project_alone() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements.lock" in dockerfile
    assert "pip install --no-deps --no-build-isolation ." in dockerfile
    # The worker's user cannot write /app: the workflow modules' bytecode is made at build.
    assert "python -m compileall -q /app" in dockerfile
    copied = set(re.findall(r"^COPY (\S+) \1$", dockerfile, re.M))
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, f"the image lacks {packages - copied}"


PG_BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(scope="module")
def fresh_postgres(secrets_dir: Path) -> Iterator[str]:
    """A PostgreSQL cluster of its own, as the image's volume starts (initdb, then the init script
    as the superuser): the shared server of the suite must not get these roles."""
    if os.geteuid() != 0 or not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        if in_ci():
            pytest.fail("the init script test needs root, runuser and PostgreSQL 15's binaries")
        pytest.skip("needs root, runuser and PostgreSQL 15's binaries")
    home = Path(tempfile.mkdtemp(prefix="trlgate-pginit-"))
    shutil.chown(home, "postgres")
    port = str(free_port())

    def as_postgres(*command: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True, timeout=60)

    as_postgres(
        str(PG_BIN / "initdb"),
        "-D",
        f"{home}/data",
        "-U",
        "postgres",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
    )
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        # -l: the server must not hold this process's pipes (subprocess.run would wait for it)
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", f"{home}/data", "-l", f"{home}/log", "-o", options, "-w", "start")
        env = {**os.environ, "POSTGRES_USER": "postgres", "PGHOST": str(home), "PGPORT": port}
        env["POSTGRES_INIT_SECRETS"] = str(secrets_dir)
        subprocess.run(["sh", str(ROOT / "deploy" / "postgres-init.sh")], env=env, check=True, capture_output=True)
        yield port
    finally:
        if (home / "data" / "postmaster.pid").exists():
            as_postgres(str(PG_BIN / "pg_ctl"), "-D", f"{home}/data", "-m", "immediate", "stop")
        shutil.rmtree(home)


async def test_the_init_script_gives_each_role_only_its_databases(fresh_postgres: str, secrets_dir: Path) -> None:
    async def connect(user: str, database: str, password: str | None = None) -> asyncpg.Connection:
        secret = password or (secrets_dir / f"{user}_db_password").read_text()
        return await asyncpg.connect(
            host="127.0.0.1", port=int(fresh_postgres), user=user, password=secret, database=database
        )

    for user, own in (("temporal", ("temporal", "temporal_visibility")), ("trlgate", ("trlgate",))):
        for database in own:
            conn = await connect(user, database)
            await conn.execute("CREATE TABLE owned (id int)")  # owner of the public schema (PostgreSQL 15)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE DATABASE another")
            await conn.close()
        for database in {"temporal", "temporal_visibility", "trlgate", "postgres"} - set(own):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connect(user, database)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await connect("trlgate", "trlgate", password="wrong")


def test_the_readme_shows_the_architecture_and_the_runbook() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "](docs/architecture.svg)" in readme
    texts = " ".join(t.text or "" for t in ElementTree.parse(ROOT / "docs" / "architecture.svg").iter())
    for part in ("Browser", "trlgate API", "Temporal server", "Temporal UI", "worker", "PostgreSQL", "SMTP", "Payment"):
        assert part in texts, part
    for part in ("Prometheus", "Grafana", "Jaeger"):
        assert part in texts, part
    runbook = readme.split("## Runbook", 1)[1].split("\n## ", 1)[0]
    for task in (
        "Deploy",
        "Scale workers",
        "Rotate the codec key",
        "Restore PostgreSQL",
        "Replay a failed",
        "stuck gate",
    ):
        assert f"**{task}" in runbook or task in runbook, task
