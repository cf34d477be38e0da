"""The scheduled fund check: run the ledger's full invariant scan once and record what it found
(activities/fund_check.py). A Temporal Schedule the worker keeps starts it (daily by default)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.fund_check import (
        FUND_CHECK_TIMEOUT,
        FundCheckActivities,
        FundCheckInput,
        FundCheckRequest,
        FundCheckResult,
    )
    from workflows.common import ACTIVITY_RETRY


@workflow.defn
class FundCheckWorkflow:
    @workflow.run
    async def run(self, request: FundCheckRequest) -> FundCheckResult:
        return await workflow.execute_activity_method(
            FundCheckActivities.run_fund_check,
            FundCheckInput(programme_code=request.programme_code, key=workflow.info().workflow_id),
            start_to_close_timeout=FUND_CHECK_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
