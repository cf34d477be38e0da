"""One hand-off of a project's result to one public-use ministry, as its own workflow.

It renders and stores the package, offers it to the ministry's liaisons (for closed work, only to
those cleared and granted), reminds them every `reminder_days` and escalates to the programme
manager once the deadline passes. It ends when a liaison accepts (naming the receiving programme)
or declines (with a reason), or when the project withdraws it (a re-route or a stop). The project
workflow hears of each change by signal, so a hand-off started before a continue-as-new still
reaches the project's current run.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.handoffs import (
        HandoffActivities,
        HandoffNoticeInput,
        PrepareHandoffInput,
        RecordAnswerInput,
    )
    from domain import search_attributes as sa
    from domain.handoff import (
        HandoffAnswer,
        HandoffInput,
        HandoffKind,
        HandoffOutcome,
        HandoffSnapshot,
        HandoffStatus,
        HandoffWithdrawal,
    )
    from workflows.common import ACTIVITY_RETRY, ACTIVITY_TIMEOUT, attributes_on_change, keyed, publish, rejected

PARENT_SIGNAL = "handoff_changed"  # ProjectWorkflow.handoff_changed
DEADLINE_SEARCH_ATTRIBUTES = "handoff-deadline-search-attributes"


@workflow.defn
class HandoffWorkflow:
    @workflow.init
    def __init__(self, input: HandoffInput) -> None:
        self.input = input
        self.outcome: HandoffOutcome | None = None
        self.withdrawal: HandoffWithdrawal | None = None
        self.liaisons: list[str] | None = None  # known once the package is offered
        self.deadline_at: datetime | None = None
        self.reminders = 0
        self.escalated = False
        # Held while an answer is written: a twin waits, then finds the hand-off resolved; the
        # project's withdrawal waits too, and an answer that got there first stands.
        self.lock = asyncio.Lock()
        self.told = False  # the project has heard of the outcome

    @workflow.run
    async def run(self, input: HandoffInput) -> HandoffOutcome:
        try:
            await self._live()
        except asyncio.CancelledError:
            # A cancel from the Temporal UI or CLI ends the hand-off on record, not silently.
            if self.outcome is None:
                self.withdrawal = HandoffWithdrawal(
                    status=HandoffStatus.CANCELLED, reason="Cancelled from Temporal (UI or CLI)"
                )
                await self._withdraw(self.withdrawal)
        await workflow.wait_condition(workflow.all_handlers_finished)
        assert self.outcome is not None
        if not self.told:
            await self._tell_project(self.outcome)
        return self.outcome

    async def _live(self) -> None:
        started = workflow.now()
        self.deadline_at = started + self._days(self.input.policy.deadline_days)
        if attributes_on_change():  # one upsert, of what the start options did not give
            values: list[SearchAttributeUpdate[Any]] = [sa.PROJECT_ID.value_set(self.input.project_id)]
            if self.input.seconds_per_day and workflow.patched(DEADLINE_SEARCH_ATTRIBUTES):
                values += [sa.HANDOFF_DEADLINE.value_set(self.deadline_at), sa.HANDOFF_OVERDUE.value_set(False)]
            publish(values)
        else:
            workflow.upsert_search_attributes([sa.PROJECT_ID.value_set(self.input.project_id)])
            # With timers off (seconds_per_day 0) there is no deadline to show.
            if self.input.seconds_per_day and workflow.patched(DEADLINE_SEARCH_ATTRIBUTES):
                workflow.upsert_search_attributes(
                    [sa.HANDOFF_DEADLINE.value_set(self.deadline_at), sa.HANDOFF_OVERDUE.value_set(False)]
                )
        prepared = await workflow.execute_activity_method(
            HandoffActivities.prepare_handoff,
            PrepareHandoffInput(
                handoff=self.input,
                workflow_id=workflow.info().workflow_id,
                deadline_at=self.deadline_at,
                at=started,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        self.liaisons = prepared.liaisons
        self._publish()
        while self.outcome is None:
            if self.lock.locked():  # the answer's write is in flight; its handler sets the outcome
                await workflow.wait_condition(lambda: self.outcome is not None or not self.lock.locked())
                continue
            if self.withdrawal is not None:
                async with self.lock:
                    await self._withdraw(self.withdrawal)
                return
            await self._wait_for_next_notice(started)

    def _days(self, days: int) -> timedelta:
        return timedelta(seconds=days * self.input.seconds_per_day)

    def _settled(self) -> bool:
        return self.outcome is not None or self.withdrawal is not None or self.lock.locked()

    async def _wait_for_next_notice(self, started: datetime) -> None:
        """Sleep until the next reminder or the deadline, waking early for an answer or a withdrawal.
        With timers off (seconds_per_day 0) there is no deadline."""
        assert self.deadline_at is not None
        if self.escalated or self.input.seconds_per_day == 0:
            await workflow.wait_condition(self._settled)
            return
        next_reminder = started + self._days(self.input.policy.reminder_days * (self.reminders + 1))
        due = min(next_reminder, self.deadline_at)
        try:
            await workflow.wait_condition(self._settled, timeout=max((due - workflow.now()).total_seconds(), 0.001))
            return
        except TimeoutError:
            pass
        if self._settled():
            return
        if workflow.now() >= self.deadline_at:
            await self._escalate()
        else:
            await self._remind()

    async def _remind(self) -> None:
        self.reminders += 1
        assert self.deadline_at is not None
        await self._notice(
            escalate=False,
            message=f"Reminder {self.reminders}: the hand-off of {self.input.project_id} to {self.input.ministry} "
            f"waits for your answer by {self.deadline_at:%Y-%m-%d}.",
        )
        self._publish()

    async def _escalate(self) -> None:
        # The project learns first that the hand-off is overdue (so it may be re-routed), then the
        # programme manager is told: a re-route right after the notice finds the project ready.
        overdue = self._result(HandoffStatus.PENDING).model_copy(update={"escalated": True})
        await self._tell_project(overdue)
        self.escalated = True
        if workflow.patched(DEADLINE_SEARCH_ATTRIBUTES):
            publish([sa.HANDOFF_OVERDUE.value_set(True)])
        await self._notice(
            escalate=True,
            message=f"The hand-off of {self.input.project_id} to {self.input.ministry} passed its deadline "
            f"unanswered: chase the liaison or re-route it to another ministry.",
        )
        self._publish()

    async def _notice(self, escalate: bool, message: str) -> None:
        await workflow.execute_activity_method(
            HandoffActivities.handoff_notice,
            HandoffNoticeInput(
                handoff_id=self.input.handoff_id,
                n=self.reminders,
                escalate=escalate,
                message=message,
                at=workflow.now(),
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )

    async def _withdraw(self, w: HandoffWithdrawal) -> None:
        status = await self._record(
            RecordAnswerInput(
                handoff_id=self.input.handoff_id,
                status=w.status,
                reason=w.reason,
                rerouted_to=w.rerouted_to,
                at=workflow.now(),
            ),
        )
        if self.outcome is None:  # an answer that landed first stands, with its own fields
            self.outcome = self._result(status, reason=w.reason if status == w.status else "")

    async def _record(self, answer: RecordAnswerInput) -> HandoffStatus:
        # A regular activity even for the Update's write: a local one here trips the time-skipping
        # test server (an Update completing beside a cancelled timer), and a liaison's answer is
        # not latency-bound.
        return await workflow.execute_activity_method(
            HandoffActivities.record_answer,
            answer,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )

    def _result(self, status: HandoffStatus, **fields: str) -> HandoffOutcome:
        return HandoffOutcome(
            handoff_id=self.input.handoff_id,
            ministry=self.input.ministry,
            kind=self.input.kind,
            status=status,
            escalated=self.escalated,
            resolved_at=workflow.now() if status != HandoffStatus.PENDING else None,
            **fields,
        )

    async def _tell_project(self, outcome: HandoffOutcome) -> None:
        try:
            await workflow.get_external_workflow_handle(self.input.parent_workflow_id).signal(PARENT_SIGNAL, outcome)
        except FailureError:
            pass  # the project has ended (its stop withdrew this hand-off): nothing left to tell

    def _publish(self) -> None:
        workflow.set_current_details(self._waiting_for())

    def _waiting_for(self) -> str:
        what = "demonstration hand-off" if self.input.kind == HandoffKind.DEMONSTRATION else "hand-off"
        if self.outcome is not None:
            return f"The {what} to {self.input.ministry} is {self.outcome.status.value}"
        if self.liaisons is None:
            return f"Preparing the {what} package for {self.input.ministry}"
        if self.escalated:
            return (
                f"Overdue: escalated to {self.input.programme_manager}; waiting for {self.input.ministry} or a re-route"
            )
        assert self.deadline_at is not None
        return (
            f"Waiting for {self.input.ministry} to accept or decline by {self.deadline_at:%Y-%m-%d} "
            f"({self.reminders} reminders sent)"
        )

    # ---- the liaison's answer ---------------------------------------------------------------

    @workflow.update
    async def answer(self, answer: HandoffAnswer) -> HandoffOutcome:
        async with self.lock:
            self._unresolved()  # a twin answer, or the project's withdrawal, got there first
            recorded = await self._record(
                RecordAnswerInput(
                    handoff_id=self.input.handoff_id,
                    status=HandoffStatus.ACCEPTED if answer.accept else HandoffStatus.DECLINED,
                    by=answer.answered_by,
                    receiving_programme=answer.receiving_programme.strip(),
                    reason=answer.reason.strip(),
                    at=workflow.now(),
                    command=keyed(answer.command),
                ),
            )
            if self.outcome is not None:
                return self.outcome  # cancelled from Temporal meanwhile: the withdrawal's outcome stands
            self.outcome = self._result(
                recorded,
                answered_by=answer.answered_by,
                receiving_programme=answer.receiving_programme.strip(),
                reason=answer.reason.strip(),
            )
            # The project hears of the answer before the liaison's call returns, so whatever the
            # caller does next (a re-route of the decline, say) finds the project up to date.
            self.told = True
            await self._tell_project(self.outcome)
            self._publish()
            return self.outcome

    @answer.validator
    def _validate_answer(self, answer: HandoffAnswer) -> None:
        self._unresolved()
        if self.lock.locked():
            raise rejected(f"an answer to the hand-off to {self.input.ministry} is being recorded right now")
        if self.liaisons is None:
            raise rejected(f"the hand-off to {self.input.ministry} is still being prepared")
        if answer.answered_by not in self.liaisons:
            raise rejected(f"{answer.answered_by} is not a liaison of {self.input.ministry} offered this hand-off")
        if answer.accept and len(answer.receiving_programme.strip()) < 3:
            raise rejected("accepting needs the receiving programme or use (receiving_programme)")
        if not answer.accept and len(answer.reason.strip()) < 3:
            raise rejected("declining needs a reason")

    def _unresolved(self) -> None:
        if self.outcome is not None or self.withdrawal is not None:
            state = self.outcome.status.value if self.outcome is not None else "withdrawn"
            raise rejected(f"the hand-off to {self.input.ministry} is already {state}")

    # ---- the project's withdrawal (re-route or stop) ------------------------------------------

    @workflow.signal
    def withdraw(self, withdrawal: HandoffWithdrawal) -> None:
        if self.outcome is None and self.withdrawal is None:
            self.withdrawal = withdrawal

    @workflow.query
    def snapshot(self) -> HandoffSnapshot:
        return HandoffSnapshot(
            handoff_id=self.input.handoff_id,
            ministry=self.input.ministry,
            kind=self.input.kind,
            status=self.outcome.status if self.outcome is not None else HandoffStatus.PENDING,
            deadline_at=self.deadline_at,
            escalated=self.escalated,
            reminders_sent=self.reminders,
            offered=self.liaisons is not None,
        )
