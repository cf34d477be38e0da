"""The portfolio's figures over the API: GET /portfolio/summary, with the portfolio list's filters.
The page /app/dashboard shows the same figures from the same function (services/dashboard)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.deps import CurrentUser, SessionDep
from api.errors import AUTH
from domain.handoff import HandoffStatus
from domain.project import ProjectStatus
from domain.roles import FundingMinistry
from services.dashboard import Summary, summary
from services.portfolio import Filters

router = APIRouter(prefix="/portfolio", tags=["portfolio"])
RegistryId = Annotated[
    int | None, Query(ge=0, le=2**31 - 1, description="A registered id; 0: the projects that name none.")
]


@router.get("/summary", response_model=Summary, responses=AUTH)
async def portfolio_summary(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    vision: RegistryId = None,
    area: RegistryId = None,
    ministry: FundingMinistry | None = None,
    status: ProjectStatus | None = None,
    stage: Annotated[int | None, Query(ge=1, le=10)] = None,
    trl: Annotated[int | None, Query(ge=1, le=9)] = None,
    overdue: bool = Query(False, description="Only projects with an open gate past its due date."),
    due: bool = Query(False, description="Only projects with an open gate due, not yet overdue."),
    handoff: HandoffStatus | None = Query(None, description="Only projects with a hand-off in this state."),
    public_use: bool = Query(False, description="Only projects completed with public use achieved."),
) -> Summary:
    """The portfolio in figures, for the projects this user may see (closed work counted only where
    the user may read it, as in the portfolio list): by vision, area, ministry, stage, TRL and
    status; gates due and overdue, holds, stops with their lessons, hand-offs, public use."""
    filters = Filters(
        status=status,
        stage=stage,
        trl=trl,
        ministry=ministry.value if ministry else None,
        overdue_gates=overdue,
        vision=vision,
        area=area,
        due_gates=due,
        handoff=handoff,
        public_use=public_use,
    )
    return await summary(request, session, user, filters)
