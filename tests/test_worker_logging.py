"""The worker's log: an expected business refusal is one line with its reason, a fault keeps its
traceback (a real worker on the local dev server, at the level the worker logs at: INFO)."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

from activities.base import DatabaseActivities
from storage.ledger import InsufficientFunds


class Refusals(DatabaseActivities):
    @activity.defn
    async def short_of_funds(self) -> None:
        async def work(session: AsyncSession) -> None:
            raise InsufficientFunds("the MEXT allocation has 1 yen available")

        await self.transact(work)

    @activity.defn
    async def broken(self) -> None:
        async def work(session: AsyncSession) -> None:
            raise RuntimeError("a bug")

        await self.transact(work)


@workflow.defn(sandboxed=False)
class CallOnce:
    @workflow.run
    async def run(self, name: str) -> str:
        try:
            await workflow.execute_activity(
                name, start_to_close_timeout=timedelta(seconds=30), retry_policy=RetryPolicy(maximum_attempts=1)
            )
        except ActivityError as err:
            assert isinstance(err.cause, ApplicationError)
            return err.cause.type or ""
        return "ok"


async def test_a_business_refusal_is_one_line_and_a_fault_keeps_its_traceback(
    local_client: Client, sessionmaker: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    refusals = Refusals(sessionmaker)
    queue = f"logging-{uuid.uuid4().hex[:8]}"
    async with Worker(
        local_client, task_queue=queue, workflows=[CallOnce], activities=[refusals.short_of_funds, refusals.broken]
    ):

        async def call(name: str, failure: str) -> list[logging.LogRecord]:
            caplog.clear()
            assert await local_client.execute_workflow(CallOnce.run, name, id=f"{queue}-{name}", task_queue=queue) == (
                failure
            )
            return [r for r in caplog.records if r.name.startswith("temporalio")]

        refused = await call("short_of_funds", "InsufficientFunds")
        assert [(r.levelno, r.getMessage().split(" (")[0]) for r in refused] == [
            (logging.INFO, "Business refusal InsufficientFunds: the MEXT allocation has 1 yen available")
        ]
        assert all(r.exc_info is None for r in refused)

        faults = [r for r in await call("broken", "RuntimeError") if r.exc_info is not None]
        assert [(r.levelno, type(r.exc_info[1]).__name__) for r in faults if r.exc_info] == [
            (logging.WARNING, "RuntimeError")
        ]
