"""The gate review workflow class: its run, and the view query; the handlers come from one
module per concern (see the package's docstring)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.gate_review import GateEventKind, GateOpened, GateOutcome, GateReviewInput, GateView
    from workflows.gate_review.deadlines import DeadlineHandlers
    from workflows.gate_review.decision import DecisionHandler
    from workflows.gate_review.panel import PanelHandlers
    from workflows.gate_review.reviews import ReviewHandlers


@workflow.defn
class GateReviewWorkflow(PanelHandlers, ReviewHandlers, DeadlineHandlers, DecisionHandler):
    @workflow.init
    def __init__(self, input: GateReviewInput) -> None:
        self._start(input)

    @workflow.run
    async def run(self, input: GateReviewInput) -> GateOutcome:
        if not input.policy.require_evidence:
            self._open_review_now()  # before anything awaits: no Update can find the review shut
        await self._record(
            GateOpened(
                **self._stamp(GateEventKind.OPENED, input.programme_manager),
                definition=input.definition,
                panel=input.panel,
                workflow_id=workflow.info().workflow_id,
            ),
            local=False,
        )
        self.ready = True
        if not input.policy.require_evidence:  # opened above, before the first await
            await self._record_review_opened(input.programme_manager)
        self._publish()
        while self.state.outcome is None:
            await self._wait_for_next_deadline_event()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state.outcome

    @workflow.query
    def view(self, viewer: str) -> GateView:
        return self._view(viewer)
