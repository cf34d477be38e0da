"""The hand-off workflow alone, on the time-skipping server, with its activities faked in memory
(no database) and a stand-in project that records what it is told."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.handoffs import HandoffNoticeInput, PrepareHandoffInput, PrepareHandoffResult, RecordAnswerInput
from domain.handoff import (
    HandoffAnswer,
    HandoffBrief,
    HandoffInput,
    HandoffKind,
    HandoffOutcome,
    HandoffPolicy,
    HandoffStatus,
    HandoffWithdrawal,
    handoff_workflow_id,
)
from tests.support import PM, handoff_offered
from workflows.handoff import PARENT_SIGNAL, HandoffWorkflow

LIAISON = "liaison.mod"


@workflow.defn(name="UnitFakeProject", sandboxed=False)
class FakeProject:
    """Stands for the project workflow: keeps every hand-off change it is signalled, and ends when
    the hand-off is resolved (a workflow left waiting would be timed out by the time skipping)."""

    def __init__(self) -> None:
        self.heard: list[HandoffOutcome] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: any(o.status != HandoffStatus.PENDING for o in self.heard))

    @workflow.signal(name=PARENT_SIGNAL)
    def handoff_changed(self, outcome: HandoffOutcome) -> None:
        self.heard.append(outcome)

    @workflow.query
    def told(self) -> list[HandoffOutcome]:
        return self.heard


@dataclass
class FakeHandoffStore:
    """Stands for HandoffActivities: the first resolution stands, as the database makes it."""

    answers: list[RecordAnswerInput] = field(default_factory=list)
    notices: list[HandoffNoticeInput] = field(default_factory=list)
    resolved: HandoffStatus | None = None

    def activities(self) -> list[Any]:
        @activity.defn(name="prepare_handoff")
        async def prepare_handoff(input: PrepareHandoffInput) -> PrepareHandoffResult:
            return PrepareHandoffResult(document_id=f"{input.handoff.handoff_id}-package", liaisons=[LIAISON])

        @activity.defn(name="record_answer")
        async def record_answer(input: RecordAnswerInput) -> HandoffStatus:
            self.answers.append(input)
            self.resolved = self.resolved or input.status
            return self.resolved

        @activity.defn(name="handoff_notice")
        async def handoff_notice(input: HandoffNoticeInput) -> int:
            self.notices.append(input)
            return 1

        return [prepare_handoff, record_answer, handoff_notice]


@dataclass
class Handoff:
    env: WorkflowEnvironment
    store: FakeHandoffStore
    handle: WorkflowHandle[HandoffWorkflow, HandoffOutcome]
    project: WorkflowHandle[FakeProject, None]

    async def answer(self, **fields: Any) -> HandoffOutcome:
        return await self.handle.execute_update(HandoffWorkflow.answer, HandoffAnswer(answered_by=LIAISON, **fields))

    async def told(self) -> list[HandoffStatus]:
        return [o.status for o in await self.project.query(FakeProject.told)]


@pytest.fixture
async def handoff(unit_time_skipping: WorkflowEnvironment) -> AsyncIterator[Handoff]:
    """A final hand-off to MOD on real days: reminders every 4 days, the deadline at day 10."""
    env, store, task_queue = unit_time_skipping, FakeHandoffStore(), f"unit-handoff-{uuid.uuid4().hex[:8]}"
    project_id = f"KP-{uuid.uuid4().hex[:10]}"
    async with Worker(
        env.client, task_queue=task_queue, workflows=[HandoffWorkflow, FakeProject], activities=store.activities()
    ):
        project = await env.client.start_workflow(FakeProject.run, id=f"project-{project_id}", task_queue=task_queue)
        handle = await env.client.start_workflow(
            HandoffWorkflow.run,
            HandoffInput(
                project_id=project_id,
                ministry="MOD",
                kind=HandoffKind.FINAL,
                trl=9,
                brief=HandoffBrief(results_summary="A working prototype"),
                programme_manager=PM,
                parent_workflow_id=project.id,
                seconds_per_day=86400.0,
                policy=HandoffPolicy(deadline_days=10, reminder_days=4),
            ),
            id=handoff_workflow_id(project_id, "MOD", HandoffKind.FINAL),
            task_queue=task_queue,
        )
        await handoff_offered(env.client, project_id, "MOD")
        yield Handoff(env, store, handle, project)


async def test_an_accepted_handoff_names_the_receiving_programme(handoff: Handoff) -> None:
    outcome = await handoff.answer(accept=True, receiving_programme="  Coastal surveillance  ")
    assert outcome.status == HandoffStatus.ACCEPTED and outcome.receiving_programme == "Coastal surveillance"
    assert await handoff.handle.result() == outcome
    assert [(a.status, a.by) for a in handoff.store.answers] == [(HandoffStatus.ACCEPTED, LIAISON)]
    assert await handoff.told() == [HandoffStatus.ACCEPTED]
    assert handoff.store.notices == []


async def test_a_declined_handoff_keeps_its_reason(handoff: Handoff) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handoff.answer(accept=False)
    assert "declining needs a reason" in str(err.value.cause)
    outcome = await handoff.answer(accept=False, reason="No budget line this fiscal year")
    assert outcome.status == HandoffStatus.DECLINED and outcome.reason == "No budget line this fiscal year"
    assert await handoff.told() == [HandoffStatus.DECLINED]
    assert len(handoff.store.answers) == 1  # the refused answer wrote nothing


async def test_an_unanswered_handoff_is_reminded_escalated_and_rerouted(handoff: Handoff) -> None:
    await handoff.env.sleep(timedelta(days=5))  # past the first reminder, on day 4
    assert [(n.n, n.escalate) for n in handoff.store.notices] == [(1, False)]
    await handoff.env.sleep(timedelta(days=6))  # past the second (day 8) and the deadline (day 10)
    assert [(n.n, n.escalate) for n in handoff.store.notices] == [(1, False), (2, False), (2, True)]
    snapshot = await handoff.handle.query(HandoffWorkflow.snapshot)
    assert snapshot.escalated and snapshot.reminders_sent == 2 and snapshot.status == HandoffStatus.PENDING
    told = await handoff.project.query(FakeProject.told)
    assert [(o.status, o.escalated) for o in told] == [(HandoffStatus.PENDING, True)]

    await handoff.handle.signal(
        HandoffWorkflow.withdraw,
        HandoffWithdrawal(status=HandoffStatus.REROUTED, reason="Overdue: offered to MLIT", rerouted_to="MLIT"),
    )
    outcome = await handoff.handle.result()
    assert outcome.status == HandoffStatus.REROUTED and outcome.escalated
    assert [(a.status, a.rerouted_to) for a in handoff.store.answers] == [(HandoffStatus.REROUTED, "MLIT")]
    assert await handoff.told() == [HandoffStatus.PENDING, HandoffStatus.REROUTED]
