"""Gate Updates, their validators, and stop paths on the local dev server (real Updates)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.worker import Worker

from domain.project import (
    Decision,
    DecisionInput,
    HandoffAcceptInput,
    ProjectOutcome,
    ProjectStatus,
    TerminateInput,
)
from domain.proposal import Proposal
from storage import ledger
from storage.models import Project, ReviewTask
from storage.projects import insert_project
from storage.seed import ALLOCATIONS, PROGRAMME_CODE
from tests.support import (
    PM,
    REVIEWERS,
    pass_gate,
    proposal,
    review_for,
    run_histories,
    start_project,
    wait_for_gate,
    wait_for_handoffs,
)
from workflows.project import ProjectWorkflow


async def rejected(coro: Any, message: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await coro
    assert message in str(err.value.cause), err.value.cause


async def at_gate_one(client: Client, task_queue: str, **overrides: Any) -> tuple[Proposal, WorkflowHandle[Any, Any]]:
    p = proposal(**overrides)
    handle = await start_project(client, task_queue, p)
    await wait_for_gate(handle, 1)
    return p, handle


def decide(p: Proposal, decision: Decision, by: str = PM, gate_no: int = 1, why: str = "") -> DecisionInput:
    return DecisionInput(gate_no=gate_no, decision=decision, decided_by=by, justification=why)


async def test_validators_refuse_with_exact_reasons(
    local_client: Client, local_worker: Worker, task_queue: str
) -> None:
    p, handle = await at_gate_one(local_client, task_queue)
    review = review_for(p, 1, "rev.ito")
    await rejected(
        handle.execute_update(ProjectWorkflow.submit_review, review.model_copy(update={"reviewer": "mallory"})),
        "mallory is not on the review panel",
    )
    await rejected(
        handle.execute_update(ProjectWorkflow.submit_review, review.model_copy(update={"gate_no": 2})),
        "gate 2 is not open: the open gate is 1",
    )
    bad_scores = review.model_copy(update={"scores": {**review.scores, "technical_merit": 6}})
    await rejected(
        handle.execute_update(ProjectWorkflow.submit_review, bad_scores), "technical_merit is 6, outside 1..5"
    )
    await rejected(
        handle.execute_update(ProjectWorkflow.decide, decide(p, Decision.GO)), "reviews missing from rev.ito"
    )

    await handle.execute_update(ProjectWorkflow.submit_review, review)
    await rejected(handle.execute_update(ProjectWorkflow.submit_review, review), "rev.ito has already reviewed gate 1")
    for reviewer in REVIEWERS[1:]:
        await handle.execute_update(ProjectWorkflow.submit_review, review_for(p, 1, reviewer))

    await rejected(
        handle.execute_update(ProjectWorkflow.decide, decide(p, Decision.GO, by="pm.tanaka")), "programme manager"
    )
    await rejected(
        handle.execute_update(ProjectWorkflow.decide, decide(p, Decision.HOLD)), "'hold' is not available yet"
    )
    await rejected(
        handle.execute_update(ProjectWorkflow.decide, decide(p, Decision.KILL)),
        "deciding kill against the panel's recommendation (go) needs a written justification",
    )
    await rejected(
        handle.execute_update(ProjectWorkflow.accept_handoff, HandoffAcceptInput(ministry="MOD", accepted_by="x")),
        "is not in hand-off",
    )
    result = await handle.execute_update(
        ProjectWorkflow.decide,
        decide(p, Decision.KILL, why="Strategic priorities moved to space situational awareness"),
    )
    assert result.status == ProjectStatus.TERMINATED
    outcome: ProjectOutcome = await handle.result()
    assert outcome.stop is not None and "Strategic priorities moved" in outcome.stop.reason

    # Rejected Updates leave no trace: history holds the four accepted ones (three reviews and the
    # kill) and nothing of the nine refusals.
    history = await handle.fetch_history()
    accepted = [e for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")]
    assert len(accepted) == 4
    assert not [e for e in history.events if e.HasField("workflow_execution_update_rejected_event_attributes")]


async def test_go_is_blocked_when_a_must_meet_fails(
    local_client: Client, local_worker: Worker, task_queue: str
) -> None:
    p, handle = await at_gate_one(local_client, task_queue)
    for reviewer in REVIEWERS:
        await handle.execute_update(ProjectWorkflow.submit_review, review_for(p, 1, reviewer, score=5, must_meet=False))
    await rejected(
        handle.execute_update(ProjectWorkflow.decide, decide(p, Decision.GO, why="I insist")),
        "Go is blocked: must-meet criteria failed: trl_exit_evidence, protection_measures",
    )
    result = await handle.execute_update(ProjectWorkflow.decide, decide(p, Decision.KILL))
    assert result.status == ProjectStatus.TERMINATED


async def test_concurrent_twin_reviews_count_once(local_client: Client, local_worker: Worker, task_queue: str) -> None:
    p, handle = await at_gate_one(local_client, task_queue)
    review = review_for(p, 1, "rev.kato")
    results = await asyncio.gather(
        *(handle.execute_update(ProjectWorkflow.submit_review, review) for _ in range(4)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, WorkflowUpdateFailedError) for r in results if isinstance(r, BaseException))
    status = await handle.query(ProjectWorkflow.status)
    assert status.reviews_pending == ["rev.ito", "rev.mori"]


async def test_terminate_at_a_gate_cancels_open_tasks(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    p, handle = await at_gate_one(local_client, task_queue)
    await handle.execute_update(ProjectWorkflow.submit_review, review_for(p, 1, "rev.ito"))
    stop = await handle.execute_update(
        ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="Performer withdrew")
    )
    assert stop.status == ProjectStatus.TERMINATED and stop.released == 0  # stage 1 was fully paid (no-op time)
    with pytest.raises(RPCError, match="already completed"):  # the stopped workflow has ended
        await handle.execute_update(ProjectWorkflow.submit_review, review_for(p, 1, "rev.kato"))
    async with sessionmaker() as session:
        statuses = dict(
            (
                await session.execute(
                    select(ReviewTask.reviewer, ReviewTask.status).where(ReviewTask.project_id == p.project_id)
                )
            ).all()
        )
        assert statuses == {"rev.ito": "submitted", "rev.kato": "cancelled", "rev.mori": "cancelled"}
        project = await session.get(Project, p.project_id)
        assert (
            project is not None
            and project.status == "terminated"
            and "Performer withdrew" in (project.stop_reason or "")
        )


async def test_money_that_cannot_be_reserved_stops_the_project_cleanly(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    # Another project has taken all but 1 yen of METI's allocation.
    hog = proposal(funding_ministry="METI")
    async with sessionmaker.begin() as session:
        await insert_project(session, PROGRAMME_CODE, "x", hog)
        assert hog.project_id is not None
        await ledger.reserve(session, PROGRAMME_CODE, hog.project_id, 1, "METI", ALLOCATIONS["METI"] - 1)
    p = proposal(funding_ministry="METI")
    handle = await start_project(local_client, task_queue, p)
    outcome: ProjectOutcome = await handle.result()
    assert outcome.status == ProjectStatus.TERMINATED
    assert outcome.stop is not None and "Money could not be reserved" in outcome.stop.reason
    async with sessionmaker() as session:
        assert await ledger.balance(session, ledger.reservation_account(str(p.project_id))) == 0
        assert await ledger.invariant_violations(session, PROGRAMME_CODE) == []


async def test_each_stage_runs_in_its_own_bounded_run(
    local_client: Client, local_worker: Worker, task_queue: str
) -> None:
    p = proposal(public_use_ministries=["MOD"])
    handle = await start_project(local_client, task_queue, p)
    for gate_no in range(1, 5):
        await pass_gate(local_client, p, gate_no)
    await wait_for_handoffs(handle)
    done = await handle.execute_update(
        ProjectWorkflow.accept_handoff, HandoffAcceptInput(ministry="MOD", accepted_by="liaison.mod")
    )
    assert done.status == ProjectStatus.COMPLETED and done.pending == []
    assert (await handle.result()).status == ProjectStatus.COMPLETED
    assert handle.first_execution_run_id is not None
    histories = await run_histories(local_client, handle.id, handle.first_execution_run_id)
    assert len(histories) == 4  # one run per stage: continue-as-new at every stage boundary
    lengths = [len(h.events) for h in histories]
    assert max(lengths) < 120, lengths


async def test_reviews_counted_in_db(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    p, handle = await at_gate_one(local_client, task_queue)
    result = await handle.execute_update(ProjectWorkflow.submit_review, review_for(p, 1, "rev.mori"))
    assert (result.reviews_received, result.reviews_expected, result.recommendation) == (1, 3, None)
    async with sessionmaker() as session:
        submitted = await session.scalar(
            select(func.count())
            .select_from(ReviewTask)
            .where(ReviewTask.project_id == p.project_id, ReviewTask.status == "submitted")
        )
        assert submitted == 1
    await handle.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))
