"""The daily repair: what a terminate in Temporal left behind, put right with the clean stop's own
activities (activities/repair.py), and the drift it cannot repair, reported. A Temporal Schedule
the worker keeps starts it (daily by default); `trlgate repair` starts one now."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.money import MoneyActivities, ReleaseInput
    from activities.projects import CloseOutInput, ProjectActivities
    from activities.repair import (
        REASON,
        SCAN_HEARTBEAT,
        SCAN_TIMEOUT,
        DriftItem,
        FindRepairsInput,
        ProjectRef,
        RecordRepairInput,
        RepairActivities,
        RepairCandidate,
        RepairedProject,
        RepairNoticeInput,
        RepairRequest,
        RepairResult,
    )
    from workflows.common import ACTIVITY_RETRY, ACTIVITY_TIMEOUT

# A project whose repair keeps failing is reported and left for people after a few tries, so one
# bad row cannot hold up the rest of the run (the clean stop itself retries without end).
REPAIR_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=5
)
A = TypeVar("A")
R = TypeVar("R")


@workflow.defn
class RepairWorkflow:
    def __init__(self) -> None:
        self.result = RepairResult()

    @workflow.run
    async def run(self, request: RepairRequest) -> RepairResult:
        self.result = request.carried or RepairResult()
        skip = list(request.skip)
        self._publish()
        while True:
            found = await workflow.execute_activity_method(
                RepairActivities.find_repairs,
                FindRepairsInput(skip=skip),
                start_to_close_timeout=SCAN_TIMEOUT,
                heartbeat_timeout=SCAN_HEARTBEAT,
                retry_policy=ACTIVITY_RETRY,
            )
            for candidate in found.candidates:
                try:
                    self.result.repaired.append(await self._repair(candidate))
                except ActivityError as err:
                    skip.append(candidate.project_id)
                    cause = err.cause or err
                    self.result.drift.append(
                        DriftItem(
                            project_id=candidate.project_id, kind="repair_failed", problem=f"repair failed: {cause}"
                        )
                    )
                self._publish()
            if not found.more:
                break
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(RepairRequest(ran_by=request.ran_by, carried=self.result, skip=skip))
        self.result.drift += await workflow.execute_activity_method(
            RepairActivities.find_drift,
            start_to_close_timeout=SCAN_TIMEOUT,
            heartbeat_timeout=SCAN_HEARTBEAT,
            retry_policy=ACTIVITY_RETRY,
        )
        await self._act(
            RepairActivities.record_run,
            RecordRepairInput(key=workflow.info().workflow_id, ran_by=request.ran_by, result=self.result),
            ACTIVITY_RETRY,
        )
        self._publish()
        return self.result

    async def _repair(self, candidate: RepairCandidate) -> RepairedProject:
        """The clean stop's steps in its order (workflows/project/stop.py), with its activities."""
        pid = candidate.project_id
        await self._act(RepairActivities.withdraw_handoffs, ProjectRef(project_id=pid))
        released = await self._act(MoneyActivities.release_reservations, ReleaseInput(project_id=pid))
        closed = await self._act(
            ProjectActivities.close_out,
            CloseOutInput(project_id=pid, reason=REASON, trl=candidate.trl, stage_no=candidate.stage_no),
        )
        await self._act(
            RepairActivities.notify_repaired,
            RepairNoticeInput(
                project_id=pid,
                closed_as=candidate.closed_as,
                released=released.released,
                document_id=closed.document_id,
            ),
        )
        return RepairedProject(project_id=pid, released=released.released, document_id=closed.document_id)

    async def _act(self, method: Callable[[Any, A], Awaitable[R]], arg: A, retry: RetryPolicy = REPAIR_RETRY) -> R:
        return await workflow.execute_activity_method(
            method, arg, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=retry
        )

    def _publish(self) -> None:
        workflow.set_current_details(self.result.details())
