"""The gate review workflow alone, on the time-skipping server, with its activities faked in
memory (no database): what it records, whom it notifies, what it refuses."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.gate_reviews import NotifyInput
from domain.gate_review import (
    GateDecisionInput,
    GateEvent,
    GateEventKind,
    InvitationResponse,
    ReviewPhase,
)
from domain.policy import GatePolicy
from domain.project import Decision
from tests.support import PM, REVIEWERS, proposal, review_for
from tests.unit.gate_inputs import gate_one_input
from workflows.gate_review import GateReviewWorkflow, gate_workflow_id


@dataclass
class FakeGateStore:
    """Stands for GateReviewActivities: keeps what the workflow writes, in order."""

    events: list[GateEvent] = field(default_factory=list)
    notes: list[NotifyInput] = field(default_factory=list)

    def activities(self) -> list[Any]:
        @activity.defn(name="record_gate_event")
        async def record_gate_event(event: GateEvent) -> bool:
            self.events.append(event)
            return True

        @activity.defn(name="notify")
        async def notify(note: NotifyInput) -> bool:
            self.notes.append(note)
            return True

        return [record_gate_event, notify]

    def kinds(self) -> list[GateEventKind]:
        return [e.kind for e in self.events]


@dataclass
class Round:
    env: WorkflowEnvironment
    store: FakeGateStore
    handle: WorkflowHandle[GateReviewWorkflow, Any]
    project: Any

    async def accept_all(self) -> None:
        for reviewer in REVIEWERS:
            await self.handle.execute_update(
                GateReviewWorkflow.respond, InvitationResponse(reviewer=reviewer, accept=True)
            )

    async def review(self, reviewer: str, **options: Any) -> None:
        await self.handle.execute_update(
            GateReviewWorkflow.submit_review, review_for(self.project, 1, reviewer, **options)
        )


@pytest.fixture
async def gate_round(unit_time_skipping: WorkflowEnvironment) -> AsyncIterator[Round]:
    """A round of gate 1 with the demo panel, on real days: the review opens at once (no evidence
    needed), a reminder is due 3 days before the 10-day deadline."""
    env, store, task_queue = unit_time_skipping, FakeGateStore(), f"unit-gate-{uuid.uuid4().hex[:8]}"
    p = proposal()
    assert p.project_id is not None
    policy = GatePolicy(review_days=10, reminder_days_before=[3], require_evidence=False)
    async with Worker(env.client, task_queue=task_queue, workflows=[GateReviewWorkflow], activities=store.activities()):
        handle = await env.client.start_workflow(
            GateReviewWorkflow.run,
            gate_one_input(p, policy, seconds_per_day=86400.0, panel=REVIEWERS),
            id=gate_workflow_id(p.project_id, 1, 1),
            task_queue=task_queue,
        )
        yield Round(env, store, handle, p)
        if (await handle.describe()).close_time is None:  # left open by the test: end it with the worker
            await handle.terminate("test over")


async def test_a_full_round_closes_with_the_decision(gate_round: Round) -> None:
    await gate_round.accept_all()
    for reviewer in REVIEWERS:
        await gate_round.review(reviewer)
    outcome = await gate_round.handle.execute_update(
        GateReviewWorkflow.decide, GateDecisionInput(decided_by=PM, decision=Decision.GO)
    )
    assert outcome.decision.decision == Decision.GO and outcome.reviews == 3
    assert (await gate_round.handle.result()) == outcome
    kinds = gate_round.store.kinds()
    # The answers' writes wait for the round's rows ("opened"), and may land before or after the
    # review's opening: the order of those two is not the workflow's to fix.
    assert kinds[0] == GateEventKind.OPENED and kinds[-1] == GateEventKind.CLOSED
    assert Counter(kinds) == {
        GateEventKind.OPENED: 1,
        GateEventKind.REVIEW_OPENED: 1,
        GateEventKind.RESPONDED: 3,
        GateEventKind.REVIEW: 3,
        GateEventKind.CLOSED: 1,
    }
    assert gate_round.store.notes == []  # decided well before any reminder


async def test_a_review_before_accepting_is_refused_without_a_trace(gate_round: Round) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await gate_round.review("rev.ito")
    assert "must accept the invitation and declare conflicts of interest first" in str(err.value.cause)
    view = await gate_round.handle.query(GateReviewWorkflow.view, PM)
    assert view.reviews == [] and view.pending == REVIEWERS
    assert GateEventKind.REVIEW not in gate_round.store.kinds()


async def test_reminder_then_escalation_of_an_overdue_review(gate_round: Round) -> None:
    await gate_round.accept_all()
    await gate_round.review("rev.ito")
    await gate_round.env.sleep(timedelta(days=8))  # past the reminder on day 7
    assert [n.kind for n in gate_round.store.notes] == ["reminder", "reminder"]
    await gate_round.env.sleep(timedelta(days=3))  # past the deadline on day 10
    view = await gate_round.handle.query(GateReviewWorkflow.view, PM)
    assert view.overdue is True and view.phase == ReviewPhase.REVIEWING
    sent = [(n.kind, n.recipient) for n in gate_round.store.notes]
    assert sent == [("reminder", "rev.kato"), ("reminder", "rev.mori"), ("escalation", PM)]
    assert "still to review: rev.kato, rev.mori" in gate_round.store.notes[-1].message


async def test_a_complete_panel_past_the_deadline_asks_the_pm_for_the_decision(gate_round: Round) -> None:
    await gate_round.accept_all()
    await gate_round.review("rev.ito")
    await gate_round.env.sleep(timedelta(days=8))  # past the reminder on day 7: the deadline is next
    for reviewer in ("rev.kato", "rev.mori"):
        await gate_round.review(reviewer)
    await gate_round.env.sleep(timedelta(days=3))  # past the deadline on day 10, undecided
    sent = [(n.kind, n.recipient) for n in gate_round.store.notes]
    assert sent == [("reminder", "rev.kato"), ("reminder", "rev.mori"), ("decision_needed", PM)]
    assert "every review is in: your decision is needed" in gate_round.store.notes[-1].message


async def test_a_panel_complete_early_still_asks_for_a_late_decision(gate_round: Round) -> None:
    await gate_round.accept_all()
    for reviewer in REVIEWERS:  # all in on day 0, before any reminder
        await gate_round.review(reviewer)
    await gate_round.env.sleep(timedelta(days=9))
    assert gate_round.store.notes == []  # nobody to remind, the decision not late yet
    await gate_round.env.sleep(timedelta(days=2))  # past the deadline on day 10, undecided
    assert [(n.kind, n.recipient) for n in gate_round.store.notes] == [("decision_needed", PM)]


async def test_twin_reviews_from_one_reviewer_store_one(gate_round: Round) -> None:
    await gate_round.accept_all()
    results = await asyncio.gather(
        gate_round.review("rev.ito", score=5), gate_round.review("rev.ito", score=2), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, WorkflowUpdateFailedError)]
    assert len(refused) == 1 and "already reviewed" in str(refused[0].cause)
    assert gate_round.store.kinds().count(GateEventKind.REVIEW) == 1


async def test_a_late_failing_amendment_never_lets_a_go_through(gate_round: Round) -> None:
    await gate_round.accept_all()
    # A must-meet criterion holds on a strict majority: two of three say it is met, so Go is open
    # until rev.ito's amendment makes it one of three.
    await gate_round.review("rev.ito")
    await gate_round.review("rev.kato", must_meet=False)
    await gate_round.review("rev.mori")
    failing = review_for(gate_round.project, 1, "rev.ito", must_meet=False)
    amend = gate_round.handle.execute_update(GateReviewWorkflow.amend_review, failing)
    decide = gate_round.handle.execute_update(
        GateReviewWorkflow.decide, GateDecisionInput(decided_by=PM, decision=Decision.GO)
    )
    amended, decided = await asyncio.gather(amend, decide, return_exceptions=True)
    if isinstance(decided, BaseException):  # the amendment came first: no Go on a failed must-meet
        assert isinstance(decided, WorkflowUpdateFailedError) and "Go is not allowed" in str(decided.cause)
        assert not isinstance(amended, BaseException)
    else:  # the decision came first: the panel closed and the amendment is refused
        assert isinstance(amended, WorkflowUpdateFailedError | RPCError)
        assert decided.recommendation.failed_must_meet == []
