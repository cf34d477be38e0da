"""Holds and a Conditional Go's conditions: entering and waiting out a hold, the conditions'
watcher, and the programme manager's resume and verification Updates."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.gate_reviews import GateReviewActivities
    from activities.projects import ProjectActivities, SetStatusInput
    from domain.gate_review import ConditionsVerified
    from domain.programme_clock import paused_after_hold
    from domain.project import (
        Conditions,
        HoldState,
        Phase,
        ProjectSnapshot,
        ProjectStatus,
        ResumeInput,
        VerifyConditionsInput,
    )
    from workflows.common import keyed, rejected
from workflows.project.live_view import LiveView


class Holds(LiveView):
    async def _enter_hold(self, reason: str) -> None:
        self.state.hold = HoldState(since=workflow.now(), reason=reason)
        self.state.status = ProjectStatus.ON_HOLD
        await self._act(
            ProjectActivities.set_status,
            SetStatusInput(project_id=self.project_id, status=ProjectStatus.ON_HOLD, reason=reason),
        )
        self._publish()

    async def _wait_out_hold(self) -> None:
        """Funding and stage timers pause until the programme manager resumes; past the programme's
        limit the project stops cleanly. (With timers off, seconds_per_day 0, there is no limit.)"""
        hold = self.state.hold
        assert hold is not None
        limit_at = self.clock.hold_limit(hold.since, self.proposal.policy.max_hold_days)
        timeout = (limit_at - workflow.now()).total_seconds() if limit_at is not None else None
        try:
            await workflow.wait_condition(
                lambda: hold.resumed_by is not None or self.stopping,
                timeout=max(timeout, 0.001) if timeout is not None else None,
            )
        except TimeoutError:
            self.state.stop_reason = f"On hold for longer than the programme's limit of {self.proposal.policy.max_hold_days} days ({hold.reason})"
        if self.stopping:
            return
        self.state.calendar.paused_seconds = paused_after_hold(
            self.state.calendar.paused_seconds, hold.since, workflow.now()
        )
        self.state.status = ProjectStatus.ACTIVE
        await self._act(
            ProjectActivities.set_status,
            SetStatusInput(
                project_id=self.project_id,
                status=ProjectStatus.ACTIVE,
                reason=f"resumed by {hold.resumed_by}",
                command=hold.resume_command,
            ),
        )
        # Cleared only once the database says active: resume() returns when this is None.
        self.state.hold = None
        self._publish()

    def _watch_conditions_if_pending(self) -> None:
        c = self.state.gate.conditions
        pending = (c is not None and c.verified_by is None) or self.state.hold is not None
        if pending and (self.watcher is None or self.watcher.done()):
            self.watcher = asyncio.create_task(self._watch_conditions())

    async def _watch_conditions(self) -> None:
        """A Conditional Go's conditions must be verified by their date, or the project goes on Hold."""
        if self.state.hold is None:
            c = self.state.gate.conditions
            assert c is not None
            delay = (c.due_at - workflow.now()).total_seconds()
            try:
                await workflow.wait_condition(
                    lambda: c.verified_by is not None or self.stopping or self.state.phase == Phase.DONE,
                    timeout=max(delay, 0.001),
                )
                return
            except TimeoutError:
                pass
            missed = f"The conditions of gate {c.gate_no} were not verified by {c.due_at:%Y-%m-%d}"
            if self.proposal.policy.conditions_missed == "stop":
                self.state.stop_reason = f"{missed} (the programme's policy stops the project)"
                return
            await self._enter_hold(missed)
        await self._wait_out_hold()

    @workflow.update
    async def resume(self, request: ResumeInput) -> ProjectSnapshot:
        async with self.lock:
            hold = self._hold_to_resume()  # a twin resumed it first, or a stop came
            hold.resumed_by = request.requested_by
            hold.resume_command = keyed(request.command)
        await workflow.wait_condition(lambda: self.state.hold is None or self.stopping)
        return self.status()

    @resume.validator
    def _validate_resume(self, request: ResumeInput) -> None:
        self._require_pm(request.requested_by, "resumes it")
        self._hold_to_resume()

    def _hold_to_resume(self) -> HoldState:
        hold = self.state.hold
        if hold is None or hold.resumed_by is not None:
            raise rejected(f"project {self.project_id} is not on hold")
        if self.stopping:
            raise rejected(f"project {self.project_id} is stopping")
        return hold

    @workflow.update
    async def verify_conditions(self, request: VerifyConditionsInput) -> ProjectSnapshot:
        async with self.lock:
            c = self._conditions_to_verify()  # a twin verified them first
            c.verified_by = request.requested_by
            await self._record_verification(c, request)
        self._publish()
        return self.status()

    async def _record_verification(self, c: Conditions, request: VerifyConditionsInput) -> None:
        await self._act_locally(
            GateReviewActivities.record_gate_event,
            ConditionsVerified(
                key=f"{workflow.info().workflow_id}-conditions-g{c.gate_no}-verified",
                project_id=self.project_id,
                gate_no=c.gate_no,
                round=0,
                actor=request.requested_by,
                at=workflow.now(),
                conditions=c.items,
                note=request.note,
                command=keyed(request.command),
            ),
        )

    @verify_conditions.validator
    def _validate_verification(self, request: VerifyConditionsInput) -> None:
        self._require_pm(request.requested_by, "verifies conditions")
        self._conditions_to_verify()

    def _conditions_to_verify(self) -> Conditions:
        c = self.state.gate.conditions
        if c is None:
            raise rejected(f"project {self.project_id} has no conditions to verify")
        if c.verified_by is not None:
            raise rejected(f"the conditions of gate {c.gate_no} were verified already by {c.verified_by}")
        return c
