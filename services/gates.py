"""The gates waiting on a programme manager: their projects' rounds under review, soonest due
first, paged and counted in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.access import readable_sql
from storage.models import Gate, Project, User


@dataclass(frozen=True)
class OpenGate:
    project_id: str
    project_title: str
    gate_no: int
    round: int
    due_at: datetime | None
    overdue: bool


@dataclass(frozen=True)
class OpenGates:
    rows: list[OpenGate]
    total: int
    page: int
    pages: int


async def open_gates_of(
    session: AsyncSession, programme_manager: User, page: int = 1, per_page: int = 25, now: datetime | None = None
) -> OpenGates:
    now = now or datetime.now(UTC)
    mine = (
        Project.programme_manager == programme_manager.username,
        Gate.status == "open",
        Gate.workflow_id.is_not(None),
        # Closed work the PM may no longer read stays out of the total, not only out of the rows.
        readable_sql(programme_manager),
    )
    total = int(await session.scalar(select(func.count()).select_from(Gate).join(Project).where(*mine)) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = await session.execute(
        select(Gate.project_id, Project.title, Gate.gate_no, Gate.round, Gate.due_at)
        .join(Project, Project.id == Gate.project_id)
        .where(*mine)
        .order_by(Gate.due_at.is_(None), Gate.due_at, Gate.project_id, Gate.gate_no)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    out = []
    for project_id, title, gate_no, round_, due_at in rows.all():
        due = due_at.replace(tzinfo=UTC) if due_at is not None and due_at.tzinfo is None else due_at
        out.append(OpenGate(project_id, title, gate_no, round_, due, due is not None and due < now))
    return OpenGates(out, total, page, pages)
