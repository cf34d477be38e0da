"""What every part of the project workflow shares: its carried state, the programme clock, typed
activity calls, notices and the refusals common to several Updates."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.gate_reviews import GateReviewActivities, NotifyInput
    from domain.gate_review import GateOutcome
    from domain.programme_clock import ProgrammeClock, started_clock
    from domain.project import Phase, ProjectState, ProjectWorkflowInput
    from domain.proposal import Classification, StagePlan
    from gates.definitions import GateDefinition, gate_for_stage
    from workflows.common import ACTIVITY_RETRY, ACTIVITY_TIMEOUT, rejected
    from workflows.gate_review import GateReviewWorkflow

A = TypeVar("A")  # an activity's input
R = TypeVar("R")  # and its result


class ProjectBase:
    def __init__(self, input: ProjectWorkflowInput) -> None:
        self.input = input
        self.proposal = input.proposal
        self.project_id = input.project_id
        self.state = input.state or ProjectState(trl=input.proposal.start_trl)
        self.stage_detail = ""  # what the stage waits for now (next tranche, or its planned end)
        self.stage_due: Callable[[], datetime] | None = None  # when that falls due (holds move it)
        self.watcher: asyncio.Task[None] | None = None
        self.report_watcher: asyncio.Task[None] | None = None
        # Money Updates whose write is in flight: a concurrent twin is refused until it lands.
        self.in_flight: set[str] = set()
        self.gate_child: workflow.ChildWorkflowHandle[GateReviewWorkflow, GateOutcome] | None = None
        self.handoff_changes = 0  # bumped by every hand-off signal, so waits re-check
        self.applying: str | None = None  # the gate/round whose decision is being carried out
        # Validators of Updates delivered together all run before any handler: a handler takes
        # this lock, re-checks what a twin may have changed meanwhile, then acts (samples-python's
        # safe message handlers). Never held while waiting on the main loop.
        self.lock = asyncio.Lock()

    @property
    def closed(self) -> bool:
        """Closed (保全) work: free text stays out of what the Temporal UI shows in clear."""
        return self.proposal.classification == Classification.CLOSED

    @property
    def stopping(self) -> bool:
        return self.state.stop_reason is not None

    @property
    def plan(self) -> list[StagePlan]:
        return self.proposal.stage_plan

    @property
    def stage(self) -> StagePlan:
        return self.plan[self.state.stage_index]

    def _gate_definition(self) -> GateDefinition:
        return gate_for_stage(self.state.stage_index + 1, self.stage)

    @property
    def clock(self) -> ProgrammeClock:
        return ProgrammeClock(self.state.calendar.origin, self.state.calendar.start, self.input.seconds_per_day)

    def _today(self) -> date:
        """Today on the project's programme calendar (fiscal years and report deadlines use it);
        the first call starts the calendar, so only the main loop and handlers call it."""
        if not self.clock.started:
            started = started_clock(workflow.now(), self.proposal.start_date, self.input.seconds_per_day)
            self.state.calendar.origin, self.state.calendar.start = started.origin, started.start
        return self.clock.day(workflow.now())

    def _calendar_day(self, moment: datetime) -> date:
        """The programme date of a moment; writes nothing, so queries and validators may use it."""
        return self.clock.day(moment)

    def _enter_stage(self) -> None:
        self.state.phase = Phase.STAGE
        self.state.calendar.stage_started_at = workflow.now()
        self.state.money.tranches_paid = []
        self.stage_due = None

    def _days(self, days: int) -> timedelta:
        return self.clock.days(days)

    def _at_day(self, days: int) -> datetime:
        assert self.state.calendar.stage_started_at is not None
        return self.clock.at_day(self.state.calendar.stage_started_at, days, self.state.calendar.paused_seconds)

    async def _sleep_until(self, when: Callable[[], datetime]) -> None:
        """A durable timer that a stop cancels (so no timer fires after a stop) and a hold pauses
        (the target moves by the time spent on hold)."""
        while not self.stopping:
            if self.state.hold is not None:
                await workflow.wait_condition(lambda: self.state.hold is None or self.stopping)
                continue
            delay = (when() - workflow.now()).total_seconds()
            if delay <= 0:
                return
            try:
                await workflow.wait_condition(lambda: self.stopping or self.state.hold is not None, timeout=delay)
            except TimeoutError:
                return

    async def _wait_until(self, text: str, due: Callable[[], datetime]) -> None:
        """Say what the stage waits for, dated on the programme calendar, and wait for it."""
        self.stage_due = due
        self._stage_detail(f"{text} {self._calendar_day(due()):%Y-%m-%d}")
        await self._sleep_until(due)

    def _stage_detail(self, text: str) -> None:
        self.stage_detail = text
        workflow.set_current_details(text)

    def _stage_label(self, stage_no: int) -> str:
        return f"Stage {stage_no}" if self.closed else f"Stage {stage_no} ({self.stage.name})"

    async def _notify(self, recipient: str, kind: str, key: str, message: str, *, local: bool = False) -> None:
        note = NotifyInput(
            key=key, project_id=self.project_id, recipient=recipient, kind=kind, message=message, at=workflow.now()
        )
        if local:
            await self._act_locally(GateReviewActivities.notify, note)
        else:
            await self._act(GateReviewActivities.notify, note)

    async def _act(self, method: Callable[[Any, A], Awaitable[R]], arg: A) -> R:
        return await workflow.execute_activity_method(
            method, arg, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=ACTIVITY_RETRY
        )

    async def _act_locally(self, method: Callable[[Any, A], Awaitable[R]], arg: A) -> R:
        """For the short writes an Update handler makes while its caller waits (a reviewer's
        HTTP request): a local activity runs in this worker without a round trip to the server.
        """
        return await workflow.execute_local_activity_method(
            method, arg, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=ACTIVITY_RETRY
        )

    def _require_pm(self, who: str, what: str) -> None:
        if who != self.proposal.programme_manager:
            raise rejected(f"only the project's programme manager ({self.proposal.programme_manager}) {what}")

    def _require_not_stopping(self) -> None:
        if self.stopping or self.state.phase in (Phase.CLOSING, Phase.DONE):
            raise rejected(f"project {self.project_id} is already {self.state.status.value} or stopping")
