"""The unit tier: pure functions and workflows with mocked activities. It never starts
PostgreSQL, a database or the Temporal dev server, so the fixtures that do are refused here;
workflows run on the time-skipping test server with fake activities, as samples-python's
tests do (one server per session, started in about a second)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent

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
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if used and HERE in Path(item.path).parents:
            raise pytest.UsageError(
                f"{item.nodeid} is in the unit tier but uses {sorted(used)}: move it out of tests/unit/"
            )
