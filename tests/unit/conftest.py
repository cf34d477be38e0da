"""The unit tier: pure functions and workflows with mocked activities. It never starts
PostgreSQL, a database or the Temporal dev server, so the fixtures that do are refused here.
Workflows run with fake activities on a time-skipping test server of each test's own
(`unit_time_skipping`), as samples-python's tests do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

HERE = Path(__file__).parent


@pytest.fixture
async def unit_time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """A server of the test's own, for the reason `time_skipping_env` gives."""
    from tests.support import start_time_skipping

    env = await start_time_skipping()
    yield env
    await env.shutdown()


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
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if used and HERE in Path(item.path).parents:
            raise pytest.UsageError(
                f"{item.nodeid} is in the unit tier but uses {sorted(used)}: move it out of tests/unit/"
            )
