"""Finance's four-eyes approvals: the tranches waiting for a request or a second approval across
projects (services/tranche_approvals.py), and a tranche's page with the Request and Approve
buttons. The signatures are the API's own commands (api/routes/money.py): the same roles, the
workflow's four-eyes rule, audit and refusals, shown on the page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.context import ProjectContext, project_context
from api.deps import release_connection, require_roles
from api.params import StageNo, TrancheNo
from api.routes import money as api_money
from domain.roles import Role
from services import projects as projects_service
from services.tranche_approvals import Sort, awaiting_approval, recently_signed, tranche_state
from web.pages import PageViewer, Viewer, page_session, render, withheld_closed
from web.routes import fund

router = APIRouter()
# The fund's pages (web/routes/fund.py) come in with the approvals': finance's section is one
# router in web/__init__.py's list.
router.include_router(fund.router)
_finance = require_roles(Role.FINANCE, Role.ADMIN)
_ACTIONS = {"request": api_money.request_tranche, "approve": api_money.approve_tranche}


@router.get("/finance/approvals", response_class=HTMLResponse)
async def approvals(
    request: Request,
    viewer: PageViewer,
    page: int = Query(1, ge=1, le=100_000),
    sort: Sort = Sort.DUE,
) -> Response:
    try:
        await _finance(viewer.user)
    except HTTPException as err:
        return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
    async with page_session(request) as read:
        found = await awaiting_approval(read, viewer.user, page, sort=sort)
        signed = await recently_signed(read, viewer.user)
        ids = {r.project_id for r in found.rows} | {r.project_id for r in signed}
        withheld = await withheld_closed(request, read, viewer.user, ids, "approvals")
    rows = [r for r in found.rows if r.project_id not in withheld]
    approved = [r for r in signed if r.project_id not in withheld]
    return render(
        request,
        "finance_approvals.html",
        viewer,
        found=found,
        rows=rows,
        approved=approved,
        sort=sort.value,
        sorts=list(Sort),
    )


def _tranche_url(project_id: str, stage_no: int, tranche_no: int) -> str:
    return f"/app/finance/approvals/{project_id}/{stage_no}/{tranche_no}"


async def _context(request: Request, read: Any, viewer: Viewer, project_id: str) -> ProjectContext:
    await _finance(viewer.user)  # a role refusal names no project
    return await project_context(project_id, request, read, viewer.user)


async def _show(
    request: Request,
    viewer: Viewer,
    project_id: str,
    stage_no: int,
    tranche_no: int,
    status_code: int = 200,
    refusal: str | None = None,
) -> Response:
    await release_connection(request)  # a caller still inside its own session hands it back first
    async with page_session(request) as read:
        try:
            ctx = await _context(request, read, viewer, project_id)
        except HTTPException as err:
            return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
        state = await tranche_state(read, ctx.project, stage_no, tranche_no)
        title, current_stage = ctx.project.title, ctx.project.stage_no
        live = await projects_service.live_status(ctx)  # what the workflow waits for now, when it can say
    return render(
        request,
        "finance_tranche.html",
        viewer,
        status_code=status_code,
        project_id=project_id,
        project_title=title,
        stage_no=stage_no,
        tranche_no=tranche_no,
        current_stage=current_stage,
        state=state,
        waiting_for=live.waiting_for if live is not None else None,
        refusal=refusal,
        done=request.query_params.get("done"),
        action_url=_tranche_url(project_id, stage_no, tranche_no),
    )


@router.get("/finance/approvals/{project_id}/{stage_no}/{tranche_no}", response_class=HTMLResponse)
async def tranche_page(
    project_id: str, stage_no: StageNo, tranche_no: TrancheNo, request: Request, viewer: PageViewer
) -> Response:
    return await _show(request, viewer, project_id, stage_no, tranche_no)


@router.post("/finance/approvals/{project_id}/{stage_no}/{tranche_no}/{action}", response_class=HTMLResponse)
async def sign(
    project_id: str, stage_no: StageNo, tranche_no: TrancheNo, action: str, request: Request, viewer: PageViewer
) -> Response:
    command = _ACTIONS.get(action)
    if command is None:
        return render(request, "refused.html", viewer, status_code=404, reason=f"no such action: {action}")
    async with page_session(request) as read:
        try:
            # The API's route functions check who signs what themselves (approve: finance only).
            await command(stage_no, tranche_no, await _context(request, read, viewer, project_id))
        except HTTPException as err:
            return await _show(request, viewer, project_id, stage_no, tranche_no, err.status_code, str(err.detail))
    return RedirectResponse(f"{_tranche_url(project_id, stage_no, tranche_no)}?done={action}", status_code=303)
