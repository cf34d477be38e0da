"""The unit tier: pure functions and workflows with mocked activities. It never starts
PostgreSQL, a database or the Temporal dev server, so the fixtures that do are refused here.
Workflows run with fake activities on a time-skipping test server of the tier's own
(`unit_time_skipping`), as samples-python's tests do: not the integration tier's shared one,
whose left-over workflows from other tests can hold its clock back when a test skips time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
async def unit_time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    from tests.support import start_time_skipping

    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture
async def unit_time_skipping(unit_time_skipping_server: WorkflowEnvironment) -> AsyncIterator[WorkflowEnvironment]:
    """The tier's server, left with no workflow open after the test (see `end_open_workflows`)."""
    from tests.support import end_open_workflows

    yield unit_time_skipping_server
    await end_open_workflows(unit_time_skipping_server.client)


SERVER_FIXTURES = {
    "postgres_template",
    "postgres_url",
    "db_url",
    "sqlite_template",
    "sqlite_url",
    "engine",
    "sessionmaker",
    "local_env",
    "local_client",
    "local_worker",
    "time_skipping_env",
    "time_skipping_server",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if used and HERE in Path(item.path).parents:
            raise pytest.UsageError(
                f"{item.nodeid} is in the unit tier but uses {sorted(used)}: move it out of tests/unit/"
            )
