"""The portfolio dashboard (/app/dashboard): the figures of services/dashboard.summary (the API's
GET /portfolio/summary) under filters kept in the address, each figure a link to the portfolio list
behind it, the stage funnel and the TRL distribution drawn by pygal with a table of the same
figures beside each chart."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import require_roles
from domain.project import ProjectStatus
from domain.roles import FundingMinistry, Role
from domain.visions import Registry
from services import visions
from services.dashboard import summary
from services.portfolio import parse_filters, query_of
from web import charts
from web.pages import TRANSLATIONS, PageViewer, language, page_session, render

router = APIRouter()
_readers = require_roles(Role.PM, Role.ADMIN, Role.FINANCE, Role.OPS)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, viewer: PageViewer) -> Response:
    try:
        await _readers(viewer.user)
    except HTTPException as err:
        return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
    filters = parse_filters(request.query_params)
    async with page_session(request) as read:
        choices = {kind: await visions.entries(read, kind) for kind in Registry}
        figures = await summary(request, read, viewer.user, filters)

    def link(**changes: Any) -> str:
        """The portfolio list of this figure: the dashboard's filters and the figure's own."""
        query = urlencode(query_of(filters, **changes))
        return "/app/projects" + (f"?{query}" if query else "")

    gettext = TRANSLATIONS[language(request)].gettext
    return render(
        request,
        "dashboard.html",
        viewer,
        filters=filters,
        figures=figures,
        link=link,
        visions=choices[Registry.VISIONS],
        areas=choices[Registry.AREAS],
        ministries=[m.value for m in FundingMinistry],
        statuses=list(ProjectStatus),
        funnel_chart=charts.bar_chart(
            gettext("Stage funnel"), [str(b.label) for b in figures.by_stage], [b.count for b in figures.by_stage], True
        ),
        trl_chart=charts.bar_chart(
            gettext("TRL distribution"), [str(b.label) for b in figures.by_trl], [b.count for b in figures.by_trl]
        ),
        vision_chart=charts.bar_chart(
            gettext("Projects by research vision"),
            [b.label for b in figures.by_vision],
            [b.count for b in figures.by_vision],
            True,
        ),
    )
