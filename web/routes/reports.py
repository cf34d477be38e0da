"""Progress reports: the performer's (and PM's) list of projects with each fiscal year's report,
and one year's report page, where the performer files or re-files it and the programme manager
accepts or returns it. Commands are the API's own (api/routes/money.py): the same access, rules,
audit and refusals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.context import ProjectContext, project_context, project_for
from api.deps import release_connection, require_roles
from api.params import FiscalYearNo
from api.routes import money as api_money
from api.schemas.money import ReportIn, ReportReviewIn
from domain.files import AttachedTo
from domain.fiscal import fiscal_year_end
from domain.roles import Role
from services import files, reports
from web.pages import PageViewer, Viewer, page_session, posted, render, validation_reasons, withheld_closed

router = APIRouter()
_reporters = require_roles(Role.PERFORMER, Role.PM, Role.ADMIN)
_filer = require_roles(Role.PERFORMER, Role.PM)  # as api_money.submit_report (ProjectReporter)
_reviewer = require_roles(Role.PM, Role.ADMIN)  # as api_money.review_report (ProjectPm) ...
_project_pm = project_for(Role.PM, Role.ADMIN, pm_only=True)  # ... and its project's own PM
PER_PAGE = 20


def _refused(request: Request, viewer: Viewer, err: HTTPException) -> Response:
    return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)


@router.get("/reports", response_class=HTMLResponse)
async def my_reports(request: Request, viewer: PageViewer, page: int = Query(1, ge=1, le=100_000)) -> Response:
    try:
        await _reporters(viewer.user)
    except HTTPException as err:
        return _refused(request, viewer, err)
    async with page_session(request) as read:
        found = await reports.filed_page(read, viewer.user, page, PER_PAGE)
        # A user whose clearance no longer covers a closed project loses it from the list too.
        ids = {p.id for p in found.projects}
        withheld = await withheld_closed(request, read, viewer.user, ids, "reports")
    listed = await reports.with_calendars(request.app.state.temporal, found)
    rows = [r for r in listed.rows if r.project.id not in withheld]
    return render(request, "reports.html", viewer, listed=listed, rows=rows)


def _is_filer(ctx: ProjectContext) -> bool:
    return ctx.user.username in (ctx.project.performer, ctx.project.programme_manager)


async def _show(
    request: Request, viewer: Viewer, project_id: str, fy: int, status_code: int = 200, **extra: Any
) -> Response:
    await release_connection(request)  # a caller still inside its own session hands it back first
    async with page_session(request) as read:
        try:
            await _reporters(viewer.user)  # a role refusal names no project
            ctx = await project_context(project_id, request, read, viewer.user)
        except HTTPException as err:
            return _refused(request, viewer, err)
        project = ctx.project
        report = (await reports.reports_of(read, [project.id]))[project.id].get(fy)
        attached = await files.attached(read, project.id, AttachedTo.REPORT, str(fy))
        may_file, may_review = _is_filer(ctx), ctx.is_pm
    calendar = await reports.calendar_of(request.app.state.temporal, project)
    year = next(
        (y for y in reports.year_reports({fy: report} if report else {}, calendar) if y.fiscal_year == fy), None
    )
    status = report.status.value if report is not None else None
    form = extra.get("form") or {"summary": report.summary if report is not None else ""}
    return render(
        request,
        "report.html",
        viewer,
        status_code=status_code,
        project=project,
        fy=fy,
        fy_end=fiscal_year_end(fy),
        report=report,
        year=year,
        status=status,
        can_file=may_file and status in (None, "returned"),
        can_review=may_review and status == "submitted",
        form=form,
        refusal=extra.get("refusal"),
        no_outcome=extra.get("no_outcome", False),
        done=request.query_params.get("done"),
        files=attached,
        can_attach=files.may_attach(viewer.user, project, AttachedTo.REPORT) and status in (None, "returned"),
        max_mb=request.app.state.settings.max_upload_bytes // (1024 * 1024),
    )


@router.get("/projects/{project_id}/reports/{fiscal_year}", response_class=HTMLResponse)
async def report_page(project_id: str, fiscal_year: FiscalYearNo, request: Request, viewer: PageViewer) -> Response:
    return await _show(request, viewer, project_id, fiscal_year)


@router.post("/projects/{project_id}/reports/{fiscal_year}", response_class=HTMLResponse)
async def file_report(project_id: str, fiscal_year: FiscalYearNo, request: Request, viewer: PageViewer) -> Response:
    form = await posted(request)
    try:
        body = ReportIn.model_validate({"fiscal_year": fiscal_year, "summary": form.get("summary", "")})
    except ValidationError as err:
        return await _show(request, viewer, project_id, fiscal_year, 422, form=form, refusal=validation_reasons(err))
    async with page_session(request) as read:
        try:
            await _filer(viewer.user)
            ctx = await project_context(project_id, request, read, viewer.user)
            await api_money.submit_report(body, ctx)
        except HTTPException as err:
            return await _show(request, viewer, project_id, fiscal_year, err.status_code, form=form, refusal=err.detail)
    return RedirectResponse(f"/app/projects/{project_id}/reports/{fiscal_year}?done=submitted", status_code=303)


@router.post("/projects/{project_id}/reports/{fiscal_year}/review", response_class=HTMLResponse)
async def review_report(project_id: str, fiscal_year: FiscalYearNo, request: Request, viewer: PageViewer) -> Response:
    form = await posted(request)
    try:
        body = ReportReviewIn.model_validate(
            {"accept": form.get("outcome") == "accept", "note": form.get("note", "")}
            if form.get("outcome") in ("accept", "return")
            else {}
        )
    except ValidationError:
        # Said in the page's language by the template (no outcome chosen is the page's own check).
        return await _show(request, viewer, project_id, fiscal_year, 422, form=form, no_outcome=True)
    async with page_session(request) as read:
        try:
            user = await _reviewer(viewer.user)
            ctx = await _project_pm(user, await project_context(project_id, request, read, viewer.user))
            await api_money.review_report(fiscal_year, body, ctx)
        except HTTPException as err:
            return await _show(request, viewer, project_id, fiscal_year, err.status_code, form=form, refusal=err.detail)
    done = "accepted" if body.accept else "returned"
    return RedirectResponse(f"/app/projects/{project_id}/reports/{fiscal_year}?done={done}", status_code=303)
