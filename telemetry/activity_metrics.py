"""A worker interceptor that counts every activity attempt by outcome and times it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from telemetry.metrics import ACTIVITIES, ACTIVITY_DURATION


def outcome_of(err: BaseException | None) -> str:
    if err is None:
        return "completed"
    if isinstance(err, asyncio.CancelledError):
        return "cancelled"
    if isinstance(err, ApplicationError) and err.non_retryable:
        return "refused"  # a business refusal: the workflow handles it, nobody retries
    return "failed"


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        name = activity.info().activity_type
        started = time.perf_counter()
        err: BaseException | None = None
        try:
            return await self.next.execute_activity(input)
        except BaseException as raised:
            err = raised
            raise
        finally:
            ACTIVITIES.labels(name, outcome_of(err)).inc()
            ACTIVITY_DURATION.labels(name).observe(time.perf_counter() - started)


class ActivityMetrics(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)
