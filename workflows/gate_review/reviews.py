"""The material and the reviews: the evidence package (or the programme manager opening the
review without it), each reviewer's independent review and its amendments."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.gate_review import (
        EvidenceInput,
        EvidenceSubmitted,
        GateEventKind,
        GateView,
        OpenReviewInput,
        ReviewPhase,
        ReviewStored,
    )
    from domain.project import ReviewSubmission
    from gates.scorecard import review_errors
    from workflows.common import keyed, rejected
    from workflows.gate_review.round import GateRound

_OPEN_ALREADY = "the evidence package is in already and the review is open"


class ReviewHandlers(GateRound):
    @workflow.update
    async def submit_evidence(self, evidence: EvidenceInput) -> GateView:
        async with self.lock:
            self._awaiting_evidence(_OPEN_ALREADY)  # a twin, or the review opened without it
            self.state.evidence = evidence.model_copy(update={"command": None})
            await self._record(
                EvidenceSubmitted(
                    **self._stamp(GateEventKind.EVIDENCE, evidence.submitted_by, keyed(evidence.command)),
                    evidence=self.state.evidence,
                )
            )
            await self._open_review(evidence.submitted_by)
            return self._view(evidence.submitted_by)

    @submit_evidence.validator
    def _validate_evidence(self, evidence: EvidenceInput) -> None:
        self._pm_only(evidence.submitted_by)
        self._awaiting_evidence(_OPEN_ALREADY)
        exit_trl = self.input.definition.exit_trl
        if evidence.claimed_trl < exit_trl:
            raise rejected(f"the claimed TRL {evidence.claimed_trl} is below this gate's exit TRL {exit_trl}")
        if missing := [c.key for c in self.input.definition.must_meet if not evidence.criteria_evidence.get(c.key)]:
            raise rejected(f"evidence missing for must-meet criteria: {', '.join(missing)}")
        given = {d.strip().lower() for d in evidence.deliverables}
        if missing := [d for d in self.input.definition.deliverables if d.lower() not in given]:
            raise rejected(f"deliverables missing from the evidence package: {', '.join(missing)}")

    @workflow.update
    async def open_review(self, request: OpenReviewInput) -> GateView:
        async with self.lock:
            self._awaiting_evidence("the review is open already")  # the evidence came in meanwhile
            await self._open_review(request.opened_by, keyed(request.command))
            return self._view(request.opened_by)

    @open_review.validator
    def _validate_open(self, request: OpenReviewInput) -> None:
        self._pm_only(request.opened_by)
        self._awaiting_evidence("the review is open already")

    @workflow.update
    async def submit_review(self, review: ReviewSubmission) -> GateView:
        async with self.lock:
            self._not_closed()  # decided meanwhile
            self._first_review(review.reviewer)  # a twin came first
            self._on_panel(review.reviewer)  # replaced meanwhile
            await self._store_review(GateEventKind.REVIEW, review)
            if not self._pending() and self._decision_timer():
                self.deadline_version += 1  # the panel is complete: the deadline re-plans for the decision
            self._publish()
            return self._view(review.reviewer)

    @submit_review.validator
    def _validate_review(self, review: ReviewSubmission) -> None:
        self._reviewer_may_review(review)
        self._first_review(review.reviewer)

    @workflow.update
    async def amend_review(self, review: ReviewSubmission) -> GateView:
        async with self.lock:
            self._not_closed()  # decided meanwhile
            self.state.amendments[review.reviewer] = self.state.amendments.get(review.reviewer, 0) + 1
            await self._store_review(GateEventKind.AMENDED, review)
            return self._view(review.reviewer)

    @amend_review.validator
    def _validate_amendment(self, review: ReviewSubmission) -> None:
        self._reviewer_may_review(review)
        if review.reviewer not in self.state.reviews:
            raise rejected(f"{review.reviewer} has no review of gate {review.gate_no} to amend")

    async def _store_review(self, kind: GateEventKind, review: ReviewSubmission) -> None:
        command, review = keyed(review.command), review.model_copy(update={"command": None})
        self.state.reviews[review.reviewer] = review
        await self._record(
            ReviewStored(
                **self._stamp(kind, review.reviewer, command),
                review=review,
                recommendation=self._recommendation(),
            )
        )

    def _reviewer_may_review(self, review: ReviewSubmission) -> None:
        self._not_closed()
        if review.gate_no != self.input.gate_no:
            raise rejected(f"this is gate {self.input.gate_no}, not gate {review.gate_no}")
        self._on_panel(review.reviewer)
        if self.state.phase != ReviewPhase.REVIEWING:
            raise rejected("the review is not open yet: the evidence package has not come in")
        if errors := review_errors(self.input.definition, review):
            raise rejected("; ".join(errors))
