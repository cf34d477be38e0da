"""Gate decisions: each round runs as its own gate review workflow; its decision is carried out
here (the next stage, a hold, a recycle, the hand-off, or the stop)."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.gates import GateActivities, RecordDecisionInput
    from domain import search_attributes as sa
    from domain.gate_decision import NextStep, apply_decision, carried_out, held_round_over, recycled
    from domain.gate_review import GateOutcome, GateReviewInput
    from domain.project import Decision, DecisionRef, Phase, ProjectSnapshot
    from workflows.common import rejected, start_attributes
    from workflows.gate_review import GateReviewWorkflow, gate_workflow_id
from workflows.project.money import Money


class GateDecisions(Money):
    async def _run_gate(self) -> None:
        """This gate's current round runs as its own workflow; its decision is carried out here."""
        definition = self._gate_definition()
        round_no = self.state.gate.round
        wid = gate_workflow_id(self.project_id, definition.gate_no, round_no)
        child = await workflow.start_child_workflow(
            GateReviewWorkflow.run,
            GateReviewInput(
                project_id=self.project_id,
                gate_no=definition.gate_no,
                round=round_no,
                definition=definition,
                programme_manager=self.proposal.programme_manager,
                panel=list(self.proposal.reviewers),
                policy=self.proposal.policy,
                seconds_per_day=self.input.seconds_per_day,
                stage_budget=self.stage.budget,
                recycles_so_far=self.state.gate.recycles.get(self.state.stage_index, 0),
            ),
            id=wid,
            static_summary=f"{self.project_id} gate {definition.gate_no} round {round_no}: {definition.question}",
            search_attributes=start_attributes(sa.gate_values(self.project_id, definition.gate_no)),
        )
        self.gate_child = child
        self.state.gate.workflow_id = wid  # once it runs, so the API can reach it
        self._publish()
        await workflow.wait_condition(lambda: child.done() or self.stopping)
        if not child.done():
            child.cancel()  # a stop: the round ends with it
            try:
                await child
            except (asyncio.CancelledError, ChildWorkflowError):
                pass
            return
        outcome = child.result()
        self.state.gate.workflow_id = None
        await self._apply(outcome)

    async def _apply(self, outcome: GateOutcome) -> None:
        self.applying = f"{outcome.gate_no}/{outcome.round}"
        try:
            await self._carry_out(outcome)
        finally:
            self.applying = None

    async def _carry_out(self, outcome: GateOutcome) -> None:
        definition = self._gate_definition()
        d = outcome.decision
        go = d.decision in (Decision.GO, Decision.CONDITIONAL_GO)
        await self._act(
            GateActivities.record_decision,
            RecordDecisionInput(
                project_id=self.project_id,
                gate_no=outcome.gate_no,
                round=outcome.round,
                decision=d.decision,
                decided_by=d.decided_by,
                justification=d.justification,
                recommendation=outcome.recommendation,
                decided_at=workflow.now(),
                trl=definition.exit_trl if go else self.state.trl,
                terms=d.model_dump(
                    mode="json", include={"conditions", "conditions_due_days", "recycle_days", "recycle_budget"}
                ),
                command=d.command,
            ),
        )
        step = apply_decision(
            self.state,
            outcome,
            exit_trl=definition.exit_trl,
            last_stage=self.state.stage_index + 1 == len(self.plan),
            now=workflow.now(),
            clock=self.clock,
        )
        self.state = step.state
        if step.next == NextStep.NEXT_STAGE:
            if await self._reserve_stage():
                self._enter_stage()
                self.state.calendar.paused_seconds = 0.0
        elif step.next == NextStep.HOLD:
            await self._enter_hold(step.hold_reason)
            await self._wait_out_hold()
            self.state = held_round_over(self.state)
        elif step.next == NextStep.RECYCLE:
            budget = d.recycle_budget
            assert budget is not None
            if budget > 0 and not await self._reserve_stage(amount=budget, part=step.recycle_part):
                return
            self.state = recycled(
                self.state, outcome, part=step.recycle_part, tranches=len(self.stage.tranches), now=workflow.now()
            )
        if go:
            self._watch_conditions_if_pending()
        self.state = carried_out(self.state, outcome)
        self._publish()

    @workflow.update
    async def decision_carried_out(self, ref: DecisionRef) -> ProjectSnapshot:
        """Returns once the decision is carried out, a hold begins (a Hold, or funds short for the
        next stage) or the project is done (a Kill's stop): what a caller of the decision waits for."""
        await workflow.wait_condition(
            lambda: (
                self.state.phase == Phase.DONE
                or (not self.stopping and (ref.key in self.state.gate.applied or self.state.hold is not None))
            )
        )
        return self.status()

    @decision_carried_out.validator
    def _validate_carried_out(self, ref: DecisionRef) -> None:
        if ref.key in self.state.gate.applied or ref.key == self.applying:
            return
        if (ref.gate_no, ref.round) != (self.state.stage_index + 1, self.state.gate.round):
            raise rejected(f"project {self.project_id} has no decision at gate {ref.gate_no} round {ref.round}")
