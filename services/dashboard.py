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
from sqlalchemy import ColumnElement, Integer, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.access import visible
from domain.handoff import HandoffStatus
from domain.project import ProjectStatus
from domain.trl import MAX_TRL, MIN_TRL
from domain.visions import Registry
from services import visions
from services.portfolio import NONE, Filters, conditions
from storage.models import Gate, Handoff, Project, User

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


@dataclass
class Figures:
    counts: dict[str, int]  # total, total_budget, due, overdue, public_use
    groups: dict[str, dict[Any, tuple[int, int]]]  # dimension -> key -> (projects, budget)
    handoffs: dict[str, int]  # hand-off state -> projects with a hand-off in it


def _flag(condition: ColumnElement[bool]) -> Any:
    return func.max(cast(condition, Integer))


def _open_gates(now: datetime) -> Any:
    """Per project with a dated open gate: whether one is due ahead, whether one is overdue (the
    two EXISTS of services/portfolio, due_gate and overdue_gate, as one pass over the gates)."""
    return (
        select(
            Gate.project_id.label("project_id"),
            _flag(Gate.due_at >= now).label("due"),
            _flag(Gate.due_at < now).label("overdue"),
        )
        .where(Gate.status == "open", Gate.due_at.is_not(None))
        .group_by(Gate.project_id)
        .subquery("open_gates")
    )


def _handoff_states() -> Any:
    """Per project with hand-offs: whether it has one in each state."""
    return (
        select(
            Handoff.project_id.label("project_id"),
            *(_flag(Handoff.status == state.value).label(f"handoff_{state.value}") for state in HandoffStatus),
        )
        .group_by(Handoff.project_id)
        .subquery("handoff_states")
    )


async def _figures(session: AsyncSession, where: list[ColumnElement[bool]], now: datetime) -> Figures:
    """The totals and every breakdown from one read of the filtered projects: grouped by all the
    dimensions at once (a few hundred groups), each group with its budget and how many of its
    projects have a gate due, a gate overdue, public use achieved and a hand-off in each state
    (the gates and hand-offs summed per project once and joined, not probed per project); each
    breakdown is then summed from the groups here."""
    gates, handoffs = _open_gates(now), _handoff_states()
    flags = {
        "public_use": cast(Project.public_use_achieved.is_(True), Integer),
        "due": func.coalesce(gates.c.due, 0),
        "overdue": func.coalesce(gates.c.overdue, 0),
        **{f"handoff_{s.value}": func.coalesce(handoffs.c[f"handoff_{s.value}"], 0) for s in HandoffStatus},
    }
    grouped = (
        select(
            *(column.label(name) for name, column in DIMENSIONS.items()),
            func.count().label("n"),
            func.coalesce(func.sum(Project.total_budget), 0).label("budget"),
            *(func.coalesce(func.sum(value), 0).label(name) for name, value in flags.items()),
        )
        .select_from(Project)
        .outerjoin(gates, gates.c.project_id == Project.id)
        .outerjoin(handoffs, handoffs.c.project_id == Project.id)
        .where(*where)
        .group_by(*DIMENSIONS.values())
    )
    counts = dict.fromkeys(("total", "total_budget", *flags), 0)
    groups: dict[str, dict[Any, tuple[int, int]]] = {name: {} for name in DIMENSIONS}
    for row in (await session.execute(grouped)).mappings():
        n, budget = int(row["n"]), int(row["budget"])
        counts["total"] += n
        counts["total_budget"] += budget
        for name in flags:
            counts[name] += int(row[name])
        for name in DIMENSIONS:
            key = row[name]
            had = groups[name].get(key, (0, 0))
            groups[name][key] = (had[0] + n, had[1] + budget)
    handoff_counts = {s.value: counts.pop(f"handoff_{s.value}") for s in HandoffStatus}
    return Figures(counts, groups, handoff_counts)


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
        handoffs=[Bucket(key=s.value, label=s.value, count=figures.handoffs[s.value]) for s in HandoffStatus],
        lessons=[
            Stopped(
                project_id=p.id, title=p.title, reason=p.stop_reason or "", lessons=p.lessons, closed_at=p.closed_at
            )
            for p in shown
        ],
    )
