"""The money Updates: progress reports filed and reviewed, and four-eyes signatures on tranches."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.money import MoneyActivities, RecordReportInput, RecordSignatureInput
    from domain.fiscal import fiscal_year
    from domain.project import (
        MoneySnapshot,
        Phase,
        ProgressReportInput,
        ReportReviewInput,
        ReportState,
        TrancheApprovalState,
        TrancheSignature,
    )
    from workflows.common import keyed, rejected
from workflows.project.money import Money


class MoneyUpdates(Money):
    def _open_for_money_work(self) -> None:
        if self.stopping or self.state.phase in (Phase.CLOSING, Phase.DONE, Phase.HANDOFF):
            raise rejected(f"project {self.project_id} is {self.state.status.value}: its funding has ended")
        if self.state.phase == Phase.REGISTERING:
            # Its rows are not written yet (or its first stage waits for funds): nothing to sign or file.
            raise rejected(f"project {self.project_id} has not started its first stage yet")

    @workflow.update
    async def submit_report(self, report: ProgressReportInput) -> MoneySnapshot:
        async with self.lock:
            self._open_for_money_work()  # a stop came first
            self._report_not_filed(report.fiscal_year)  # or a twin filed it
            self.state.money.reports[report.fiscal_year] = ReportState(
                status="submitted", submitted_by=report.submitted_by
            )
            await self._record_submission(report)
        return self._money()

    async def _record_submission(self, report: ProgressReportInput) -> None:
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

    @submit_report.validator
    def _validate_report(self, report: ProgressReportInput) -> None:
        self._open_for_money_work()
        allowed = {self.proposal.programme_manager} | ({self.proposal.performer} if self.proposal.performer else set())
        if report.submitted_by not in allowed:
            raise rejected(f"only the performer or the programme manager of {self.project_id} files its reports")
        start = self.state.calendar.start
        first = fiscal_year(start) if start is not None else report.fiscal_year
        latest = fiscal_year(self._calendar_day(workflow.now()))  # reads the calendar, never starts it
        if not first <= report.fiscal_year <= latest:
            raise rejected(
                f"FY{report.fiscal_year} is outside the project's reporting years so far (FY{first} to FY{latest})"
            )
        self._report_not_filed(report.fiscal_year)

    def _report_not_filed(self, fy: int) -> None:
        existing = self.state.money.reports.get(fy)
        if existing is not None and existing.status in ("submitted", "accepted"):
            raise rejected(f"the FY{fy} report is already {existing.status}")

    @workflow.update
    async def review_report(self, review: ReportReviewInput) -> MoneySnapshot:
        async with self.lock:
            self._open_for_money_work()
            await self._record_review(self._report_to_review(review.fiscal_year), review)
        return self._money()

    async def _record_review(self, report: ReportState, review: ReportReviewInput) -> None:
        status = "accepted" if review.accept else "returned"
        # Released however the write ends: a refused write must not leave the report marked busy.
        self.in_flight.add(f"report/{review.fiscal_year}")
        try:
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
        finally:
            self.in_flight.discard(f"report/{review.fiscal_year}")
        await self._notify(
            report.submitted_by,
            f"report_{status}",
            f"{workflow.info().workflow_id}-report-FY{review.fiscal_year}-{status}-{workflow.uuid4()}",
            f"The FY{review.fiscal_year} progress report of {self.project_id} was {status} by {review.reviewed_by}"
            + (f": {review.note}" if review.note else ""),
            local=True,
        )

    @review_report.validator
    def _validate_report_review(self, review: ReportReviewInput) -> None:
        self._open_for_money_work()
        self._require_pm(review.reviewed_by, "reviews its progress reports")
        if f"report/{review.fiscal_year}" in self.in_flight:
            raise rejected(f"the FY{review.fiscal_year} report is being reviewed right now")
        self._report_to_review(review.fiscal_year)
        if not review.accept and not review.note.strip():
            raise rejected("returning a report needs a note saying what is missing")

    def _report_to_review(self, fy: int) -> ReportState:
        report = self.state.money.reports.get(fy)
        if report is None or report.status != "submitted":
            state = "not submitted" if report is None else report.status
            raise rejected(f"the FY{fy} report is {state}: there is nothing to review")
        return report

    @workflow.update
    async def sign_tranche(self, sig: TrancheSignature) -> MoneySnapshot:
        async with self.lock:
            self._open_for_money_work()
            self._tranche_of_this_stage(sig)  # the stage moved on meanwhile
            self._unpaid(sig)  # paid meanwhile
            self._signature_fits(sig)  # a twin signed first
            await self._record_signature(sig)
        return self._money()

    async def _record_signature(self, sig: TrancheSignature) -> None:
        key = f"{sig.stage_no}/{sig.tranche_no}"
        amount = self.stage.tranches[sig.tranche_no - 1].amount
        self.in_flight.add(f"tranche/{key}")
        try:
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
                self.state.money.approvals[key] = TrancheApprovalState(requested_by=sig.signer)
            else:
                self.state.money.approvals[key].approved_by = sig.signer
        finally:
            self.in_flight.discard(f"tranche/{key}")

    @sign_tranche.validator
    def _validate_signature(self, sig: TrancheSignature) -> None:
        self._open_for_money_work()
        self._tranche_of_this_stage(sig)
        self._unpaid(sig)
        amount = self.stage.tranches[sig.tranche_no - 1].amount
        if not self._needs_second_approver(amount):
            raise rejected(f"tranche {sig.tranche_no} ({amount:,} yen) is within the threshold: it needs no approval")
        if f"tranche/{sig.stage_no}/{sig.tranche_no}" in self.in_flight:
            raise rejected(f"a signature on tranche {sig.tranche_no} is being recorded right now")
        self._signature_fits(sig)

    def _tranche_of_this_stage(self, sig: TrancheSignature) -> None:
        stage_no = self.state.stage_index + 1
        if sig.stage_no != stage_no:
            raise rejected(f"stage {sig.stage_no} is not the current stage ({stage_no})")
        if not 1 <= sig.tranche_no <= len(self.stage.tranches):
            raise rejected(f"stage {stage_no} has no tranche {sig.tranche_no}")

    def _unpaid(self, sig: TrancheSignature) -> None:
        if sig.tranche_no in self.state.money.tranches_paid:
            raise rejected(f"tranche {sig.tranche_no} of stage {sig.stage_no} is already paid")

    def _signature_fits(self, sig: TrancheSignature) -> None:
        a = self.state.money.approvals.get(f"{sig.stage_no}/{sig.tranche_no}")
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
