"""The forecast's inputs, read from the database, for the API and the page alike: the ceilings and
what the ledger holds by ministry and fiscal year, and what is left of every active project's plan
(domain/forecast.py computes). Closed projects count like any other - the result names no project."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.fiscal import fiscal_year, jst_date
from domain.forecast import HORIZON, ForecastInput, ForecastResult, LaterStage, ProjectPlan, forecast
from domain.programme import PROGRAMME_CODE
from domain.proposal import DAYS_PER_YEAR
from domain.statuses import ProjectStatus, ReservationStatus
from storage import ledger
from storage.ledger.schedules import schedule_of
from storage.models import Project, Reservation, Stage

_ACTIVE = (ProjectStatus.ACTIVE.value, ProjectStatus.ON_HOLD.value)


def _years(duration_days: int) -> int:
    return max(1, -(-duration_days // DAYS_PER_YEAR))


async def project_plans(session: AsyncSession, first_year: int) -> list[ProjectPlan]:
    """Each active (or held) project: its current stage's cost and the stages after it. The later
    stages start the year after the current stage's last scheduled tranche (this year when nothing
    of it is reserved: a project at a gate or on hold starts its next stage when it is decided)."""
    projects = (await session.scalars(select(Project).where(Project.status.in_(_ACTIVE)).order_by(Project.id))).all()
    if not projects:
        return []
    ids = [p.id for p in projects]
    stages: dict[str, list[Stage]] = defaultdict(list)
    for s in (await session.scalars(select(Stage).where(Stage.project_id.in_(ids)).order_by(Stage.stage_no))).all():
        stages[s.project_id].append(s)
    last_year: dict[str, int] = {}
    open_reservations = await session.scalars(
        select(Reservation).where(Reservation.project_id.in_(ids), Reservation.status == ReservationStatus.OPEN.value)
    )
    for r in open_reservations.all():
        years = [int(s["fiscal_year"]) for s in schedule_of(r)]
        last_year[r.project_id] = max([last_year.get(r.project_id, first_year - 1), *years])
    plans = []
    for p in projects:
        current = next((s for s in stages[p.id] if s.stage_no == p.stage_no), None)
        plans.append(
            ProjectPlan(
                project_id=p.id,
                ministry=p.funding_ministry,
                next_start=max(first_year, last_year.get(p.id, first_year - 1) + 1),
                current_budget=current.budget if current else 0,
                current_years=_years(current.duration_days) if current else 1,
                later=[
                    LaterStage(budget=s.budget, years=_years(s.duration_days))
                    for s in stages[p.id]
                    if s.stage_no > p.stage_no
                ],
            )
        )
    return plans


async def fund_forecast(
    session: AsyncSession,
    kill_rate: Decimal = Decimal(0),
    recycle_rate: Decimal = Decimal(0),
    first_year: int | None = None,
    horizon: int = HORIZON,
) -> ForecastResult:
    first = first_year if first_year is not None else fiscal_year(jst_date(datetime.now(UTC)))
    ceilings: dict[str, dict[int, int]] = {}
    reserved: dict[str, dict[int, int]] = {}
    paid: dict[str, dict[int, int]] = {}
    for m in await ledger.fund_summary(session, PROGRAMME_CODE):
        ceilings[m.ministry] = {y.fiscal_year: y.ceiling for y in m.fiscal_years if y.ceiling is not None}
        reserved[m.ministry] = {y.fiscal_year: y.reserved for y in m.fiscal_years if y.reserved}
        paid[m.ministry] = {y.fiscal_year: y.paid for y in m.fiscal_years if y.paid}
    return forecast(
        ForecastInput(
            first_year=first,
            horizon=horizon,
            ceilings=ceilings,
            reserved=reserved,
            paid=paid,
            projects=await project_plans(session, first),
            kill_rate=kill_rate,
            recycle_rate=recycle_rate,
        )
    )
