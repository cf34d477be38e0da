"""The round's state and what every handler shares: event writes, notices, the ops view, checks.

Update validators only check and raise. Handlers run one at a time under `lock` (samples-python
"safe message handlers"): each re-checks only what a handler that ran between its validation and
its turn could have changed (the round decided, a reviewer answered or replaced, a review in),
never the whole validator, so a rule tightened later cannot refuse, on replay, an Update that was
accepted under the old one.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.gate_reviews import GateReviewActivities, NotifyInput
    from domain import search_attributes as sa
    from domain.command import Command
    from domain.gate_review import (
        ACTIVE_MEMBER,
        DueDateSet,
        GateEvent,
        GateEventKind,
        GateReviewInput,
        GateReviewState,
        GateView,
        MemberStatus,
        PanelMember,
        ReviewPhase,
    )
    from domain.project import Recommendation
    from gates.scorecard import recommend
    from workflows.common import ACTIVITY_RETRY, ACTIVITY_TIMEOUT, publish, rejected


# A complete panel keeps a timer to the round's due date, so the PM is told if the decision is late
# (workflows/patches.py).
DECISION_NEEDED_TIMER = "gate-decision-needed-timer"


def gate_workflow_id(project_id: str, gate_no: int, round_no: int) -> str:
    return f"project-{project_id}-gate-{gate_no}-r{round_no}"


class GateRound:
    input: GateReviewInput
    state: GateReviewState
    deadline_version: int  # bumped when the deadline moves, so the timer loop re-plans
    events: int
    # The round's rows (gate, review tasks) exist once the "opened" event is stored; the
    # Updates' own writes wait for that, so none can land before the rows it updates.
    ready: bool
    lock: asyncio.Lock

    def _start(self, input: GateReviewInput) -> None:
        self.input = input
        self.state = GateReviewState(members={r: PanelMember(reviewer=r) for r in input.panel})
        self.deadline_version = 0
        self.events = 0
        self.ready = False
        self.lock = asyncio.Lock()

    def _decision_timer(self) -> bool:
        return workflow.patched(DECISION_NEEDED_TIMER)

    def _days(self, days: int) -> timedelta:
        return timedelta(seconds=days * self.input.seconds_per_day)

    # ---- opening the review -------------------------------------------------------------------

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
        updates = sa.gate_values(self.input.project_id, self.input.gate_no, self._overdue())
        if s.due_at is not None:
            updates.append(sa.GATE_DUE_AT.value_set(s.due_at))
        publish(updates)
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

    def _view(self, viewer: str) -> GateView:
        """What one viewer may see of the round (the `view` query, and every Update's answer)."""
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

    # ---- checks shared by validators (and, for what can race, by handlers) ----------------------

    def _pm_only(self, who: str) -> None:
        if who != self.input.programme_manager:
            raise rejected(f"only the project's programme manager ({self.input.programme_manager}) may do this")

    def _not_closed(self) -> None:
        if self.state.phase == ReviewPhase.CLOSED:
            raise rejected(f"gate {self.input.gate_no} round {self.input.round} is already decided")

    def _pm_while_reviewing(self, who: str, refusal: str) -> None:
        self._pm_only(who)
        self._not_closed()
        if self.state.phase != ReviewPhase.REVIEWING:
            raise rejected(refusal)

    def _awaiting_evidence(self, refusal: str) -> None:
        if self.state.phase != ReviewPhase.AWAITING_EVIDENCE:
            raise rejected(refusal)

    def _member(self, reviewer: str) -> PanelMember:
        member = self.state.members.get(reviewer)
        if member is None:
            raise rejected(f"{reviewer} is not on the panel of gate {self.input.gate_no}: not your task")
        return member

    def _still_invited(self, reviewer: str) -> None:
        member = self._member(reviewer)
        if member.status != MemberStatus.INVITED:
            raise rejected(f"{reviewer} has answered this invitation already ({member.status.value})")

    def _new_to_panel(self, reviewer: str) -> None:
        if reviewer in self.state.members:
            raise rejected(f"{reviewer} has been on this panel already ({self.state.members[reviewer].status.value})")

    def _silent(self, reviewer: str) -> None:
        member = self._member(reviewer)
        if member.status not in ACTIVE_MEMBER or reviewer in self.state.reviews:
            raise rejected(f"{reviewer} is not a silent panel member: nothing to reassign")

    def _on_panel(self, reviewer: str) -> None:
        member = self._member(reviewer)
        if member.status == MemberStatus.RECUSED:
            raise rejected(f"{reviewer} declared a conflict of interest and is recused")
        if member.status == MemberStatus.INVITED:
            raise rejected(f"{reviewer} must accept the invitation and declare conflicts of interest first")
        if member.status != MemberStatus.ACCEPTED:
            raise rejected(f"{reviewer} is no longer on the panel ({member.status.value})")

    def _first_review(self, reviewer: str) -> None:
        if reviewer in self.state.reviews:
            raise rejected(f"{reviewer} has already reviewed gate {self.input.gate_no}; amend it instead")
