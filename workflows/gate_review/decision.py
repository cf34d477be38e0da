"""The close: the programme manager's decision, once the quorum is in, within the gate's rules."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.gate_review import GateDecisionInput, GateEventKind, GateOutcome, ReviewPhase, RoundClosed
    from domain.project import Decision
    from gates.decisions import decision_errors
    from workflows.common import keyed, rejected
    from workflows.gate_review.round import GateRound


class DecisionHandler(GateRound):
    @workflow.update
    async def decide(self, decision: GateDecisionInput) -> GateOutcome:
        async with self.lock:
            self._not_closed()  # a twin decision came first
            rec = self._recommendation()
            assert rec is not None
            # A review or amendment that landed after this decision was validated may have failed
            # a must-meet criterion: that can never yield Go, so it is the one rule checked again.
            if decision.decision in (Decision.GO, Decision.CONDITIONAL_GO) and rec.failed_must_meet:
                raise rejected(
                    f"must-meet criteria failed ({', '.join(rec.failed_must_meet)}) in a review that came in "
                    "meanwhile: Go is not allowed"
                )
            # The keyed command goes on with the outcome: the project's write of the decision finds
            # the row this round's write made under the same key, and adds none.
            decision = decision.model_copy(update={"command": keyed(decision.command)})
            self.state.outcome = GateOutcome(
                gate_no=self.input.gate_no,
                round=self.input.round,
                decision=decision,
                recommendation=rec,
                reviews=len(self.state.reviews),
            )
            self.state.phase = ReviewPhase.CLOSED
            await self._record(
                RoundClosed(
                    **self._stamp(GateEventKind.CLOSED, decision.decided_by, decision.command),
                    recommendation=rec,
                    decision=decision,
                )
            )
            self._publish()
            return self.state.outcome

    @decide.validator
    def _validate_decision(self, decision: GateDecisionInput) -> None:
        self._pm_while_reviewing(
            decision.decided_by, "the review is not open yet: the evidence package has not come in"
        )
        quorum = self.input.policy.quorum or len(self.input.panel)
        if len(self.state.reviews) < quorum:
            raise rejected(
                f"{len(self.state.reviews)} reviews are in and the quorum is {quorum}; "
                f"still to review: {', '.join(self._pending()) or 'nobody (fill the vacancy)'}"
            )
        rec = self._recommendation()
        assert rec is not None
        if errors := decision_errors(
            decision, rec, self.input.policy, self.input.stage_budget, self.input.recycles_so_far
        ):
            raise rejected("; ".join(errors))
