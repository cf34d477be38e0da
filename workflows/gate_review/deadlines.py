"""The deadline: reminders before it, the programme manager told when it passes (reviews still
missing: an escalation; every review in but no decision: the decision asked for), and the
extension that moves it (the timers follow)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.gate_review import DueDateSet, ExtendDeadlineInput, GateEventKind, GateView, ReviewPhase
    from workflows.common import keyed
    from workflows.gate_review.round import GateRound

DeadlineAction = Callable[[], Awaitable[None]]


class DeadlineHandlers(GateRound):
    async def _wait_for_next_deadline_event(self) -> None:
        version = self.deadline_version
        due, action = self._next_deadline_event()

        def changed() -> bool:
            return self.state.outcome is not None or self.deadline_version != version

        if due is None or action is None:
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

    def _next_deadline_event(self) -> tuple[datetime | None, DeadlineAction | None]:
        s = self.state
        if s.phase != ReviewPhase.REVIEWING or s.due_at is None:
            return None, None
        if not self._pending():
            # Every review in: the deadline now waits for the decision (at once if it has passed).
            if s.decision_asked_for != s.due_at and self._decision_timer():
                return s.due_at, self._ask_for_decision
            return None, None
        candidates: list[tuple[datetime, DeadlineAction]] = []
        for days in sorted(self.input.policy.reminder_days_before, reverse=True):
            key = self._reminder_key(days)
            at = s.due_at - self._days(days)
            if key not in s.reminders_sent and s.opened_at is not None and at >= s.opened_at:
                candidates.append((at, partial(self._remind, days)))
        if s.escalated_for != s.due_at:
            candidates.append((s.due_at, self._escalate))
        if not candidates:
            return None, None
        return min(candidates, key=lambda c: c[0])

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
        if not (pending := ", ".join(self._pending())):
            # Planned while reviews were missing, due now with every review in: the decision is
            # what is late. The same single activity as an escalation (no new command).
            await self._ask_for_decision()
            return
        await self._notify(
            f"{workflow.info().workflow_id}-escalation-{s.due_at.isoformat() if s.due_at else ''}",
            self.input.programme_manager,
            "escalation",
            f"Gate {self.input.gate_no} review is overdue; still to review: {pending}",
        )
        self._publish()

    async def _ask_for_decision(self) -> None:
        """The due date has passed, every review is in, no decision: the PM is told (once a date)."""
        s = self.state
        s.decision_asked_for = s.due_at
        await self._notify(
            f"{workflow.info().workflow_id}-decision-needed-{s.due_at.isoformat() if s.due_at else ''}",
            self.input.programme_manager,
            "decision_needed",
            f"Gate {self.input.gate_no} (round {self.input.round}) of {self.input.project_id} is past its due "
            "date and every review is in: your decision is needed",
        )
        self._publish()

    @workflow.update
    async def extend_deadline(self, request: ExtendDeadlineInput) -> GateView:
        async with self.lock:
            self._not_closed()  # decided meanwhile
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
            return self._view(request.requested_by)

    @extend_deadline.validator
    def _validate_extension(self, request: ExtendDeadlineInput) -> None:
        self._pm_while_reviewing(request.requested_by, "the review is not open yet: there is no deadline to extend")
