"""The stage's money: reserving its budget (waiting on hold when funds are short), paying its
tranches when due once their conditions hold (progress reports, four eyes), a recycle's extension."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.money import MoneyActivities, PayTrancheInput, ReserveStageInput, ScheduledTranche
    from domain import search_attributes as sa
    from domain.fiscal import fiscal_year, fiscal_year_start, reports_due_before
    from domain.programme import PROGRAMME_CODE
    from domain.project import Phase, StageExtension
    from domain.roles import Role, group
    from workflows.common import attributes_on_change, publish
from workflows.project.holds import Holds

REPORT_REMINDER_DAYS = 30  # an overdue progress report is asked for again this often
# The performer is told when each fiscal year ends that its report is now due (a timer per year).
PATCH_REPORT_DUE = "report-due-notices"
FOUR_EYES_SEARCH_ATTRIBUTE = "four-eyes-search-attribute"
REPORT_WAIT_CONTINUES = "report-wait-continue-as-new"
# StageNo, Phase and TranchesPaid: the reconciliation reads them through visibility.
MONEY_SEARCH_ATTRIBUTES = "money-search-attributes"


class Money(Holds):
    _money_published: tuple[int, str, tuple[int, ...]] | None = None

    def _publish(self) -> None:
        super()._publish()
        self._publish_money()

    def _publish_money(self) -> None:
        """What the reconciliation compares with the ledger, as search attributes: upserted when
        one of them changed (each upsert is an event in the history), behind a patch (a command)."""
        s = self.state
        now = (s.stage_index + 1, s.phase.value, tuple(s.money.tranches_paid))
        if now == self._money_published or not workflow.patched(MONEY_SEARCH_ATTRIBUTES):
            return
        self._money_published = now
        values: list[SearchAttributeUpdate[Any]] = [
            sa.STAGE_NO.value_set(now[0]),
            sa.PHASE.value_set(now[1]),
            # An empty list would remove the attribute; "none" says none is paid yet.
            sa.TRANCHES_PAID.value_set([str(n) for n in now[2]] or ["none"]),
        ]
        if attributes_on_change():
            publish(values)  # against the run's own attributes: a run continued as new has them
        else:
            workflow.upsert_search_attributes(values)

    async def _reserve_stage(self, amount: int | None = None, part: int = 0) -> bool:
        """Reserve the current stage's budget (or a recycle's extra budget), planned by fiscal year.

        When the fund cannot cover it (allocation or a fiscal-year ceiling), the project goes on
        Hold and its programme manager is told; each resume tries again, and a hold past the
        programme's limit stops the project cleanly. Never a retry storm: the refusal is a
        non-retryable business error."""
        return await self._until_funded(
            lambda: self._act(
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
        )

    async def _until_funded(self, write: Callable[[], Awaitable[object]]) -> bool:
        """Run a money write; when the fund cannot cover it, wait on Hold for funds and write again
        on resume (False: the project stopped instead)."""
        while True:
            try:
                await write()
                return True
            except ActivityError as err:
                cause = err.cause
                if not (isinstance(cause, ApplicationError) and cause.type == "InsufficientFunds"):
                    raise
                await self._wait_for_funds(cause.message)
                if self.stopping:
                    return False

    async def _wait_for_funds(self, message: str) -> None:
        stage_no = self.state.stage_index + 1
        self.state.money.waiting_for_funds = True
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
        self.state.money.waiting_for_funds = False

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

    def _history_too_long(self) -> bool:
        """Temporal suggests continuing as new when a run's history grows large (a stage with many
        tranches and holds); the stage carries on in a fresh run from where it is."""
        return workflow.info().is_continue_as_new_suggested()

    async def _run_stage(self) -> str | None:
        stage_no = self.state.stage_index + 1
        for tranche_no, tranche in enumerate(self.stage.tranches, start=1):
            if tranche_no in self.state.money.tranches_paid:
                continue
            if self._history_too_long():
                return "continue"
            await self._wait_until(
                f"{self._stage_label(stage_no)}: tranche {tranche_no} due",
                lambda offset=tranche.offset_days: self._at_day(offset),  # type: ignore[misc]
            )
            if self.stopping:
                return None
            if await self._await_tranche_conditions(stage_no, tranche_no, tranche.amount) == "continue":
                return "continue"
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
            self.state.money.tranches_paid.append(tranche_no)
            self._publish_money()
        await self._wait_until(
            f"{self._stage_label(stage_no)}: work under way until", lambda: self._at_day(self.stage.duration_days)
        )
        if self.state.gate.extension is not None and not self.stopping:
            await self._run_extension(self.state.gate.extension)
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
            lambda: self.clock.at_day(ext.started_at, ext.days, self.state.calendar.paused_seconds),
        )
        if not self.stopping:
            self.state.gate.extension = None

    async def _pay(self, tranche: Callable[[], PayTrancheInput]) -> bool:
        """Pay a due tranche. Paid in another fiscal year than planned, it may not fit that year's
        ceiling: then the project waits on Hold for funds like an unfunded stage, and tries again
        on resume (False: it stopped instead)."""
        return await self._until_funded(lambda: self._act(MoneyActivities.pay_tranche, tranche()))

    def _reports_missing(self) -> list[int]:
        if not self.input.progress_reports:
            return []
        today = self._today()  # also fixes the calendar's start on first use
        assert self.state.calendar.start is not None
        return [
            fy
            for fy in reports_due_before(self.state.calendar.start, today)
            if (r := self.state.money.reports.get(fy)) is None or r.status != "accepted"
        ]

    def _watch_report_years(self) -> None:
        """From this run on, tell the performer at each fiscal year's end that its report is due
        (before, they heard only once a tranche was held for it). Runs started before the patch
        carry no such timer."""
        if not self.input.progress_reports or self.input.seconds_per_day <= 0 or not self.clock.started:
            return
        if self.report_watcher is None and workflow.patched(PATCH_REPORT_DUE):
            self.report_watcher = asyncio.create_task(self._tell_reports_due())

    def _reporting(self) -> bool:
        return not self.stopping and self.state.phase in (Phase.STAGE, Phase.GATE)

    async def _tell_reports_due(self) -> None:
        fy = fiscal_year(self._calendar_day(workflow.now()))
        while self._reporting():
            ended = self.clock.moment(fiscal_year_start(fy + 1))
            assert ended is not None
            delay = (ended - workflow.now()).total_seconds()
            if delay > 0:
                try:
                    await workflow.wait_condition(lambda: not self._reporting(), timeout=delay)
                    return
                except TimeoutError:
                    pass
            report = self.state.money.reports.get(fy)
            if report is None or report.status == "returned":
                await self._notify(
                    self.proposal.performer or self.proposal.programme_manager,
                    "report_due",
                    f"{workflow.info().workflow_id}-report-FY{fy}-due",
                    f"FY{fy} has ended: the progress report of {self.project_id} for it is now due "
                    f"(by {fy + 1}-03-31); the next tranche waits until it is accepted.",
                )
            fy += 1

    def _flag_four_eyes(self, waiting: bool) -> None:
        """`AwaitingFourEyes` for ops' saved query in the Temporal UI (an upsert is a command: patched)."""
        if workflow.patched(FOUR_EYES_SEARCH_ATTRIBUTE):
            workflow.upsert_search_attributes([sa.AWAITING_FOUR_EYES.value_set(waiting)])

    def _needs_second_approver(self, amount: int) -> bool:
        threshold = self.input.four_eyes_threshold
        return threshold is not None and amount > threshold

    def _approved(self, stage_no: int, tranche_no: int) -> bool:
        a = self.state.money.approvals.get(f"{stage_no}/{tranche_no}")
        return a is not None and a.approved_by is not None

    async def _await_tranche_conditions(self, stage_no: int, tranche_no: int, amount: int) -> str | None:
        """A due tranche is paid only while the stage is active (not on Hold), once the progress
        report of every fiscal year ended so far is accepted (an overdue one holds the tranche and
        reminds the performer every REPORT_REMINDER_DAYS), and, above the programme's threshold,
        once a second person from finance has approved it. "continue": the history grew too long
        while waiting (a report overdue for years adds a reminder each month): the wait goes on in
        a fresh run, which reminds again when the interval has passed (the reminders' count is in
        the state it carries)."""
        reminded = False  # in this run: a fresh run sends its reminder before it may continue again
        while not self.stopping:
            # patched() only once Temporal suggests it: a run that never grows long records no
            # marker, so every history recorded before the patch replays as it was.
            if reminded and self._history_too_long() and workflow.patched(REPORT_WAIT_CONTINUES):
                return "continue"
            if self.state.hold is not None:
                await workflow.wait_condition(lambda: self.state.hold is None or self.stopping)
                continue
            missing = self._reports_missing()
            if missing:
                fy = missing[0]
                self._stage_detail(
                    f"Stage {stage_no}: tranche {tranche_no} held: the FY{fy} progress report is overdue or not accepted"
                )
                n = self.state.money.report_reminders.get(fy, 0) + 1
                self.state.money.report_reminders[fy] = n
                await self._notify(
                    self.proposal.performer or self.proposal.programme_manager,
                    "report_overdue",
                    f"{workflow.info().workflow_id}-report-FY{fy}-reminder-{n}",
                    f"The FY{fy} progress report of {self.project_id} is overdue (due {fy + 1}-03-31); "
                    f"tranche {tranche_no} of stage {stage_no} waits for it to be accepted.",
                )
                reminded = True
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
                # A closed project's budget is closed (its summary names none): no amount in clear text.
                sized = "" if self.closed else f" ({amount:,} yen)"
                self._stage_detail(
                    f"Stage {stage_no}: tranche {tranche_no}{sized} waits for four-eyes approval by finance"
                )
                self._flag_four_eyes(True)
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
                self._flag_four_eyes(False)
                continue
            return None
        return None
