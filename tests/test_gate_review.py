"""The gate review workflow on its own: deadlines, conflicts of interest, independence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.gate_review import (
    EvidenceInput,
    ExtendDeadlineInput,
    GateDecisionInput,
    InvitationResponse,
    InviteInput,
    MemberStatus,
    ReassignInput,
    ReviewPhase,
)
from domain.policy import GatePolicy
from domain.programme import PROGRAMME_CODE
from domain.project import Decision
from domain.proposal import Proposal
from domain.roles import Role
from gates.definitions import gate_for_stage
from storage.models import GateEvent, Notification, ReviewTask
from storage.projects import insert_project
from storage.seed import add_user
from tests.support import PM, proposal, review_for
from tests.unit.gate_inputs import gate_one_input
from worker import build_worker
from workflows.gate_review import GateReviewWorkflow, gate_workflow_id


async def start_gate(
    client: Client,
    task_queue: str,
    sm: async_sessionmaker[AsyncSession],
    policy: GatePolicy,
    seconds_per_day: float,
    panel: list[str] | None = None,
) -> tuple[Proposal, WorkflowHandle[Any, Any]]:
    p = proposal()
    assert p.project_id is not None
    async with sm.begin() as session:
        await insert_project(session, PROGRAMME_CODE, f"project-{p.project_id}", p)
    handle = await client.start_workflow(
        GateReviewWorkflow.run,
        gate_one_input(p, policy, seconds_per_day, panel),
        id=gate_workflow_id(p.project_id, 1, 1),
        task_queue=task_queue,
    )
    return p, handle


async def accept(handle: WorkflowHandle[Any, Any], reviewer: str) -> None:
    await handle.execute_update(GateReviewWorkflow.respond, InvitationResponse(reviewer=reviewer, accept=True))


async def refused(coro: Any, message: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await coro
    assert message in str(err.value.cause), err.value.cause


async def test_reminders_and_escalation_follow_a_moved_deadline(
    time_skipping_env: WorkflowEnvironment, sessionmaker: async_sessionmaker[AsyncSession], task_queue: str
) -> None:
    env = time_skipping_env
    policy = GatePolicy(review_days=60, reminder_days_before=[14, 3], require_evidence=False)
    async with build_worker(env.client, task_queue, sessionmaker):
        p, handle = await start_gate(env.client, task_queue, sessionmaker, policy, seconds_per_day=86400.0)
        for reviewer in p.reviewers:
            await accept(handle, reviewer)
        await handle.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.ito"))
        await env.sleep(timedelta(days=50))  # past the first reminder (day 46), before the deadline (day 60)
        extended = await handle.execute_update(
            GateReviewWorkflow.extend_deadline, ExtendDeadlineInput(requested_by=PM, extra_days=30)
        )
        assert extended.overdue is False
        await env.sleep(timedelta(days=45))  # past the new deadline (day 90)
        view = await handle.query(GateReviewWorkflow.view, PM)
        assert view.overdue is True and view.pending == ["rev.kato", "rev.mori"]
        desc = await handle.describe()
        assert desc.typed_search_attributes.get(_overdue_key()) is True

    async with sessionmaker() as session:
        opened = await session.scalar(
            select(GateEvent.at).where(GateEvent.project_id == p.project_id, GateEvent.kind == "review_opened")
        )
        notes = (await session.scalars(select(Notification).where(Notification.project_id == p.project_id))).all()
    assert opened is not None
    timed = [n for n in notes if n.kind != "invitation"]
    assert sorted(n.recipient for n in notes if n.kind == "invitation") == sorted(p.reviewers)  # asked once each
    fired = sorted({(n.kind, round((n.at - opened).total_seconds() / 86400)) for n in timed})
    # Old deadline (day 60): the 14-day reminder at day 46 went out; the 3-day one (day 57) and the
    # escalation (day 60) were moved by the extension to day 76, day 87 and day 90.
    assert fired == [("escalation", 90), ("reminder", 46), ("reminder", 76), ("reminder", 87)]
    reminded = {n.recipient for n in notes if n.kind == "reminder"}
    assert reminded == {"rev.kato", "rev.mori"}  # rev.ito had reviewed: no reminder for them
    assert [n.recipient for n in notes if n.kind == "escalation"] == [PM]


def _overdue_key() -> Any:
    from domain import search_attributes as sa

    return sa.GATE_OVERDUE


async def test_conflict_of_interest_recuses_and_a_replacement_completes_the_panel(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker.begin() as session:
        await add_user(session, "rev.abe", "Abe Kaito (Reviewer)", "pw-12345678", [Role.REVIEWER])
    p, handle = await start_gate(local_client, task_queue, sessionmaker, GatePolicy(), seconds_per_day=0.01)
    definition = gate_for_stage(1, p.stage_plan[0])
    evidence = EvidenceInput(
        submitted_by=PM,
        claimed_trl=3,
        deliverables=["Stage report", "TRL 3 test evidence"],
        criteria_evidence={c.key: f"see report section {i}" for i, c in enumerate(definition.must_meet, 1)},
    )
    await refused(
        handle.execute_update(GateReviewWorkflow.submit_evidence, evidence.model_copy(update={"claimed_trl": 2})),
        "claimed TRL 2 is below this gate's exit TRL 3",
    )
    await refused(
        handle.execute_update(GateReviewWorkflow.submit_evidence, evidence),
        "deliverables missing from the evidence package: Next-stage plan",
    )
    evidence = evidence.model_copy(update={"deliverables": [*evidence.deliverables, "Next-stage plan"]})
    await handle.execute_update(GateReviewWorkflow.submit_evidence, evidence)

    # Before declaring, an invited reviewer sees no material.
    assert (await handle.query(GateReviewWorkflow.view, "rev.ito")).evidence is None
    await refused(
        handle.execute_update(
            GateReviewWorkflow.respond, InvitationResponse(reviewer="rev.ito", accept=True, conflict_of_interest=True)
        ),
        "needs a statement",
    )
    await handle.execute_update(
        GateReviewWorkflow.respond,
        InvitationResponse(
            reviewer="rev.ito", accept=True, conflict_of_interest=True, statement="Former employee of the performer"
        ),
    )
    recused = await handle.query(GateReviewWorkflow.view, "rev.ito")
    assert recused.evidence is None  # never receives the material
    assert (await handle.query(GateReviewWorkflow.view, PM)).vacancies == 1
    await refused(handle.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.ito")), "recused")
    await refused(
        handle.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.kato")), "accept the invitation"
    )
    await refused(handle.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "mallory")), "not your task")

    await accept(handle, "rev.kato")
    await accept(handle, "rev.mori")
    assert (await handle.query(GateReviewWorkflow.view, "rev.kato")).evidence == evidence
    await handle.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.kato"))
    await handle.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.mori"))
    await refused(
        handle.execute_update(GateReviewWorkflow.decide, GateDecisionInput(decided_by=PM, decision=Decision.GO)),
        "2 reviews are in and the quorum is 3; still to review: nobody (fill the vacancy)",
    )
    await refused(
        handle.execute_update(GateReviewWorkflow.invite, InviteInput(invited_by="rev.kato", reviewer="rev.abe")),
        "only the project's programme manager",
    )
    filled = await handle.execute_update(GateReviewWorkflow.invite, InviteInput(invited_by=PM, reviewer="rev.abe"))
    assert filled.vacancies == 0 and filled.pending == ["rev.abe"]
    await refused(
        handle.execute_update(GateReviewWorkflow.invite, InviteInput(invited_by=PM, reviewer="rev.ito")),
        "has been on this panel already (recused)",
    )
    await accept(handle, "rev.abe")
    await handle.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.abe"))
    outcome = await handle.execute_update(
        GateReviewWorkflow.decide, GateDecisionInput(decided_by=PM, decision=Decision.GO)
    )
    assert outcome.reviews == 3 and outcome.recommendation.decision == Decision.GO
    assert (await handle.result()).decision.decision == Decision.GO
    with pytest.raises(RPCError, match="already completed"):  # the panel has closed: no amendments
        await handle.execute_update(GateReviewWorkflow.amend_review, review_for(p, 1, "rev.abe", score=5))

    async with sessionmaker() as session:
        statuses = dict(
            (
                await session.execute(
                    select(ReviewTask.reviewer, ReviewTask.status).where(ReviewTask.project_id == p.project_id)
                )
            ).all()
        )
    assert statuses == {"rev.ito": "recused", "rev.kato": "submitted", "rev.mori": "submitted", "rev.abe": "submitted"}


async def test_reviews_are_independent_until_submitted(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    policy = GatePolicy(require_evidence=False)
    p, handle = await start_gate(local_client, task_queue, sessionmaker, policy, seconds_per_day=0.01)
    for reviewer in p.reviewers:
        await accept(handle, reviewer)
    await handle.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.ito", score=5))
    await handle.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.kato", score=2))
    before = await handle.query(GateReviewWorkflow.view, "rev.mori")
    assert before.reviews == [] and before.recommendation is None and before.phase == ReviewPhase.REVIEWING
    after_own = await handle.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.mori", score=3))
    assert {r.reviewer for r in after_own.reviews} == {"rev.ito", "rev.kato", "rev.mori"}
    assert after_own.recommendation is not None
    # Amending until the panel closes; the amendment is kept as a new version.
    amended = await handle.execute_update(GateReviewWorkflow.amend_review, review_for(p, 1, "rev.kato", score=4))
    assert next(r for r in amended.reviews if r.reviewer == "rev.kato").scores["team"] == 4
    assert {m.reviewer: m.status for m in amended.members}["rev.kato"] == MemberStatus.ACCEPTED
    await handle.execute_update(GateReviewWorkflow.decide, GateDecisionInput(decided_by=PM, decision=Decision.GO))


async def test_a_silent_reviewer_is_reassigned(
    local_client: Client, local_worker: Worker, task_queue: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker.begin() as session:
        await add_user(session, "rev.abe", "Abe Kaito (Reviewer)", "pw-12345678", [Role.REVIEWER])
    p, handle = await start_gate(local_client, task_queue, sessionmaker, GatePolicy(require_evidence=False), 0.01)
    for reviewer in ("rev.ito", "rev.kato"):
        await accept(handle, reviewer)
        await handle.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, reviewer))
    await refused(
        handle.execute_update(
            GateReviewWorkflow.reassign, ReassignInput(requested_by=PM, from_reviewer="rev.ito", to_reviewer="rev.abe")
        ),
        "rev.ito is not a silent panel member",
    )
    view = await handle.execute_update(
        GateReviewWorkflow.reassign, ReassignInput(requested_by=PM, from_reviewer="rev.mori", to_reviewer="rev.abe")
    )
    assert {m.reviewer: m.status for m in view.members}["rev.mori"] == MemberStatus.REASSIGNED
    assert view.pending == ["rev.abe"]
    await refused(
        handle.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.mori")), "no longer on the panel"
    )
    await accept(handle, "rev.abe")
    await handle.execute_update(GateReviewWorkflow.submit_review, review_for(p, 1, "rev.abe"))
    outcome = await handle.execute_update(
        GateReviewWorkflow.decide, GateDecisionInput(decided_by=PM, decision=Decision.GO)
    )
    assert outcome.reviews == 3
    async with sessionmaker() as session:
        statuses = dict(
            (
                await session.execute(
                    select(ReviewTask.reviewer, ReviewTask.status).where(ReviewTask.project_id == p.project_id)
                )
            ).all()
        )
    assert statuses == {
        "rev.ito": "submitted",
        "rev.kato": "submitted",
        "rev.mori": "reassigned",
        "rev.abe": "submitted",
    }
