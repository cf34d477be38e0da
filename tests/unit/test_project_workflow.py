"""The project workflow on the time-skipping test server with MOCKED activities and child
workflows (as samples-python tests workflows): no database, no dev server. Each path runs in a
few seconds of wall time however many programme days it spans."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.gate_reviews import NotifyInput
from activities.gates import RecordDecisionInput
from activities.money import (
    PayTrancheInput,
    PayTrancheResult,
    RecordReportInput,
    ReleaseInput,
    ReleaseResult,
    ReserveStageInput,
    ReserveStageResult,
)
from activities.projects import (
    CloseOutInput,
    CloseOutResult,
    CompleteProjectInput,
    RegisterProjectInput,
    SetStatusInput,
)
from domain import search_attributes as sa
from domain.fiscal import fiscal_year
from domain.gate_review import GateDecisionInput, GateOutcome, GateReviewInput
from domain.handoff import HandoffInput, HandoffOutcome, HandoffStatus, HandoffWithdrawal, handoff_id
from domain.project import (
    Decision,
    DecisionRef,
    MoneySnapshot,
    Phase,
    ProgressReportInput,
    ProjectOutcome,
    ProjectSnapshot,
    ProjectState,
    ProjectStatus,
    ProjectWorkflowInput,
    Recommendation,
    ReportReviewInput,
    ResumeInput,
    TerminateInput,
    WithdrawInput,
)
from domain.proposal import Proposal
from tests.support import PM, proposal, wait_until
from workflows.project import ProjectWorkflow

CALLS: list[tuple[str, Any]] = []  # what the fakes were asked to do, in order (activities run here)


def called(name: str) -> list[Any]:
    return [arg for n, arg in CALLS if n == name]


@activity.defn(name="register_project")
async def register_project(input: RegisterProjectInput) -> None:
    CALLS.append(("register_project", input.proposal.project_id))


@activity.defn(name="reserve_stage")
async def reserve_stage(input: ReserveStageInput) -> ReserveStageResult:
    CALLS.append(("reserve_stage", input.stage_no))
    return ReserveStageResult(amount=input.amount, created=True)


@activity.defn(name="pay_tranche")
async def pay_tranche(input: PayTrancheInput) -> PayTrancheResult:
    CALLS.append(("pay_tranche", (input.stage_no, input.tranche_no)))
    return PayTrancheResult(transaction_id=1, amount=input.amount, created=True)


@activity.defn(name="set_status")
async def set_status(input: SetStatusInput) -> None:
    CALLS.append(("set_status", input.status))


@activity.defn(name="notify")
async def notify(note: NotifyInput) -> bool:
    CALLS.append(("notify", note.kind))
    return True


@activity.defn(name="record_decision")
async def record_decision(input: RecordDecisionInput) -> None:
    CALLS.append(("record_decision", (input.gate_no, input.round, input.decision)))


@activity.defn(name="release_reservations")
async def release_reservations(input: ReleaseInput) -> ReleaseResult:
    CALLS.append(("release_reservations", input.project_id))
    return ReleaseResult(released=123)


@activity.defn(name="close_out")
async def close_out(input: CloseOutInput) -> CloseOutResult:
    CALLS.append(("close_out", input.reason))
    return CloseOutResult(document_id=f"{input.project_id}-closeout", tasks_cancelled=0, handoffs_cancelled=0)


@activity.defn(name="complete_project")
async def complete_project(input: CompleteProjectInput) -> None:
    CALLS.append(("complete_project", input.public_use_achieved))


REFUSE_NEXT_REVIEW: list[bool] = []  # set by a test: the next report review's write is refused


@activity.defn(name="record_report")
async def record_report(input: RecordReportInput) -> None:
    CALLS.append(("record_report", (input.fiscal_year, input.status)))
    if input.status != "submitted" and REFUSE_NEXT_REVIEW:
        REFUSE_NEXT_REVIEW.clear()
        raise ApplicationError("refused by the ledger", non_retryable=True)


FAKE_ACTIVITIES = [
    record_report,
    register_project,
    reserve_stage,
    pay_tranche,
    set_status,
    notify,
    record_decision,
    release_reservations,
    close_out,
    complete_project,
]


@workflow.defn(name="GateReviewWorkflow", sandboxed=False)
class FakeGateReview:
    """A gate round that returns whatever decision the test sends it."""

    def __init__(self) -> None:
        self.decision: GateDecisionInput | None = None

    @workflow.run
    async def run(self, input: GateReviewInput) -> GateOutcome:
        await workflow.wait_condition(lambda: self.decision is not None)
        assert self.decision is not None
        rec = Recommendation(decision=Decision.GO, weighted_score=4.0, failed_must_meet=[], reviews=3)
        return GateOutcome(
            gate_no=input.gate_no, round=input.round, decision=self.decision, recommendation=rec, reviews=3
        )

    @workflow.signal
    def decide(self, decision: GateDecisionInput) -> None:
        self.decision = decision


@workflow.defn(name="HandoffWorkflow", sandboxed=False)
class FakeHandoff:
    """A ministry that accepts at once, telling the project as the real hand-off does."""

    @workflow.run
    async def run(self, input: HandoffInput) -> None:
        outcome = HandoffOutcome(
            handoff_id=handoff_id(input.project_id, input.ministry, input.kind),
            ministry=input.ministry,
            kind=input.kind,
            status=HandoffStatus.ACCEPTED,
        )
        await workflow.get_external_workflow_handle(input.parent_workflow_id).signal("handoff_changed", outcome)

    @workflow.signal
    def withdraw(self, withdrawal: HandoffWithdrawal) -> None:
        pass


@pytest.fixture
def env(unit_time_skipping: WorkflowEnvironment) -> WorkflowEnvironment:
    return unit_time_skipping


@pytest.fixture
async def worker(env: WorkflowEnvironment) -> AsyncIterator[str]:
    CALLS.clear()
    task_queue = f"unit-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[ProjectWorkflow, FakeGateReview, FakeHandoff],
        activities=FAKE_ACTIVITIES,
    ):
        yield task_queue


def one_stage(**overrides: Any) -> Proposal:
    """TRL 7 to 9 in one stage of 100 days, one tranche at its start."""
    stage = {"duration_days": 100, "budget": 100_000_000, "tranches": [{"offset_days": 0, "amount": 100_000_000}]}
    return proposal(
        start_trl=7,
        target_trl=9,
        total_budget=100_000_000,
        stages=[{"name": "Implementation", "trl_in": 7, "trl_out": 9, **stage}],
        **overrides,
    )


async def start(client: Client, task_queue: str, p: Proposal) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        ProjectWorkflow.run,
        ProjectWorkflowInput(proposal=p, seconds_per_day=60, progress_reports=False),
        id=f"project-{p.project_id}",
        task_queue=task_queue,
    )


async def decide(
    env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], decision: Decision, **terms: Any
) -> ProjectSnapshot:
    snap = await wait_until(handle, lambda s: s.gate_workflow_id is not None, "the gate opening", env=env)
    assert snap.gate_workflow_id is not None
    gate = env.client.get_workflow_handle(snap.gate_workflow_id)
    await gate.signal(FakeGateReview.decide, GateDecisionInput(decided_by=PM, decision=decision, **terms))
    return snap


async def test_a_go_at_the_last_gate_starts_the_hand_offs_and_completes(env: WorkflowEnvironment, worker: str) -> None:
    p = one_stage()
    handle = await start(env.client, worker, p)
    await decide(env, handle, Decision.GO)
    carried: ProjectSnapshot = await handle.execute_update(
        ProjectWorkflow.decision_carried_out, DecisionRef(gate_no=1, round=1)
    )
    assert "1/1" in carried.applied and carried.trl == 9
    outcome: ProjectOutcome = await handle.result()
    assert outcome.status == ProjectStatus.COMPLETED and outcome.public_use_achieved is True
    assert outcome.handoffs == {"MOD": "accepted", "MLIT": "accepted"}
    assert called("reserve_stage") == [1] and called("pay_tranche") == [(1, 1)]
    assert called("record_decision") == [(1, 1, Decision.GO)]
    assert called("set_status") == [ProjectStatus.HANDOFF]
    assert called("complete_project") == [True]
    assert not called("release_reservations")  # no stop ran


async def test_a_kill_runs_the_one_clean_stop(env: WorkflowEnvironment, worker: str) -> None:
    p = one_stage()
    handle = await start(env.client, worker, p)
    await decide(env, handle, Decision.KILL, justification="Overtaken", lessons="Look earlier")
    outcome: ProjectOutcome = await handle.result()
    assert outcome.status == ProjectStatus.TERMINATED and outcome.stop is not None
    assert outcome.stop.reason == f"Killed at gate 1 by {PM}: Overtaken"
    assert outcome.stop.released == 123 and outcome.stop.closeout_document_id == f"{p.project_id}-closeout"
    names = [n for n, _ in CALLS]
    assert names[-3:] == ["record_decision", "release_reservations", "close_out"]
    # Once the stop has ended the workflow, the decision's Update finds it completed (the API then
    # reads the final state by query).
    with pytest.raises(RPCError) as ended:
        await handle.execute_update(ProjectWorkflow.decision_carried_out, DecisionRef(gate_no=1, round=1))
    assert ended.value.status == RPCStatusCode.NOT_FOUND
    final: ProjectSnapshot = await handle.query(ProjectWorkflow.status)
    assert final.phase == Phase.DONE


async def test_a_hold_waits_for_the_pm_then_the_gate_reviews_again(env: WorkflowEnvironment, worker: str) -> None:
    p = one_stage()
    handle = await start(env.client, worker, p)
    await decide(env, handle, Decision.HOLD, justification="Budget review")
    held: ProjectSnapshot = await handle.execute_update(
        ProjectWorkflow.decision_carried_out, DecisionRef(gate_no=1, round=1)
    )
    assert held.on_hold and held.status == ProjectStatus.ON_HOLD and "Budget review" in held.waiting_for
    resumed: ProjectSnapshot = await handle.execute_update(ProjectWorkflow.resume, ResumeInput(requested_by=PM))
    assert not resumed.on_hold and resumed.status == ProjectStatus.ACTIVE
    # The next round runs in a fresh run (continued as new) as its own gate workflow.
    latest = env.client.get_workflow_handle(handle.id)
    second = await wait_until(
        latest, lambda s: s.gate_round == 2 and s.gate_workflow_id is not None, "round 2", env=env
    )
    assert second.gate_workflow_id is not None and second.gate_workflow_id.endswith("-r2")
    assert called("set_status") == [ProjectStatus.ON_HOLD, ProjectStatus.ACTIVE]
    await latest.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))


async def test_a_closed_projects_operational_text_names_neither_stage_nor_money(
    env: WorkflowEnvironment, worker: str
) -> None:
    """The current details are shown in the Temporal UI: a closed project's say what it waits for
    in generic words (its budget and stage names are closed)."""
    p = one_stage(classification="closed", label={"level": "SECRET", "compartments": ["QS"]})
    handle = await env.client.start_workflow(
        ProjectWorkflow.run,
        ProjectWorkflowInput(proposal=p, seconds_per_day=60, progress_reports=False, four_eyes_threshold=1),
        id=f"project-{p.project_id}",
        task_queue=worker,
    )
    held = await wait_until(handle, lambda s: "four-eyes" in s.waiting_for, "the tranche awaiting four eyes", env=env)
    assert held.waiting_for == "Stage 1: tranche 1 waits for four-eyes approval by finance"
    await handle.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))


async def test_validators_refuse_without_a_trace(env: WorkflowEnvironment, worker: str) -> None:
    p = one_stage(performer="perf.aoki")
    handle = await start(env.client, worker, p)
    await wait_until(handle, lambda s: s.phase != Phase.REGISTERING, "the stage starting", env=env)

    async def refused(update: Any, arg: Any, message: str) -> None:
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(update, arg)
        assert message in str(err.value.cause)

    await refused(ProjectWorkflow.resume, ResumeInput(requested_by=PM), "is not on hold")
    await refused(ProjectWorkflow.resume, ResumeInput(requested_by="mallory"), "only the project's programme manager")
    await refused(
        ProjectWorkflow.withdraw, WithdrawInput(requested_by=PM, reason="not mine"), "only the project's performer"
    )
    await refused(ProjectWorkflow.decision_carried_out, DecisionRef(gate_no=3, round=1), "no decision at gate 3")
    history = await handle.fetch_history()
    assert not [e for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")]
    await handle.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))
    assert (await handle.result()).status == ProjectStatus.TERMINATED


async def test_a_refused_report_review_leaves_the_report_open_to_review_again(
    env: WorkflowEnvironment, worker: str
) -> None:
    """The write of a review fails for good (a business refusal): the report is not left marked
    "being reviewed right now", and the programme manager's next review goes through."""
    p = one_stage(performer="perf.aoki")
    handle = await env.client.start_workflow(
        ProjectWorkflow.run,
        ProjectWorkflowInput(proposal=p, seconds_per_day=60, progress_reports=True),
        id=f"project-{p.project_id}",
        task_queue=worker,
    )
    snap = await wait_until(
        handle,
        lambda s: s.phase != Phase.REGISTERING and s.money is not None and s.money.programme_date,
        "stage 1",
        env=env,
    )
    assert snap.money is not None and snap.money.calendar_start is not None
    # The first year: however far a skip moved the clock (a yearly report-due timer lets the
    # test server skip on), a year the project has reported in.
    fy = fiscal_year(snap.money.calendar_start)
    await handle.execute_update(
        ProjectWorkflow.submit_report,
        ProgressReportInput(fiscal_year=fy, summary="Prototype built and tested", submitted_by="perf.aoki"),
    )
    review = ReportReviewInput(fiscal_year=fy, accept=True, reviewed_by=PM)
    REFUSE_NEXT_REVIEW.append(True)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(ProjectWorkflow.review_report, review)
    money: MoneySnapshot = await handle.execute_update(ProjectWorkflow.review_report, review)
    assert money.reports[fy] == "accepted"
    assert called("record_report") == [(fy, "submitted"), (fy, "accepted"), (fy, "accepted")]
    await handle.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))


def test_the_fakes_stand_for_real_activities() -> None:
    """A fake named unlike the real activity would leave the workflow waiting on a missing one."""
    from activities.gate_reviews import GateReviewActivities
    from activities.gates import GateActivities
    from activities.money import MoneyActivities
    from activities.projects import ProjectActivities

    classes = (GateReviewActivities, GateActivities, MoneyActivities, ProjectActivities)
    real = {
        d.name
        for cls in classes
        for member in vars(cls).values()
        if (d := activity._Definition.from_callable(member)) is not None
    }
    fakes = {d.name for fn in FAKE_ACTIVITIES if (d := activity._Definition.from_callable(fn)) is not None}
    assert len(fakes) == len(FAKE_ACTIVITIES) and fakes <= real


@pytest.mark.parametrize("filed", [False, True])
async def test_the_performer_is_told_when_a_years_report_falls_due(
    env: WorkflowEnvironment, worker: str, filed: bool
) -> None:
    """FY2026 ends six days after the project starts: its report is then due, and the performer
    hears of it at once (not only when a tranche is held), unless it was filed already."""
    p = one_stage(performer="perf.aoki", start_date="2027-03-26")
    handle = await env.client.start_workflow(
        ProjectWorkflow.run,
        ProjectWorkflowInput(proposal=p, seconds_per_day=60, progress_reports=True),
        id=f"project-{p.project_id}",
        task_queue=worker,
    )
    await wait_until(handle, lambda s: s.phase == Phase.STAGE, "stage 1")
    if filed:
        await handle.execute_update(
            ProjectWorkflow.submit_report,
            ProgressReportInput(fiscal_year=2026, summary="Prototype built and tested", submitted_by="perf.aoki"),
        )
    assert "report_due" not in called("notify")
    await env.sleep(timedelta(seconds=11 * 60))  # eleven programme days: FY2027 has begun
    snap: ProjectSnapshot = await handle.query(ProjectWorkflow.status)
    assert snap.money is not None and snap.money.programme_date is not None
    assert snap.money.programme_date.isoformat() >= "2027-04-01"
    for _ in range(100):  # the notice is an activity: give it a moment to run
        if filed or "report_due" in called("notify"):
            break
        await asyncio.sleep(0.05)
    assert called("notify").count("report_due") == (0 if filed else 1)
    await handle.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))


# The reconciliation's attributes (StageNo, Phase, TranchesPaid) are another patch's, upserted as
# they change too (tests/test_reconcile_paged.py): left out here.
PROJECT_KEYS = {v.key.name for v in sa.project_values(proposal(), "KP-X", ProjectState(trl=1))}


def upserted_keys(history: Any) -> list[set[str]]:
    """The project's attributes each upsert in a history set (upserts of none of them left out)."""
    found = [
        set(e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields) & PROJECT_KEYS
        for e in history.events
        if e.HasField("upsert_workflow_search_attributes_event_attributes")
    ]
    return [keys for keys in found if keys]


async def test_search_attributes_are_set_at_start_and_upserted_only_when_they_change(
    env: WorkflowEnvironment, worker: str
) -> None:
    """Given at start (as the API starts a project), the project's attributes are not upserted
    again, neither in its first run nor in the run it continues as new; a gate round gets its
    unchanging ones at its start. What changes (the stage and TRL after a Go) is upserted, alone."""
    p = proposal()
    first = await env.client.start_workflow(
        ProjectWorkflow.run,
        ProjectWorkflowInput(proposal=p, seconds_per_day=60, progress_reports=False),
        id=f"project-{p.project_id}",
        task_queue=worker,
        search_attributes=sa.project_start(p),
    )
    snap = await decide(env, first, Decision.GO)
    assert snap.gate_workflow_id is not None
    gate = await env.client.get_workflow_handle(snap.gate_workflow_id).describe()
    assert gate.typed_search_attributes.get(sa.GATE_NO) == 1
    assert gate.typed_search_attributes.get(sa.PROJECT_ID) == p.project_id
    latest = env.client.get_workflow_handle(first.id)
    await wait_until(latest, lambda s: s.stage_index == 1, "the second stage", env=env)
    # The Go changed the stage and the TRL, nothing else; the run it continued as new started with
    # the attributes as they were and has nothing to upsert.
    first_run = env.client.get_workflow_handle(first.id, run_id=first.result_run_id)
    assert upserted_keys(await first_run.fetch_history()) == [{"Stage", "TRL"}]  # the Go's alone
    assert upserted_keys(await latest.fetch_history()) == []
    described = (await latest.describe()).typed_search_attributes
    assert described.get(sa.STAGE) == p.stage_plan[1].name and described.get(sa.TRL) == p.stage_plan[1].trl_in
    assert described.get(sa.PROJECT_ID) == p.project_id and described.get(sa.PROGRAMME_MANAGER) == PM
    await latest.execute_update(ProjectWorkflow.terminate, TerminateInput(requested_by=PM, reason="test over"))
