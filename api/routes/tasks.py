"""Review tasks: a reviewer answers the invitation and reviews; the lists show each their own."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, status

from api.access import audit_listed, authorize
from api.audit import record
from api.context import ProjectContext
from api.deps import CurrentUser, ReviewerUser, SessionDep, has_role
from api.errors import AUTH, responses
from api.paging import ListOut, PageIn
from api.params import IdempotencyKey
from api.schemas.gates import CriterionOut
from api.schemas.tasks import RespondIn, ReviewIn, TaskDetail, TaskOut
from domain.gate_review import GateView, InvitationResponse, TaskStatus
from domain.project import ReviewSubmission
from domain.roles import Role
from gates.definitions import GateDefinition
from gates.scorecard import review_errors
from services import review_tasks
from storage.models import Gate, Project, ReviewTask, User
from workflows.gate_review import GateReviewWorkflow, gate_workflow_id

router = APIRouter(prefix="/tasks", tags=["review tasks"])


@router.get("", response_model=ListOut[TaskOut], responses={**AUTH, **responses(422)})
async def list_tasks(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    paging: PageIn,
    status_: TaskStatus | None = Query(None, alias="status", description="Only tasks with this status."),
) -> ListOut[TaskOut]:
    """Reviewers' own tasks, programme managers' those of their projects too, newest first."""
    found = await review_tasks.task_page(session, user, status_, paging.cursor, paging.limit)
    await audit_listed(request, session, user, "tasks", [(t.project_id, c) for t, c in found.items], found.withheld)
    return ListOut(items=[TaskOut.model_validate(t) for t, _ in found.items], total=found.total, next=found.next)


async def _own_task(request: Request, session: SessionDep, user: User, task_id: str) -> tuple[ReviewTask, Gate]:
    task = await session.get(ReviewTask, task_id)
    visible_task = task is not None and (task.reviewer == user.username or has_role(user, Role.ADMIN, Role.OPS))
    if task is None or not visible_task:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"review task {task_id} not found")
    project = await session.get(Project, task.project_id)
    assert project is not None
    await authorize(request, session, user, project, "task")
    gate = await session.get(Gate, (task.project_id, task.gate_no))
    assert gate is not None
    return task, gate


@router.get("/{task_id}", response_model=TaskDetail, responses={**AUTH, **responses(404)})
async def get_task(task_id: str, request: Request, session: SessionDep, user: CurrentUser) -> TaskDetail:
    """A review task with the gate's criteria to review against."""
    task, gate = await _own_task(request, session, user, task_id)
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


async def reviewer_task(
    request: Request, session: SessionDep, user: User, task_id: str
) -> tuple[ReviewTask, Gate, ProjectContext]:
    """The reviewer's own task, its gate and project. Looked up in the route, not in a dependency,
    so that an invalid body is refused (422) before the task is looked for."""
    task = await session.get(ReviewTask, task_id)
    if task is None or task.reviewer != user.username:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"review task {task_id} not found")
    gate = await session.get(Gate, (task.project_id, task.gate_no))
    project = await session.get(Project, task.project_id)
    assert gate is not None and project is not None
    access = await authorize(request, session, user, project, "review")
    return task, gate, ProjectContext(project, user, access, request, session)


def round_workflow(task: ReviewTask, gate: Gate) -> str:
    if gate.status != "open" or gate.round != task.round:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"round {task.round} of gate {task.gate_no} is closed")
    return gate_workflow_id(task.project_id, task.gate_no, task.round)


@router.post("/{task_id}/respond", response_model=GateView, responses={**AUTH, **responses(404, 409, 422, 503)})
async def respond(task_id: str, body: RespondIn, request: Request, session: SessionDep, user: ReviewerUser) -> GateView:
    """Accept or decline the invitation, declaring any conflict of interest before seeing the material."""
    task, gate, ctx = await reviewer_task(request, session, user, task_id)
    result: GateView = await ctx.command(
        GateReviewWorkflow.respond,
        InvitationResponse(reviewer=user.username, **body.model_dump()),
        action="respond",
        target=f"task:{task_id}",
        workflow_id=round_workflow(task, gate),
        accept=body.accept,
        conflict_of_interest=body.conflict_of_interest,
    )
    return result


def update_id(action: str, task_id: str, key: str | None) -> str | None:
    """The Update's id for a client's idempotency key: the same key on the same task and action is
    the same Update (hashed: the audit's command key, workflow id and Update id, has 200 characters)."""
    if key is None:
        return None
    digest = hashlib.sha256(f"{task_id} {key}".encode()).hexdigest()
    return f"{action}-{digest[:40]}"


async def send_review(
    task_id: str,
    body: ReviewIn,
    request: Request,
    session: SessionDep,
    user: User,
    amend: bool,
    idempotency_key: str | None = None,
) -> Any:
    task, gate, ctx = await reviewer_task(request, session, user, task_id)
    review = ReviewSubmission(
        gate_no=task.gate_no, reviewer=user.username, must_meet=body.must_meet, scores=body.scores, comment=body.comment
    )
    action = "amend_review" if amend else "review"
    if errors := review_errors(GateDefinition.model_validate(gate.definition), review):
        await record(request, user.username, action, f"task:{task_id}", "rejected", reason=errors)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="; ".join(errors))
    if gate.workflow_id is None:  # a gate of the first design: nothing serves its reviews any more
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"gate {task.gate_no} predates gate rounds: it takes no reviews"
        )
    update = GateReviewWorkflow.amend_review if amend else GateReviewWorkflow.submit_review
    return await ctx.command(
        update,
        review,
        action=action,
        target=f"task:{task_id}",
        workflow_id=round_workflow(task, gate),
        update_id=update_id(action, task_id, idempotency_key),
    )


@router.post("/{task_id}/review", responses={**AUTH, **responses(404, 409, 422, 503)})
async def submit_review(
    task_id: str, body: ReviewIn, request: Request, session: SessionDep, user: ReviewerUser, key: IdempotencyKey = None
) -> Any:
    """Submit this reviewer's independent review; the answer shows the gate as this reviewer may now see it.
    A retry with the same Idempotency-Key gets the first submission's answer (a second review without
    it is refused with 409)."""
    return await send_review(task_id, body, request, session, user, amend=False, idempotency_key=key)


@router.put("/{task_id}/review", responses={**AUTH, **responses(404, 409, 422, 503)})
async def amend_review(
    task_id: str, body: ReviewIn, request: Request, session: SessionDep, user: ReviewerUser, key: IdempotencyKey = None
) -> Any:
    """Amend a submitted review while the panel is still open (a retry with the same Idempotency-Key
    amends it once)."""
    return await send_review(task_id, body, request, session, user, amend=True, idempotency_key=key)
