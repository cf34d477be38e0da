"""What the API catches and what it lets through: Temporal's own errors become answers (a page
without its live view, a refusal, a degraded health check that says what failed); anything else
is a bug, and a bug is a 500, not a refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from domain.programme import PROGRAMME_CODE
from storage.models import AuditEntry
from tests.api_inprocess import inprocess_api
from tests.support import PM, ledger_project


class FakeTemporal:
    """A Temporal client whose every workflow query raises `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_workflow_handle(self, workflow_id: str, **_: Any) -> FakeTemporal:
        return self

    async def query(self, *_: Any, **__: Any) -> Any:
        raise self.error

    async def execute_update(self, *_: Any, **__: Any) -> Any:
        raise self.error


@pytest.fixture
async def project(sqlite_url: str) -> AsyncIterator[str]:
    async with inprocess_api(sqlite_url) as api, api.sessionmaker.begin() as session:
        session.add(ledger_project("KP-ERR", PROGRAMME_CODE, "MEXT", 1_000_000))
    yield sqlite_url


async def _detail(database_url: str, temporal: Any) -> tuple[int, Any]:
    async with inprocess_api(database_url, temporal=temporal) as api:
        r = await api.call("GET", "/projects/KP-ERR", PM)
        return r.status_code, r.json() if r.status_code == 200 else r.text


async def test_a_workflow_that_cannot_answer_leaves_the_page_without_its_live_view(project: str) -> None:
    for error in (RPCError("gone", RPCStatusCode.NOT_FOUND, b""), RPCError("down", RPCStatusCode.UNAVAILABLE, b"")):
        code, body = await _detail(project, FakeTemporal(error))
        assert code == 200 and body["id"] == "KP-ERR" and body["live"] is None, body


async def test_a_bug_is_a_500_not_a_missing_live_view(project: str) -> None:
    code, _ = await _detail(project, FakeTemporal(AttributeError("a bug in the status query's caller")))
    assert code == 500


async def test_health_says_which_backing_service_failed(sqlite_url: str) -> None:
    async with inprocess_api(sqlite_url) as api:  # no Temporal connected
        r = await api.http.get("/health")
    assert r.status_code == 503
    assert r.json()["database"] == "ok" and r.json()["status"] == "degraded"
    assert r.json()["temporal"].startswith("error: not connected"), r.json()


async def test_health_reports_a_failing_temporal_check_by_name(sqlite_url: str) -> None:
    class Unhealthy:
        class service_client:  # named as the client attribute it stands in for
            @staticmethod
            async def check_health() -> None:
                raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    async with inprocess_api(sqlite_url, temporal=Unhealthy()) as api:
        r = await api.http.get("/health")
    assert r.status_code == 503
    assert r.json()["temporal"] == "error: health check failed: RPCError: connection refused", r.json()


async def test_an_update_without_an_answer_in_time_is_a_503_to_retry_not_a_500(project: str) -> None:
    """An overloaded worker: the Update is still on its way, neither refused nor a bug. The answer
    says so and when to retry; the audit says it was not answered (not that it was refused)."""
    late = WorkflowUpdateRPCTimeoutOrCancelledError()
    async with inprocess_api(project, temporal=FakeTemporal(late)) as api:
        r = await api.call("POST", "/projects/KP-ERR/terminate", PM, json={"reason": "no longer needed"})
        async with api.sessionmaker() as session:
            outcomes = (await session.scalars(select(AuditEntry.outcome).where(AuditEntry.action == "terminate"))).all()
    assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
    assert "send it again with the same Idempotency-Key" in r.json()["detail"]
    assert outcomes == ["error"]
