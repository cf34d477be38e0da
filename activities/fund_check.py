"""The scheduled fund check's activity, and the schedule the worker keeps for it."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.client import Client, ScheduleActionStartWorkflow

from activities.base import DatabaseActivities
from activities.schedules import ensure_schedule
from domain.roles import Role, group
from storage import fund_checks

SCHEDULE_ID = "trlgate-fund-check"
# The full scan reads every entry: give it longer than the short writes of other activities.
FUND_CHECK_TIMEOUT = timedelta(minutes=10)


class FundCheckRequest(BaseModel):
    programme_code: str


class FundCheckInput(BaseModel):
    programme_code: str
    key: str  # the run's business key (the workflow id): a retry records it once


class FundCheckResult(BaseModel):
    check_id: int
    violations: list[str]


class FundCheckActivities(DatabaseActivities):
    @activity.defn
    async def run_fund_check(self, input: FundCheckInput) -> FundCheckResult:
        async def work(session: AsyncSession) -> FundCheckResult:
            check = await fund_checks.run_and_record(
                session, programme_code=input.programme_code, ran_by="schedule", key=input.key
            )
            return FundCheckResult(check_id=check.id, violations=list(check.violations))

        result = await self.transact(work)
        if result.violations:
            # Notices are stored per project (notifications.project_id); the books' problems
            # belong to none, so finance hears of them through the log and GET /fund.
            activity.logger.warning(
                "fund check %s for %s: %d broken ledger rule(s): %s",
                result.check_id,
                group(Role.FINANCE),
                len(result.violations),
                "; ".join(result.violations),
            )
        return result


async def ensure_fund_check_schedule(client: Client, task_queue: str, every: timedelta, programme_code: str) -> bool:
    """Create the schedule unless it exists (see activities/schedules.py); True when this call created it."""
    from workflows.fund_check import FundCheckWorkflow

    action = ScheduleActionStartWorkflow(
        FundCheckWorkflow.run, FundCheckRequest(programme_code=programme_code), id=SCHEDULE_ID, task_queue=task_queue
    )
    return await ensure_schedule(client, SCHEDULE_ID, action, every)
