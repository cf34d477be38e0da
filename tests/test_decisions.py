"""The five gate decisions end to end. Durations on the time-skipping server; the rest on the local one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.gate_review import GateDecisionInput
from domain.policy import GatePolicy
from domain.programme import PROGRAMME_CODE
from domain.project import (
    Decision,
    Phase,
    ProjectOutcome,
    ProjectStatus,
    ResumeInput,
    TerminateInput,
    VerifyConditionsInput,
)
from storage import ledger
from storage.models import GateDecision, GateEvent, Project, Reservation, ReviewTask, Tranche
from tests.support import (
    PM,
    assert_eventually,
    decide_gate,
    pass_gate,
    proposal,
    review_round,
    short_first_stage,
    start_project,
    wait_until,
)
from worker import build_worker
from workflows.gate_review import GateReviewWorkflow
from workflows.project import ProjectWorkflow

DAY = 86400.0


async def refused(coro: Any, message: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await coro
    assert message in str(err.value.cause), err.value.cause


def conditional(days: int) -> GateDecisionInput:
    return GateDecisionInput(
        decided_by=PM,
        decision=Decision.CONDITIONAL_GO,
        conditions=["Independent replication of the key result", "Export-control review filed"],
        conditions_due_days=days,
    )


async def test_conditional_go_whose_conditions_are_met(
    local_client: Client, local_worker: Worker, task_queue: str
) -> None:
    p = proposal(stages=short_first_stage())
    project = await start_project(local_client, task_queue, p, seconds_per_day=0.01)
    gate = await review_round(local_client, p, 1)
    await refused(
        gate.execute_update(
            GateReviewWorkflow.decide, GateDecisionInput(decided_by=PM, decision=Decision.CONDITIONAL_GO)
        ),
        "a conditional go needs at least one named condition",
    )
    snap = await decide_gate(local_client, p, gate, conditional(days=200))
    assert snap.trl == 3 and snap.stage_index == 1 and snap.conditions_due_at is not None
    await refused(
        project.execute_update(ProjectWorkflow.verify_conditions, VerifyConditionsInput(requested_by="pm.tanaka")),
        "only the project's programme manager",
    )
    verified = await project.execute_update(
        ProjectWorkflow.verify_conditions, VerifyConditionsInput(requested_by=PM, note="Replicated by AIST")
    )
    assert verified.conditions_due_at is None and not verified.on_hold
    await refused(
        project.execute_update(ProjectWorkflow.verify_conditions, VerifyConditionsInput(requested_by=PM)),
        "were verified already",
    )
    # Past the due date, nothing happens: the project carries on in stage 2.
    later = await wait_until(project, lambda s: "tranche 2" in s.waiting_for, "stage 2 under way", timeout=30)
    assert later.status == ProjectStatus.ACTIVE and not later.on_hold
    await project.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))


async def test_conditional_go_missed_date_holds_then_resume_shifts_the_tranches(
    time_skipping_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    env = time_skipping_env
    p = proposal()
    async with build_worker(env.client, task_queue, sessionmaker):
        project = await start_project(env.client, task_queue, p, seconds_per_day=DAY)
        gate = await review_round(env.client, p, 1, env=env)
        await decide_gate(env.client, p, gate, conditional(days=100), env=env)
        held = await wait_until(project, lambda s: s.on_hold, "automatic hold", env=env)
        assert held.status == ProjectStatus.ON_HOLD and "were not verified" in held.waiting_for
        async with sessionmaker() as session:
            row = await session.get(Project, p.project_id)
            assert row is not None and row.status == "on_hold"
        resumed = await project.execute_update(ProjectWorkflow.resume, ResumeInput(requested_by=PM))
        assert resumed.status == ProjectStatus.ACTIVE and not resumed.on_hold
        await wait_until(project, lambda s: "tranche 3" in s.waiting_for, "second tranche of stage 2", env=env)
        await project.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))

    async with sessionmaker() as session:
        dues = (
            await session.scalars(
                select(Tranche.due_at)
                .where(Tranche.project_id == p.project_id, Tranche.stage_no == 2)
                .order_by(Tranche.tranche_no)
            )
        ).all()
        decided = await session.scalar(select(GateDecision.decided_at).where(GateDecision.project_id == p.project_id))
    assert decided is not None and len(dues) == 2
    # The conditions fell due 100 days after the Go and the hold lasted until the resume: the
    # second tranche came 365 days after the first plus the time on hold (more than 0 days).
    hold_days = (dues[1] - dues[0]).days - 365
    assert hold_days > 0, dues


async def test_hold_then_resume_runs_the_gate_again(
    local_client: Client, local_worker: Worker, task_queue: str
) -> None:
    p = proposal(stages=short_first_stage())
    project = await start_project(local_client, task_queue, p, seconds_per_day=0.01)
    gate = await review_round(local_client, p, 1)
    await gate.execute_update(
        GateReviewWorkflow.decide,
        GateDecisionInput(decided_by=PM, decision=Decision.HOLD, justification="Wait for the space programme"),
    )
    held = await wait_until(project, lambda s: s.on_hold, "hold")
    assert held.status == ProjectStatus.ON_HOLD
    await refused(
        project.execute_update(ProjectWorkflow.resume, ResumeInput(requested_by="rev.ito")),
        "only the project's programme manager",
    )
    await project.execute_update(ProjectWorkflow.resume, ResumeInput(requested_by=PM))
    snap = await wait_until(project, lambda s: s.gate_round == 2 and s.gate_workflow_id is not None, "round 2")
    assert snap.gate_workflow_id == f"project-{p.project_id}-gate-1-r2"
    after = await pass_gate(local_client, p, 1)
    assert after.trl == 3 and after.stage_index == 1


async def test_hold_past_the_limit_stops_cleanly(
    time_skipping_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    env = time_skipping_env
    p = proposal(policy=GatePolicy(max_hold_days=90))
    async with build_worker(env.client, task_queue, sessionmaker):
        project = await start_project(env.client, task_queue, p, seconds_per_day=DAY)
        gate = await review_round(env.client, p, 1, env=env)
        await gate.execute_update(GateReviewWorkflow.decide, GateDecisionInput(decided_by=PM, decision=Decision.HOLD))
        outcome: ProjectOutcome = await project.result()
    assert outcome.status == ProjectStatus.TERMINATED
    assert outcome.stop is not None and "limit of 90 days" in outcome.stop.reason
    async with sessionmaker() as session:
        assert await ledger.invariant_violations(session, PROGRAMME_CODE) == []
        assert await ledger.balance(session, ledger.reservation_account(str(p.project_id))) == 0


async def test_recycle_then_go_and_recycle_past_the_maximum_is_refused(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    p = proposal(policy=GatePolicy(max_recycles=1, max_recycle_budget_percent=20))
    project = await start_project(local_client, task_queue, p, seconds_per_day=0.001)
    stage_budget = p.stage_plan[0].budget
    gate = await review_round(local_client, p, 1, score=3)

    def recycle(days: int, budget: int) -> GateDecisionInput:
        return GateDecisionInput(decided_by=PM, decision=Decision.RECYCLE, recycle_days=days, recycle_budget=budget)

    await refused(
        gate.execute_update(GateReviewWorkflow.decide, recycle(100, stage_budget)),
        f"recycle_budget {stage_budget} exceeds the limit of {stage_budget // 5} yen",
    )
    snap = await decide_gate(local_client, p, gate, recycle(180, stage_budget // 10))
    assert snap.stage_index == 0 and snap.gate_round == 2
    gate2 = await review_round(local_client, p, 1, score=3)
    await refused(
        gate2.execute_update(GateReviewWorkflow.decide, recycle(30, 0)),
        "this stage was recycled 1 times already; the maximum is 1",
    )
    after = await decide_gate(local_client, p, gate2, GateDecisionInput(decided_by=PM, decision=Decision.GO))
    assert after.trl == 3 and after.stage_index == 1 and after.phase in (Phase.STAGE, Phase.GATE)
    async with sessionmaker() as session:
        parts = (
            await session.scalars(
                select(Reservation).where(Reservation.project_id == p.project_id, Reservation.stage_no == 1)
            )
        ).all()
        assert sorted((r.part, r.amount, r.paid) for r in parts) == [
            (0, stage_budget, stage_budget),
            (1, stage_budget // 10, stage_budget // 10),
        ]
        rounds = (
            await session.execute(
                select(GateDecision.round, GateDecision.decision).where(GateDecision.project_id == p.project_id)
            )
        ).all()
        assert sorted(rounds) == [(1, "recycle"), (2, "go")]
        assert await ledger.invariant_violations(session, PROGRAMME_CODE) == []
    await project.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))


async def test_override_needs_a_justification_which_is_kept(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    p = proposal()
    await start_project(local_client, task_queue, p)
    gate = await review_round(local_client, p, 1, score=2)  # the panel recommends Kill
    await refused(
        gate.execute_update(GateReviewWorkflow.decide, GateDecisionInput(decided_by=PM, decision=Decision.GO)),
        "deciding go against the panel's recommendation (kill) needs a written justification",
    )
    why = "A strategic capability gap the panel could not weigh; revisit at gate 2"
    snap = await decide_gate(
        local_client, p, gate, GateDecisionInput(decided_by=PM, decision=Decision.GO, justification=why)
    )
    assert snap.trl == 3
    async with sessionmaker() as session:
        row = await session.scalar(select(GateDecision).where(GateDecision.project_id == p.project_id))
        assert row is not None and row.decision == "go" and row.justification == why
        assert row.recommendation is not None and row.recommendation["decision"] == "kill"


async def test_updates_racing_continue_as_new_are_not_lost(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The PM verifies a Conditional Go's conditions while the project is continuing as new into
    the next stage: the Update lands in one run or the other and is never lost."""
    p = proposal(stages=short_first_stage())
    project = await start_project(local_client, task_queue, p, seconds_per_day=0.01)
    first_run = (await project.describe()).run_id
    gate = await review_round(local_client, p, 1)

    async def verify() -> bool:
        try:
            await local_client.get_workflow_handle(project.id).execute_update(
                ProjectWorkflow.verify_conditions, VerifyConditionsInput(requested_by=PM, note="done")
            )
            return True
        except WorkflowUpdateFailedError as err:
            assert "no conditions to verify" in str(err.cause), err.cause
            return False

    verifier = asyncio.create_task(assert_eventually(verify, "the conditions verified", interval=0.001))
    await gate.execute_update(GateReviewWorkflow.decide, conditional(days=50))
    await asyncio.wait_for(verifier, timeout=30)
    snap = await wait_until(local_client.get_workflow_handle(project.id), lambda s: s.stage_index == 1, "stage 2")
    assert (await local_client.get_workflow_handle(project.id).describe()).run_id != first_run  # continued as new
    assert snap.conditions_due_at is None  # the verification survived the new run
    # Long past the due date (day 50) the project has not gone on hold: it paid stage 2's second
    # tranche (day 365), which a hold would have held back.
    later = await wait_until(
        local_client.get_workflow_handle(project.id),
        lambda s: s.on_hold or (s.money is not None and s.money.stage_no == 2 and 2 in s.money.tranches_paid),
        "stage 2's day-365 tranche paid, or a hold",
    )
    assert not later.on_hold and later.status == ProjectStatus.ACTIVE
    async with sessionmaker() as session:
        kinds = (await session.scalars(select(GateEvent.kind).where(GateEvent.project_id == p.project_id))).all()
        assert kinds.count("conditions_verified") == 1
    await local_client.get_workflow_handle(project.id).execute_update(
        ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over")
    )


async def test_terminate_racing_continue_as_new_stops_the_project(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    p = proposal()
    project = await start_project(local_client, task_queue, p)
    gate = await review_round(local_client, p, 1)
    latest = local_client.get_workflow_handle_for(ProjectWorkflow.run, project.id)
    # The decision returns as soon as the round closes; the project then records it, reserves the
    # next stage and continues as new. The terminate lands somewhere in that window.
    await gate.execute_update(GateReviewWorkflow.decide, GateDecisionInput(decided_by=PM, decision=Decision.GO))
    stopped = await latest.execute_update(
        ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="Budget cut")
    )
    assert stopped.status == ProjectStatus.TERMINATED
    outcome: ProjectOutcome = await latest.result()
    assert (
        outcome.status == ProjectStatus.TERMINATED and outcome.stop is not None and "Budget cut" in outcome.stop.reason
    )
    async with sessionmaker() as session:
        assert await ledger.balance(session, ledger.reservation_account(str(p.project_id))) == 0
        assert await ledger.invariant_violations(session, PROGRAMME_CODE) == []


async def test_a_stop_during_a_decision_wins_and_leaves_consistent_books(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Decision and terminate at once: the stop cancels the round; the decision either made it
    before or was refused with a reason. Either way the project ends terminated with nothing open."""
    p = proposal()
    project = await start_project(local_client, task_queue, p)
    gate = await review_round(local_client, p, 1)
    latest = local_client.get_workflow_handle_for(ProjectWorkflow.run, project.id)
    decided, stopped = await asyncio.gather(
        gate.execute_update(GateReviewWorkflow.decide, GateDecisionInput(decided_by=PM, decision=Decision.GO)),
        latest.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="Budget cut")),
        return_exceptions=True,
    )
    assert not isinstance(stopped, BaseException) and stopped.status == ProjectStatus.TERMINATED
    if isinstance(decided, WorkflowUpdateFailedError):
        # The stop cancelled the round while the decision was being recorded, or the round refused it.
        assert isinstance(decided.cause, (CancelledError, ApplicationError)), decided.cause
    elif isinstance(decided, BaseException):
        # The round had already ended when the decision arrived.
        assert isinstance(decided, RPCError) and decided.status == RPCStatusCode.FAILED_PRECONDITION, decided
    assert (await latest.result()).status == ProjectStatus.TERMINATED
    async with sessionmaker() as session:
        open_tasks = (
            await session.scalars(
                select(ReviewTask.status).where(
                    ReviewTask.project_id == p.project_id, ReviewTask.status.in_(("open", "invited", "accepted"))
                )
            )
        ).all()
        assert open_tasks == []
        assert await ledger.balance(session, ledger.reservation_account(str(p.project_id))) == 0
        assert await ledger.invariant_violations(session, PROGRAMME_CODE) == []


async def test_a_long_stage_continues_as_new_when_temporal_suggests_it(
    sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    """A stage with monthly tranches grows a long history; with the server suggesting continue-as-new
    early, the stage carries on in fresh runs and every tranche is still paid exactly once."""

    from domain.search_attributes import ALL
    from tests.support import CONVERTER, SERVER_STARTUP, run_histories, venv_binary

    env = await WorkflowEnvironment.start_local(
        data_converter=CONVERTER,
        dev_server_existing_path=venv_binary("temporal"),
        search_attributes=ALL,
        dev_server_extra_args=["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=30"],
        dev_server_startup_timeout=SERVER_STARTUP,
    )
    try:
        monthly = [{"offset_days": 30 * m, "amount": 1_000_000} for m in range(12)]
        stage = {
            "name": "Demonstration",
            "trl_in": 5,
            "trl_out": 7,
            "duration_days": 365,
            "budget": 12_000_000,
            "tranches": monthly,
        }
        p = proposal(start_trl=5, target_trl=7, total_budget=12_000_000, stages=[stage])
        async with build_worker(env.client, task_queue, sessionmaker):
            project = await start_project(env.client, task_queue, p, seconds_per_day=0.0005)
            snap = await pass_gate(env.client, p, 1, Decision.KILL, justification="test over")
            assert snap.phase in (Phase.CLOSING, Phase.DONE)
            await env.client.get_workflow_handle(project.id).result()
            assert project.first_execution_run_id is not None
            runs = await run_histories(env.client, project.id, project.first_execution_run_id)
        assert len(runs) >= 3, [len(r.events) for r in runs]  # one stage, several runs
        async with sessionmaker() as session:
            paid = (await session.scalars(select(Tranche.tranche_no).where(Tranche.project_id == p.project_id))).all()
        assert sorted(paid) == list(range(1, 13))
    finally:
        await env.shutdown()


async def test_a_run_that_starts_on_hold_records_the_hold(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """What a run continued as new while holding looks like: the status is written again."""
    from datetime import UTC, datetime

    from domain.project import HoldState, ProjectState, ProjectWorkflowInput
    from storage.projects import insert_project

    p = proposal()
    async with sessionmaker.begin() as session:
        await insert_project(session, PROGRAMME_CODE, f"project-{p.project_id}", p)  # status: active
        await ledger.reserve(
            session,
            programme_code=PROGRAMME_CODE,
            project_id=str(p.project_id),
            stage_no=1,
            ministry="MEXT",
            amount=p.stage_plan[0].budget,
        )
    state = ProjectState(
        trl=1,
        phase=Phase.STAGE,
        status=ProjectStatus.ON_HOLD,
        stage_started_at=datetime.now(UTC),
        hold=HoldState(since=datetime.now(UTC), reason="The conditions of gate 1 were not verified"),
    )
    handle = await local_client.start_workflow(
        ProjectWorkflow.run,
        ProjectWorkflowInput(proposal=p, seconds_per_day=0.01, state=state),
        id=f"project-{p.project_id}",
        task_queue=task_queue,
    )
    await wait_until(handle, lambda s: s.on_hold, "on hold")

    async def project_status() -> str | None:
        async with sessionmaker() as session:
            row = await session.get(Project, p.project_id)
            return None if row is None else row.status

    await assert_eventually(project_status, "the project row on hold", until=lambda status: status == "on_hold")
    await handle.execute_update(ProjectWorkflow.resume, ResumeInput(requested_by=PM))
    async with sessionmaker() as session:
        row = await session.get(Project, p.project_id)
        assert row is not None and row.status == "active"
    await handle.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))
