"""The project workflow: one durable workflow carries a funded project through its TRL stages.

Per stage: reserve its budget, pay its tranches when due, then hold the gate review (review
Updates from the panel, a decision Update from the programme manager). After the last Go the work
is handed off to the public-use ministries. Kill and terminate run one clean stop. The workflow
continues as new at every stage boundary, so a ten-year project never grows a long history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
)
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.gate_reviews import GateReviewActivities, NotifyInput
    from activities.gates import GateActivities, OpenGateInput, RecordDecisionInput, RecordReviewInput
    from activities.handoffs import HandoffActivities, RecordAnswerInput
    from activities.money import (
        MoneyActivities,
        PayTrancheInput,
        RecordReportInput,
        RecordSignatureInput,
        ReleaseInput,
        ReserveStageInput,
        ScheduledTranche,
    )
    from activities.projects import (
        AcceptHandoffInput,
        CloseOutInput,
        CompleteProjectInput,
        ProjectActivities,
        RegisterProjectInput,
        SetStatusInput,
        StartHandoffsInput,
    )
    from domain import search_attributes as sa
    from domain.command import Command
    from domain.fiscal import fiscal_year, jst_date, programme_date, reports_due_before
    from domain.gate_review import ConditionsVerified, GateOutcome, GateReviewInput
    from domain.handoff import (
        DEMO_MIN_TRL,
        RESOLVED,
        DemoHandoffInput,
        HandoffBrief,
        HandoffInput,
        HandoffKind,
        HandoffOutcome,
        HandoffRun,
        HandoffStatus,
        HandoffWithdrawal,
        RerouteInput,
        handoff_id,
        handoff_workflow_id,
    )
    from domain.programme import PROGRAMME_CODE
    from domain.project import (
        SUPPORTED_DECISIONS,
        ConcludeHandoffsInput,
        Conditions,
        Decision,
        DecisionInput,
        DecisionResult,
        GateState,
        HandoffAcceptInput,
        HandoffResult,
        HoldState,
        MoneySnapshot,
        Phase,
        ProgressReportInput,
        ProjectOutcome,
        ProjectSnapshot,
        ProjectState,
        ProjectStatus,
        ProjectWorkflowInput,
        ReportReviewInput,
        ReportState,
        ResumeInput,
        ReviewResult,
        ReviewSubmission,
        StageExtension,
        StopResult,
        TerminateInput,
        TrancheApprovalState,
        TrancheSignature,
        VerifyConditionsInput,
        WithdrawInput,
    )
    from domain.proposal import Classification, StagePlan
    from domain.roles import Role, group
    from gates.definitions import GateDefinition, gate_for_stage
    from gates.scorecard import recommend, review_errors
    from workflows.common import ACTIVITY_RETRY, ACTIVITY_TIMEOUT, keyed, rejected
    from workflows.gate_review import GateReviewWorkflow, gate_workflow_id
    from workflows.handoff import HandoffWorkflow

# Patches: each names a change to the workflow's commands; stored histories replay on both sides.
PATCH_LOCAL_UPDATE_WRITES = "update-writes-as-local-activities"
PATCH_GATE_REVIEW_WORKFLOW = "gate-review-as-child-workflow"
PATCH_CONTINUE_WHEN_SUGGESTED = "continue-as-new-when-suggested"
PATCH_REASSERT_HOLD = "reassert-hold-status-on-new-run"
PATCH_HOLD_CLEARED_AFTER_WRITE = "hold-cleared-after-status-write"
PATCH_HOLD_WHEN_FUNDS_SHORT = "hold-when-funds-short"
PATCH_TRANCHE_CONDITIONS = "tranche-conditions"
PATCH_HANDOFF_WORKFLOWS = "handoff-workflows"

REPORT_REMINDER_DAYS = 30  # an overdue progress report is asked for again this often


def workflow_id_for(project_id: str) -> str:
    return f"project-{project_id}"


@workflow.defn
class ProjectWorkflow:
    @workflow.init
    def __init__(self, input: ProjectWorkflowInput) -> None:
        self.input = input
        self.proposal = input.proposal
        self.project_id = input.project_id
        self.state = input.state or ProjectState(trl=input.proposal.start_trl)
        self.stop_request: TerminateInput | None = None
        # The gate whose decision the main loop has fully carried out (decide() waits for it).
        self.applied_gate = 0
        self.decision_input: DecisionInput | None = None
        self.stage_detail = ""  # what the stage waits for now (next tranche, or its planned end)
        self.stage_due: Callable[[], datetime] | None = None  # when that falls due (holds move it)
        self.watcher: asyncio.Task[None] | None = None
        # Money Updates whose write is in flight: a concurrent twin is refused until it lands.
        self.in_flight: set[str] = set()
        self.gate_child: workflow.ChildWorkflowHandle[GateReviewWorkflow, GateOutcome] | None = None
        self.handoff_changes = 0  # bumped by every hand-off signal, so waits re-check

    # ---- the lifecycle -------------------------------------------------------------------

    @workflow.run
    async def run(self, input: ProjectWorkflowInput) -> ProjectOutcome:
        try:
            return await self._live()
        except (asyncio.CancelledError, ActivityError) as err:
            # A cancel that lands while an activity runs arrives as that activity's cancellation.
            cancelled = isinstance(err, asyncio.CancelledError) or isinstance(err.cause, CancelledError)
            if self.state.phase == Phase.DONE or not cancelled:
                raise
            # A cancel from the Temporal UI or CLI stops the project the same clean way as any
            # other stop (the request is delivered once; the stop's activities run after it), and
            # the workflow then completes with the terminated outcome, as the database says.
            if self.gate_child is not None and not self.gate_child.done():
                self.gate_child.cancel()  # the open review round ends with the project
                try:
                    await self.gate_child
                except (asyncio.CancelledError, ChildWorkflowError):
                    pass
            if self.state.stop_reason is None:
                self.state.stop_reason = "Cancelled from Temporal (UI or CLI)"
            await self._stop()
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self._outcome()

    def _outcome(self) -> ProjectOutcome:
        return ProjectOutcome(
            project_id=self.project_id,
            status=self.state.status,
            trl=self.state.trl,
            stop=self.state.stop_result,
            handoffs=self._final_handoffs() if self.state.handoff_runs else dict(self.state.handoffs),
            public_use_achieved=self.state.public_use_achieved,
        )

    def _final_handoffs(self) -> dict[str, str]:
        return {r.ministry: r.status.value for r in self.state.handoff_runs.values() if r.kind == HandoffKind.FINAL}

    @property
    def closed(self) -> bool:
        """Closed (保全) work: free text stays out of what the Temporal UI shows in clear."""
        return self.proposal.classification == Classification.CLOSED

    async def _live(self) -> ProjectOutcome:
        if self.state.phase == Phase.REGISTERING:
            self._today()  # day 0 of the programme calendar
            await self._act(
                ProjectActivities.register_project,
                RegisterProjectInput(
                    programme_code=PROGRAMME_CODE,
                    workflow_id=workflow.info().workflow_id,
                    proposal=self.proposal,
                    command=self.input.command,
                ),
            )
            if await self._reserve_stage():
                self._enter_stage()
        elif self.state.hold is not None and workflow.patched(PATCH_REASSERT_HOLD):
            # A run that starts on hold (continued as new while holding) says so in the database
            # again, in case the previous run ended before its status write completed.
            await self._act(
                ProjectActivities.set_status,
                SetStatusInput(project_id=self.project_id, status=ProjectStatus.ON_HOLD, reason=self.state.hold.reason),
            )
        self._publish()
        self._watch_conditions_if_pending()

        while self.state.phase in (Phase.STAGE, Phase.GATE) and not self.stopping:
            if self.state.phase == Phase.STAGE:
                if await self._run_stage() == "continue":
                    await self._continue_as_new()
                if self.stopping:
                    break
                self.state.phase = Phase.GATE
                self._publish()
            await self._run_gate()
            if self.stopping or self.state.phase not in (Phase.STAGE, Phase.GATE):
                break
            # A new stage, a recycled stage, or the gate's next round after a hold: each begins
            # with a fresh history.
            await self._continue_as_new()

        if self.state.phase == Phase.HANDOFF and not self.stopping:
            await self._run_handoffs()
        if self.stopping:
            await self._stop()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._outcome()

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        # The programme settings (four eyes, reports) travel with the state into the next run.
        workflow.continue_as_new(self.input.model_copy(update={"state": self.state}))

    @property
    def stopping(self) -> bool:
        return self.state.stop_reason is not None

    @property
    def plan(self) -> list[StagePlan]:
        return self.proposal.stage_plan

    @property
    def stage(self) -> StagePlan:
        return self.plan[self.state.stage_index]

    def _gate_definition(self) -> GateDefinition:
        return gate_for_stage(self.state.stage_index + 1, self.stage)

    async def _reserve_stage(self, amount: int | None = None, part: int = 0) -> bool:
        """Reserve the current stage's budget (or a recycle's extra budget), planned by fiscal year.

        When the fund cannot cover it (allocation or a fiscal-year ceiling), the project goes on
        Hold and its programme manager is told; each resume tries again, and a hold past the
        programme's limit stops the project cleanly. Never a retry storm: the refusal is a
        non-retryable business error. (Projects started before this stopped at once.)"""
        while True:
            try:
                await self._act(
                    MoneyActivities.reserve_stage,
                    ReserveStageInput(
                        programme_code=PROGRAMME_CODE,
                        project_id=self.project_id,
                        stage_no=self.state.stage_index + 1,
                        ministry=self.proposal.funding_ministry.value,
                        amount=self.stage.budget if amount is None else amount,
                        part=part,
                        schedule=self._schedule(amount, part),
                        booked_on=self._today(),
                    ),
                )
                return True
            except ActivityError as err:
                cause = err.cause
                if not (isinstance(cause, ApplicationError) and cause.type == "InsufficientFunds"):
                    raise
                if not workflow.patched(PATCH_HOLD_WHEN_FUNDS_SHORT):
                    self.state.stop_reason = f"Money could not be reserved: {cause.message}"
                    return False
                await self._wait_for_funds(cause.message)
                if self.stopping:
                    return False

    async def _wait_for_funds(self, message: str) -> None:
        stage_no = self.state.stage_index + 1
        self.state.waiting_for_funds = True
        await self._enter_hold(f"Waiting for funds for stage {stage_no}: {message}")
        hold = self.state.hold
        assert hold is not None
        await self._notify(
            self.proposal.programme_manager,
            "funds_short",
            f"{workflow.info().workflow_id}-funds-s{stage_no}-{hold.since.isoformat()}",
            f"{self.project_id} is on hold: {message}. Resume it when funds are available.",
        )
        await self._wait_out_hold()
        self.state.waiting_for_funds = False

    def _schedule(self, amount: int | None, part: int) -> list[ScheduledTranche]:
        """Where the reservation's money falls due, by fiscal year, on the programme calendar."""
        today = self._today()
        if part > 0:
            assert amount is not None
            return [
                ScheduledTranche(
                    tranche_no=len(self.stage.tranches) + part, fiscal_year=fiscal_year(today), amount=amount
                )
            ]
        return [
            ScheduledTranche(
                tranche_no=n, fiscal_year=fiscal_year(today + timedelta(days=t.offset_days)), amount=t.amount
            )
            for n, t in enumerate(self.stage.tranches, start=1)
        ]

    def _today(self) -> date:
        """Today on the project's programme calendar (fiscal years and report deadlines use it)."""
        s = self.state
        if s.calendar_origin is None or s.calendar_start is None:
            s.calendar_origin = workflow.now()
            s.calendar_start = self.proposal.start_date or jst_date(workflow.now())
        return programme_date(s.calendar_origin, s.calendar_start, workflow.now(), self.input.seconds_per_day)

    def _calendar_day(self, moment: datetime) -> date:
        """The programme date of a moment on the workflow clock (the date people plan by: with
        simulated days, the real date is not it). Pure, so queries may use it."""
        s = self.state
        if s.calendar_origin is None or s.calendar_start is None:  # a run from before the calendar
            return jst_date(moment)
        return programme_date(s.calendar_origin, s.calendar_start, moment, self.input.seconds_per_day)

    def _enter_stage(self) -> None:
        self.state.phase = Phase.STAGE
        self.state.stage_started_at = workflow.now()
        self.state.tranches_paid = []
        self.stage_due = None
        self.state.gate = None

    def _days(self, days: int) -> timedelta:
        return timedelta(seconds=days * self.input.seconds_per_day)

    def _at_day(self, days: int) -> datetime:
        """A day of the current stage on the workflow clock; time spent on hold does not count."""
        assert self.state.stage_started_at is not None
        return self.state.stage_started_at + self._days(days) + timedelta(seconds=self.state.paused_seconds)

    async def _sleep_until(self, when: Callable[[], datetime]) -> None:
        """A durable timer that a stop cancels (so no timer fires after a stop) and a hold pauses
        (the target moves by the time spent on hold)."""
        while not self.stopping:
            if self.state.hold is not None:
                await workflow.wait_condition(lambda: self.state.hold is None or self.stopping)
                continue
            delay = (when() - workflow.now()).total_seconds()
            if delay <= 0:
                return
            try:
                await workflow.wait_condition(lambda: self.stopping or self.state.hold is not None, timeout=delay)
            except TimeoutError:
                return

    def _history_too_long(self) -> bool:
        """Temporal suggests continuing as new when a run's history grows large (a stage with many
        tranches and holds); the stage carries on in a fresh run from where it is."""
        return workflow.info().is_continue_as_new_suggested() and workflow.patched(PATCH_CONTINUE_WHEN_SUGGESTED)

    async def _run_stage(self) -> str | None:
        stage_no = self.state.stage_index + 1
        for tranche_no, tranche in enumerate(self.stage.tranches, start=1):
            if tranche_no in self.state.tranches_paid:
                continue
            if self._history_too_long():
                return "continue"
            await self._wait_until(
                f"{self._stage_label(stage_no)}: tranche {tranche_no} due",
                lambda offset=tranche.offset_days: self._at_day(offset),  # type: ignore[misc]
            )
            if self.stopping:
                return None
            if workflow.patched(PATCH_TRANCHE_CONDITIONS):
                await self._await_tranche_conditions(stage_no, tranche_no, tranche.amount)
                if self.stopping:
                    return None
            due = self._at_day(tranche.offset_days)
            if not await self._pay(
                lambda due=due, no=tranche_no, amount=tranche.amount: PayTrancheInput(  # type: ignore[misc]
                    project_id=self.project_id,
                    stage_no=stage_no,
                    tranche_no=no,
                    amount=amount,
                    due_at=due,
                    paid_on=self._today(),
                )
            ):
                return None
            self.state.tranches_paid.append(tranche_no)
        await self._wait_until(
            f"{self._stage_label(stage_no)}: work under way until",
            lambda: self._at_day(self.stage.duration_days),
        )
        if self.state.extension is not None and not self.stopping:
            await self._run_extension(self.state.extension)
        return None

    async def _run_extension(self, ext: StageExtension) -> None:
        """A recycled stage: its extra budget is paid as one tranche now, then it runs on."""
        stage_no = self.state.stage_index + 1
        if ext.budget > 0 and not ext.paid:
            paid = await self._pay(
                lambda: PayTrancheInput(
                    project_id=self.project_id,
                    stage_no=stage_no,
                    tranche_no=ext.tranche_no,
                    amount=ext.budget,
                    due_at=ext.started_at,
                    part=ext.part,
                    paid_on=self._today(),
                )
            )
            if not paid:
                return
            ext.paid = True
        await self._wait_until(
            f"{self._stage_label(stage_no)} recycled: work under way until",
            lambda: ext.started_at + self._days(ext.days) + timedelta(seconds=self.state.paused_seconds),
        )
        if not self.stopping:
            self.state.extension = None

    async def _pay(self, tranche: Callable[[], PayTrancheInput]) -> bool:
        """Pay a due tranche. Paid in another fiscal year than planned, it may not fit that year's
        ceiling: then the project waits on Hold for funds like an unfunded stage, and tries again
        on resume (False: it stopped instead)."""
        while True:
            try:
                await self._act(MoneyActivities.pay_tranche, tranche())
                return True
            except ActivityError as err:
                cause = err.cause
                if not (isinstance(cause, ApplicationError) and cause.type == "InsufficientFunds"):
                    raise
                await self._wait_for_funds(cause.message)
                if self.stopping:
                    return False

    def _reports_missing(self) -> list[int]:
        if not self.input.progress_reports:
            return []
        today = self._today()  # also fixes the calendar's start on first use
        assert self.state.calendar_start is not None
        return [
            fy
            for fy in reports_due_before(self.state.calendar_start, today)
            if (r := self.state.reports.get(fy)) is None or r.status != "accepted"
        ]

    def _needs_second_approver(self, amount: int) -> bool:
        threshold = self.input.four_eyes_threshold
        return threshold is not None and amount > threshold

    def _approved(self, stage_no: int, tranche_no: int) -> bool:
        a = self.state.approvals.get(f"{stage_no}/{tranche_no}")
        return a is not None and a.approved_by is not None

    async def _await_tranche_conditions(self, stage_no: int, tranche_no: int, amount: int) -> None:
        """A due tranche is paid only while the stage is active (not on Hold), once the progress
        report of every fiscal year ended so far is accepted (an overdue one holds the tranche and
        reminds the performer every REPORT_REMINDER_DAYS), and, above the programme's threshold,
        once a second person from finance has approved it."""
        while not self.stopping:
            if self.state.hold is not None:
                await workflow.wait_condition(lambda: self.state.hold is None or self.stopping)
                continue
            missing = self._reports_missing()
            if missing:
                fy = missing[0]
                self._stage_detail(
                    f"Stage {stage_no}: tranche {tranche_no} held: the FY{fy} progress report is overdue or not accepted"
                )
                n = self.state.report_reminders.get(fy, 0) + 1
                self.state.report_reminders[fy] = n
                await self._notify(
                    self.proposal.performer or self.proposal.programme_manager,
                    "report_overdue",
                    f"{workflow.info().workflow_id}-report-FY{fy}-reminder-{n}",
                    f"The FY{fy} progress report of {self.project_id} is overdue (due {fy + 1}-03-31); "
                    f"tranche {tranche_no} of stage {stage_no} waits for it to be accepted.",
                )
                interval = self._days(REPORT_REMINDER_DAYS).total_seconds()
                try:
                    await workflow.wait_condition(
                        lambda missing=missing: (  # type: ignore[misc]
                            self._reports_missing() != missing or self.stopping or self.state.hold is not None
                        ),
                        timeout=interval or None,
                    )
                except TimeoutError:
                    pass
                continue
            if self._needs_second_approver(amount) and not self._approved(stage_no, tranche_no):
                self._stage_detail(
                    f"Stage {stage_no}: tranche {tranche_no} ({amount:,} yen) waits for four-eyes approval by finance"
                )
                await self._notify(
                    group(Role.FINANCE),
                    "tranche_approval",
                    f"{workflow.info().workflow_id}-approval-s{stage_no}-t{tranche_no}",
                    f"Tranche {tranche_no} of stage {stage_no} of {self.project_id} ({amount:,} yen) is due and "
                    "needs a request and a second approver from finance.",
                )
                await workflow.wait_condition(
                    lambda: self._approved(stage_no, tranche_no) or self.stopping or self.state.hold is not None
                )
                continue
            return

    async def _notify(self, recipient: str, kind: str, key: str, message: str, *, local: bool = False) -> None:
        note = NotifyInput(
            key=key, project_id=self.project_id, recipient=recipient, kind=kind, message=message, at=workflow.now()
        )
        if local:
            await self._act_locally(GateReviewActivities.notify, note)
        else:
            await self._act(GateReviewActivities.notify, note)

    def _stage_label(self, stage_no: int) -> str:
        return f"Stage {stage_no}" if self.closed else f"Stage {stage_no} ({self.stage.name})"

    async def _wait_until(self, text: str, due: Callable[[], datetime]) -> None:
        """Say what the stage waits for, dated on the programme calendar, and wait for it."""
        self.stage_due = due
        self._stage_detail(f"{text} {self._calendar_day(due()):%Y-%m-%d}")
        await self._sleep_until(due)

    def _stage_detail(self, text: str) -> None:
        self.stage_detail = text
        workflow.set_current_details(text)

    async def _run_gate(self) -> None:
        if workflow.patched(PATCH_GATE_REVIEW_WORKFLOW):
            await self._run_gate_review()
        else:
            await self._run_gate_in_place()

    async def _run_gate_review(self) -> None:
        """This gate's current round runs as its own workflow; its decision is carried out here."""
        definition = self._gate_definition()
        round_no = self.state.gate_round
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
                recycles_so_far=self.state.recycles.get(self.state.stage_index, 0),
            ),
            id=wid,
            static_summary=f"{self.project_id} gate {definition.gate_no} round {round_no}: {definition.question}",
        )
        self.gate_child = child
        self.state.gate_workflow_id = wid  # once it runs, so the API can reach it
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
        self.state.gate_workflow_id = None
        await self._apply(outcome)

    async def _apply(self, outcome: GateOutcome) -> None:
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
        if d.decision == Decision.KILL:
            self.state.stop_reason = f"Killed at gate {outcome.gate_no} by {d.decided_by}" + (
                f": {d.justification}" if d.justification else ""
            )
            self.state.lessons = d.lessons
        elif go:
            if d.decision == Decision.CONDITIONAL_GO:
                assert d.conditions_due_days is not None
                self.state.conditions = Conditions(
                    gate_no=outcome.gate_no,
                    items=list(d.conditions),
                    due_at=workflow.now() + self._days(d.conditions_due_days),
                )
            self.state.trl = definition.exit_trl
            self.state.gate_round = 1
            if self.state.stage_index + 1 == len(self.plan):
                self.state.handoff_brief = d.handoff
                self.state.phase = Phase.HANDOFF
            else:
                self.state.stage_index += 1
                if await self._reserve_stage():
                    self._enter_stage()
                    self.state.paused_seconds = 0.0
            self._watch_conditions_if_pending()
        elif d.decision == Decision.HOLD:
            await self._enter_hold(
                f"Hold at gate {outcome.gate_no}" + (f": {d.justification}" if d.justification else "")
            )
            await self._wait_out_hold()
            self.state.gate_round += 1
        elif d.decision == Decision.RECYCLE:
            assert d.recycle_days is not None and d.recycle_budget is not None
            part = self.state.recycles.get(self.state.stage_index, 0) + 1
            self.state.recycles[self.state.stage_index] = part
            if d.recycle_budget > 0 and not await self._reserve_stage(amount=d.recycle_budget, part=part):
                return
            self.state.extension = StageExtension(
                part=part,
                started_at=workflow.now(),
                days=d.recycle_days,
                budget=d.recycle_budget,
                tranche_no=len(self.stage.tranches) + part,
            )
            self.state.paused_seconds = 0.0
            self.state.phase = Phase.STAGE
            self.state.gate_round += 1
        self.state.applied.append(f"{outcome.gate_no}/{outcome.round}")
        self._publish()

    # ---- hold and conditions --------------------------------------------------------------

    async def _enter_hold(self, reason: str) -> None:
        self.state.hold = HoldState(since=workflow.now(), reason=reason)
        self.state.status = ProjectStatus.ON_HOLD
        await self._act(
            ProjectActivities.set_status,
            SetStatusInput(project_id=self.project_id, status=ProjectStatus.ON_HOLD, reason=reason),
        )
        self._publish()

    async def _wait_out_hold(self) -> None:
        """Funding and stage timers pause until the programme manager resumes; past the programme's
        limit the project stops cleanly. (With timers off, seconds_per_day 0, there is no limit.)"""
        hold = self.state.hold
        assert hold is not None
        limit_at = hold.since + self._days(self.proposal.policy.max_hold_days)
        timeout = (limit_at - workflow.now()).total_seconds() if self.input.seconds_per_day > 0 else None
        try:
            await workflow.wait_condition(
                lambda: hold.resumed_by is not None or self.stopping,
                timeout=max(timeout, 0.001) if timeout is not None else None,
            )
        except TimeoutError:
            self.state.stop_reason = f"On hold for longer than the programme's limit of {self.proposal.policy.max_hold_days} days ({hold.reason})"
        if self.stopping:
            return
        self.state.paused_seconds += (workflow.now() - hold.since).total_seconds()
        self.state.status = ProjectStatus.ACTIVE
        clear_after_write = workflow.patched(PATCH_HOLD_CLEARED_AFTER_WRITE)
        if not clear_after_write:
            self.state.hold = None
        await self._act(
            ProjectActivities.set_status,
            SetStatusInput(
                project_id=self.project_id,
                status=ProjectStatus.ACTIVE,
                reason=f"resumed by {hold.resumed_by}",
                command=hold.resume_command,
            ),
        )
        # Cleared only once the database says active: resume() returns when this is None.
        self.state.hold = None
        self._publish()

    def _watch_conditions_if_pending(self) -> None:
        c = self.state.conditions
        pending = (c is not None and c.verified_by is None) or self.state.hold is not None
        if pending and (self.watcher is None or self.watcher.done()):
            self.watcher = asyncio.create_task(self._watch_conditions())

    async def _watch_conditions(self) -> None:
        """A Conditional Go's conditions must be verified by their date, or the project goes on Hold."""
        if self.state.hold is None:
            c = self.state.conditions
            assert c is not None
            delay = (c.due_at - workflow.now()).total_seconds()
            try:
                await workflow.wait_condition(
                    lambda: c.verified_by is not None or self.stopping or self.state.phase == Phase.DONE,
                    timeout=max(delay, 0.001),
                )
                return
            except TimeoutError:
                pass
            missed = f"The conditions of gate {c.gate_no} were not verified by {c.due_at:%Y-%m-%d}"
            if self.proposal.policy.conditions_missed == "stop":
                self.state.stop_reason = f"{missed} (the programme's policy stops the project)"
                return
            await self._enter_hold(missed)
        await self._wait_out_hold()

    async def _run_gate_in_place(self) -> None:
        """Gates as first built (reviews and decision as Updates on this workflow); kept so that
        projects started before the gate review workflow replay and finish as they began."""
        definition = self._gate_definition()
        if self.state.gate is None:
            opened_at = workflow.now()
            await self._act(
                GateActivities.open_gate,
                OpenGateInput(
                    project_id=self.project_id,
                    definition=definition,
                    reviewers=list(self.proposal.reviewers),
                    opened_at=opened_at,
                ),
            )
            self.state.gate = GateState(gate_no=definition.gate_no, opened_at=opened_at)
            self._publish()
        gate = self.state.gate
        await workflow.wait_condition(lambda: gate.decision is not None or self.stopping)
        if gate.decision is None:
            return
        decision = gate.decision
        decided = self.decision_input
        assert decided is not None
        await self._act(
            GateActivities.record_decision,
            RecordDecisionInput(
                project_id=self.project_id,
                gate_no=gate.gate_no,
                decision=decision,
                decided_by=decided.decided_by,
                justification=decided.justification,
                recommendation=gate.recommendation,
                decided_at=workflow.now(),
                trl=definition.exit_trl if decision == Decision.GO else self.state.trl,
                command=decided.command,
            ),
        )
        if decision == Decision.KILL:
            self.state.stop_reason = f"Killed at gate {gate.gate_no} by {decided.decided_by}" + (
                f": {decided.justification}" if decided.justification else ""
            )
        else:
            self.state.trl = definition.exit_trl
            if self.state.stage_index + 1 == len(self.plan):
                self.state.phase = Phase.HANDOFF
            else:
                self.state.stage_index += 1
                if await self._reserve_stage():
                    self._enter_stage()
        if not self.stopping:
            self.applied_gate = gate.gate_no
        self._publish()

    async def _run_handoffs(self) -> None:
        if workflow.patched(PATCH_HANDOFF_WORKFLOWS):
            await self._run_handoff_workflows()
        else:
            await self._run_handoffs_in_place()

    async def _run_handoff_workflows(self) -> None:
        """The last Go: one hand-off workflow per public-use ministry, in parallel. The project
        completes when every hand-off (demonstrations too) is resolved and a declined one has had
        its re-route window; its final status says whether public use was achieved."""
        self.state.status = ProjectStatus.HANDOFF
        await self._act(
            ProjectActivities.set_status,
            SetStatusInput(project_id=self.project_id, status=ProjectStatus.HANDOFF, reason="last gate passed"),
        )
        brief = self.state.handoff_brief or HandoffBrief()
        await asyncio.gather(
            *(
                self._start_handoff(ministry, HandoffKind.FINAL, brief)
                for ministry in self.proposal.public_use_ministries
                if handoff_id(self.project_id, ministry) not in self.state.handoff_runs
            )
        )
        self._publish()
        while not self.stopping:
            if not all(r.status in RESOLVED for r in self.state.handoff_runs.values()):
                await self._handoff_change()
                continue
            window_ends = self._reroute_window_ends()
            if window_ends is None or workflow.now() >= window_ends:
                break
            await self._handoff_change(until=window_ends)
        if self.stopping:
            return
        achieved = any(
            r.kind == HandoffKind.FINAL and r.status == HandoffStatus.ACCEPTED for r in self.state.handoff_runs.values()
        )
        await self._act(
            ProjectActivities.complete_project,
            CompleteProjectInput(
                project_id=self.project_id,
                trl=self.state.trl,
                public_use_achieved=achieved,
                command=self.state.conclude_command,
            ),
        )
        self.state.public_use_achieved = achieved
        self.state.status = ProjectStatus.COMPLETED
        self.state.phase = Phase.DONE
        self._publish()

    async def _handoff_change(self, until: datetime | None = None) -> None:
        """Wait for a hand-off signal or Update (or a stop), at most until `until`."""
        seen = self.handoff_changes
        timeout = (until - workflow.now()).total_seconds() if until is not None else None
        try:
            await workflow.wait_condition(lambda: self.stopping or self.handoff_changes != seen, timeout=timeout)
        except TimeoutError:
            pass

    def _reroute_window_ends(self) -> datetime | None:
        """A declined final hand-off stays open to a re-route for the policy's days (with timers
        off, not at all)."""
        declined = [
            r.resolved_at
            for r in self.state.handoff_runs.values()
            if r.kind == HandoffKind.FINAL
            and r.status == HandoffStatus.DECLINED
            and r.rerouted_to is None
            and r.resolved_at is not None
        ]
        if not declined or self.input.seconds_per_day == 0 or self.state.handoffs_concluded:
            return None
        return max(declined) + self._days(self.proposal.policy.handoff.reroute_days)

    async def _start_handoff(
        self,
        ministry: str,
        kind: HandoffKind,
        brief: HandoffBrief,
        rerouted_from: str | None = None,
        command: Command | None = None,
    ) -> HandoffRun:
        wid = handoff_workflow_id(self.project_id, ministry, kind)
        run = HandoffRun(ministry=ministry, kind=kind, workflow_id=wid, brief=brief)
        self.state.handoff_runs[handoff_id(self.project_id, ministry, kind)] = run
        # Abandoned, not terminated, when this run continues as new: a demonstration hand-off
        # outlives the stage it began in and reports to the project's current run by signal.
        await workflow.start_child_workflow(
            HandoffWorkflow.run,
            HandoffInput(
                project_id=self.project_id,
                ministry=ministry,
                kind=kind,
                trl=self.state.trl,
                brief=brief,
                programme_manager=self.proposal.programme_manager,
                parent_workflow_id=workflow.info().workflow_id,
                seconds_per_day=self.input.seconds_per_day,
                policy=self.proposal.policy.handoff,
                rerouted_from=rerouted_from,
                redact=self.closed,
                command=command,
            ),
            id=wid,
            parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=f"{self.project_id}: {kind.value} hand-off to {ministry}",
        )
        return run

    async def _withdraw_handoffs(self) -> None:
        """A stop withdraws every open hand-off: no liaison is asked or reminded after it."""
        for run in self.state.handoff_runs.values():
            if run.status != HandoffStatus.PENDING:
                continue
            try:
                await workflow.get_external_workflow_handle(run.workflow_id).signal(
                    HandoffWorkflow.withdraw,
                    HandoffWithdrawal(status=HandoffStatus.CANCELLED, reason="The project stopped"),
                )
            except FailureError:
                pass  # it had ended already

    async def _run_handoffs_in_place(self) -> None:
        self.state.status = ProjectStatus.HANDOFF
        result = await self._act(
            ProjectActivities.start_handoffs,
            StartHandoffsInput(project_id=self.project_id, trl=self.state.trl),
        )
        for ministry in result.handoff_ids:
            self.state.handoffs.setdefault(ministry, "pending")
        self._publish()
        await workflow.wait_condition(
            lambda: self.stopping or all(s == "accepted" for s in self.state.handoffs.values())
        )
        if self.stopping:
            return
        await self._act(
            ProjectActivities.complete_project,
            CompleteProjectInput(project_id=self.project_id, trl=self.state.trl),
        )
        self.state.status = ProjectStatus.COMPLETED
        self.state.phase = Phase.DONE
        self._publish()

    async def _stop(self) -> None:
        """The one clean stop: release unpaid money, cancel what is open, report, set the status."""
        assert self.state.stop_reason is not None
        self.state.phase = Phase.CLOSING
        self._publish()
        await self._withdraw_handoffs()
        released = await self._act(
            MoneyActivities.release_reservations,
            ReleaseInput(project_id=self.project_id, booked_on=self._today(), command=self.state.stop_command),
        )
        closed = await self._act(
            ProjectActivities.close_out,
            CloseOutInput(
                project_id=self.project_id,
                reason=self.state.stop_reason,
                trl=self.state.trl,
                stage_no=self.state.stage_index + 1,
                lessons=self.state.lessons,
            ),
        )
        self.state.status = ProjectStatus.TERMINATED
        self.state.phase = Phase.DONE
        self.state.stop_result = StopResult(
            status=ProjectStatus.TERMINATED,
            reason=self.state.stop_reason,
            released=released.released,
            closeout_document_id=closed.document_id,
        )
        self._publish()

    async def _act(self, method, arg):
        return await workflow.execute_activity_method(
            method, arg, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=ACTIVITY_RETRY
        )

    async def _act_locally(self, method, arg):
        """For the short writes an Update handler makes while its caller waits (a reviewer's
        HTTP request): a local activity runs in this worker without a round trip to the server.
        Workflows started before this change keep their regular activity (patch below)."""
        if not workflow.patched(PATCH_LOCAL_UPDATE_WRITES):
            return await self._act(method, arg)
        return await workflow.execute_local_activity_method(
            method, arg, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=ACTIVITY_RETRY
        )

    # ---- what ops see ------------------------------------------------------------------------

    def _waiting_for(self) -> str:
        s = self.state
        if s.hold is not None and not self.stopping:
            reason = "" if self.closed else f" ({s.hold.reason})"
            since = self._calendar_day(s.hold.since)
            return f"On hold since {since:%Y-%m-%d}{reason}: waiting for {self.proposal.programme_manager} to resume"
        if s.phase == Phase.GATE and s.gate_workflow_id is not None:
            return f"Gate {s.stage_index + 1} round {s.gate_round}: under review in {s.gate_workflow_id}"
        if s.phase == Phase.GATE and s.gate is not None:
            missing = self._reviews_pending()
            if missing:
                return f"Gate {s.gate.gate_no}: waiting for reviews from {', '.join(missing)}"
            return f"Gate {s.gate.gate_no}: waiting for the decision of {self.proposal.programme_manager}"
        if s.phase == Phase.GATE:
            return "Opening the gate review"
        if s.phase == Phase.HANDOFF and s.handoff_runs:
            pending = self._handoffs_pending()
            if pending:
                return f"Hand-off: waiting for {', '.join(pending)} to accept or decline"
            return "Hand-off: every ministry has answered; a declined hand-off may still be re-routed"
        if s.phase == Phase.HANDOFF:
            pending = [m for m, v in s.handoffs.items() if v == "pending"]
            return f"Hand-off: waiting for acceptance by {', '.join(pending)}" if pending else "Hand-off: preparing"
        if s.phase == Phase.STAGE:
            return self.stage_detail or f"{self._stage_label(s.stage_index + 1)} under way"
        if s.phase == Phase.DONE:
            if s.public_use_achieved is not None:
                return f"Finished: {s.status.value}; public use " + (
                    "achieved" if s.public_use_achieved else "not achieved"
                )
            return f"Finished: {s.status.value}" + (f" ({s.stop_reason})" if s.stop_reason and not self.closed else "")
        return s.phase.value

    def _handoffs_pending(self) -> list[str]:
        old = [m for m, v in self.state.handoffs.items() if v == "pending"]
        return old + [
            r.ministry + (" (demonstration)" if r.kind == HandoffKind.DEMONSTRATION else "")
            for r in self.state.handoff_runs.values()
            if r.status == HandoffStatus.PENDING
        ]

    def _reviews_pending(self) -> list[str]:
        gate = self.state.gate
        if gate is None:
            return []
        return [r for r in self.proposal.reviewers if r not in gate.reviews]

    def _publish(self) -> None:
        workflow.upsert_search_attributes(
            [
                sa.PROJECT_ID.value_set(self.project_id),
                # A closed project's stage names its work: only the stage number goes in clear.
                sa.STAGE.value_set(f"stage {self.state.stage_index + 1}" if self.closed else self.stage.name),
                sa.TRL.value_set(self.state.trl),
                sa.PROJECT_STATUS.value_set(self.state.status.value),
                sa.PROGRAMME_MANAGER.value_set(self.proposal.programme_manager),
                sa.FUNDING_MINISTRY.value_set(self.proposal.funding_ministry.value),
            ]
        )
        workflow.set_current_details(self._waiting_for())

    @workflow.query
    def status(self) -> ProjectSnapshot:
        gate = self.state.gate
        return ProjectSnapshot(
            project_id=self.project_id,
            status=self.state.status,
            phase=self.state.phase,
            stage_index=self.state.stage_index,
            stage_name=self.stage.name,
            trl=self.state.trl,
            waiting_for=self._waiting_for(),
            open_gate=(
                gate.gate_no
                if gate is not None and gate.decision is None
                else self.state.stage_index + 1
                if self.state.phase == Phase.GATE and self.state.gate_workflow_id is not None
                else None
            ),
            reviews_pending=self._reviews_pending() if self.state.phase == Phase.GATE else [],
            handoffs_pending=self._handoffs_pending(),
            history_length=workflow.info().get_current_history_length(),
            gate_workflow_id=self.state.gate_workflow_id,
            gate_round=self.state.gate_round,
            on_hold=self.state.hold is not None,
            conditions_due_at=(
                self.state.conditions.due_at
                if self.state.conditions is not None and self.state.conditions.verified_by is None
                else None
            ),
            applied=list(self.state.applied),
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
            tranches_paid=list(self.state.tranches_paid),
            reports={fy: r.status for fy, r in self.state.reports.items()},
            approvals=dict(self.state.approvals),
            waiting_for_funds=self.state.waiting_for_funds,
            programme_date=self._today() if self.state.calendar_start is not None else None,
        )

    # ---- reviews -------------------------------------------------------------------------------

    def _open_gate_or_reject(self, gate_no: int) -> GateState:
        gate = self.state.gate
        if self.stopping or self.state.status != ProjectStatus.ACTIVE:
            raise rejected(f"project {self.project_id} is {self.state.status.value}, not open for gate work")
        if self.state.phase != Phase.GATE or gate is None:
            raise rejected(f"gate {gate_no} is not open: the project is in its {self.state.phase.value} phase")
        if gate.gate_no != gate_no:
            raise rejected(f"gate {gate_no} is not open: the open gate is {gate.gate_no}")
        if gate.decision is not None:
            raise rejected(f"gate {gate_no} is already decided ({gate.decision.value})")
        return gate

    @workflow.update
    async def submit_review(self, review: ReviewSubmission) -> ReviewResult:
        gate = self._open_gate_or_reject(review.gate_no)
        if review.reviewer in gate.reviews:  # a concurrent twin passed validation first
            raise rejected(f"{review.reviewer} has already reviewed gate {review.gate_no}")
        review = review.model_copy(update={"command": keyed(review.command)})
        gate.reviews[review.reviewer] = review
        if not self._reviews_pending():
            gate.recommendation = recommend(self._gate_definition(), gate.reviews.values())
        task_id = await self._act_locally(
            GateActivities.record_review,
            RecordReviewInput(project_id=self.project_id, review=review, recommendation=gate.recommendation),
        )
        workflow.set_current_details(self._waiting_for())
        return ReviewResult(
            task_id=task_id,
            gate_no=gate.gate_no,
            reviews_received=len(gate.reviews),
            reviews_expected=len(self.proposal.reviewers),
            recommendation=gate.recommendation,
        )

    @submit_review.validator
    def _validate_review(self, review: ReviewSubmission) -> None:
        gate = self._open_gate_or_reject(review.gate_no)
        if review.reviewer not in self.proposal.reviewers:
            raise rejected(f"{review.reviewer} is not on the review panel of project {self.project_id}")
        if review.reviewer in gate.reviews:
            raise rejected(f"{review.reviewer} has already reviewed gate {review.gate_no}")
        errors = review_errors(self._gate_definition(), review)
        if errors:
            raise rejected("; ".join(errors))

    # ---- decisions -----------------------------------------------------------------------------

    @workflow.update
    async def decide(self, decision: DecisionInput) -> DecisionResult:
        gate = self._open_gate_or_reject(decision.gate_no)
        self.decision_input = decision.model_copy(update={"command": keyed(decision.command)})
        gate.decision = decision.decision
        await workflow.wait_condition(lambda: self.applied_gate >= decision.gate_no or self.state.phase == Phase.DONE)
        return DecisionResult(
            gate_no=decision.gate_no,
            decision=decision.decision,
            status=self.state.status,
            trl=self.state.trl,
            next_stage=self.stage.name if self.state.phase == Phase.STAGE else None,
        )

    @decide.validator
    def _validate_decision(self, decision: DecisionInput) -> None:
        gate = self._open_gate_or_reject(decision.gate_no)
        self._require_pm(decision.decided_by, "decides its gates")
        if missing := self._reviews_pending():
            raise rejected(f"the panel has not finished: reviews missing from {', '.join(missing)}")
        if decision.decision not in SUPPORTED_DECISIONS:
            raise rejected(f"decision {decision.decision.value!r} is not available yet; choose go or kill")
        rec = gate.recommendation
        assert rec is not None
        if decision.decision == Decision.GO and rec.failed_must_meet:
            raise rejected(f"Go is blocked: must-meet criteria failed: {', '.join(rec.failed_must_meet)}")
        if decision.decision != rec.decision and not decision.justification.strip():
            raise rejected(
                f"deciding {decision.decision.value} against the panel's recommendation "
                f"({rec.decision.value}) needs a written justification"
            )

    # ---- stop ----------------------------------------------------------------------------------

    @workflow.update
    async def terminate(self, request: TerminateInput) -> StopResult:
        reason = f"Terminated by {request.requested_by}: {request.reason}"
        return await self._stop_on_request(reason, request.lessons, request.command)

    async def _stop_on_request(self, reason: str, lessons: str, command: Command | None) -> StopResult:
        """A person's stop: the main loop runs the one clean stop; the caller gets its result."""
        self.state.stop_reason = reason
        self.state.lessons = lessons
        self.state.stop_command = keyed(command)
        await workflow.wait_condition(lambda: self.state.stop_result is not None)
        assert self.state.stop_result is not None
        return self.state.stop_result

    @terminate.validator
    def _validate_terminate(self, request: TerminateInput) -> None:
        self._require_not_stopping()

    def _require_not_stopping(self) -> None:
        if self.stopping or self.state.phase in (Phase.CLOSING, Phase.DONE):
            raise rejected(f"project {self.project_id} is already {self.state.status.value} or stopping")

    @workflow.update
    async def withdraw(self, request: WithdrawInput) -> StopResult:
        self._validate_withdraw(request)
        reason = f"Withdrawn by the performer ({request.requested_by}): {request.reason}"
        return await self._stop_on_request(reason, request.lessons, request.command)

    @withdraw.validator
    def _validate_withdraw(self, request: WithdrawInput) -> None:
        self._require_not_stopping()
        if self.proposal.performer is None or request.requested_by != self.proposal.performer:
            raise rejected(f"only the project's performer withdraws from {self.project_id}")

    # ---- hold and conditions -------------------------------------------------------------------

    @workflow.update
    async def resume(self, request: ResumeInput) -> ProjectSnapshot:
        self._validate_resume(request)
        hold = self.state.hold
        assert hold is not None
        hold.resumed_by = request.requested_by
        hold.resume_command = keyed(request.command)
        await workflow.wait_condition(lambda: self.state.hold is None or self.stopping)
        return self.status()

    def _require_pm(self, who: str, what: str) -> None:
        if who != self.proposal.programme_manager:
            raise rejected(f"only the project's programme manager ({self.proposal.programme_manager}) {what}")

    @resume.validator
    def _validate_resume(self, request: ResumeInput) -> None:
        self._require_pm(request.requested_by, "resumes it")
        if self.state.hold is None or self.state.hold.resumed_by is not None:
            raise rejected(f"project {self.project_id} is not on hold")
        if self.stopping:
            raise rejected(f"project {self.project_id} is stopping")

    @workflow.update
    async def verify_conditions(self, request: VerifyConditionsInput) -> ProjectSnapshot:
        self._validate_verification(request)
        c = self.state.conditions
        assert c is not None
        c.verified_by = request.requested_by
        await workflow.execute_local_activity_method(
            GateReviewActivities.record_gate_event,
            ConditionsVerified(
                key=f"{workflow.info().workflow_id}-conditions-g{c.gate_no}-verified",
                project_id=self.project_id,
                gate_no=c.gate_no,
                round=0,
                actor=request.requested_by,
                at=workflow.now(),
                conditions=c.items,
                note=request.note,
                command=keyed(request.command),
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        self._publish()
        return self.status()

    @verify_conditions.validator
    def _validate_verification(self, request: VerifyConditionsInput) -> None:
        self._require_pm(request.requested_by, "verifies conditions")
        c = self.state.conditions
        if c is None:
            raise rejected(f"project {self.project_id} has no conditions to verify")
        if c.verified_by is not None:
            raise rejected(f"the conditions of gate {c.gate_no} were verified already by {c.verified_by}")

    # ---- progress reports and four eyes ----------------------------------------------------------

    def _open_for_money_work(self) -> None:
        if self.stopping or self.state.phase in (Phase.CLOSING, Phase.DONE, Phase.HANDOFF):
            raise rejected(f"project {self.project_id} is {self.state.status.value}: its funding has ended")
        if self.state.phase == Phase.REGISTERING:
            # Its rows are not written yet (or its first stage waits for funds): nothing to sign or file.
            raise rejected(f"project {self.project_id} has not started its first stage yet")

    @workflow.update
    async def submit_report(self, report: ProgressReportInput) -> MoneySnapshot:
        self._validate_report(report)
        self.state.reports[report.fiscal_year] = ReportState(status="submitted", submitted_by=report.submitted_by)
        await self._act_locally(
            MoneyActivities.record_report,
            RecordReportInput(
                project_id=self.project_id,
                fiscal_year=report.fiscal_year,
                status="submitted",
                actor=report.submitted_by,
                at=workflow.now(),
                summary=report.summary,
                command=keyed(report.command),
            ),
        )
        await self._notify(
            self.proposal.programme_manager,
            "report_submitted",
            f"{workflow.info().workflow_id}-report-FY{report.fiscal_year}-submitted-{workflow.uuid4()}",
            f"The FY{report.fiscal_year} progress report of {self.project_id} was submitted by {report.submitted_by}.",
            local=True,
        )
        return self._money()

    @submit_report.validator
    def _validate_report(self, report: ProgressReportInput) -> None:
        self._open_for_money_work()
        allowed = {self.proposal.programme_manager} | ({self.proposal.performer} if self.proposal.performer else set())
        if report.submitted_by not in allowed:
            raise rejected(f"only the performer or the programme manager of {self.project_id} files its reports")
        start = self.state.calendar_start
        first = fiscal_year(start) if start is not None else report.fiscal_year
        if not first <= report.fiscal_year <= fiscal_year(self._today()):
            raise rejected(
                f"FY{report.fiscal_year} is outside the project's reporting years so far "
                f"(FY{first} to FY{fiscal_year(self._today())})"
            )
        existing = self.state.reports.get(report.fiscal_year)
        if existing is not None and existing.status in ("submitted", "accepted"):
            raise rejected(f"the FY{report.fiscal_year} report is already {existing.status}")

    @workflow.update
    async def review_report(self, review: ReportReviewInput) -> MoneySnapshot:
        self._validate_report_review(review)
        report = self.state.reports[review.fiscal_year]
        status = "accepted" if review.accept else "returned"
        self.in_flight.add(f"report/{review.fiscal_year}")
        await self._act_locally(
            MoneyActivities.record_report,
            RecordReportInput(
                project_id=self.project_id,
                fiscal_year=review.fiscal_year,
                status=status,
                actor=review.reviewed_by,
                at=workflow.now(),
                note=review.note,
                command=keyed(review.command),
            ),
        )
        # Changed only after the write: a tranche waiting on this report is paid after it is on record.
        report.status, report.reviewed_by = status, review.reviewed_by
        self.in_flight.discard(f"report/{review.fiscal_year}")
        await self._notify(
            report.submitted_by,
            f"report_{status}",
            f"{workflow.info().workflow_id}-report-FY{review.fiscal_year}-{status}-{workflow.uuid4()}",
            f"The FY{review.fiscal_year} progress report of {self.project_id} was {status} by {review.reviewed_by}"
            + (f": {review.note}" if review.note else ""),
            local=True,
        )
        return self._money()

    @review_report.validator
    def _validate_report_review(self, review: ReportReviewInput) -> None:
        self._open_for_money_work()
        self._require_pm(review.reviewed_by, "reviews its progress reports")
        report = self.state.reports.get(review.fiscal_year)
        if f"report/{review.fiscal_year}" in self.in_flight:
            raise rejected(f"the FY{review.fiscal_year} report is being reviewed right now")
        if report is None or report.status != "submitted":
            state = "not submitted" if report is None else report.status
            raise rejected(f"the FY{review.fiscal_year} report is {state}: there is nothing to review")
        if not review.accept and not review.note.strip():
            raise rejected("returning a report needs a note saying what is missing")

    @workflow.update
    async def sign_tranche(self, sig: TrancheSignature) -> MoneySnapshot:
        self._validate_signature(sig)
        key = f"{sig.stage_no}/{sig.tranche_no}"
        amount = self.stage.tranches[sig.tranche_no - 1].amount
        self.in_flight.add(f"tranche/{key}")
        await self._act_locally(
            MoneyActivities.record_signature,
            RecordSignatureInput(
                project_id=self.project_id,
                stage_no=sig.stage_no,
                tranche_no=sig.tranche_no,
                amount=amount,
                action=sig.action,
                signer=sig.signer,
                at=workflow.now(),
                command=keyed(sig.command),
            ),
        )
        if sig.action == "request":
            self.state.approvals[key] = TrancheApprovalState(requested_by=sig.signer)
        else:
            self.state.approvals[key].approved_by = sig.signer
        self.in_flight.discard(f"tranche/{key}")
        return self._money()

    @sign_tranche.validator
    def _validate_signature(self, sig: TrancheSignature) -> None:
        self._open_for_money_work()
        stage_no = self.state.stage_index + 1
        if sig.stage_no != stage_no:
            raise rejected(f"stage {sig.stage_no} is not the current stage ({stage_no})")
        if not 1 <= sig.tranche_no <= len(self.stage.tranches):
            raise rejected(f"stage {stage_no} has no tranche {sig.tranche_no}")
        if sig.tranche_no in self.state.tranches_paid:
            raise rejected(f"tranche {sig.tranche_no} of stage {stage_no} is already paid")
        amount = self.stage.tranches[sig.tranche_no - 1].amount
        if not self._needs_second_approver(amount):
            raise rejected(f"tranche {sig.tranche_no} ({amount:,} yen) is within the threshold: it needs no approval")
        if f"tranche/{sig.stage_no}/{sig.tranche_no}" in self.in_flight:
            raise rejected(f"a signature on tranche {sig.tranche_no} is being recorded right now")
        a = self.state.approvals.get(f"{sig.stage_no}/{sig.tranche_no}")
        if sig.action == "request":
            if a is not None:
                raise rejected(f"tranche {sig.tranche_no} was already requested by {a.requested_by}")
            return
        if a is None:
            raise rejected(f"tranche {sig.tranche_no} has not been requested: a request comes before the approval")
        if a.approved_by is not None:
            raise rejected(f"tranche {sig.tranche_no} was already approved by {a.approved_by}")
        if sig.signer == a.requested_by:
            raise rejected(f"four eyes: the approver must be someone other than the requester ({a.requested_by})")

    # ---- hand-off ------------------------------------------------------------------------------

    @workflow.update
    async def accept_handoff(self, accept: HandoffAcceptInput) -> HandoffResult:
        self._validate_accept(accept)
        self.state.handoffs[accept.ministry] = "accepted"
        handoff_id = await self._act_locally(
            ProjectActivities.accept_handoff,
            AcceptHandoffInput(
                project_id=self.project_id,
                ministry=accept.ministry,
                accepted_by=accept.accepted_by,
                note=accept.note,
                command=keyed(accept.command),
            ),
        )
        workflow.set_current_details(self._waiting_for())
        await workflow.wait_condition(
            lambda: self.state.phase == Phase.DONE or any(v == "pending" for v in self.state.handoffs.values())
        )
        return HandoffResult(
            ministry=accept.ministry,
            handoff_id=handoff_id,
            pending=[m for m, v in self.state.handoffs.items() if v == "pending"],
            status=self.state.status,
        )

    @accept_handoff.validator
    def _validate_accept(self, accept: HandoffAcceptInput) -> None:
        if self.state.phase != Phase.HANDOFF or self.stopping:
            raise rejected(f"project {self.project_id} is not in hand-off (phase {self.state.phase.value})")
        status = self.state.handoffs.get(accept.ministry)
        if status is None:
            raise rejected(f"project {self.project_id} has no hand-off to {accept.ministry}")
        if status != "pending":
            raise rejected(f"the hand-off to {accept.ministry} is already {status}")

    # ---- hand-off workflows ----------------------------------------------------------------------

    @workflow.signal
    def handoff_changed(self, outcome: HandoffOutcome) -> None:
        """From a hand-off workflow: it escalated (still pending) or it was resolved."""
        run = self.state.handoff_runs.get(outcome.handoff_id)
        if run is None or run.status != HandoffStatus.PENDING:
            return
        run.escalated = run.escalated or outcome.escalated
        if outcome.status != HandoffStatus.PENDING:
            run.status = outcome.status
            run.receiving_programme = outcome.receiving_programme
            run.reason = outcome.reason
            run.resolved_at = workflow.now()
        self.handoff_changes += 1
        workflow.set_current_details(self._waiting_for())

    @workflow.update
    async def reroute_handoff(self, request: RerouteInput) -> HandoffRun:
        self._validate_reroute(request)
        command = keyed(request.command)  # recorded by the first write: the decline's, or the new hand-off's
        old = self.state.handoff_runs[request.handoff_id]
        old.rerouted_to = request.to_ministry
        if old.status == HandoffStatus.PENDING:  # overdue: withdraw it first
            await workflow.get_external_workflow_handle(old.workflow_id).signal(
                HandoffWorkflow.withdraw,
                HandoffWithdrawal(
                    status=HandoffStatus.REROUTED,
                    reason=f"re-routed to {request.to_ministry} by {request.requested_by}",
                    rerouted_to=request.to_ministry,
                ),
            )
        else:  # declined: the record says where it went
            await self._act_locally(
                HandoffActivities.record_answer,
                RecordAnswerInput(
                    handoff_id=request.handoff_id,
                    status=old.status,
                    by=request.requested_by,
                    rerouted_to=request.to_ministry,
                    at=workflow.now(),
                    command=command,
                ),
            )
        run = await self._start_handoff(
            request.to_ministry, old.kind, old.brief, rerouted_from=request.handoff_id, command=command
        )
        self.handoff_changes += 1
        self._publish()
        return run

    @reroute_handoff.validator
    def _validate_reroute(self, request: RerouteInput) -> None:
        self._require_pm(request.requested_by, "re-routes its hand-offs")
        self._require_not_stopping()
        old = self.state.handoff_runs.get(request.handoff_id)
        if old is None:
            raise rejected(f"project {self.project_id} has no hand-off {request.handoff_id}")
        if old.rerouted_to is not None:
            raise rejected(f"hand-off {request.handoff_id} was already re-routed to {old.rerouted_to}")
        if not (old.status == HandoffStatus.DECLINED or (old.status == HandoffStatus.PENDING and old.escalated)):
            raise rejected(
                f"only a declined or overdue hand-off can be re-routed; {request.handoff_id} is {old.status.value}"
            )
        if request.to_ministry == old.ministry:
            raise rejected(f"hand-off {request.handoff_id} already went to {old.ministry}")
        if handoff_id(self.project_id, request.to_ministry, old.kind) in self.state.handoff_runs:
            raise rejected(
                f"project {self.project_id} has a {old.kind.value} hand-off to {request.to_ministry} already"
            )

    @workflow.update
    async def start_demo_handoff(self, request: DemoHandoffInput) -> HandoffRun:
        self._validate_demo(request)
        run = await self._start_handoff(
            request.ministry, HandoffKind.DEMONSTRATION, request.brief, command=keyed(request.command)
        )
        self._publish()
        return run

    @start_demo_handoff.validator
    def _validate_demo(self, request: DemoHandoffInput) -> None:
        self._require_pm(request.requested_by, "hands it off for demonstration")
        self._require_not_stopping()
        if self.state.phase not in (Phase.STAGE, Phase.GATE):
            raise rejected(
                f"project {self.project_id} is in its {self.state.phase.value} phase: no demonstration hand-off"
            )
        if self.state.trl < DEMO_MIN_TRL:
            raise rejected(
                f"a demonstration hand-off needs TRL {DEMO_MIN_TRL}; {self.project_id} is at TRL {self.state.trl}"
            )
        if handoff_id(self.project_id, request.ministry, HandoffKind.DEMONSTRATION) in self.state.handoff_runs:
            raise rejected(f"{self.project_id} has a demonstration hand-off to {request.ministry} already")

    @workflow.update
    async def conclude_handoffs(self, request: ConcludeHandoffsInput) -> ProjectOutcome:
        self._validate_conclude(request)
        self.state.handoffs_concluded = True
        self.state.conclude_command = keyed(request.command)
        self.handoff_changes += 1
        await workflow.wait_condition(lambda: self.state.phase == Phase.DONE)
        return self._outcome()

    @conclude_handoffs.validator
    def _validate_conclude(self, request: ConcludeHandoffsInput) -> None:
        self._require_pm(request.requested_by, "concludes its hand-offs")
        self._require_not_stopping()
        if self.state.phase != Phase.HANDOFF or not self.state.handoff_runs:
            raise rejected(f"project {self.project_id} is not handing off (phase {self.state.phase.value})")
        if pending := self._handoffs_pending():
            raise rejected(f"hand-offs are still open: {', '.join(pending)}; wait for them or re-route them")
