"""A reviewer's inbox: their tasks with the project, the gate's due date and whether it is past,
paged and counted in SQL. Closed projects' tasks come only where the reviewer may read them
(storage/access.readable_sql), so the counts agree with the rows; the caller audits what is shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import has_role
from domain.gate_review import TaskStatus
from domain.proposal import Classification
from domain.roles import Role
from storage.access import readable_page, readable_sql
from storage.models import Gate, Project, ReviewTask, User
from storage.paging import Key, Order, Page


class InboxGroup(StrEnum):
    INVITED = "invited"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"


GROUP_STATUSES: dict[InboxGroup, tuple[TaskStatus, ...]] = {
    InboxGroup.INVITED: (TaskStatus.INVITED, TaskStatus.OPEN),
    InboxGroup.IN_PROGRESS: (TaskStatus.ACCEPTED,),
    InboxGroup.SUBMITTED: (TaskStatus.SUBMITTED,),
}


@dataclass(frozen=True)
class InboxRow:
    task_id: str
    project_id: str
    project_title: str
    closed: bool
    gate_no: int
    round: int
    status: TaskStatus
    due_at: datetime | None
    overdue: bool


@dataclass(frozen=True)
class InboxPage:
    rows: list[InboxRow]
    group: InboxGroup
    counts: dict[InboxGroup, int]
    overdue: int
    page: int
    pages: int


async def _mine(session: AsyncSession, user: User) -> ColumnElement[bool]:
    return and_(ReviewTask.reviewer == user.username, readable_sql(user))


Q = TypeVar("Q", bound=Select)


def _base(query: Q) -> Q:
    return (
        query.select_from(ReviewTask)
        .join(Project, Project.id == ReviewTask.project_id)
        .outerjoin(Gate, and_(Gate.project_id == ReviewTask.project_id, Gate.gate_no == ReviewTask.gate_no))
    )


async def reviewer_inbox(
    session: AsyncSession,
    user: User,
    group: InboxGroup,
    page: int = 1,
    per_page: int = 25,
    now: datetime | None = None,
) -> InboxPage:
    now = now or datetime.now(UTC)
    mine = await _mine(session, user)
    in_group = ReviewTask.status.in_([s.value for s in GROUP_STATUSES[group]])
    counted = await session.execute(
        _base(select(ReviewTask.status, func.count())).where(mine).group_by(ReviewTask.status)
    )
    by_status = {TaskStatus(status): n for status, n in counted.all()}
    counts = {g: sum(by_status.get(s, 0) for s in statuses) for g, statuses in GROUP_STATUSES.items()}
    waiting = ReviewTask.status.in_([TaskStatus.INVITED.value, TaskStatus.ACCEPTED.value, TaskStatus.OPEN.value])
    overdue = await session.scalar(
        _base(select(func.count())).where(mine, waiting, Gate.status == "open", Gate.due_at < now)
    )
    pages = max(1, -(-counts[group] // per_page))
    page = min(max(1, page), pages)
    rows = await session.execute(
        _base(
            select(
                ReviewTask.id,
                ReviewTask.project_id,
                Project.title,
                Project.classification,
                ReviewTask.gate_no,
                ReviewTask.round,
                ReviewTask.status,
                Gate.due_at,
                Gate.status,
            )
        )
        .where(mine, in_group)
        # The soonest due first; then the newest.
        .order_by(Gate.due_at.is_(None), Gate.due_at, ReviewTask.created_at.desc(), ReviewTask.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    out = []
    for task_id, project_id, title, classification, gate_no, round_, status, due_at, gate_status in rows.all():
        due = due_at.replace(tzinfo=UTC) if due_at is not None and due_at.tzinfo is None else due_at
        waiting_task = TaskStatus(status) in (TaskStatus.INVITED, TaskStatus.ACCEPTED, TaskStatus.OPEN)
        out.append(
            InboxRow(
                task_id=task_id,
                project_id=project_id,
                project_title=title,
                closed=classification == Classification.CLOSED.value,
                gate_no=gate_no,
                round=round_,
                status=TaskStatus(status),
                due_at=due,
                overdue=bool(waiting_task and gate_status == "open" and due is not None and due < now),
            )
        )
    return InboxPage(out, group, counts, int(overdue or 0), page, pages)


# ---- the API's list: every task the user's roles reach, keyset-paged ---------------------------

TASKS = Order("tasks", (Key(ReviewTask.created_at, datetime, desc=True), Key(ReviewTask.id, str, desc=True)), rows=True)


def task_scope(user: User) -> ColumnElement[bool]:
    """Reviewers see their own tasks; programme managers those of their projects too;
    administration and operations all of them (over ReviewTask joined with its Project)."""
    if has_role(user, Role.ADMIN, Role.OPS):
        return true()
    if has_role(user, Role.PM):
        return or_(Project.programme_manager == user.username, ReviewTask.reviewer == user.username)
    return ReviewTask.reviewer == user.username


def tasks_query(user: User, status: TaskStatus | None = None) -> Select[ReviewTask, str]:
    query = (
        select(ReviewTask, Project.classification)
        .join(Project, Project.id == ReviewTask.project_id)
        .where(task_scope(user))
    )
    return query.where(ReviewTask.status == status.value) if status is not None else query


async def task_page(
    session: AsyncSession, user: User, status: TaskStatus | None, cursor: str | None, limit: int
) -> Page[Any]:
    """A page of (task, its project's classification), newest first. A reviewer's own task on
    open work is listed even where the role rules alone would not reach the project; closed work
    only as the policy allows (storage/access.readable_sql)."""
    return await readable_page(session, user, tasks_query(user, status), TASKS, cursor, limit)
