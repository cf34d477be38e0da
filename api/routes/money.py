"""A project's money: its statement, its yearly progress reports, and four-eyes signatures on
large tranches. Commands reach the workflow as Updates (refusals are 409 with the reason)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response

from api.access import project_for, project_or_404
from api.commands import send_update
from api.deps import ClientDep, CurrentUser, PmUser, ReportingUser, SessionDep, SignerUser, has_role
from api.errors import AUTH, responses
from api.params import FiscalYearNo, StageNo, TrancheNo
from api.routes.fund import CSV, as_csv
from api.routes.gates import COMMAND
from api.schemas import ReportIn, ReportReviewIn, StatementLineOut, StatementOut
from domain.project import MoneySnapshot, ProgressReportInput, ReportReviewInput, TrancheSignature
from domain.roles import Role
from storage import ledger
from storage.models import Project, User
from workflows.project import ProjectWorkflow

router = APIRouter(tags=["money"])


async def _statement_project(request: Request, session: SessionDep, user: User, project_id: str) -> Project:
    """Finance, admin, ops and the project's own programme manager read its statement."""
    project = await project_or_404(request, session, user, project_id, "statement")
    if not (has_role(user, Role.FINANCE, Role.ADMIN, Role.OPS) or project.programme_manager == user.username):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="a statement is for finance and the project's PM")
    return project


@router.get("/projects/{project_id}/statement", response_model=StatementOut, responses={**AUTH, **responses(404)})
async def statement(project_id: str, request: Request, session: SessionDep, user: CurrentUser) -> StatementOut:
    """Every posting on the project's reservation and paid accounts, oldest first, with running balances."""
    project = await _statement_project(request, session, user, project_id)
    lines = await ledger.statement(session, project.id)
    return StatementOut(
        project_id=project.id,
        funding_ministry=project.funding_ministry,
        reserved=lines[-1].reserved_balance if lines else 0,
        paid=lines[-1].paid_balance if lines else 0,
        lines=[StatementLineOut(**line.__dict__) for line in lines],
    )


@router.get(
    "/projects/{project_id}/statement.csv", response_class=Response, responses={**CSV, **AUTH, **responses(404)}
)
async def statement_csv(project_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """The project's ledger entries as CSV."""
    project = await _statement_project(request, session, user, project_id)
    rows = list(await ledger.entry_rows(session, project.id))
    return Response(
        as_csv(rows),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="statement-{project.id}.csv"'},
    )


@router.post("/projects/{project_id}/reports", response_model=MoneySnapshot, responses=COMMAND)
async def submit_report(
    project_id: str, body: ReportIn, request: Request, session: SessionDep, client: ClientDep, user: ReportingUser
) -> MoneySnapshot:
    """File the progress report for a fiscal year (the performer, or the PM on their behalf).
    Reports are due at each fiscal year's end; the next tranche waits until it is accepted."""
    project = await project_for(request, session, user, project_id, pm_only=False)
    arg = ProgressReportInput(fiscal_year=body.fiscal_year, summary=body.summary, submitted_by=user.username)
    result: MoneySnapshot = await send_update(
        request,
        client,
        project.workflow_id,
        ProjectWorkflow.submit_report,
        arg,
        actor=user.username,
        action="submit_report",
        target=f"project:{project_id}",
        fiscal_year=body.fiscal_year,
    )
    return result


@router.post("/projects/{project_id}/reports/{fiscal_year}/review", response_model=MoneySnapshot, responses=COMMAND)
async def review_report(
    project_id: str,
    fiscal_year: FiscalYearNo,
    body: ReportReviewIn,
    request: Request,
    session: SessionDep,
    client: ClientDep,
    user: PmUser,
) -> MoneySnapshot:
    """Accept a progress report (a held tranche is then paid) or return it with a note."""
    project = await project_for(request, session, user, project_id)
    arg = ReportReviewInput(fiscal_year=fiscal_year, accept=body.accept, note=body.note, reviewed_by=user.username)
    result: MoneySnapshot = await send_update(
        request,
        client,
        project.workflow_id,
        ProjectWorkflow.review_report,
        arg,
        actor=user.username,
        action="review_report",
        target=f"project:{project_id}",
        fiscal_year=fiscal_year,
    )
    return result


async def _sign(
    request: Request,
    session: SessionDep,
    client: ClientDep,
    user: User,
    project_id: str,
    stage_no: int,
    tranche_no: int,
    action: str,
) -> MoneySnapshot:
    project = await project_for(request, session, user, project_id, pm_only=False)
    if action == "approve" and not has_role(user, Role.FINANCE):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="the second approver must be from finance")
    if action == "request" and not (has_role(user, Role.FINANCE) or project.programme_manager == user.username):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="finance or the project's PM requests a tranche")
    arg = TrancheSignature(stage_no=stage_no, tranche_no=tranche_no, action=action, signer=user.username)
    result: MoneySnapshot = await send_update(
        request,
        client,
        project.workflow_id,
        ProjectWorkflow.sign_tranche,
        arg,
        actor=user.username,
        action=f"tranche_{action}",
        target=f"project:{project_id}",
        stage_no=stage_no,
        tranche_no=tranche_no,
    )
    return result


@router.post(
    "/projects/{project_id}/tranches/{stage_no}/{tranche_no}/request", response_model=MoneySnapshot, responses=COMMAND
)
async def request_tranche(
    project_id: str,
    stage_no: StageNo,
    tranche_no: TrancheNo,
    request: Request,
    session: SessionDep,
    client: ClientDep,
    user: SignerUser,
) -> MoneySnapshot:
    """First signature on a tranche above the four-eyes threshold (finance, or the project's PM)."""
    return await _sign(request, session, client, user, project_id, stage_no, tranche_no, "request")


@router.post(
    "/projects/{project_id}/tranches/{stage_no}/{tranche_no}/approve", response_model=MoneySnapshot, responses=COMMAND
)
async def approve_tranche(
    project_id: str,
    stage_no: StageNo,
    tranche_no: TrancheNo,
    request: Request,
    session: SessionDep,
    client: ClientDep,
    user: SignerUser,
) -> MoneySnapshot:
    """Second signature, from finance, by someone other than the requester; the tranche is then paid when due."""
    return await _sign(request, session, client, user, project_id, stage_no, tranche_no, "approve")
