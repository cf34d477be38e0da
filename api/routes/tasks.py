from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Request, status
from sqlalchemy import Select, select

from api.audit import record
from api.commands import send_update
from api.deps import ClientDep, CurrentUser, ReviewerUser, SessionDep, has_role
from api.errors import AUTH, responses
from api.schemas import CriterionOut, ReviewIn, TaskDetail, TaskOut
from domain.project import ReviewResult, ReviewSubmission
from domain.roles import Role
from gates.definitions import GateDefinition
from gates.scorecard import review_errors
from storage.models import Gate, Project, ReviewTask, User
from workflows.project import ProjectWorkflow

router = APIRouter(tags=["review tasks"])


def _task_query(user: User) -> Select[ReviewTask]:
    """Reviewers see only their own tasks; programme managers those of their projects."""
    query = select(ReviewTask).order_by(ReviewTask.created_at.desc())
    if has_role(user, Role.ADMIN, Role.OPS):
        return query
    if has_role(user, Role.PM):
        return query.join(Project, Project.id == ReviewTask.project_id).where(
            (Project.programme_manager == user.username) | (ReviewTask.reviewer == user.username)
        )
    return query.where(ReviewTask.reviewer == user.username)


@router.get("/tasks", response_model=list[TaskOut], responses=AUTH)
async def list_tasks(
    session: SessionDep,
    user: CurrentUser,
    status_: str | None = Query(None, alias="status", description="open, submitted or cancelled"),
) -> list[ReviewTask]:
    query = _task_query(user)
    if status_ is not None:
        query = query.where(ReviewTask.status == status_)
    return list((await session.scalars(query)).all())


async def _own_task(session: SessionDep, user: User, task_id: str) -> tuple[ReviewTask, Gate]:
    task = await session.get(ReviewTask, task_id)
    visible = task is not None and (task.reviewer == user.username or has_role(user, Role.ADMIN, Role.OPS))
    if task is None or not visible:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"review task {task_id} not found")
    gate = await session.get(Gate, (task.project_id, task.gate_no))
    assert gate is not None
    return task, gate


@router.get("/tasks/{task_id}", response_model=TaskDetail, responses={**AUTH, **responses(404)})
async def get_task(task_id: str, session: SessionDep, user: CurrentUser) -> TaskDetail:
    """A review task with the gate's criteria to review against."""
    task, gate = await _own_task(session, user, task_id)
    project = await session.get(Project, task.project_id)
    assert project is not None
    definition = GateDefinition.model_validate(gate.definition)
    return TaskDetail.model_validate(
        {
            **TaskOut.model_validate(task).model_dump(),
            "project_title": project.title,
            "question": definition.question,
            "must_meet": [CriterionOut(**c.model_dump()) for c in definition.must_meet],
            "should_meet": [CriterionOut(**c.model_dump()) for c in definition.should_meet],
        }
    )


@router.post(
    "/tasks/{task_id}/review",
    response_model=ReviewResult,
    responses={**AUTH, **responses(404, 409, 422, 503)},
)
async def submit_review(
    task_id: str, body: ReviewIn, request: Request, session: SessionDep, client: ClientDep, user: ReviewerUser
) -> ReviewResult:
    """Submit this reviewer's independent review of a gate."""
    task = await session.get(ReviewTask, task_id)
    if task is None or task.reviewer != user.username:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"review task {task_id} not found")
    gate = await session.get(Gate, (task.project_id, task.gate_no))
    project = await session.get(Project, task.project_id)
    assert gate is not None and project is not None
    review = ReviewSubmission(
        gate_no=task.gate_no, reviewer=user.username, must_meet=body.must_meet, scores=body.scores, comment=body.comment
    )
    if errors := review_errors(GateDefinition.model_validate(gate.definition), review):
        await record(request, user.username, "review", f"task:{task_id}", "rejected", reason=errors)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="; ".join(errors))
    result: ReviewResult = await send_update(
        request,
        client,
        project.workflow_id,
        ProjectWorkflow.submit_review,
        review,
        actor=user.username,
        action="review",
        target=f"task:{task_id}",
    )
    return result
