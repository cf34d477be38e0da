"""The project workflow: one durable workflow carries a funded project through its TRL stages.

Per stage: reserve its budget, pay its tranches when due, then run the gate review as its own
workflow and carry out its decision. After the last Go the work is handed off to the public-use
ministries. Kill and terminate run one clean stop. The workflow continues as new at every stage
boundary, so a ten-year project never grows a long history.

This class keeps `run`, continue-as-new and the main loop; its handlers live in one module per
concern, composed as base classes: live_view (status query, search attributes), holds (holds,
conditions), money and reports (tranches, reports, four eyes), gates (decisions), handoffs, stop.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.projects import ProjectActivities, RegisterProjectInput, SetStatusInput
    from domain.programme import PROGRAMME_CODE
    from domain.project import Phase, ProjectOutcome, ProjectStatus, ProjectWorkflowInput
from workflows.project.gates import GateDecisions
from workflows.project.reports import MoneyUpdates
from workflows.project.stop import Stop


def workflow_id_for(project_id: str) -> str:
    return f"project-{project_id}"


@workflow.defn
class ProjectWorkflow(GateDecisions, MoneyUpdates, Stop):
    @workflow.init
    def __init__(self, input: ProjectWorkflowInput) -> None:
        super().__init__(input)

    @workflow.run
    async def run(self, input: ProjectWorkflowInput) -> ProjectOutcome:
        try:
            return await self._live()
        except (asyncio.CancelledError, ActivityError) as err:
            # A cancel that lands while an activity runs arrives as that activity's cancellation.
            cancelled = isinstance(err, asyncio.CancelledError) or isinstance(err.cause, CancelledError)
            if self.state.phase == Phase.DONE or not cancelled:
                raise
            # A cancel from the Temporal UI or CLI stops the project the same clean way as any
            # other stop (the request is delivered once; the stop's activities run after it), and
            # the workflow then completes with the terminated outcome, as the database says.
            if self.gate_child is not None and not self.gate_child.done():
                self.gate_child.cancel()  # the open review round ends with the project
                try:
                    await self.gate_child
                except (asyncio.CancelledError, ChildWorkflowError):
                    pass
            if self.state.stop_reason is None:
                self.state.stop_reason = "Cancelled from Temporal (UI or CLI)"
            await self._stop()
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self._outcome()

    async def _live(self) -> ProjectOutcome:
        if self.state.phase == Phase.REGISTERING:
            self._today()  # day 0 of the programme calendar
            await self._act(
                ProjectActivities.register_project,
                RegisterProjectInput(
                    programme_code=PROGRAMME_CODE,
                    workflow_id=workflow.info().workflow_id,
                    proposal=self.proposal,
                    command=self.input.command,
                ),
            )
            if await self._reserve_stage():
                self._enter_stage()
        elif self.state.hold is not None:
            # A run that starts on hold (continued as new while holding) says so in the database
            # again, in case the previous run ended before its status write completed.
            await self._act(
                ProjectActivities.set_status,
                SetStatusInput(project_id=self.project_id, status=ProjectStatus.ON_HOLD, reason=self.state.hold.reason),
            )
        self._publish()
        self._watch_conditions_if_pending()
        self._watch_report_years()

        while self.state.phase in (Phase.STAGE, Phase.GATE) and not self.stopping:
            if self.state.phase == Phase.STAGE:
                if await self._run_stage() == "continue":
                    await self._continue_as_new()
                if self.stopping:
                    break
                self.state.phase = Phase.GATE
                self._publish()
            await self._run_gate()
            if self.stopping or self.state.phase not in (Phase.STAGE, Phase.GATE):
                break
            # A new stage, a recycled stage, or the gate's next round after a hold: each begins
            # with a fresh history.
            await self._continue_as_new()

        if self.state.phase == Phase.HANDOFF and not self.stopping:
            await self._run_handoffs()
        if self.stopping:
            await self._stop()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._outcome()

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        # The programme settings (four eyes, reports) travel with the state into the next run.
        workflow.continue_as_new(self.input.model_copy(update={"state": self.state}))
