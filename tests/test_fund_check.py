"""The recorded fund check: the scheduled workflow and its activity, the schedule the worker keeps,
`trlgate fund-check`, and GET /fund reading the latest record instead of scanning the ledger."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.fund_check import (
    SCHEDULE_ID,
    FundCheckActivities,
    FundCheckInput,
    FundCheckRequest,
    FundCheckResult,
    ensure_fund_check_schedule,
)
from domain.programme import PROGRAMME_CODE
from storage import fund_checks
from storage.models import AccountBalance, FundCheck
from tests.api_stack import api_stack
from tests.support import PM
from workflows.fund_check import FundCheckWorkflow


async def _break_a_running_balance(sm: async_sessionmaker[AsyncSession]) -> None:
    """What a bad manual fix would do (the entries themselves are append-only and zero-sum)."""
    async with sm.begin() as s:
        await s.execute(update(AccountBalance).where(AccountBalance.account == "allocation:MEXT").values(balance=5))


async def test_the_workflow_runs_the_scan_once_and_records_it(
    time_skipping_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    activities = FundCheckActivities(sessionmaker)
    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=[FundCheckWorkflow],
        activities=[activities.run_fund_check],
    ):
        sound = await time_skipping_env.client.execute_workflow(
            FundCheckWorkflow.run,
            FundCheckRequest(programme_code=PROGRAMME_CODE),
            id=f"fund-check-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
            result_type=FundCheckResult,
        )
        await _break_a_running_balance(sessionmaker)
        workflow_id = f"fund-check-{uuid.uuid4().hex[:8]}"
        broken = await time_skipping_env.client.execute_workflow(
            FundCheckWorkflow.run,
            FundCheckRequest(programme_code=PROGRAMME_CODE),
            id=workflow_id,
            task_queue=task_queue,
            result_type=FundCheckResult,
        )
    assert sound.violations == []
    assert any("running balance of allocation:MEXT" in v for v in broken.violations), broken.violations
    async with sessionmaker() as s:
        latest = await fund_checks.latest(s)
        assert latest is not None and latest.id == broken.check_id and latest.key == workflow_id
        assert latest.ran_by == "schedule" and latest.violations == broken.violations
    # A retried activity (same key) records nothing twice and does not scan again.
    again = await ActivityEnvironment().run(
        activities.run_fund_check, FundCheckInput(programme_code=PROGRAMME_CODE, key=workflow_id)
    )
    assert again == broken
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(FundCheck)) == 2


async def test_the_worker_creates_the_daily_schedule_once(local_env: WorkflowEnvironment, task_queue: str) -> None:
    client: Client = local_env.client
    try:
        # The first call's answer is not asserted: under load the client retries a create whose
        # first attempt did land, and that retry rightly answers "it exists already".
        await ensure_fund_check_schedule(client, task_queue, timedelta(days=1), PROGRAMME_CODE)
        assert not await ensure_fund_check_schedule(client, task_queue, timedelta(hours=1), PROGRAMME_CODE)
        described = await client.get_schedule_handle(SCHEDULE_ID).describe()
        [interval] = described.schedule.spec.intervals
        assert interval.every == timedelta(days=1)  # the second call left the first one as it was
        assert described.schedule.action.workflow == "FundCheckWorkflow"  # type: ignore[attr-defined]
    finally:
        await client.get_schedule_handle(SCHEDULE_ID).delete()


async def test_get_fund_shows_the_latest_recorded_check_and_does_not_scan(
    local_env: WorkflowEnvironment, sqlite_url: str, task_queue: str
) -> None:
    async with api_stack(local_env.client, sqlite_url, task_queue, seconds_per_day=0.0) as stack:
        before = (await stack.call("GET", "/fund", PM)).json()
        assert before["invariant_violations"] == [] and before["checked_at"] is None
        await _break_a_running_balance(stack.sessionmaker)
        unscanned = (await stack.call("GET", "/fund", PM)).json()
        assert unscanned["invariant_violations"] == [] and unscanned["checked_at"] is None
        async with stack.sessionmaker.begin() as s:
            check = await fund_checks.run_and_record(s, programme_code=PROGRAMME_CODE, ran_by="test")
        after = (await stack.call("GET", "/fund", PM)).json()
    assert any("running balance of allocation:MEXT" in v for v in after["invariant_violations"]), after
    assert after["checked_at"] is not None and after["invariant_violations"] == check.violations
