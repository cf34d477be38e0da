"""A project's money: its statement, its yearly progress reports, and four-eyes signatures on
large tranches. Commands reach the workflow as Updates (refusals are 409 with the reason)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.context import ProjectContext, ProjectCtx, ProjectPm, ProjectReporter, ProjectSigner
from api.csv_export import csv_response
from api.deps import has_role
from api.errors import AUTH, responses
from api.params import FiscalYearNo, StageNo, TrancheNo
from api.routes.fund import CSV
from api.routes.gates import COMMAND
from api.schemas.money import ReportIn, ReportReviewIn, StatementLineOut, StatementOut
from domain.files import AttachedTo
from domain.project import MoneySnapshot, ProgressReportInput, ReportReviewInput, TrancheSignature
from domain.roles import Role
from services import files
from storage import ledger
from storage.models import Ministry, Project
from workflows.project import ProjectWorkflow

router = APIRouter(prefix="/projects/{project_id}", tags=["money"])


async def statement_reader(ctx: ProjectCtx) -> ProjectContext:
    """Finance, admin, ops and the project's own programme manager read its statement."""
    if not (
        has_role(ctx.user, Role.FINANCE, Role.ADMIN, Role.OPS) or ctx.project.programme_manager == ctx.user.username
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="a statement is for finance and the project's PM")
    return ctx


StatementReader = Annotated[ProjectContext, Depends(statement_reader)]


@router.get("/statement", response_model=StatementOut, responses={**AUTH, **responses(404)})
async def statement(ctx: StatementReader) -> StatementOut:
    """Every posting on the project's reservation and paid accounts, oldest first, with running balances."""
    lines = await ledger.statement(ctx.session, ctx.project.id)
    return StatementOut(
        project_id=ctx.project.id,
        funding_ministry=ctx.project.funding_ministry,
        reserved=lines[-1].reserved_balance if lines else 0,
        paid=lines[-1].paid_balance if lines else 0,
        lines=[StatementLineOut(**line.__dict__) for line in lines],
    )


@router.get("/statement.csv", response_class=Response, responses={**CSV, **AUTH, **responses(404)})
async def statement_csv(ctx: StatementReader) -> Response:
    """The project's ledger entries as CSV, each naming the project's title and funding ministry."""
    ministry = await ctx.session.get(Ministry, ctx.project.funding_ministry)
    return await statement_csv_response(ctx.session, ctx.project, ministry.name if ministry else "")


STATEMENT_COLUMNS = (*ledger.CSV_COLUMNS, "project_title", "funding_ministry", "funding_ministry_name")


async def statement_csv_response(session: AsyncSession, project: Project, ministry_name: str) -> Response:
    """The statement's CSV, for the API and the page alike; the page names the ministry in its
    reader's language."""
    named = (project.title, project.funding_ministry, ministry_name)
    rows = [(*row, *named) for row in await ledger.entry_rows(session, project.id)]
    return csv_response(STATEMENT_COLUMNS, rows, f"statement-{project.id}.csv")


@router.post("/reports", response_model=MoneySnapshot, responses=COMMAND)
async def submit_report(body: ReportIn, ctx: ProjectReporter) -> MoneySnapshot:
    """File the progress report for a fiscal year (the performer, or the PM on their behalf).
    Reports are due at each fiscal year's end; the next tranche waits until it is accepted."""
    attachments = await files.refs(ctx.session, ctx.project.id, AttachedTo.REPORT, str(body.fiscal_year))
    arg = ProgressReportInput(
        fiscal_year=body.fiscal_year, summary=body.summary, submitted_by=ctx.user.username, attachments=attachments
    )
    result: MoneySnapshot = await ctx.command(
        ProjectWorkflow.submit_report, arg, action="submit_report", fiscal_year=body.fiscal_year
    )
    return result


@router.post("/reports/{fiscal_year}/review", response_model=MoneySnapshot, responses=COMMAND)
async def review_report(fiscal_year: FiscalYearNo, body: ReportReviewIn, ctx: ProjectPm) -> MoneySnapshot:
    """Accept a progress report (a held tranche is then paid) or return it with a note."""
    arg = ReportReviewInput(fiscal_year=fiscal_year, accept=body.accept, note=body.note, reviewed_by=ctx.user.username)
    result: MoneySnapshot = await ctx.command(
        ProjectWorkflow.review_report, arg, action="review_report", fiscal_year=fiscal_year
    )
    return result


async def _sign(ctx: ProjectContext, stage_no: int, tranche_no: int, action: str) -> MoneySnapshot:
    if action == "approve" and not has_role(ctx.user, Role.FINANCE):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="the second approver must be from finance")
    if action == "request" and not (
        has_role(ctx.user, Role.FINANCE) or ctx.project.programme_manager == ctx.user.username
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="finance or the project's PM requests a tranche")
    arg = TrancheSignature(stage_no=stage_no, tranche_no=tranche_no, action=action, signer=ctx.user.username)
    result: MoneySnapshot = await ctx.command(
        ProjectWorkflow.sign_tranche, arg, action=f"tranche_{action}", stage_no=stage_no, tranche_no=tranche_no
    )
    return result


@router.post("/tranches/{stage_no}/{tranche_no}/request", response_model=MoneySnapshot, responses=COMMAND)
async def request_tranche(stage_no: StageNo, tranche_no: TrancheNo, ctx: ProjectSigner) -> MoneySnapshot:
    """First signature on a tranche above the four-eyes threshold (finance, or the project's PM)."""
    return await _sign(ctx, stage_no, tranche_no, "request")


@router.post("/tranches/{stage_no}/{tranche_no}/approve", response_model=MoneySnapshot, responses=COMMAND)
async def approve_tranche(stage_no: StageNo, tranche_no: TrancheNo, ctx: ProjectSigner) -> MoneySnapshot:
    """Second signature, from finance, by someone other than the requester; the tranche is then paid when due."""
    return await _sign(ctx, stage_no, tranche_no, "approve")
