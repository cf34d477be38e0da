"""One round of a gate review, as its own workflow `project-<id>-gate-<n>-r<round>`.

Evidence comes in (or the programme manager opens the review anyway); each invited reviewer
accepts or declines and declares conflicts of interest before seeing any material; reviews are
independent (nobody sees another's review before submitting their own) and may be amended until
the panel closes; reminders go out before the deadline and the programme manager is told when it
passes; the deadline can be extended (the timers follow it) and a silent reviewer replaced. The
round closes with the programme manager's decision, which the project workflow then carries out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from activities.gate_reviews import GateReviewActivities, NotifyInput
    from domain import search_attributes as sa
    from domain.command import Command
    from domain.gate_review import (
        ACTIVE_MEMBER,
        DueDateSet,
        EvidenceInput,
        EvidenceSubmitted,
        ExtendDeadlineInput,
        GateDecisionInput,
        GateEvent,
        GateEventKind,
        GateOpened,
        GateOutcome,
        GateReviewInput,
        GateReviewState,
        GateView,
        InvitationAnswered,
        InvitationResponse,
        InviteInput,
        MemberStatus,
        OpenReviewInput,
        PanelMember,
        ReassignInput,
        ReviewerInvited,
        ReviewerReassigned,
        ReviewPhase,
        ReviewStored,
        RoundClosed,
    )
    from domain.project import Recommendation, ReviewSubmission
    from gates.decisions import decision_errors
    from gates.scorecard import recommend, review_errors
    from workflows.common import ACTIVITY_RETRY, ACTIVITY_TIMEOUT, keyed, rejected


def gate_workflow_id(project_id: str, gate_no: int, round_no: int) -> str:
    return f"project-{project_id}-gate-{gate_no}-r{round_no}"


@workflow.defn
class GateReviewWorkflow:
    @workflow.init
    def __init__(self, input: GateReviewInput) -> None:
        self.input = input
        self.state = GateReviewState(members={r: PanelMember(reviewer=r) for r in input.panel})
        self.deadline_version = 0  # bumped when the deadline moves, so the timer loop re-plans
        self.events = 0
        # The round's rows (gate, review tasks) exist once the "opened" event is stored; the
        # Updates' own writes wait for that, so none can land before the rows it updates.
        self.ready = False

    # ---- the round --------------------------------------------------------------------------

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

    async def _wait_for_next_deadline_event(self) -> None:
        version = self.deadline_version
        due, action = self._next_deadline_event()

        def changed() -> bool:
            return self.state.outcome is not None or self.deadline_version != version

        if due is None:
            await workflow.wait_condition(changed)
            return
        delay = (due - workflow.now()).total_seconds()
        if delay > 0:
            try:
                await workflow.wait_condition(changed, timeout=delay)
                return
            except TimeoutError:
                pass
        if self.state.outcome is None and self.deadline_version == version:
            await action()

    def _next_deadline_event(self) -> tuple[datetime | None, Any]:
        s = self.state
        if s.phase != ReviewPhase.REVIEWING or s.due_at is None or not self._pending():
            return None, None
        candidates: list[tuple[datetime, Any]] = []
        for days in sorted(self.input.policy.reminder_days_before, reverse=True):
            key = self._reminder_key(days)
            at = s.due_at - self._days(days)
            if key not in s.reminders_sent and s.opened_at is not None and at >= s.opened_at:
                candidates.append((at, lambda d=days: self._remind(d)))
        if s.escalated_for != s.due_at:
            candidates.append((s.due_at, self._escalate))
        if not candidates:
            return None, None
        return min(candidates, key=lambda c: c[0])

    def _days(self, days: int) -> timedelta:
        return timedelta(seconds=days * self.input.seconds_per_day)

    def _reminder_key(self, days: int) -> str:
        assert self.state.due_at is not None
        return f"{workflow.info().workflow_id}-reminder-{days}d-{self.state.due_at.isoformat()}"

    async def _remind(self, days: int) -> None:
        key = self._reminder_key(days)
        self.state.reminders_sent.append(key)
        for reviewer in self._pending():
            await self._notify(
                f"{key}-{reviewer}",
                reviewer,
                "reminder",
                f"Your review of gate {self.input.gate_no} is due in {days} days",
            )

    async def _escalate(self) -> None:
        s = self.state
        s.escalated_for = s.due_at
        pending = ", ".join(self._pending())
        await self._notify(
            f"{workflow.info().workflow_id}-escalation-{s.due_at.isoformat() if s.due_at else ''}",
            self.input.programme_manager,
            "escalation",
            f"Gate {self.input.gate_no} review is overdue; still to review: {pending}",
        )
        self._publish()

    def _open_review_now(self) -> None:
        now = workflow.now()
        self.state.phase = ReviewPhase.REVIEWING
        self.state.opened_at = now
        self.state.due_at = now + self._days(self.input.policy.review_days)
        self.deadline_version += 1

    async def _record_review_opened(self, by: str, command: Command | None = None) -> None:
        assert self.state.due_at is not None
        await self._record(
            DueDateSet(**self._stamp(GateEventKind.REVIEW_OPENED, by, command), due_at=self.state.due_at)
        )
        self._publish()

    async def _open_review(self, by: str, command: Command | None = None) -> None:
        self._open_review_now()
        await self._record_review_opened(by, command)

    # ---- persistence and ops view -------------------------------------------------------------

    def _stamp(self, kind: GateEventKind, actor: str, command: Command | None = None) -> dict[str, Any]:
        """The envelope of the round's next event; its key counts the round's events."""
        self.events += 1
        return {
            "key": f"{workflow.info().workflow_id}-{self.events}-{kind.value}",
            "kind": kind,
            "project_id": self.input.project_id,
            "gate_no": self.input.gate_no,
            "round": self.input.round,
            "actor": actor,
            "at": workflow.now(),
            "command": command,
        }

    async def _record(self, event: GateEvent, local: bool = True) -> None:
        if local:  # the caller of an Update is waiting: no round trip to the server
            await workflow.wait_condition(lambda: self.ready)
            await workflow.execute_local_activity_method(
                GateReviewActivities.record_gate_event,
                event,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
        else:
            await workflow.execute_activity_method(
                GateReviewActivities.record_gate_event,
                event,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )

    async def _notify(self, key: str, recipient: str, kind: str, message: str) -> None:
        await workflow.execute_activity_method(
            GateReviewActivities.notify,
            NotifyInput(
                key=key,
                project_id=self.input.project_id,
                recipient=recipient,
                kind=kind,
                message=message,
                at=workflow.now(),
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )

    def _pending(self) -> list[str]:
        return [
            m.reviewer
            for m in self.state.members.values()
            if m.status in ACTIVE_MEMBER and m.reviewer not in self.state.reviews
        ]

    def _overdue(self) -> bool:
        s = self.state
        return s.phase == ReviewPhase.REVIEWING and s.due_at is not None and workflow.now() >= s.due_at

    def _publish(self) -> None:
        s = self.state
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.PROJECT_ID.value_set(self.input.project_id),
            sa.GATE_NO.value_set(self.input.gate_no),
            sa.GATE_OVERDUE.value_set(self._overdue()),
        ]
        if s.due_at is not None:
            updates.append(sa.GATE_DUE_AT.value_set(s.due_at))
        workflow.upsert_search_attributes(updates)
        if s.phase == ReviewPhase.AWAITING_EVIDENCE:
            details = "Waiting for the evidence package (or the programme manager to open the review)"
        elif s.phase == ReviewPhase.CLOSED:
            details = "Closed: " + (s.outcome.decision.decision.value if s.outcome else "")
        elif pending := self._pending():
            due = f"{s.due_at:%Y-%m-%d}" if s.due_at else "?"
            details = f"Waiting for reviews from {', '.join(pending)}; due {due}"
        else:
            details = f"Waiting for the decision of {self.input.programme_manager}"
        workflow.set_current_details(details)

    def _recommendation(self) -> Recommendation | None:
        if not self.state.reviews:
            return None
        return recommend(self.input.definition, self.state.reviews.values())

    # ---- checks shared by validators ----------------------------------------------------------

    def _pm_only(self, who: str) -> None:
        if who != self.input.programme_manager:
            raise rejected(f"only the project's programme manager ({self.input.programme_manager}) may do this")

    def _not_closed(self) -> None:
        if self.state.phase == ReviewPhase.CLOSED:
            raise rejected(f"gate {self.input.gate_no} round {self.input.round} is already decided")

    def _member(self, reviewer: str) -> PanelMember:
        member = self.state.members.get(reviewer)
        if member is None:
            raise rejected(f"{reviewer} is not on the panel of gate {self.input.gate_no}: not your task")
        return member

    def _reviewer_may_review(self, review: ReviewSubmission) -> None:
        self._not_closed()
        if review.gate_no != self.input.gate_no:
            raise rejected(f"this is gate {self.input.gate_no}, not gate {review.gate_no}")
        member = self._member(review.reviewer)
        if member.status == MemberStatus.RECUSED:
            raise rejected(f"{review.reviewer} declared a conflict of interest and is recused")
        if member.status == MemberStatus.INVITED:
            raise rejected(f"{review.reviewer} must accept the invitation and declare conflicts of interest first")
        if member.status != MemberStatus.ACCEPTED:
            raise rejected(f"{review.reviewer} is no longer on the panel ({member.status.value})")
        if self.state.phase != ReviewPhase.REVIEWING:
            raise rejected("the review is not open yet: the evidence package has not come in")
        if errors := review_errors(self.input.definition, review):
            raise rejected("; ".join(errors))

    # ---- Updates ----------------------------------------------------------------------------------

    @workflow.update
    async def submit_evidence(self, evidence: EvidenceInput) -> GateView:
        self._validate_evidence(evidence)
        self.state.evidence = evidence.model_copy(update={"command": None})
        await self._record(
            EvidenceSubmitted(
                **self._stamp(GateEventKind.EVIDENCE, evidence.submitted_by, keyed(evidence.command)),
                evidence=self.state.evidence,
            )
        )
        await self._open_review(evidence.submitted_by)
        return self.view(evidence.submitted_by)

    @submit_evidence.validator
    def _validate_evidence(self, evidence: EvidenceInput) -> None:
        self._pm_only(evidence.submitted_by)
        if self.state.phase != ReviewPhase.AWAITING_EVIDENCE:
            raise rejected("the evidence package is in already and the review is open")
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
        self._validate_open(request)
        await self._open_review(request.opened_by, keyed(request.command))
        return self.view(request.opened_by)

    @open_review.validator
    def _validate_open(self, request: OpenReviewInput) -> None:
        self._pm_only(request.opened_by)
        if self.state.phase != ReviewPhase.AWAITING_EVIDENCE:
            raise rejected("the review is open already")

    @workflow.update
    async def respond(self, response: InvitationResponse) -> GateView:
        self._validate_response(response)
        member = self.state.members[response.reviewer]
        if response.conflict_of_interest:
            member.status = MemberStatus.RECUSED
        else:
            member.status = MemberStatus.ACCEPTED if response.accept else MemberStatus.DECLINED
        member.conflict_statement = response.statement
        await self._record(
            InvitationAnswered(
                **self._stamp(GateEventKind.RESPONDED, response.reviewer, keyed(response.command)),
                reviewer=response.reviewer,
                status=member.status,
                statement=response.statement,
            )
        )
        self._publish()
        return self.view(response.reviewer)

    @respond.validator
    def _validate_response(self, response: InvitationResponse) -> None:
        self._not_closed()
        member = self._member(response.reviewer)
        if member.status != MemberStatus.INVITED:
            raise rejected(f"{response.reviewer} has answered this invitation already ({member.status.value})")
        if response.conflict_of_interest and not response.statement.strip():
            raise rejected("a conflict of interest needs a statement of what it is")

    @workflow.update
    async def invite(self, invite: InviteInput) -> GateView:
        self._validate_invite(invite)
        self.state.members[invite.reviewer] = PanelMember(reviewer=invite.reviewer)
        await self._record(
            ReviewerInvited(
                **self._stamp(GateEventKind.INVITED, invite.invited_by, keyed(invite.command)), reviewer=invite.reviewer
            )
        )
        self.deadline_version += 1
        self._publish()
        return self.view(invite.invited_by)

    @invite.validator
    def _validate_invite(self, invite: InviteInput) -> None:
        self._pm_only(invite.invited_by)
        self._not_closed()
        if invite.reviewer in self.state.members:
            raise rejected(
                f"{invite.reviewer} has been on this panel already ({self.state.members[invite.reviewer].status.value})"
            )
        if invite.reviewer == self.input.programme_manager:
            raise rejected("the programme manager cannot review their own project")
        active = sum(1 for m in self.state.members.values() if m.status in ACTIVE_MEMBER)
        if active >= len(self.input.panel):
            raise rejected(f"the panel is full ({active} of {len(self.input.panel)}): no vacancy to fill")

    @workflow.update
    async def reassign(self, request: ReassignInput) -> GateView:
        self._validate_reassign(request)
        self.state.members[request.from_reviewer].status = MemberStatus.REASSIGNED
        self.state.members[request.to_reviewer] = PanelMember(reviewer=request.to_reviewer)
        await self._record(
            ReviewerReassigned(
                **self._stamp(GateEventKind.REASSIGNED, request.requested_by, keyed(request.command)),
                from_reviewer=request.from_reviewer,
                to_reviewer=request.to_reviewer,
            )
        )
        self.deadline_version += 1
        self._publish()
        return self.view(request.requested_by)

    @reassign.validator
    def _validate_reassign(self, request: ReassignInput) -> None:
        self._pm_only(request.requested_by)
        self._not_closed()
        member = self._member(request.from_reviewer)
        if member.status not in ACTIVE_MEMBER or request.from_reviewer in self.state.reviews:
            raise rejected(f"{request.from_reviewer} is not a silent panel member: nothing to reassign")
        if request.to_reviewer in self.state.members:
            raise rejected(f"{request.to_reviewer} has been on this panel already")
        if request.to_reviewer == self.input.programme_manager:
            raise rejected("the programme manager cannot review their own project")

    @workflow.update
    async def submit_review(self, review: ReviewSubmission) -> GateView:
        self._validate_review(review)
        command, review = keyed(review.command), review.model_copy(update={"command": None})
        self.state.reviews[review.reviewer] = review
        await self._record(
            ReviewStored(
                **self._stamp(GateEventKind.REVIEW, review.reviewer, command),
                review=review,
                recommendation=self._recommendation(),
            )
        )
        self._publish()
        return self.view(review.reviewer)

    @submit_review.validator
    def _validate_review(self, review: ReviewSubmission) -> None:
        self._reviewer_may_review(review)
        if review.reviewer in self.state.reviews:
            raise rejected(f"{review.reviewer} has already reviewed gate {review.gate_no}; amend it instead")

    @workflow.update
    async def amend_review(self, review: ReviewSubmission) -> GateView:
        self._validate_amendment(review)
        command, review = keyed(review.command), review.model_copy(update={"command": None})
        self.state.reviews[review.reviewer] = review
        self.state.amendments[review.reviewer] = self.state.amendments.get(review.reviewer, 0) + 1
        await self._record(
            ReviewStored(
                **self._stamp(GateEventKind.AMENDED, review.reviewer, command),
                review=review,
                recommendation=self._recommendation(),
            )
        )
        return self.view(review.reviewer)

    @amend_review.validator
    def _validate_amendment(self, review: ReviewSubmission) -> None:
        self._reviewer_may_review(review)
        if review.reviewer not in self.state.reviews:
            raise rejected(f"{review.reviewer} has no review of gate {review.gate_no} to amend")

    @workflow.update
    async def extend_deadline(self, request: ExtendDeadlineInput) -> GateView:
        self._validate_extension(request)
        assert self.state.due_at is not None
        self.state.due_at += self._days(request.extra_days)
        self.deadline_version += 1
        await self._record(
            DueDateSet(
                **self._stamp(GateEventKind.DEADLINE, request.requested_by, keyed(request.command)),
                due_at=self.state.due_at,
            )
        )
        self._publish()
        return self.view(request.requested_by)

    @extend_deadline.validator
    def _validate_extension(self, request: ExtendDeadlineInput) -> None:
        self._pm_only(request.requested_by)
        self._not_closed()
        if self.state.phase != ReviewPhase.REVIEWING:
            raise rejected("the review is not open yet: there is no deadline to extend")

    @workflow.update
    async def decide(self, decision: GateDecisionInput) -> GateOutcome:
        self._validate_decision(decision)
        # The keyed command goes on with the outcome: the project's write of the decision finds
        # the row this round's write made under the same key, and adds none.
        decision = decision.model_copy(update={"command": keyed(decision.command)})
        rec = self._recommendation()
        assert rec is not None
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
        self._pm_only(decision.decided_by)
        self._not_closed()
        if self.state.phase != ReviewPhase.REVIEWING:
            raise rejected("the review is not open yet: the evidence package has not come in")
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

    # ---- what each viewer may see -------------------------------------------------------------

    @workflow.query
    def view(self, viewer: str) -> GateView:
        s = self.state
        is_pm = viewer == self.input.programme_manager
        member = s.members.get(viewer)
        cleared = member is not None and member.status == MemberStatus.ACCEPTED
        # Independence: a reviewer sees the others' reviews only after submitting their own.
        sees_reviews = is_pm or viewer in s.reviews
        return GateView(
            project_id=self.input.project_id,
            gate_no=self.input.gate_no,
            round=self.input.round,
            phase=s.phase,
            due_at=s.due_at,
            overdue=self._overdue(),
            members=list(s.members.values()),
            vacancies=len(self.input.panel) - sum(1 for m in s.members.values() if m.status in ACTIVE_MEMBER),
            pending=self._pending(),
            # Need-to-know: the material goes only to the programme manager and to reviewers who
            # accepted and declared no conflict.
            evidence=s.evidence if (is_pm or cleared) else None,
            reviews=list(s.reviews.values()) if sees_reviews else [],
            recommendation=self._recommendation() if sees_reviews else None,
        )
