"""The baseline: a workflow with the project lifecycle's shape (same activities, same Updates,
same continue-as-new points) and none of its work: every activity is a no-op."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError


class BarePhase(BaseModel):
    main_activities: int
    update_activities: list[int]  # per Update of the phase, how many activities its handler runs


class BareInput(BaseModel):
    phases: list[BarePhase]
    phase: int = 0
    continue_as_new_after: list[int] = []


class BareUpdate(BaseModel):
    phase: int
    seq: int


# The real lifecycle with the default plan (tranches 3/3/2/2), three reviewers and two ministries:
# 39 activities and 18 Updates, continuing as new after each of the first three gates.
LIFECYCLE_SHAPE = BareInput(
    phases=[
        BarePhase(main_activities=6, update_activities=[1, 1, 1, 0]),
        BarePhase(main_activities=6, update_activities=[1, 1, 1, 0]),
        BarePhase(main_activities=5, update_activities=[1, 1, 1, 0]),
        BarePhase(main_activities=5, update_activities=[1, 1, 1, 0]),
        BarePhase(main_activities=2, update_activities=[1, 1]),
        BarePhase(main_activities=1, update_activities=[]),
    ],
    continue_as_new_after=[0, 1, 2],
)


@activity.defn
async def noop(n: int) -> int:
    return n


@workflow.defn
class BareWorkflow:
    @workflow.init
    def __init__(self, input: BareInput) -> None:
        self.input = input
        self.phase = input.phase
        self.open = False
        self.received: set[int] = set()

    async def _noop(self, n: int) -> None:
        await workflow.execute_activity(noop, n, start_to_close_timeout=timedelta(seconds=30))

    async def _noop_locally(self, n: int) -> None:
        await workflow.execute_local_activity(noop, n, start_to_close_timeout=timedelta(seconds=30))

    @workflow.run
    async def run(self, input: BareInput) -> int:
        while self.phase < len(input.phases):
            spec = input.phases[self.phase]
            for n in range(spec.main_activities):
                await self._noop(n)
            self.received = set()
            self.open = bool(spec.update_activities)
            expected = len(spec.update_activities)
            await workflow.wait_condition(lambda n=expected: len(self.received) == n)  # type: ignore[misc]
            self.open = False
            if self.phase in input.continue_as_new_after:
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
        # As in the real workflow, an Update handler's write is a local activity.
        for n in range(self.input.phases[self.phase].update_activities[update.seq]):
            await self._noop_locally(n)
        return len(self.received)

    @workflow.update
    async def ping(self, n: int) -> int:
        """A minimal Update: validated, handled, returned; the latency floor."""
        return n

    @step.validator
    def _validate(self, update: BareUpdate) -> None:
        if not self.open or update.phase != self.phase:
            raise ApplicationError("not open", non_retryable=True)

    @workflow.query
    def current_phase(self) -> int:
        return self.phase
