"""The repair workflow alone, on the time-skipping server, with its activities faked in memory:
each project found is stopped with the clean stop's steps in order, one whose repair fails is
reported and not tried again, the drift is added, and the run is recorded under its workflow id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.money import ReleaseInput, ReleaseResult
from activities.projects import CloseOutInput, CloseOutResult
from activities.repair import (
    REASON,
    DriftItem,
    FindRepairsInput,
    FindRepairsResult,
    ProjectRef,
    RecordRepairInput,
    RecordRepairResult,
    RepairCandidate,
    RepairedProject,
    RepairNoticeInput,
    RepairRequest,
    RepairResult,
)
from workflows.repair import RepairWorkflow


def candidate(pid: str) -> RepairCandidate:
    return RepairCandidate(project_id=pid, closed_as="terminated", trl=5, stage_no=2)


@dataclass
class Fakes:
    """Two projects to repair (the second's release is refused), then nothing more."""

    calls: list[tuple[str, Any]] = field(default_factory=list)

    def activities(self) -> list[Any]:
        @activity.defn(name="find_repairs")
        async def find_repairs(input: FindRepairsInput) -> FindRepairsResult:
            self.calls.append(("find_repairs", input.skip))
            first = not any(name == "find_repairs" for name, _ in self.calls[:-1])
            return FindRepairsResult(candidates=[candidate("A"), candidate("B")] if first else [], more=first)

        @activity.defn(name="withdraw_handoffs")
        async def withdraw_handoffs(input: ProjectRef) -> int:
            self.calls.append(("withdraw_handoffs", input.project_id))
            return 0

        @activity.defn(name="release_reservations")
        async def release_reservations(input: ReleaseInput) -> ReleaseResult:
            self.calls.append(("release_reservations", input.project_id))
            if input.project_id == "B":
                raise ApplicationError("the ledger refused", type="LedgerError", non_retryable=True)
            return ReleaseResult(released=7)

        @activity.defn(name="close_out")
        async def close_out(input: CloseOutInput) -> CloseOutResult:
            self.calls.append(("close_out", (input.project_id, input.reason, input.trl, input.stage_no, input.lessons)))
            return CloseOutResult(document_id=f"{input.project_id}-closeout", tasks_cancelled=0, handoffs_cancelled=0)

        @activity.defn(name="notify_repaired")
        async def notify_repaired(input: RepairNoticeInput) -> None:
            self.calls.append(("notify_repaired", (input.project_id, input.released, input.document_id)))

        @activity.defn(name="find_drift")
        async def find_drift() -> list[DriftItem]:
            self.calls.append(("find_drift", None))
            return [DriftItem(project_id="C", kind="no_workflow", problem="no workflow project-C exists")]

        @activity.defn(name="record_run")
        async def record_run(input: RecordRepairInput) -> RecordRepairResult:
            self.calls.append(("record_run", (input.key, input.ran_by, input.result)))
            return RecordRepairResult(run_id=1)

        return [
            find_repairs,
            withdraw_handoffs,
            release_reservations,
            close_out,
            notify_repaired,
            find_drift,
            record_run,
        ]


async def test_the_repair_stops_each_project_reports_failures_and_drift_and_records_the_run(
    unit_time_skipping: WorkflowEnvironment,
) -> None:
    fakes = Fakes()
    queue = f"repair-{uuid.uuid4().hex[:8]}"
    workflow_id = f"repair-{uuid.uuid4().hex[:8]}"
    async with Worker(
        unit_time_skipping.client, task_queue=queue, workflows=[RepairWorkflow], activities=fakes.activities()
    ):
        result = await unit_time_skipping.client.execute_workflow(
            RepairWorkflow.run,
            RepairRequest(ran_by="cli:repair"),
            id=workflow_id,
            task_queue=queue,
            result_type=RepairResult,
        )
        handle = unit_time_skipping.client.get_workflow_handle(workflow_id)
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert result.repaired == [RepairedProject(project_id="A", released=7, document_id="A-closeout")]
    assert [(d.project_id, d.kind) for d in result.drift] == [("B", "repair_failed"), ("C", "no_workflow")]
    assert "the ledger refused" in result.drift[0].problem
    assert fakes.calls == [
        ("find_repairs", []),
        ("withdraw_handoffs", "A"),
        ("release_reservations", "A"),
        ("close_out", ("A", REASON, 5, 2, "")),
        ("notify_repaired", ("A", 7, "A-closeout")),
        ("withdraw_handoffs", "B"),
        ("release_reservations", "B"),  # refused for good: no close-out, no notice, not asked again
        ("find_repairs", ["B"]),
        ("find_drift", None),
        ("record_run", (workflow_id, "cli:repair", result)),
    ]
    # Shown in clear by the Temporal UI: counts, never a project id.
    assert metadata.current_details == "repaired 1 project(s), released 7 yen, 2 drift item(s) left for people"
