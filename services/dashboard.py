"""The portfolio dashboard's figures: projects by vision, area, ministry, stage, TRL and status,
gates due and overdue, holds, stops with their lessons, hand-offs and public use achieved. One
function for the API (GET /portfolio/summary) and the page (/app/dashboard).

Every figure counts the rows of the portfolio list under the same filters plus the figure's own
(services/portfolio.conditions): what a figure says, the list behind its link shows, closed work
included or left out exactly as there. The totals and breakdowns are one statement (`_figures`);
no loop over projects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Integer, String, cast, func, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from api.access import visible
from domain.handoff import HandoffStatus
from domain.project import ProjectStatus
from domain.trl import MAX_TRL, MIN_TRL
from domain.visions import Registry
from services import visions
from services.portfolio import NONE, Filters, conditions, due_gate, overdue_gate
from storage.models import Handoff, Project, User

KILLS_SHOWN = 10


class Bucket(BaseModel):
    """One figure: its key (the value of its filter in the list's address), a label, a count."""

    key: str | int
    label: str
    count: int
    budget: int = 0


class Stopped(BaseModel):
    project_id: str
    title: str
    reason: str
    lessons: str
    closed_at: datetime | None


class Summary(BaseModel):
    total: int
    total_budget: int
    by_vision: list[Bucket]
    by_area: list[Bucket]
    by_ministry: list[Bucket]
    by_stage: list[Bucket]  # the stage funnel: projects at each stage, 1 up
    by_trl: list[Bucket]  # the TRL distribution, every TRL 1-9 (zeros too)
    by_status: list[Bucket]
    gates_due: int
    gates_overdue: int
    on_hold: int
    stopped: int
    public_use: int
    handoffs: list[Bucket]  # projects with a hand-off in each state
    lessons: list[Stopped]  # the latest stops, with their lessons


# The breakdowns, each a column of the project row; with the total, one query (`_figures`).
DIMENSIONS: dict[str, Any] = {
    "status": Project.status,
    "stage": Project.stage_no,
    "trl": Project.current_trl,
    "vision": Project.vision_id,
    "area": Project.area_id,
    "ministry": Project.funding_ministry,
}
TOTAL = "total"


@dataclass
class Figures:
    counts: dict[str, int]  # total, total_budget, due, overdue, public_use
    groups: dict[str, dict[Any, tuple[int, int]]]  # dimension -> key -> (projects, budget)


def _counted(where: list[ColumnElement[bool]], condition: ColumnElement[bool]) -> Any:
    """The projects that also meet `condition` (a gate EXISTS): in WHERE the database joins the
    gates once (a semi-join); as a flag in the grouped SELECT it would probe them per project."""
    return select(func.count()).select_from(Project).where(*where, condition).scalar_subquery()


async def _figures(session: AsyncSession, where: list[ColumnElement[bool]], now: datetime) -> Figures:
    """The totals and every breakdown in one statement, so the filtered projects are read once
    for them all, not once per figure: the projects grouped by all the dimensions at once (a few
    hundred groups), then each breakdown summed from those groups; gates due and overdue counted
    beside them."""

    def flag(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(cast(condition, Integer)), 0)

    groups = (
        select(
            *(column.label(name) for name, column in DIMENSIONS.items()),
            func.count().label("n"),
            func.coalesce(func.sum(Project.total_budget), 0).label("budget"),
            flag(Project.public_use_achieved.is_(True)).label("public_use"),
        )
        .where(*where)
        .group_by(*DIMENSIONS.values())
        .cte("groups")
    )
    n, budget = func.coalesce(func.sum(groups.c.n), 0), func.coalesce(func.sum(groups.c.budget), 0)
    zero = literal(0)
    parts = [
        select(literal(TOTAL), cast(null(), String), n, budget, _counted(where, due_gate(now)),
               _counted(where, overdue_gate(now)), func.coalesce(func.sum(groups.c.public_use), 0))
    ]  # fmt: skip
    parts += [
        select(literal(name), cast(groups.c[name], String), n, budget, zero, zero, zero).group_by(groups.c[name])
        for name in DIMENSIONS
    ]
    figures = Figures({}, {name: {} for name in DIMENSIONS})
    for name, key, count, total_budget, due, overdue, public_use in (await session.execute(union_all(*parts))).all():
        if name == TOTAL:
            figures.counts = {
                "total": int(count),
                "total_budget": int(total_budget),
                "due": int(due),
                "overdue": int(overdue),
                "public_use": int(public_use),
            }
        else:
            value = key if key is None or name in ("status", "ministry") else int(key)
            figures.groups[name][value] = (int(count), int(total_budget))
    return figures


def _rows(figures: Figures, name: str) -> list[tuple[Any, int, int]]:
    """A breakdown as (key, projects, budget), in key order (no key last)."""
    found = figures.groups[name]
    return [(k, *found[k]) for k in sorted(found, key=lambda k: (k is None, k))]


async def _named_buckets(
    session: AsyncSession, kind: Registry, rows: list[tuple[Any, int, int]], none_label: str
) -> list[Bucket]:
    titles = await visions.titles(session, kind, {k for k, _, _ in rows if k is not None})
    buckets = [
        Bucket(key=NONE if k is None else k, label=none_label if k is None else titles[k], count=n, budget=b)
        for k, n, b in rows
    ]
    return sorted(buckets, key=lambda b: (-b.count, b.label))


async def summary(
    request: Request, session: AsyncSession, user: User, filters: Filters, now: datetime | None = None
) -> Summary:
    """The figures for this user under these filters. The stops' lessons shown pass the one
    access policy (and its audit of closed work) as a list's rows do."""
    now = now or datetime.now(UTC)
    where = await conditions(session, user, filters, now)

    figures = await _figures(session, where, now)
    statuses = {ProjectStatus(k): (n, b) for k, n, b in _rows(figures, "status")}
    stages = {k: (n, b) for k, n, b in _rows(figures, "stage")}
    trls = {k: (n, b) for k, n, b in _rows(figures, "trl")}
    handoff_rows = (
        await session.execute(
            select(Handoff.status, func.count(func.distinct(Handoff.project_id)))
            .join(Project, Project.id == Handoff.project_id)
            .where(*where)
            .group_by(Handoff.status)
        )
    ).all()
    handoffs = {status: int(n) for status, n in handoff_rows}
    stops = await session.scalars(
        select(Project)
        .where(*where, Project.status == ProjectStatus.TERMINATED.value)
        .order_by(Project.closed_at.desc(), Project.id)
        .limit(KILLS_SHOWN)
    )
    by_vision = await _named_buckets(session, Registry.VISIONS, _rows(figures, "vision"), "(no registered vision)")
    by_area = await _named_buckets(session, Registry.AREAS, _rows(figures, "area"), "(no technology area)")
    by_ministry = [Bucket(key=k, label=k, count=n, budget=b) for k, n, b in _rows(figures, "ministry")]
    # Last: the audit of closed rows hands the read connection back.
    shown = await visible(request, session, user, list(stops.all()), "dashboard")
    return Summary(
        total=figures.counts["total"],
        total_budget=figures.counts["total_budget"],
        by_vision=by_vision,
        by_area=by_area,
        by_ministry=by_ministry,
        by_stage=[Bucket(key=k, label=str(k), count=stages[k][0], budget=stages[k][1]) for k in sorted(stages)],
        by_trl=[
            Bucket(key=t, label=str(t), count=trls.get(t, (0, 0))[0], budget=trls.get(t, (0, 0))[1])
            for t in range(MIN_TRL, MAX_TRL + 1)
        ],
        by_status=[
            Bucket(key=s.value, label=s.value, count=statuses.get(s, (0, 0))[0], budget=statuses.get(s, (0, 0))[1])
            for s in ProjectStatus
        ],
        gates_due=figures.counts["due"],
        gates_overdue=figures.counts["overdue"],
        on_hold=statuses.get(ProjectStatus.ON_HOLD, (0, 0))[0],
        stopped=statuses.get(ProjectStatus.TERMINATED, (0, 0))[0],
        public_use=figures.counts["public_use"],
        handoffs=[Bucket(key=s.value, label=s.value, count=int(handoffs.get(s, 0))) for s in HandoffStatus],
        lessons=[
            Stopped(
                project_id=p.id, title=p.title, reason=p.stop_reason or "", lessons=p.lessons, closed_at=p.closed_at
            )
            for p in shown
        ],
    )
