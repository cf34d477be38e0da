"""The live view: what ops and the API see of a project (the status query, search attributes,
the current details in the Temporal UI) and the outcome the workflow returns."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import search_attributes as sa
    from domain.handoff import HandoffKind, HandoffStatus
    from domain.project import MoneySnapshot, Phase, ProjectOutcome, ProjectSnapshot
    from workflows.common import publish
from workflows.project.base import ProjectBase


class LiveView(ProjectBase):
    def _outcome(self) -> ProjectOutcome:
        return ProjectOutcome(
            project_id=self.project_id,
            status=self.state.status,
            trl=self.state.trl,
            stop=self.state.stop_result,
            handoffs=self._final_handoffs(),
            public_use_achieved=self.state.handoffs.public_use_achieved,
        )

    def _final_handoffs(self) -> dict[str, str]:
        return {r.ministry: r.status.value for r in self.state.handoffs.runs.values() if r.kind == HandoffKind.FINAL}

    def _waiting_for(self) -> str:
        s = self.state
        if s.hold is not None and not self.stopping:
            reason = "" if self.closed else f" ({s.hold.reason})"
            since = self._calendar_day(s.hold.since)
            return f"On hold since {since:%Y-%m-%d}{reason}: waiting for {self.proposal.programme_manager} to resume"
        if s.phase == Phase.GATE and s.gate.workflow_id is not None:
            return f"Gate {s.stage_index + 1} round {s.gate.round}: under review in {s.gate.workflow_id}"
        if s.phase == Phase.GATE:
            return "Opening the gate review"
        if s.phase == Phase.HANDOFF and s.handoffs.runs:
            pending = self._handoffs_pending()
            if pending:
                return f"Hand-off: waiting for {', '.join(pending)} to accept or decline"
            return "Hand-off: every ministry has answered; a declined hand-off may still be re-routed"
        if s.phase == Phase.HANDOFF:
            return "Hand-off: preparing"
        if s.phase == Phase.STAGE:
            return self.stage_detail or f"{self._stage_label(s.stage_index + 1)} under way"
        if s.phase == Phase.DONE:
            if s.handoffs.public_use_achieved is not None:
                return f"Finished: {s.status.value}; public use " + (
                    "achieved" if s.handoffs.public_use_achieved else "not achieved"
                )
            return f"Finished: {s.status.value}" + (f" ({s.stop_reason})" if s.stop_reason and not self.closed else "")
        return s.phase.value

    def _handoffs_pending(self) -> list[str]:
        return [
            r.ministry + (" (demonstration)" if r.kind == HandoffKind.DEMONSTRATION else "")
            for r in self.state.handoffs.runs.values()
            if r.status == HandoffStatus.PENDING
        ]

    def _publish(self) -> None:
        publish(sa.project_values(self.proposal, self.project_id, self.state))
        workflow.set_current_details(self._waiting_for())

    @workflow.query
    def status(self) -> ProjectSnapshot:
        return ProjectSnapshot(
            project_id=self.project_id,
            status=self.state.status,
            phase=self.state.phase,
            stage_index=self.state.stage_index,
            stage_name=self.stage.name,
            trl=self.state.trl,
            waiting_for=self._waiting_for(),
            open_gate=(
                self.state.stage_index + 1
                if self.state.phase == Phase.GATE and self.state.gate.workflow_id is not None
                else None
            ),
            reviews_pending=[],
            handoffs_pending=self._handoffs_pending(),
            history_length=workflow.info().get_current_history_length(),
            gate_workflow_id=self.state.gate.workflow_id,
            gate_round=self.state.gate.round,
            on_hold=self.state.hold is not None,
            conditions_due_at=(
                self.state.gate.conditions.due_at
                if self.state.gate.conditions is not None and self.state.gate.conditions.verified_by is None
                else None
            ),
            applied=list(self.state.gate.applied),
            money=self._money(),
            due_on=self._calendar_day(due) if (due := self._due_at()) else None,
            due_at=due,
        )

    def _due_at(self) -> datetime | None:
        if self.stage_due is None or self.state.phase != Phase.STAGE or self.state.hold is not None:
            return None
        return self.stage_due()

    def _money(self) -> MoneySnapshot:
        return MoneySnapshot(
            stage_no=self.state.stage_index + 1,
            tranches_paid=list(self.state.money.tranches_paid),
            reports={fy: r.status for fy, r in self.state.money.reports.items()},
            approvals=dict(self.state.money.approvals),
            waiting_for_funds=self.state.money.waiting_for_funds,
            programme_date=self._calendar_day(workflow.now()) if self.clock.started else None,
            calendar_start=self.state.calendar.start,
        )
