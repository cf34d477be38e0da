"""Schemathesis drives the OpenAPI spec with generated input, as `schemathesis run --checks all`
does, with each role's token: no request may end in a server error, and every response must be one
the spec documents.
Each role (a test of its own, so that the roles run in parallel) runs the coverage phase on the
operations it may call, on SQLite, so every operation is driven past its authorisation. In the suite
the phase's positive cases alone (every documented bound and its neighbours: about a quarter of the
cases); the deep tier (`./test.sh --deep`, in CI after the suite) adds the negative ones (wrong
types, missing fields, unreadable bodies, unexpected methods) and runs it all on PostgreSQL too,
whose column types refuse what SQLite stores (over-long text, out-of-range integers). The long run
drives every operation with every role through all phases, N examples each:
`TRLGATE_FUZZ_EXAMPLES=50 ./test.sh tests/test_api_fuzz.py` (`TRLGATE_FUZZ_SEED` picks the seed).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from config import Settings
from tests.api_stack import free_port
from tests.conftest import DEMO_PASSWORD
from tests.support import DEEP_TIER

# One user of each role (README "Demo users") and, for the suite, the operations it drives past
# their authorisation (a path regex; the programme manager takes every operation nobody else does).
ROLES = {
    "finance": ("fin.suzuki", r"^/fund/(ceilings|transactions|ledger)|/tranches/"),
    "reviewer": ("rev.ito", r"^/tasks"),
    "ministry": ("liaison.mod", r"^/handoffs/[^/]+/(accept|decline)$"),
    "performer": ("perf.aoki", r"/(withdraw|reports)$"),
    "ops": ("ops.kimura", r"^/codec/"),
    "admin": ("admin", r"^/users|/grants|^/ministries|^/(me|health|notifications|auth/token|fund|handoffs)$"),
    "pm": ("pm.sato", ""),
}
LONG_RUN = os.environ.get("TRLGATE_FUZZ_EXAMPLES")
SEED = os.environ.get("TRLGATE_FUZZ_SEED", "20261130")
# Schema-valid proposals are still refused by rules the schema cannot state (start TRL below
# target, registered reviewers, a fund that covers the budget), and most commands by the state of
# a project that does not exist: that refusal is the point, so "positive data acceptance" does not
# apply. Every other check does.
EXCLUDED = ["positive_data_acceptance"]
# What does not depend on the database is driven on SQLite only in the suite: the operations
# whose large bodies are validated before any query runs (their path parameters are other
# operations' too), and the methods a path does not have (405 and its Allow header).
BODY_ONLY = r"^/projects$|/decision$|/demo-handoffs$"
# The coverage phase's cases: the positive ones in the suite (a quarter of the time: three quarters
# of the cases are negative, most of them the large bodies'), all of them in the deep tier.
MODE = "all" if DEEP_TIER else "positive"


def serve(database_url: str, temporal: str) -> Iterator[str]:
    """The API in a thread of its own (the fuzzer is another process calling it over HTTP)."""
    settings = Settings(
        database_url=database_url,
        temporal_address=temporal,
        task_queue="fuzz-no-worker",
        jwt_secret="fuzz-secret-of-at-least-thirty-two-bytes",
        # The fuzzer signs in with made-up names, all from 127.0.0.1: its failures must not lock
        # the address the test's own logins come from (each username is still throttled).
        login_address_max_failures=1_000_000,
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def token(base_url: str, role: str) -> str:
    login = {"username": ROLES[role][0], "password": DEMO_PASSWORD}
    return str(httpx.post(f"{base_url}/auth/token", data=login).json()["access_token"])


def suite_config(base_url: str, database: str, role: str) -> str:
    """One run per role and database: the role's operations with the role's token (the programme
    manager takes every operation nobody else does)."""
    lines = ["[phases.coverage]", "unexpected-methods = []", ""] if database == "postgres" else []
    _, regex = ROLES[role]
    others = "|".join(f"({r})" for _, r in ROLES.values() if r)
    selects = f"include-path-regex = '{regex}'" if regex else f"exclude-path-regex = '{others}'"
    lines += ["[[operations]]", selects, f'headers = {{ Authorization = "Bearer {token(base_url, role)}" }}', ""]
    return "\n".join(lines)


def schemathesis(base_url: str, workdir: Path, *options: str) -> subprocess.CompletedProcess[str]:
    config = [arg for arg in options if arg.startswith("--config-file")]
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        *config,
        "run",
        f"{base_url}/openapi.json",
        *["--checks", "all", "--exclude-checks", ",".join(EXCLUDED)],
        *["--seed", SEED, "--workers", "1", "--suppress-health-check", "all"],
        *[arg for arg in options if arg not in config],
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False, cwd=workdir)


def run(base_url: str, database: str, role: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    if LONG_RUN:  # the role drives every operation through every phase
        return schemathesis(
            base_url,
            workdir,
            *["--phases", "examples,coverage,fuzzing", "--max-examples", LONG_RUN],
            *["--header", f"Authorization: Bearer {token(base_url, role)}"],
        )
    config = workdir / "schemathesis.toml"
    config.write_text(suite_config(base_url, database, role))
    # The config's operations block only gives the role's operations its token: the run itself is
    # restricted to them here (every other operation is another role's run).
    _, regex = ROLES[role]
    others = "|".join(f"({r})" for _, r in ROLES.values() if r)
    only = ["--include-path-regex", regex] if regex else ["--exclude-path-regex", others]
    skip = [*only, *(["--exclude-path-regex", BODY_ONLY] if database == "postgres" else [])]
    return schemathesis(base_url, workdir, f"--config-file={config}", "--phases", "coverage", "--mode", MODE, *skip)


DATABASES = ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.deep_only])]


@pytest.fixture(params=DATABASES)
def served_api(request: pytest.FixtureRequest, local_env: WorkflowEnvironment) -> Iterator[tuple[str, str]]:
    database = str(request.param)
    db_url = str(request.getfixturevalue(f"{database}_url"))
    for base_url in serve(db_url, local_env.client.service_client.config.target_host):
        yield base_url, database


@pytest.mark.stress
@pytest.mark.parametrize("role", list(ROLES))
def test_every_role_gets_no_server_error_and_only_documented_responses(
    served_api: tuple[str, str], role: str, tmp_path: Path
) -> None:
    base_url, database = served_api
    done = run(base_url, database, role, tmp_path)
    if done.returncode != 0:
        (tmp_path / "schemathesis.txt").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, f"full output in {tmp_path}\n" + done.stdout[-4000:] + done.stderr[-1000:]
