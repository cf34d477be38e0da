"""Fixtures: databases (SQLite always, PostgreSQL when reachable, required in CI) and Temporal servers."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from unittest import mock

import pytest
from playwright.async_api import Browser
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api import security as api_security
from storage import migrate
from storage.db import make_engine, make_sessionmaker
from storage.seed import seed_demo
from tests.browser import chromium
from tests.support import (
    CHEAP_HASHES,
    CONVERTER,
    DEEP_TIER,
    SEARCH_ATTRIBUTES,
    SERVER_STARTUP,
    cheap_password_hashes,
    in_ci,
    start_time_skipping,
    venv_binary,
)
from worker import build_worker

PG_ADMIN_DSN = os.environ.get("TRLGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DEMO_PASSWORD = "test-password"


# --- exit guard ---------------------------------------------------------------------------------
# A process that used a temporalio client can abort at interpreter exit ("Fatal Python error:
# PyGILState_Release", temporalio/sdk-python#300). Once pytest has printed its summary, leave
# with its exit status directly so a green run can never turn into a crash.
_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # An xdist worker has already sent its results; it leaves the same way. A usage error (e.g. a
    # unit test asking for a server) must still be printed, which pytest does after this hook.
    usage_error = _exit_status == [pytest.ExitCode.USAGE_ERROR]
    if _exit_status and not usage_error and os.environ.get("TRLGATE_PYTEST_HARD_EXIT", "1") == "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[0])


# --- tiers --------------------------------------------------------------------------------------
# The tier is the directory: tests/unit/ needs no database and no server (seconds), everything
# else is the integration tier. The marks let CI pick one: `-m unit` or `-m integration`.
UNIT_DIR = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.unit if UNIT_DIR in Path(item.path).parents else pytest.mark.integration)
    # The deep tier's own tests are not part of the suite (tests/support.DEEP_TIER): deselected, not
    # skipped, so that a skip still means something is missing.
    if not DEEP_TIER:
        deep = [item for item in items if item.get_closest_marker("deep_only")]
        if deep:
            config.hook.pytest_deselected(items=deep)
            items[:] = [item for item in items if not item.get_closest_marker("deep_only")]


# --- passwords -----------------------------------------------------------------------------------
# An unknown user's sign-in is verified against a dummy hash made at the cost of the users' own
# (api/security.py: no enumeration by timing). The test databases' users have the cheapest hashes
# (tests.support.CHEAP_HASHES), so the dummy is made as cheap too: made-up usernames (the throttle
# tests, the fuzzer) no longer cost a recommended-cost verification each. The test of that equal
# work gives its user a recommended-cost hash and takes `product_cost_dummy`.
PRODUCT_DUMMY_HASH = api_security._DUMMY_HASH


@pytest.fixture(autouse=True, scope="session")
def _cheap_dummy_hash() -> Iterator[None]:
    with mock.patch.object(api_security, "_DUMMY_HASH", CHEAP_HASHES.hash("not-a-password")):
        yield


@pytest.fixture
def product_cost_dummy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_security, "_DUMMY_HASH", PRODUCT_DUMMY_HASH)


# --- parallel runs ------------------------------------------------------------------------------
# pyproject's addopts say `-n auto --dist loadgroup` (pytest-xdist, longest first: tests/schedule.py).
# Most integration tests wait on workflow time rather than compute, so a worker more than the cores pays off; more than that
# starves the tests whose simulated days are short real seconds. Each worker has its own session
# fixtures (template databases under unique names, its own Temporal servers).
DEFAULT_WORKERS = 3


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """How many workers `-n auto` means: none for the unit tier alone (starting workers would cost
    more than its tests), else TRLGATE_TEST_WORKERS or DEFAULT_WORKERS."""
    args = [Path(str(a).split("::")[0]).resolve() for a in config.args]
    if config.option.markexpr == "unit" or (args and all(a == UNIT_DIR or UNIT_DIR in a.parents for a in args)):
        return 0
    return int(os.environ.get("TRLGATE_TEST_WORKERS", DEFAULT_WORKERS))


# --- databases ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated and seeded SQLite file; each test gets a copy (argon2 hashing is slow on purpose)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade(url)

    async def seed() -> None:
        engine = make_engine(url)
        with cheap_password_hashes():
            await seed_demo(make_sessionmaker(engine), DEMO_PASSWORD)
        await engine.dispose()

    asyncio.run(seed())
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "trlgate.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


async def _pg_admin() -> object:
    import asyncpg

    return await asyncpg.connect(PG_ADMIN_DSN, timeout=5)


@pytest.fixture(scope="session")
async def postgres_template() -> AsyncIterator[str]:
    """One migrated and seeded PostgreSQL database per run; each test's database is a copy of it
    (CREATE DATABASE ... TEMPLATE: a file copy, instead of migrating and hashing passwords again)."""
    try:
        admin = await _pg_admin()
    except (OSError, Exception) as err:
        if in_ci():
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_ADMIN_DSN}: {err}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {err}")
    name = f"trlgate_template_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    try:
        url = f"{_pg_base()}/{name}"
        await asyncio.to_thread(migrate.upgrade, url)
        engine = make_engine(url)
        with cheap_password_hashes():
            await seed_demo(make_sessionmaker(engine), DEMO_PASSWORD)
        await engine.dispose()  # a template must have no connections when it is copied
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        await admin.close()  # type: ignore[attr-defined]


def _pg_base() -> str:
    return PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")


@pytest.fixture
async def postgres_url(postgres_template: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test (a copy of the template), dropped afterwards. In CI
    it must not skip."""
    admin = await _pg_admin()
    name = f"trlgate_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')  # type: ignore[attr-defined]
    try:
        yield f"{_pg_base()}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        await admin.close()  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Both backends: storage tests run once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.deep_only])])
def flow_db_url(request: pytest.FixtureRequest) -> str:
    """A workflow or API flow whose subject is not the SQL (the storage tests run that on both
    backends): on SQLite in the suite, on PostgreSQL too in the deep tier."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


# --- shared per module (suite time) ---------------------------------------------------------------
# A module whose tests only read what its set-up made (or touch disjoint projects and users) builds
# it once: a database of the module's own, for a module-scoped stack (tests/schedule.py then keeps
# the module on one xdist worker).
@pytest.fixture(scope="module")
def module_sqlite_url(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("module") / "trlgate.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(sqlite_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


# --- Temporal -----------------------------------------------------------------------------------


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server of the test's own (0.1 s to start). Shared, a workflow another
    test left behind holds the clock: a task nobody takes (its worker is gone), or one the test
    server still counts as in flight after a terminate (temporalio/sdk-java#3088), and the server
    skips no time while it has one; every later sleep then runs in real time."""
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def local_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=CONVERTER,
        dev_server_existing_path=venv_binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=["--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true"],
        dev_server_startup_timeout=SERVER_STARTUP,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def local_worker(
    local_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> AsyncIterator[Worker]:
    worker = build_worker(local_env.client, task_queue, sessionmaker)
    async with worker:
        yield worker


@pytest.fixture
def local_client(local_env: WorkflowEnvironment) -> Client:
    return local_env.client


# --- browser ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def _chromium() -> AsyncIterator[Browser]:
    # One Chromium per test process: a launch costs about 2 s of CPU, and tests are kept apart by
    # their own browser contexts (cookies, storage), which `browser` closes after each test.
    async with chromium() as b:
        yield b


@pytest.fixture
async def browser(_chromium: Browser) -> AsyncIterator[Browser]:
    """Debian's Chromium through Playwright (tests/browser.py: fails in CI when missing)."""
    yield _chromium
    for context in _chromium.contexts:
        await context.close()
