"""The one clean stop (release money, cancel what is open, report) and the people's stops:
terminate and the performer's withdrawal."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.money import MoneyActivities, ReleaseInput
    from activities.projects import CloseOutInput, ProjectActivities
    from domain.command import Command
    from domain.project import Phase, ProjectStatus, StopResult, TerminateInput, WithdrawInput
    from workflows.common import keyed, rejected
from workflows.project.handoffs import Handoffs


class Stop(Handoffs):
    async def _stop(self) -> None:
        """The one clean stop: release unpaid money, cancel what is open, report, set the status."""
        assert self.state.stop_reason is not None
        self.state.phase = Phase.CLOSING
        self._publish()
        await self._withdraw_handoffs()
        released = await self._act(
            MoneyActivities.release_reservations,
            ReleaseInput(project_id=self.project_id, booked_on=self._today(), command=self.state.stop_command),
        )
        closed = await self._act(
            ProjectActivities.close_out,
            CloseOutInput(
                project_id=self.project_id,
                reason=self.state.stop_reason,
                trl=self.state.trl,
                stage_no=self.state.stage_index + 1,
                lessons=self.state.lessons,
            ),
        )
        self.state.status = ProjectStatus.TERMINATED
        self.state.phase = Phase.DONE
        self.state.stop_result = StopResult(
            status=ProjectStatus.TERMINATED,
            reason=self.state.stop_reason,
            released=released.released,
            closeout_document_id=closed.document_id,
        )
        self._publish()

    @workflow.update
    async def terminate(self, request: TerminateInput) -> StopResult:
        reason = f"Terminated by {request.requested_by}: {request.reason}"
        return await self._stop_on_request(reason, request.lessons, request.command)

    async def _stop_on_request(self, reason: str, lessons: str, command: Command | None) -> StopResult:
        """A person's stop: the main loop runs the one clean stop; the caller gets its result."""
        async with self.lock:
            self._require_not_stopping()  # a twin stop (terminate, withdraw) got there first
            self.state.stop_reason = reason
            self.state.lessons = lessons
            self.state.stop_command = keyed(command)
        await workflow.wait_condition(lambda: self.state.stop_result is not None)
        assert self.state.stop_result is not None
        return self.state.stop_result

    @terminate.validator
    def _validate_terminate(self, request: TerminateInput) -> None:
        self._require_not_stopping()

    @workflow.update
    async def withdraw(self, request: WithdrawInput) -> StopResult:
        reason = f"Withdrawn by the performer ({request.requested_by}): {request.reason}"
        return await self._stop_on_request(reason, request.lessons, request.command)

    @withdraw.validator
    def _validate_withdraw(self, request: WithdrawInput) -> None:
        self._require_not_stopping()
        if self.proposal.performer is None or request.requested_by != self.proposal.performer:
            raise rejected(f"only the project's performer withdraws from {self.project_id}")
