"""Hand-offs: one hand-off workflow per public-use ministry after the last Go (demonstrations from
TRL 7), their signals, re-routes and the programme manager's conclusion."""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import FailureError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.handoffs import HandoffActivities, RecordAnswerInput
    from activities.projects import CompleteProjectInput, ProjectActivities, SetStatusInput
    from domain import search_attributes as sa
    from domain.command import Command
    from domain.handoff import (
        DEMO_MIN_TRL,
        RESOLVED,
        DemoHandoffInput,
        HandoffBrief,
        HandoffInput,
        HandoffKind,
        HandoffOutcome,
        HandoffRun,
        HandoffStatus,
        HandoffWithdrawal,
        RerouteInput,
        handoff_id,
        handoff_workflow_id,
    )
    from domain.project import ConcludeHandoffsInput, Phase, ProjectOutcome, ProjectStatus
    from workflows.common import keyed, rejected, start_attributes
    from workflows.handoff import HandoffWorkflow
from workflows.project.live_view import LiveView


class Handoffs(LiveView):
    async def _run_handoffs(self) -> None:
        """The last Go: one hand-off workflow per public-use ministry, in parallel. The project
        completes when every hand-off (demonstrations too) is resolved and a declined one has had
        its re-route window; its final status says whether public use was achieved."""
        self.state.status = ProjectStatus.HANDOFF
        await self._act(
            ProjectActivities.set_status,
            SetStatusInput(project_id=self.project_id, status=ProjectStatus.HANDOFF, reason="last gate passed"),
        )
        brief = self.state.handoffs.brief or HandoffBrief()
        await asyncio.gather(
            *(
                self._start_handoff(ministry, HandoffKind.FINAL, brief)
                for ministry in self.proposal.public_use_ministries
                if handoff_id(self.project_id, ministry) not in self.state.handoffs.runs
            )
        )
        self._publish()
        while not self.stopping:
            if not all(r.status in RESOLVED for r in self.state.handoffs.runs.values()):
                await self._handoff_change()
                continue
            window_ends = self._reroute_window_ends()
            if window_ends is None or workflow.now() >= window_ends:
                break
            await self._handoff_change(until=window_ends)
        if self.stopping:
            return
        achieved = any(
            r.kind == HandoffKind.FINAL and r.status == HandoffStatus.ACCEPTED
            for r in self.state.handoffs.runs.values()
        )
        await self._act(
            ProjectActivities.complete_project,
            CompleteProjectInput(
                project_id=self.project_id,
                trl=self.state.trl,
                public_use_achieved=achieved,
                command=self.state.handoffs.conclude_command,
            ),
        )
        self.state.handoffs.public_use_achieved = achieved
        self.state.status = ProjectStatus.COMPLETED
        self.state.phase = Phase.DONE
        self._publish()

    async def _handoff_change(self, until: datetime | None = None) -> None:
        """Wait for a hand-off signal or Update (or a stop), at most until `until`."""
        seen = self.handoff_changes
        timeout = (until - workflow.now()).total_seconds() if until is not None else None
        try:
            await workflow.wait_condition(lambda: self.stopping or self.handoff_changes != seen, timeout=timeout)
        except TimeoutError:
            pass

    def _reroute_window_ends(self) -> datetime | None:
        """A declined final hand-off stays open to a re-route for the policy's days (with timers
        off, not at all)."""
        declined = [
            r.resolved_at
            for r in self.state.handoffs.runs.values()
            if r.kind == HandoffKind.FINAL
            and r.status == HandoffStatus.DECLINED
            and r.rerouted_to is None
            and r.resolved_at is not None
        ]
        if not declined or self.input.seconds_per_day == 0 or self.state.handoffs.concluded:
            return None
        return max(declined) + self._days(self.proposal.policy.handoff.reroute_days)

    async def _start_handoff(
        self,
        ministry: str,
        kind: HandoffKind,
        brief: HandoffBrief,
        rerouted_from: str | None = None,
        command: Command | None = None,
    ) -> HandoffRun:
        wid = handoff_workflow_id(self.project_id, ministry, kind)
        run = HandoffRun(ministry=ministry, kind=kind, workflow_id=wid, brief=brief)
        self.state.handoffs.runs[handoff_id(self.project_id, ministry, kind)] = run
        # Abandoned, not terminated, when this run continues as new: a demonstration hand-off
        # outlives the stage it began in and reports to the project's current run by signal.
        await workflow.start_child_workflow(
            HandoffWorkflow.run,
            HandoffInput(
                project_id=self.project_id,
                ministry=ministry,
                kind=kind,
                trl=self.state.trl,
                brief=brief,
                programme_manager=self.proposal.programme_manager,
                parent_workflow_id=workflow.info().workflow_id,
                seconds_per_day=self.input.seconds_per_day,
                policy=self.proposal.policy.handoff,
                rerouted_from=rerouted_from,
                redact=self.closed,
                command=command,
            ),
            id=wid,
            parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=f"{self.project_id}: {kind.value} hand-off to {ministry}",
            search_attributes=start_attributes([sa.PROJECT_ID.value_set(self.project_id)]),
        )
        return run

    async def _withdraw_handoffs(self) -> None:
        """A stop withdraws every open hand-off: no liaison is asked or reminded after it."""
        for run in self.state.handoffs.runs.values():
            if run.status != HandoffStatus.PENDING:
                continue
            try:
                await workflow.get_external_workflow_handle(run.workflow_id).signal(
                    HandoffWorkflow.withdraw,
                    HandoffWithdrawal(status=HandoffStatus.CANCELLED, reason="The project stopped"),
                )
            except FailureError:
                pass  # it had ended already

    @workflow.signal
    def handoff_changed(self, outcome: HandoffOutcome) -> None:
        """From a hand-off workflow: it escalated (still pending) or it was resolved."""
        run = self.state.handoffs.runs.get(outcome.handoff_id)
        if run is None or run.status != HandoffStatus.PENDING:
            return
        run.escalated = run.escalated or outcome.escalated
        if outcome.status != HandoffStatus.PENDING:
            run.status = outcome.status
            run.receiving_programme = outcome.receiving_programme
            run.reason = outcome.reason
            run.resolved_at = workflow.now()
        self.handoff_changes += 1
        workflow.set_current_details(self._waiting_for())

    @workflow.update
    async def reroute_handoff(self, request: RerouteInput) -> HandoffRun:
        async with self.lock:
            self._require_not_stopping()
            return await self._reroute(self._reroutable(request), request)  # a twin re-routed it first

    async def _reroute(self, old: HandoffRun, request: RerouteInput) -> HandoffRun:
        command = keyed(request.command)  # recorded by the first write: the decline's, or the new hand-off's
        old.rerouted_to = request.to_ministry
        if old.status == HandoffStatus.PENDING:  # overdue: withdraw it first
            await workflow.get_external_workflow_handle(old.workflow_id).signal(
                HandoffWorkflow.withdraw,
                HandoffWithdrawal(
                    status=HandoffStatus.REROUTED,
                    reason=f"re-routed to {request.to_ministry} by {request.requested_by}",
                    rerouted_to=request.to_ministry,
                ),
            )
        else:  # declined: the record says where it went
            await self._act_locally(
                HandoffActivities.record_answer,
                RecordAnswerInput(
                    handoff_id=request.handoff_id,
                    status=old.status,
                    by=request.requested_by,
                    rerouted_to=request.to_ministry,
                    at=workflow.now(),
                    command=command,
                ),
            )
        run = await self._start_handoff(
            request.to_ministry, old.kind, old.brief, rerouted_from=request.handoff_id, command=command
        )
        self.handoff_changes += 1
        self._publish()
        return run

    @reroute_handoff.validator
    def _validate_reroute(self, request: RerouteInput) -> None:
        self._require_pm(request.requested_by, "re-routes its hand-offs")
        self._require_not_stopping()
        self._reroutable(request)

    def _reroutable(self, request: RerouteInput) -> HandoffRun:
        old = self.state.handoffs.runs.get(request.handoff_id)
        if old is None:
            raise rejected(f"project {self.project_id} has no hand-off {request.handoff_id}")
        if old.rerouted_to is not None:
            raise rejected(f"hand-off {request.handoff_id} was already re-routed to {old.rerouted_to}")
        if not (old.status == HandoffStatus.DECLINED or (old.status == HandoffStatus.PENDING and old.escalated)):
            raise rejected(
                f"only a declined or overdue hand-off can be re-routed; {request.handoff_id} is {old.status.value}"
            )
        if request.to_ministry == old.ministry:
            raise rejected(f"hand-off {request.handoff_id} already went to {old.ministry}")
        if handoff_id(self.project_id, request.to_ministry, old.kind) in self.state.handoffs.runs:
            raise rejected(
                f"project {self.project_id} has a {old.kind.value} hand-off to {request.to_ministry} already"
            )
        return old

    @workflow.update
    async def start_demo_handoff(self, request: DemoHandoffInput) -> HandoffRun:
        async with self.lock:
            self._require_not_stopping()
            self._no_demo_yet(request.ministry)  # a twin started it first
            run = await self._start_handoff(
                request.ministry, HandoffKind.DEMONSTRATION, request.brief, command=keyed(request.command)
            )
        self._publish()
        return run

    @start_demo_handoff.validator
    def _validate_demo(self, request: DemoHandoffInput) -> None:
        self._require_pm(request.requested_by, "hands it off for demonstration")
        self._require_not_stopping()
        if self.state.phase not in (Phase.STAGE, Phase.GATE):
            raise rejected(
                f"project {self.project_id} is in its {self.state.phase.value} phase: no demonstration hand-off"
            )
        if self.state.trl < DEMO_MIN_TRL:
            raise rejected(
                f"a demonstration hand-off needs TRL {DEMO_MIN_TRL}; {self.project_id} is at TRL {self.state.trl}"
            )
        self._no_demo_yet(request.ministry)

    def _no_demo_yet(self, ministry: str) -> None:
        if handoff_id(self.project_id, ministry, HandoffKind.DEMONSTRATION) in self.state.handoffs.runs:
            raise rejected(f"{self.project_id} has a demonstration hand-off to {ministry} already")

    @workflow.update
    async def conclude_handoffs(self, request: ConcludeHandoffsInput) -> ProjectOutcome:
        async with self.lock:
            self._require_not_stopping()
            if self.state.handoffs.concluded:  # a twin concluded them first: its command is the one audited
                raise rejected(f"the hand-offs of {self.project_id} are concluded already")
            self.state.handoffs.concluded = True
            self.state.handoffs.conclude_command = keyed(request.command)
            self.handoff_changes += 1
        await workflow.wait_condition(lambda: self.state.phase == Phase.DONE)
        return self._outcome()

    @conclude_handoffs.validator
    def _validate_conclude(self, request: ConcludeHandoffsInput) -> None:
        self._require_pm(request.requested_by, "concludes its hand-offs")
        self._require_not_stopping()
        if self.state.phase != Phase.HANDOFF or not self.state.handoffs.runs:
            raise rejected(f"project {self.project_id} is not handing off (phase {self.state.phase.value})")
        if pending := self._handoffs_pending():
            raise rejected(f"hand-offs are still open: {', '.join(pending)}; wait for them or re-route them")
