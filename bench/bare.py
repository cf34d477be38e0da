"""The baseline: workflows with the project lifecycle's shape (same activities, local activities,
Updates, child workflows and continue-as-new points) and none of its work: every activity is a no-op."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

GATE_UPDATES = 8  # open, three acceptances, three reviews, the decision


class BarePhase(BaseModel):
    main_activities: int
    gate: bool = False
    after_gate_activities: int = 0
    update_activities: list[int] = []  # Updates on the parent, each running this many local activities
    handoffs: int = 0  # hand-off child workflows: an activity, an Update with an activity, a signal back
    continue_as_new: bool = False


class BareInput(BaseModel):
    phases: list[BarePhase]
    phase: int = 0


class BareUpdate(BaseModel):
    phase: int
    seq: int


# The real lifecycle with the default plan (tranches 3/3/2/2), three reviewers and two ministries:
# 22 activities on the project, a gate round per stage (1 activity, 8 Updates with a local activity
# each), continue-as-new after the first three gates, then one hand-off workflow per ministry (an
# activity, the liaison's Update with an activity, a signal to the project).
LIFECYCLE_SHAPE = BareInput(
    phases=[
        BarePhase(main_activities=5, gate=True, after_gate_activities=2, continue_as_new=True),
        BarePhase(main_activities=3, gate=True, after_gate_activities=2, continue_as_new=True),
        BarePhase(main_activities=2, gate=True, after_gate_activities=2, continue_as_new=True),
        BarePhase(main_activities=2, gate=True, after_gate_activities=1),
        BarePhase(main_activities=1, handoffs=2),
        BarePhase(main_activities=1),
    ],
)


@activity.defn
async def noop(n: int) -> int:
    return n


async def _noop(n: int) -> None:
    await workflow.execute_activity(noop, n, start_to_close_timeout=timedelta(seconds=30))


async def _noop_locally(n: int) -> None:
    await workflow.execute_local_activity(noop, n, start_to_close_timeout=timedelta(seconds=30))


@workflow.defn
class BareGateWorkflow:
    """A gate round's shape: one activity, then Updates that each write through a local activity."""

    def __init__(self) -> None:
        self.received: set[int] = set()
        self.open = False

    @workflow.run
    async def run(self) -> int:
        await _noop(0)
        self.open = True
        await workflow.wait_condition(lambda: len(self.received) == GATE_UPDATES)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return len(self.received)

    @workflow.update
    async def step(self, seq: int) -> int:
        if seq in self.received:
            raise ApplicationError("duplicate", non_retryable=True)
        self.received.add(seq)
        await _noop_locally(seq)
        return len(self.received)

    @step.validator
    def _validate(self, seq: int) -> None:
        if not self.open:
            raise ApplicationError("not open", non_retryable=True)


@workflow.defn
class BareHandoffWorkflow:
    """A hand-off's shape: prepare (an activity), the liaison's answer (an Update writing through an
    activity), then a signal to the parent."""

    def __init__(self) -> None:
        self.answered = False
        self.open = False

    @workflow.run
    async def run(self, parent: str) -> int:
        await _noop(0)
        self.open = True
        await workflow.wait_condition(lambda: self.answered)
        await workflow.get_external_workflow_handle(parent).signal("handoff_done")
        return 1

    @workflow.update
    async def answer(self, n: int) -> int:
        await _noop(n)
        self.answered = True
        return n

    @answer.validator
    def _validate(self, n: int) -> None:
        if not self.open or self.answered:
            raise ApplicationError("not open", non_retryable=True)


@workflow.defn
class BareWorkflow:
    @workflow.init
    def __init__(self, input: BareInput) -> None:
        self.input = input
        self.phase = input.phase
        self.open = False
        self.received: set[int] = set()
        self.handoffs_done = 0

    @workflow.signal
    def handoff_done(self) -> None:
        self.handoffs_done += 1

    @workflow.run
    async def run(self, input: BareInput) -> int:
        while self.phase < len(input.phases):
            spec = input.phases[self.phase]
            for n in range(spec.main_activities):
                await _noop(n)
            if spec.gate:
                await workflow.execute_child_workflow(
                    BareGateWorkflow.run, id=f"{workflow.info().workflow_id}-gate-{self.phase}"
                )
                for n in range(spec.after_gate_activities):
                    await _noop(n)
            for k in range(spec.handoffs):
                await workflow.start_child_workflow(
                    BareHandoffWorkflow.run,
                    workflow.info().workflow_id,
                    id=f"{workflow.info().workflow_id}-handoff-{k}",
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                )
            await workflow.wait_condition(lambda n=spec.handoffs: self.handoffs_done >= n)  # type: ignore[misc]
            self.received = set()
            self.open = bool(spec.update_activities)
            expected = len(spec.update_activities)
            await workflow.wait_condition(lambda n=expected: len(self.received) == n)  # type: ignore[misc]
            self.open = False
            if spec.continue_as_new:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(input.model_copy(update={"phase": self.phase + 1}))
            self.phase += 1
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.phase

    @workflow.update
    async def step(self, update: BareUpdate) -> int:
        if update.seq in self.received:
            raise ApplicationError("duplicate", non_retryable=True)
        self.received.add(update.seq)
        for n in range(self.input.phases[self.phase].update_activities[update.seq]):
            await _noop_locally(n)
        return len(self.received)

    @step.validator
    def _validate(self, update: BareUpdate) -> None:
        if not self.open or update.phase != self.phase:
            raise ApplicationError("not open", non_retryable=True)

    @workflow.update
    async def ping(self, n: int) -> int:
        """A minimal Update: validated, handled, returned; the latency floor."""
        return n
