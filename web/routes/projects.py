"""The portfolio: every project the user may see, with filters, sort and totals."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.access import visible
from domain.project import ProjectStatus
from domain.roles import FundingMinistry
from services.portfolio import Filters, Sort, portfolio
from web.pages import PageViewer, page_session, render

router = APIRouter()


def _optional_int(value: str | None, low: int, high: int) -> int | None:
    """An empty select means "any"; anything else out of range is "any" too (a filter never fails)."""
    return int(value) if value and value.isascii() and value.isdigit() and low <= int(value) <= high else None


@router.get("/projects", response_class=HTMLResponse)
async def projects(
    request: Request,
    viewer: PageViewer,
    status: Annotated[str | None, Query()] = None,
    stage: Annotated[str | None, Query()] = None,
    trl: Annotated[str | None, Query()] = None,
    ministry: Annotated[str | None, Query(max_length=16)] = None,
    overdue: Annotated[str | None, Query()] = None,
    sort: Annotated[str | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    filters = Filters(
        status=ProjectStatus(status) if status in set(ProjectStatus) else None,
        stage=_optional_int(stage, 1, 10),
        trl=_optional_int(trl, 1, 9),
        ministry=ministry if ministry in set(FundingMinistry) else None,
        overdue_gates=overdue == "1",
        sort=Sort(sort) if sort in set(Sort) else Sort.NEWEST,
    )
    async with page_session(request) as read:
        found = await portfolio(read, viewer.user, filters, page)
        rows = await visible(request, read, viewer.user, found.rows, "portfolio")
    chosen = {
        k: v
        for k, v in {
            "status": filters.status.value if filters.status else "",
            "stage": filters.stage or "",
            "trl": filters.trl or "",
            "ministry": filters.ministry or "",
            "overdue": "1" if filters.overdue_gates else "",
            "sort": filters.sort.value,
        }.items()
        if v
    }
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
        query=urlencode(chosen),
    )
