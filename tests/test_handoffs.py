"""Hand-offs to public-use ministries, on a real dev server: accept, decline and re-route,
deadline with reminders and escalation, and the early demonstration hand-off from TRL 7."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.worker import Worker

from domain import search_attributes as sa
from domain.gate_review import GateDecisionInput
from domain.handoff import (
    DemoHandoffInput,
    HandoffAnswer,
    HandoffBrief,
    HandoffKind,
    HandoffOutcome,
    HandoffSnapshot,
    HandoffStatus,
    RerouteInput,
    handoff_id,
    handoff_workflow_id,
)
from domain.project import Decision, Phase, ProjectOutcome, ProjectStatus
from domain.proposal import Proposal
from domain.roles import Role
from storage.models import Document, Handoff, Notification, Project
from storage.seed import add_user
from tests.support import (
    PM,
    answer_handoff,
    assert_eventually,
    decide_gate,
    handoff_offered,
    listed,
    pass_gate,
    proposal,
    review_round,
    start_project,
    wait_until,
)
from web import temporal_ui
from workflows.handoff import HandoffWorkflow
from workflows.project import ProjectWorkflow, workflow_id_for

SECONDS_PER_DAY = 0.05
BRIEF = HandoffBrief(
    results_summary="Diamond NV-centre magnetometer array holds 2 pT/sqrt(Hz) at sea state 4.",
    deliverables=["Prototype array (6 units)", "Field trial dataset, Sagami Bay"],
    ip_terms="Royalty-free licence for public use; the consortium keeps civil rights.",
    contacts=["Dr. Aoki, Tokai Quantum Consortium"],
)


def two_stage(**overrides: Any) -> Proposal:
    """TRL 6 -> 7 -> 9 in two short stages: the second one starts at TRL 7 (demonstration)."""
    stages = [
        {"name": "Demonstration", "trl_in": 6, "trl_out": 7, "duration_days": 10, "budget": 100_000_000,
         "tranches": [{"offset_days": 0, "amount": 100_000_000}]},
        {"name": "Implementation", "trl_in": 7, "trl_out": 9, "duration_days": 10, "budget": 100_000_000,
         "tranches": [{"offset_days": 0, "amount": 100_000_000}]},
    ]  # fmt: skip
    data: dict[str, Any] = {"start_trl": 6, "target_trl": 9, "total_budget": 200_000_000, "stages": stages}
    data.update(overrides)
    return proposal(**data)


async def last_go(client: Client, p: Proposal, gate_no: int) -> None:
    gate = await review_round(client, p, gate_no)
    await decide_gate(client, p, gate, GateDecisionInput(decided_by=PM, decision=Decision.GO, handoff=BRIEF))


async def rejected(call: Any, reason: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await call
    assert reason in str(err.value.cause)


@pytest.fixture
async def npa_liaison(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    async with sessionmaker.begin() as session:
        await add_user(session, "liaison.npa", "NPA liaison", "x" * 12, [Role.MINISTRY], "NPA")
    return "liaison.npa"


async def test_one_ministry_accepts_one_declines_and_is_rerouted_then_the_project_completes(
    local_client: Client,
    local_worker: Worker,
    task_queue: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    npa_liaison: str,
) -> None:
    p = two_stage(policy={"handoff": {"deadline_days": 400, "reminder_days": 400, "reroute_days": 400}})
    assert p.project_id is not None
    pid = p.project_id
    handle = await start_project(local_client, task_queue, p, seconds_per_day=SECONDS_PER_DAY)
    await pass_gate(local_client, p, 1)
    await last_go(local_client, p, 2)
    for m in ("MOD", "MLIT"):
        await handoff_offered(local_client, pid, m)

    accepted = await answer_handoff(local_client, pid, "MOD")
    assert accepted.status == HandoffStatus.ACCEPTED and accepted.receiving_programme == "MOD field trials programme"
    mlit = local_client.get_workflow_handle(handoff_workflow_id(pid, "MLIT", HandoffKind.FINAL))
    await rejected(
        mlit.execute_update(HandoffWorkflow.answer, HandoffAnswer(accept=False, answered_by="liaison.mlit")),
        "declining needs a reason",
    )
    await rejected(
        mlit.execute_update(HandoffWorkflow.answer, HandoffAnswer(accept=True, answered_by="liaison.mod")),
        "is not a liaison of MLIT",
    )
    declined = await answer_handoff(
        local_client,
        pid,
        "MLIT",
        HandoffAnswer(accept=False, answered_by="liaison.mlit", reason="Maritime sensing is the Coast Guard's remit"),
    )
    assert declined.status == HandoffStatus.DECLINED
    # Both answered, but a declined hand-off stays open to a re-route for the policy's window.
    snap = await wait_until(handle, lambda s: not s.handoffs_pending, "answers recorded")
    assert snap.phase == Phase.HANDOFF

    mlit_id = handoff_id(pid, "MLIT")
    await rejected(
        handle.execute_update(
            ProjectWorkflow.reroute_handoff, RerouteInput(handoff_id=mlit_id, to_ministry="NPA", requested_by="x")
        ),
        "only the project's programme manager",
    )
    await rejected(
        handle.execute_update(
            ProjectWorkflow.reroute_handoff,
            RerouteInput(handoff_id=handoff_id(pid, "MOD"), to_ministry="NPA", requested_by=PM),
        ),
        "only a declined or overdue hand-off can be re-routed",
    )
    run = await handle.execute_update(
        ProjectWorkflow.reroute_handoff, RerouteInput(handoff_id=mlit_id, to_ministry="NPA", requested_by=PM)
    )
    assert run.ministry == "NPA" and run.status == HandoffStatus.PENDING
    await handoff_offered(local_client, pid, "NPA")
    await answer_handoff(
        local_client,
        pid,
        "NPA",
        HandoffAnswer(accept=True, answered_by=npa_liaison, receiving_programme="NPA coastal security unit"),
    )
    outcome: ProjectOutcome = await handle.result()
    assert outcome.status == ProjectStatus.COMPLETED and outcome.public_use_achieved is True
    assert outcome.handoffs == {"MOD": "accepted", "MLIT": "declined", "NPA": "accepted"}
    # The run ends with its final status in its search attributes (a `ProjectStatus` query finds it).
    described = await handle.describe()
    assert described.typed_search_attributes.get(sa.PROJECT_STATUS) == "completed"

    async with sessionmaker() as session:
        project = await session.get(Project, pid)
        assert project is not None and project.status == "completed" and project.public_use_achieved is True
        rows = {h.ministry: h for h in (await session.scalars(select(Handoff).where(Handoff.project_id == pid))).all()}
        assert rows["MLIT"].status == "declined" and rows["MLIT"].rerouted_to == "NPA"
        assert rows["MLIT"].reason == "Maritime sensing is the Coast Guard's remit"
        assert rows["NPA"].rerouted_from == mlit_id and rows["NPA"].receiving_programme == "NPA coastal security unit"
        assert rows["MOD"].decided_by == rows["MOD"].accepted_by == "liaison.mod"
        # The package: rendered from the versioned template with the last Go's brief, stored with its hash.
        doc = await session.get(Document, rows["MOD"].document_id)
        assert doc is not None and doc.template == "handoff_package.v2.html.j2"
        for text in ("2 pT/sqrt(Hz)", "Prototype array (6 units)", "Royalty-free licence", "TRL 9", "liaison.mod"):
            assert text in doc.content, text
        kinds = {
            (n.recipient, n.kind)
            for n in (await session.scalars(select(Notification).where(Notification.project_id == pid))).all()
        }
        assert {
            ("liaison.mod", "handoff_offered"),
            ("liaison.mlit", "handoff_offered"),
            (npa_liaison, "handoff_offered"),
            (PM, "handoff_declined"),
            (PM, "handoff_accepted"),
        } <= kinds


async def test_an_unanswered_handoff_is_reminded_escalates_at_its_deadline_and_can_be_rerouted(
    local_client: Client,
    local_worker: Worker,
    task_queue: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    npa_liaison: str,
) -> None:
    p = two_stage(
        public_use_ministries=["MLIT"],
        policy={"handoff": {"deadline_days": 30, "reminder_days": 10, "reroute_days": 0}},
    )
    assert p.project_id is not None
    pid = p.project_id
    # Slower days here: two reminders two seconds apart must not run into the deadline on a busy CI box.
    handle = await start_project(local_client, task_queue, p, seconds_per_day=0.2)
    await pass_gate(local_client, p, 1)
    await last_go(local_client, p, 2)
    await handoff_offered(local_client, pid, "MLIT")
    child = local_client.get_workflow_handle(
        handoff_workflow_id(pid, "MLIT", HandoffKind.FINAL), result_type=HandoffOutcome
    )
    snap: HandoffSnapshot = await assert_eventually(
        lambda: child.query(HandoffWorkflow.snapshot), "the hand-off escalated", until=lambda s: s.escalated
    )
    assert snap.escalated and snap.reminders_sent == 2 and snap.status == HandoffStatus.PENDING
    # Ops' saved query for hand-offs past their deadline finds it, with its deadline in clear.
    query = f'{temporal_ui.overdue_handoffs_query()} AND {sa.PROJECT_ID.name}="{pid}"'
    await assert_eventually(lambda: listed(local_client, query), "listed overdue", until=lambda ids: ids == [child.id])
    deadline = (await child.describe()).typed_search_attributes.get(sa.HANDOFF_DEADLINE)
    assert deadline is not None and snap.deadline_at is not None
    assert abs((deadline - snap.deadline_at).total_seconds()) < 0.001
    await wait_until(handle, lambda s: "MLIT" in s.handoffs_pending, "still pending")
    async with sessionmaker() as session:
        row = await session.get(Handoff, handoff_id(pid, "MLIT"))
        assert row is not None and row.escalated_at is not None and row.status == "pending"
        notes = (await session.scalars(select(Notification).where(Notification.project_id == pid))).all()
        reminders = [n for n in notes if n.kind == "handoff_reminder"]
        assert [n.recipient for n in reminders] == ["liaison.mlit", "liaison.mlit"]
        [escalation] = [n for n in notes if n.kind == "handoff_escalated"]
        assert escalation.recipient == PM and "passed its deadline" in escalation.message
        assert escalation.at >= row.deadline_at  # on the workflow's own clock
    # The overdue hand-off is withdrawn and offered elsewhere; the new one is answered.
    await handle.execute_update(
        ProjectWorkflow.reroute_handoff,
        RerouteInput(handoff_id=handoff_id(pid, "MLIT"), to_ministry="NPA", requested_by=PM),
    )
    withdrawn = await child.result()
    assert withdrawn.status == HandoffStatus.REROUTED and withdrawn.escalated
    await handoff_offered(local_client, pid, "NPA")
    await answer_handoff(
        local_client,
        pid,
        "NPA",
        HandoffAnswer(accept=True, answered_by=npa_liaison, receiving_programme="NPA port security programme"),
    )
    outcome: ProjectOutcome = await handle.result()
    assert outcome.status == ProjectStatus.COMPLETED and outcome.public_use_achieved is True
    assert outcome.handoffs == {"MLIT": "rerouted", "NPA": "accepted"}


async def test_a_demonstration_handoff_from_trl_7_does_not_end_the_project(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    p = two_stage(public_use_ministries=["MLIT"])
    assert p.project_id is not None
    pid = p.project_id
    handle = await start_project(local_client, task_queue, p, seconds_per_day=SECONDS_PER_DAY)
    demo = DemoHandoffInput(ministry="MOD", requested_by=PM, brief=HandoffBrief(purpose="Fleet exercise, May"))
    await wait_until(handle, lambda s: s.phase == Phase.STAGE, "first stage")
    await rejected(handle.execute_update(ProjectWorkflow.start_demo_handoff, demo), "needs TRL 7")
    await pass_gate(local_client, p, 1)  # TRL 7: a system prototype in an operational environment

    run = await handle.execute_update(ProjectWorkflow.start_demo_handoff, demo)
    assert run.kind == HandoffKind.DEMONSTRATION and run.ministry == "MOD"
    await rejected(handle.execute_update(ProjectWorkflow.start_demo_handoff, demo), "already")
    await handoff_offered(local_client, pid, "MOD", HandoffKind.DEMONSTRATION)
    outcome = await answer_handoff(
        local_client,
        pid,
        "MOD",
        HandoffAnswer(accept=True, answered_by="liaison.mod", receiving_programme="JMSDF fleet exercise"),
        kind=HandoffKind.DEMONSTRATION,
    )
    assert outcome.kind == HandoffKind.DEMONSTRATION and outcome.status == HandoffStatus.ACCEPTED
    snap = await wait_until(handle, lambda s: not s.handoffs_pending, "demo recorded")
    assert snap.phase in (Phase.STAGE, Phase.GATE) and snap.status == ProjectStatus.ACTIVE  # the project goes on

    await last_go(local_client, p, 2)
    await handoff_offered(local_client, pid, "MLIT")
    await answer_handoff(local_client, pid, "MLIT")
    final: ProjectOutcome = await handle.result()
    assert final.status == ProjectStatus.COMPLETED and final.public_use_achieved is True
    assert final.handoffs == {"MLIT": "accepted"}  # the demonstration is not the final hand-off
    async with sessionmaker() as session:
        rows = (await session.scalars(select(Handoff).where(Handoff.project_id == pid))).all()
        assert {(h.ministry, h.kind, h.status) for h in rows} == {
            ("MOD", "demonstration", "accepted"),
            ("MLIT", "final", "accepted"),
        }
        package = await session.get(Document, f"{handoff_id(pid, 'MOD', HandoffKind.DEMONSTRATION)}-package")
        assert package is not None and "demonstration use" in package.content and "TRL 7" in package.content
        assert "Fleet exercise, May" in package.content
    project_wf = await local_client.get_workflow_handle(workflow_id_for(pid)).describe()
    assert project_wf.status is not None and project_wf.status.name == "COMPLETED"
