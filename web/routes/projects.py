"""The portfolio: every project the user may see, with filters, sort and totals. The filters are
the dashboard's too (services/portfolio.parse_filters): each of its figures links here."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.access import visible
from domain.project import ProjectStatus
from domain.roles import FundingMinistry
from domain.visions import Registry
from services import visions
from services.portfolio import Sort, parse_filters, portfolio, query_of
from web.pages import PageViewer, page_session, render

router = APIRouter()


@router.get("/projects", response_class=HTMLResponse)
async def projects(
    request: Request,
    viewer: PageViewer,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    filters = parse_filters(request.query_params)
    async with page_session(request) as read:
        choices = {kind: await visions.entries(read, kind) for kind in Registry}
        found = await portfolio(read, viewer.user, filters, page)
        rows = await visible(request, read, viewer.user, found.rows, "portfolio")
    chosen = query_of(filters)
    return render(
        request,
        "projects.html",
        viewer,
        found=found,
        rows=rows,
        filters=filters,
        statuses=list(ProjectStatus),
        sorts=list(Sort),
        ministries=[m.value for m in FundingMinistry],
        visions=choices[Registry.VISIONS],
        areas=choices[Registry.AREAS],
        # The dashboard's own filters (not in this form) ride along as hidden fields.
        hidden={k: v for k, v in chosen.items() if k in ("due", "handoff", "public_use")},
        query=urlencode(chosen),
    )
