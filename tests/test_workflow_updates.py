"""Gate Updates, their validators, and stop paths on the local dev server (real Updates)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.worker import Worker

from domain.gate_review import GateDecisionInput, InvitationResponse, OpenReviewInput
from domain.handoff import HandoffStatus
from domain.programme import ALLOCATIONS, PROGRAMME_CODE
from domain.project import ConcludeHandoffsInput, Decision, ProjectOutcome, ProjectStatus, TerminateInput
from domain.proposal import Proposal
from storage import ledger
from storage.models import Notification, Project, ReviewTask
from storage.projects import insert_project
from tests.support import (
    PM,
    REVIEWERS,
    accept_handoffs,
    gate_handle,
    pass_gate,
    proposal,
    review_for,
    run_histories,
    start_project,
    wait_for_handoffs,
)
from workflows.gate_review import GateReviewWorkflow
from workflows.project import ProjectWorkflow


async def rejected(coro: Any, message: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await coro
    assert message in str(err.value.cause), err.value.cause


async def open_gate_one(
    client: Client, task_queue: str, **overrides: Any
) -> tuple[Proposal, WorkflowHandle[Any, Any], WorkflowHandle[Any, Any]]:
    """A project at gate 1 with the review open and every panel member accepted."""
    p = proposal(**overrides)
    project = await start_project(client, task_queue, p)
    gate = await gate_handle(client, p, 1)
    await gate.execute_update(GateReviewWorkflow.open_review, OpenReviewInput(opened_by=PM))
    for reviewer in p.reviewers:
        await gate.execute_update(GateReviewWorkflow.respond, InvitationResponse(reviewer=reviewer, accept=True))
    return p, project, gate


def decision(d: Decision, by: str = PM, why: str = "") -> GateDecisionInput:
    return GateDecisionInput(decided_by=by, decision=d, justification=why)


async def test_validators_refuse_with_exact_reasons(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    p, project, gate = await open_gate_one(local_client, task_queue)
    review = review_for(p, 1, "rev.ito")
    await rejected(
        gate.execute_update(GateReviewWorkflow.submit_review, review.model_copy(update={"reviewer": "mallory"})),
        "mallory is not on the panel of gate 1: not your task",
    )
    await rejected(
        gate.execute_update(GateReviewWorkflow.submit_review, review.model_copy(update={"gate_no": 2})),
        "this is gate 1, not gate 2",
    )
    bad_scores = review.model_copy(update={"scores": {**review.scores, "technical_merit": 6}})
    await rejected(
        gate.execute_update(GateReviewWorkflow.submit_review, bad_scores), "technical_merit is 6, outside 1..5"
    )
    await rejected(
        gate.execute_update(GateReviewWorkflow.decide, decision(Decision.GO)), "0 reviews are in and the quorum is 3"
    )

    await gate.execute_update(GateReviewWorkflow.submit_review, review)
    await rejected(gate.execute_update(GateReviewWorkflow.submit_review, review), "rev.ito has already reviewed gate 1")
    for reviewer in REVIEWERS[1:]:
        await gate.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, reviewer))

    await rejected(
        gate.execute_update(GateReviewWorkflow.decide, decision(Decision.GO, by="pm.tanaka")), "programme manager"
    )
    await rejected(
        gate.execute_update(GateReviewWorkflow.decide, decision(Decision.KILL)),
        "deciding kill against the panel's recommendation (go) needs a written justification",
    )
    await rejected(
        gate.execute_update(
            GateReviewWorkflow.decide, GateDecisionInput(decided_by=PM, decision=Decision.GO, conditions=["x y z"])
        ),
        "conditions belong only to a conditional go",
    )
    await rejected(
        project.execute_update(ProjectWorkflow.conclude_handoffs, ConcludeHandoffsInput(requested_by=PM)),
        "is not handing off",
    )
    kill = decision(Decision.KILL, why="Strategic priorities moved to space situational awareness")
    kill.lessons = "Check the ministries' roadmaps at every gate, not only at the first."
    outcome = await gate.execute_update(GateReviewWorkflow.decide, kill)
    assert outcome.decision.decision == Decision.KILL
    result: ProjectOutcome = await project.result()
    assert result.status == ProjectStatus.TERMINATED
    assert result.stop is not None and "Strategic priorities moved" in result.stop.reason
    async with sessionmaker() as session:  # a Kill's lessons are kept with the closed-out project
        row = await session.get(Project, p.project_id)
        assert row is not None and row.lessons == kill.lessons and row.closed_at is not None

    # Rejected Updates leave no trace: the round's history holds the accepted ones (open, three
    # acceptances, three reviews, the decision) and nothing of the eight refusals.
    history = await gate.fetch_history()
    accepted = [e for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")]
    assert len(accepted) == 8
    assert not [e for e in history.events if e.HasField("workflow_execution_update_rejected_event_attributes")]


async def test_go_is_blocked_when_a_must_meet_fails(
    local_client: Client, local_worker: Worker, task_queue: str
) -> None:
    p, project, gate = await open_gate_one(local_client, task_queue)
    for reviewer in REVIEWERS:
        await gate.execute_update(
            GateReviewWorkflow.submit_review, review_for(p, 1, reviewer, score=5, must_meet=False)
        )
    await rejected(
        gate.execute_update(GateReviewWorkflow.decide, decision(Decision.GO, why="I insist")),
        "must-meet criteria failed (trl_exit_evidence, protection_measures): Go is not allowed",
    )
    await gate.execute_update(GateReviewWorkflow.decide, decision(Decision.KILL))
    assert (await project.result()).status == ProjectStatus.TERMINATED


async def test_concurrent_twin_reviews_count_once(local_client: Client, local_worker: Worker, task_queue: str) -> None:
    p, project, gate = await open_gate_one(local_client, task_queue)
    review = review_for(p, 1, "rev.kato")
    results = await asyncio.gather(
        *(gate.execute_update(GateReviewWorkflow.submit_review, review) for _ in range(4)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, WorkflowUpdateFailedError) for r in results if isinstance(r, BaseException))
    view = await gate.query(GateReviewWorkflow.view, PM)
    assert view.pending == ["rev.ito", "rev.mori"]
    await project.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))


async def test_terminate_at_a_gate_cancels_the_round_and_open_tasks(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    p, project, gate = await open_gate_one(local_client, task_queue)
    await gate.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.ito"))
    stop = await project.execute_update(
        ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="Performer withdrew")
    )
    assert stop.status == ProjectStatus.TERMINATED and stop.released == 0  # stage 1 was fully paid (no-op time)
    assert (await gate.describe()).status.name == "CANCELED"  # type: ignore[union-attr]
    with pytest.raises(RPCError, match="already completed"):
        await gate.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.kato"))
    async with sessionmaker() as session:
        statuses = dict(
            (
                await session.execute(
                    select(ReviewTask.reviewer, ReviewTask.status).where(ReviewTask.project_id == p.project_id)
                )
            ).all()
        )
        assert statuses == {"rev.ito": "submitted", "rev.kato": "cancelled", "rev.mori": "cancelled"}
        project_row = await session.get(Project, p.project_id)
        assert project_row is not None and project_row.status == "terminated"
        assert "Performer withdrew" in (project_row.stop_reason or "")


async def test_money_that_cannot_be_reserved_holds_and_a_hold_past_its_limit_stops_cleanly(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    # Another project has taken all but 1 yen of METI's allocation.
    hog = proposal(funding_ministry="METI")
    async with sessionmaker.begin() as session:
        await insert_project(session, PROGRAMME_CODE, "x", hog)
        assert hog.project_id is not None
        await ledger.reserve(
            session,
            programme_code=PROGRAMME_CODE,
            project_id=hog.project_id,
            stage_no=1,
            ministry="METI",
            amount=ALLOCATIONS["METI"] - 1,
        )
    p = proposal(funding_ministry="METI", policy={"max_hold_days": 30})
    handle = await start_project(local_client, task_queue, p, seconds_per_day=0.02)
    outcome: ProjectOutcome = await handle.result()
    assert outcome.status == ProjectStatus.TERMINATED
    assert outcome.stop is not None and "On hold for longer than the programme's limit" in outcome.stop.reason
    assert "Waiting for funds for stage 1" in outcome.stop.reason and "1 yen available" in outcome.stop.reason
    async with sessionmaker() as session:
        assert await ledger.balance(session, ledger.reservation_account(str(p.project_id))) == 0
        assert await ledger.invariant_violations(session, PROGRAMME_CODE) == []
        told = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.project_id == p.project_id, Notification.kind == "funds_short")
        )
        assert told == 1


async def test_each_stage_runs_in_its_own_bounded_run(
    local_client: Client, local_worker: Worker, task_queue: str
) -> None:
    p = proposal(public_use_ministries=["MOD"])
    handle = await start_project(local_client, task_queue, p)
    for gate_no in range(1, 5):
        await pass_gate(local_client, p, gate_no)
    await wait_for_handoffs(handle)
    [accepted] = await accept_handoffs(local_client, p)
    assert accepted.status == HandoffStatus.ACCEPTED
    outcome = await handle.result()
    assert outcome.status == ProjectStatus.COMPLETED and outcome.public_use_achieved is True
    assert handle.first_execution_run_id is not None
    histories = await run_histories(local_client, handle.id, handle.first_execution_run_id)
    assert len(histories) == 4  # one run per stage: continue-as-new at every stage boundary
    lengths = [len(h.events) for h in histories]
    gate_lengths = [
        len((await local_client.get_workflow_handle(f"project-{p.project_id}-gate-{n}-r1").fetch_history()).events)
        for n in range(1, 5)
    ]
    print(f"largest project run history: {max(lengths)} events; largest gate round: {max(gate_lengths)}")
    assert max(lengths) < 120 and max(gate_lengths) < 120, (lengths, gate_lengths)


async def test_reviews_are_persisted_as_they_arrive(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    p, project, gate = await open_gate_one(local_client, task_queue)
    view = await gate.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.mori"))
    assert view.pending == ["rev.ito", "rev.kato"]
    async with sessionmaker() as session:
        submitted = await session.scalar(
            select(func.count())
            .select_from(ReviewTask)
            .where(ReviewTask.project_id == p.project_id, ReviewTask.status == "submitted")
        )
        assert submitted == 1
    await project.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))


async def test_a_cancel_from_the_temporal_ui_stops_the_project_cleanly(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A cancel request (the Temporal UI's or CLI's) takes the same clean stop as a terminate:
    the open review round and its tasks end, unpaid money goes back, the project is terminated."""
    p, project, gate = await open_gate_one(local_client, task_queue)
    await project.cancel()
    result: ProjectOutcome = await project.result()
    assert result.status == ProjectStatus.TERMINATED
    assert result.stop is not None and "Cancelled from Temporal" in result.stop.reason
    assert (await gate.describe()).status != WorkflowExecutionStatus.RUNNING
    async with sessionmaker() as session:
        row = await session.get(Project, p.project_id)
        assert row is not None and row.status == "terminated" and row.closed_at is not None
        open_tasks = (
            await session.scalars(
                select(ReviewTask.id).where(
                    ReviewTask.project_id == p.project_id, ReviewTask.status.in_(("open", "invited", "accepted"))
                )
            )
        ).all()
        assert open_tasks == []
        assert await ledger.balance(session, ledger.reservation_account(str(p.project_id))) == 0
        assert await ledger.invariant_violations(session, PROGRAMME_CODE) == []
