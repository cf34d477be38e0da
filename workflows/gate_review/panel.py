"""The panel: reviewers answer their invitations (declaring conflicts), the programme manager
fills a vacancy or replaces a silent reviewer."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.gate_review import (
        ACTIVE_MEMBER,
        GateEventKind,
        GateView,
        InvitationAnswered,
        InvitationResponse,
        InviteInput,
        MemberStatus,
        PanelMember,
        ReassignInput,
        ReviewerInvited,
        ReviewerReassigned,
    )
    from workflows.common import keyed, rejected
    from workflows.gate_review.round import GateRound


class PanelHandlers(GateRound):
    @workflow.update
    async def respond(self, response: InvitationResponse) -> GateView:
        async with self.lock:
            self._not_closed()
            self._still_invited(response.reviewer)  # a twin answer or a reassignment came first
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
            return self._view(response.reviewer)

    @respond.validator
    def _validate_response(self, response: InvitationResponse) -> None:
        self._not_closed()
        self._still_invited(response.reviewer)
        if response.conflict_of_interest and not response.statement.strip():
            raise rejected("a conflict of interest needs a statement of what it is")

    @workflow.update
    async def invite(self, invite: InviteInput) -> GateView:
        async with self.lock:
            self._not_closed()
            self._new_to_panel(invite.reviewer)  # a twin invitation came first
            self._vacancy()  # another invitation filled it
            self.state.members[invite.reviewer] = PanelMember(reviewer=invite.reviewer)
            stamp = self._stamp(GateEventKind.INVITED, invite.invited_by, keyed(invite.command))
            return await self._panel_changed(ReviewerInvited(**stamp, reviewer=invite.reviewer))

    @invite.validator
    def _validate_invite(self, invite: InviteInput) -> None:
        self._pm_only(invite.invited_by)
        self._not_closed()
        self._new_to_panel(invite.reviewer)
        if invite.reviewer == self.input.programme_manager:
            raise rejected("the programme manager cannot review their own project")
        self._vacancy()

    def _vacancy(self) -> None:
        active = sum(1 for m in self.state.members.values() if m.status in ACTIVE_MEMBER)
        if active >= len(self.input.panel):
            raise rejected(f"the panel is full ({active} of {len(self.input.panel)}): no vacancy to fill")

    async def _panel_changed(self, event: ReviewerInvited | ReviewerReassigned) -> GateView:
        """Record a new face on the panel; the reminders re-plan for who is pending now."""
        await self._record(event)
        self.deadline_version += 1
        self._publish()
        return self._view(event.actor)

    @workflow.update
    async def reassign(self, request: ReassignInput) -> GateView:
        async with self.lock:
            self._not_closed()
            self._silent(request.from_reviewer)  # they reviewed meanwhile
            self._new_to_panel(request.to_reviewer)
            self.state.members[request.from_reviewer].status = MemberStatus.REASSIGNED
            self.state.members[request.to_reviewer] = PanelMember(reviewer=request.to_reviewer)
            stamp = self._stamp(GateEventKind.REASSIGNED, request.requested_by, keyed(request.command))
            return await self._panel_changed(
                ReviewerReassigned(**stamp, from_reviewer=request.from_reviewer, to_reviewer=request.to_reviewer)
            )

    @reassign.validator
    def _validate_reassign(self, request: ReassignInput) -> None:
        self._pm_only(request.requested_by)
        self._not_closed()
        self._silent(request.from_reviewer)
        self._new_to_panel(request.to_reviewer)
        if request.to_reviewer == self.input.programme_manager:
            raise rejected("the programme manager cannot review their own project")
