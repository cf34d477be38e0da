"""Every way a project can stop ends in the same clean state (one parametrised test): nothing open,
no reservation, no workflow running, a close-out report, the participants told, the final status
in the database and in the search attributes, and no reminder after it. One path has its worker
SIGKILLed in the middle of the stop (a real subprocess)."""

from __future__ import annotations

import asyncio
import html
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain import search_attributes as sa
from domain.gate_review import GateDecisionInput
from domain.handoff import HandoffKind, handoff_workflow_id
from domain.programme import PROGRAMME_CODE
from domain.project import Decision, Phase, ProjectOutcome, ProjectStatus, TerminateInput, WithdrawInput
from domain.proposal import Proposal
from storage import ledger
from storage.models import AuditEntry, Document, Gate, Handoff, Notification, Project, Reservation, ReviewTask
from tests.support import PM, handoff_offered, pass_gate, proposal, review_round, start_project, wait_until
from tests.test_payment_crash import spawn_worker, wait_killed
from worker import build_worker
from workflows.gate_review import GateReviewWorkflow, gate_workflow_id
from workflows.project import ProjectWorkflow

DAY = 0.05  # real seconds per programme day
PERFORMER = "perf.aoki"


def stoppable(demo_days: int = 400, **overrides: Any) -> Proposal:
    """`demo_days`: how long the second stage runs (a path that must live through it asks for less)."""
    stages = [
        {"name": "Research", "trl_in": 4, "trl_out": 6, "duration_days": 40, "budget": 300_000_000,
         "tranches": [{"offset_days": 0, "amount": 100_000_000}, {"offset_days": 20, "amount": 200_000_000}]},
        {"name": "Demonstration", "trl_in": 6, "trl_out": 7, "duration_days": demo_days, "budget": 100_000_000,
         "tranches": [{"offset_days": 0, "amount": 50_000_000}, {"offset_days": demo_days * 3 // 4, "amount": 50_000_000}]},
    ]  # fmt: skip
    data: dict[str, Any] = {
        "start_trl": 4,
        "target_trl": 7,
        "total_budget": 400_000_000,
        "stages": stages,
        "performer": PERFORMER,
        "policy": {"max_hold_days": 5, "conditions_missed": "stop"},
    }
    data.update(overrides)
    return proposal(**data)


async def gate_decision(client: Client, p: Proposal, decision: GateDecisionInput) -> None:
    gate = await review_round(client, p, 1)
    await gate.execute_update(GateReviewWorkflow.decide, decision)


async def in_stage(handle: WorkflowHandle[Any, Any]) -> None:
    await wait_until(handle, lambda s: s.phase == Phase.STAGE, "stage under way")


def decision(kind: Decision, **fields: Any) -> GateDecisionInput:
    return GateDecisionInput(
        decided_by=PM, decision=kind, justification="The panel's view noted; see minutes", **fields
    )


Stop = Callable[[Client, Proposal, WorkflowHandle[Any, Any]], Awaitable[None]]


async def kill(client: Client, p: Proposal, handle: WorkflowHandle[Any, Any]) -> None:
    await gate_decision(client, p, decision(Decision.KILL, lessons="Check the roadmaps at every gate"))


async def terminate(client: Client, p: Proposal, handle: WorkflowHandle[Any, Any]) -> None:
    await in_stage(handle)
    await handle.execute_update(
        ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="Priorities moved", lessons="Scope earlier")
    )


async def cancel(client: Client, p: Proposal, handle: WorkflowHandle[Any, Any]) -> None:
    await in_stage(handle)
    await handle.cancel()  # as the Temporal UI's or CLI's cancel does


async def hold_past_limit(client: Client, p: Proposal, handle: WorkflowHandle[Any, Any]) -> None:
    await gate_decision(client, p, decision(Decision.HOLD))  # nobody resumes: the 5-day limit stops it


async def conditions_missed(client: Client, p: Proposal, handle: WorkflowHandle[Any, Any]) -> None:
    await gate_decision(
        client, p, decision(Decision.CONDITIONAL_GO, conditions=["Export-control review filed"], conditions_due_days=3)
    )


async def performer_withdraws(client: Client, p: Proposal, handle: WorkflowHandle[Any, Any]) -> None:
    await in_stage(handle)
    await handle.execute_update(
        ProjectWorkflow.withdraw, WithdrawInput(requested_by=PERFORMER, reason="The consortium dissolved")
    )


async def terminate_in_handoff(client: Client, p: Proposal, handle: WorkflowHandle[Any, Any]) -> None:
    await pass_gate(client, p, 1)
    await pass_gate(client, p, 2)  # the last Go: both ministries are offered the result
    assert p.project_id is not None
    for ministry in p.public_use_ministries:
        await handoff_offered(client, p.project_id, ministry)
    await handle.execute_update(
        ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="Export ban on the technology")
    )


async def no_money(client: Client, p: Proposal, handle: WorkflowHandle[Any, Any]) -> None:
    pass  # the first stage's budget exceeds the allocation: on hold waiting for funds, past the limit


PATHS: dict[str, tuple[Stop, dict[str, Any], str]] = {
    "kill": (kill, {}, "Killed at gate 1"),
    "terminate": (terminate, {}, "Terminated by pm.sato: Priorities moved"),
    "cancel": (cancel, {}, "Cancelled from Temporal"),
    "hold_past_limit": (hold_past_limit, {}, "On hold for longer than the programme's limit"),
    "conditions_missed": (conditions_missed, {}, "were not verified by"),
    "performer_withdraws": (performer_withdraws, {}, "Withdrawn by the performer (perf.aoki)"),
    # Through the whole second stage to its hand-offs: 40 days of it, not 400 (2 s instead of 20).
    "terminate_in_handoff": (terminate_in_handoff, {"demo_days": 40}, "Terminated by pm.sato: Export ban"),
    "no_money": (
        no_money,
        {
            "total_budget": 400_000_000_000,
            "stages": [
                {
                    "name": "Research",
                    "trl_in": 4,
                    "trl_out": 7,
                    "duration_days": 40,
                    "budget": 400_000_000_000,
                    "tranches": [{"offset_days": 0, "amount": 400_000_000_000}],
                }
            ],
        },
        "On hold for longer than the programme's limit",
    ),
}


async def assert_clean_stop(
    client: Client,
    sessionmaker: async_sessionmaker[AsyncSession],
    p: Proposal,
    handle: WorkflowHandle[Any, Any],
    reason: str,
) -> None:
    assert p.project_id is not None
    pid = p.project_id
    outcome = ProjectOutcome.model_validate(await handle.result())
    assert outcome.status == ProjectStatus.TERMINATED and outcome.stop is not None
    assert reason in outcome.stop.reason
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.COMPLETED
    assert described.typed_search_attributes.get(sa.PROJECT_STATUS) == "terminated"
    # No child workflow left running (gate rounds, hand-offs): nothing whose timer can still fire.
    started = [handle.id]
    for wid in [gate_workflow_id(pid, g, r) for g in (1, 2) for r in (1, 2)] + [
        handoff_workflow_id(pid, m, k) for m in p.public_use_ministries for k in HandoffKind
    ]:
        try:
            child = await client.get_workflow_handle(wid).describe()
        except RPCError:
            continue  # never started
        assert child.status != WorkflowExecutionStatus.RUNNING, wid
        started.append(wid)

    async with sessionmaker() as session:
        project = await session.get(Project, pid)
        assert project is not None and project.status == "terminated" and project.closed_at is not None
        assert project.stop_reason is not None and reason in project.stop_reason

        async def count(model: Any, *where: Any) -> int:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        assert (
            await count(
                ReviewTask, ReviewTask.project_id == pid, ReviewTask.status.in_(("open", "invited", "accepted"))
            )
            == 0
        )
        assert await count(Gate, Gate.project_id == pid, Gate.status == "open") == 0
        assert await count(Reservation, Reservation.project_id == pid, Reservation.status == "open") == 0
        assert await count(Handoff, Handoff.project_id == pid, Handoff.status == "pending") == 0
        assert await ledger.invariant_violations(session, PROGRAMME_CODE) == []
        report = await session.get(Document, f"{pid}-closeout")
        assert report is not None and reason in html.unescape(report.content) and "TRL" in report.content
        told = set(
            (
                await session.scalars(
                    select(Notification.recipient).where(
                        Notification.project_id == pid, Notification.kind == "project_stopped"
                    )
                )
            ).all()
        )
        assert {PM, PERFORMER, "fin.suzuki", "fin.yamada", *p.reviewers} <= told and "finance" not in told
        offered = await count(Handoff, Handoff.project_id == pid)
        if offered:  # the liaisons whose hand-offs the stop withdrew are told too
            assert {"liaison.mod", "liaison.mlit"} <= told
            assert await count(Handoff, Handoff.project_id == pid, Handoff.status == "cancelled") == offered
        assert (
            await count(AuditEntry, AuditEntry.action == "project_closed_out", AuditEntry.target == f"project:{pid}")
            == 1
        )
        before = await count(Notification, Notification.project_id == pid)
    # Nothing can send after the stop: no workflow of the project runs (no timer can fire) and
    # none left an activity in flight; so the notices counted above are all there will be.
    for wid in started:
        assert await activities_in_flight(client.get_workflow_handle(wid)) == [], wid
    async with sessionmaker() as session:
        assert await count_after(session, pid) == before, "something was sent after the stop"


async def activities_in_flight(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The activities the workflow's latest run scheduled that have not ended, read from its history."""
    scheduled: dict[int, str] = {}
    for e in (await handle.fetch_history()).events:
        if e.HasField("activity_task_scheduled_event_attributes"):
            scheduled[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
        for ended in ("completed", "failed", "timed_out", "canceled"):
            field = f"activity_task_{ended}_event_attributes"
            if e.HasField(field):
                scheduled.pop(getattr(e, field).scheduled_event_id, None)
    return sorted(scheduled.values())


async def count_after(session: AsyncSession, pid: str) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(Notification).where(Notification.project_id == pid)) or 0
    )


@pytest.mark.parametrize("path", [*PATHS, "terminate_with_worker_killed_mid_stop"])
async def test_every_stop_path_ends_in_the_same_clean_state(
    path: str,
    local_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    client = local_env.client
    queue = f"stop-{uuid.uuid4().hex[:8]}"
    if path == "terminate_with_worker_killed_mid_stop":
        p = stoppable()
        env = {
            **os.environ,
            "TRLGATE_DATABASE_URL": sqlite_url,
            "TRLGATE_TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TRLGATE_TASK_QUEUE": queue,
            "TRLGATE_DATA_DIR": str(tmp_path),
        }
        # The worker dies right after the stop's release of money commits, before the close-out.
        worker = spawn_worker(env, "after_release_commit")
        handle = await start_project(client, queue, p, seconds_per_day=DAY)
        try:
            await in_stage(handle)
            stopping = asyncio.create_task(
                handle.execute_update(
                    ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="Priorities moved")
                )
            )
            await wait_killed(worker, "after_release_commit")
            async with sessionmaker() as session:  # half-way: the money is back, the close-out not written
                assert (await session.get(Project, p.project_id)).status != "terminated"  # type: ignore[union-attr]
            worker = spawn_worker(env, None)  # a new worker finishes the same stop
            result = await asyncio.wait_for(stopping, 60)
            assert result.released == 200_000_000  # what stage 1 had not paid yet (300 - 100): released once
            await assert_clean_stop(client, sessionmaker, p, handle, "Terminated by pm.sato")
        finally:
            worker.kill()
            await asyncio.to_thread(worker.wait)
        return

    drive, overrides, reason = PATHS[path]
    p = stoppable(**overrides)
    async with build_worker(client, queue, sessionmaker):
        handle = await start_project(client, queue, p, seconds_per_day=DAY)
        await drive(client, p, handle)
        await assert_clean_stop(client, sessionmaker, p, handle, reason)
