"""A reviewer's task: answer the invitation (declaring any conflict of interest before any
material is shown), then the scorecard, amendable until the panel closes. The commands are the
API's own (api/routes/tasks.py): the same checks, the same audit, the same refusals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.deps import release_connection, require_roles
from api.routes import tasks as api_tasks
from api.schemas.tasks import RespondIn, ReviewIn
from domain.files import AttachedTo
from domain.gate_review import TaskStatus
from domain.roles import Role
from gates.definitions import GateDefinition
from gates.scorecard import SCORE_MAX, SCORE_MIN
from services import files
from storage.models import Project, Review
from web.pages import PageViewer, Viewer, form_fields, page_session, render

router = APIRouter()
_reviewer_role = require_roles(Role.REVIEWER)


async def _reviewer(viewer: Viewer) -> None:
    """The API's ReviewerUser check, for the same commands from the pages."""
    await _reviewer_role(viewer.user)


SCORES = list(range(SCORE_MIN, SCORE_MAX + 1))


def _reasons(err: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]


async def _show(request: Request, viewer: Viewer, task_id: str, status_code: int = 200, **form: Any) -> Response:
    await release_connection(request)  # a caller still inside its own session hands it back first
    async with page_session(request) as read:
        try:
            task, gate, _ = await api_tasks.reviewer_task(request, read, viewer.user, task_id)
        except HTTPException as err:
            return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
        project = await read.get(Project, task.project_id)
        review = await read.get(Review, task.id)
        material = task.status in (TaskStatus.ACCEPTED, TaskStatus.SUBMITTED)
        # The evidence files too only once the invitation is accepted without a conflict.
        evidence = (
            await files.attached(read, task.project_id, AttachedTo.EVIDENCE, str(task.gate_no)) if material else []
        )
    assert project is not None
    definition = GateDefinition.model_validate(gate.definition)
    # Nothing of the material before the invitation is answered: the title, the gate, the date.
    return render(
        request,
        "task.html",
        viewer,
        status_code=status_code,
        task=task,
        gate=gate,
        project=project,
        definition=definition if material else None,
        files=evidence,
        review=review,
        scores=SCORES,
        statuses=TaskStatus,
        form=form.get("form") or _saved(review),
        errors=form.get("errors") or {},
        refusal=form.get("refusal"),
    )


def _saved(review: Review | None) -> dict[str, str]:
    """A submitted review as the form shows it, to amend."""
    if review is None:
        return {}
    values = {f"must:{k}": "met" if v else "not_met" for k, v in review.must_meet.items()}
    values.update({f"score:{k}": str(v) for k, v in review.scores.items()})
    values["comment"] = review.comment
    return values


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(task_id: str, request: Request, viewer: PageViewer) -> Response:
    return await _show(request, viewer, task_id)


@router.post("/tasks/{task_id}/respond", response_class=HTMLResponse)
async def respond(task_id: str, request: Request, viewer: PageViewer) -> Response:
    form = await request.form()
    answer, conflict = form.get("answer"), form.get("conflict")
    errors: dict[str, str] = {}
    if answer not in ("accept", "decline"):
        errors["answer"] = "choose"
    if answer == "accept" and conflict not in ("none", "declared"):
        errors["conflict"] = "choose"
    values = form_fields(form)
    if errors:
        return await _show(request, viewer, task_id, 422, form=values, errors=errors)
    try:
        body = RespondIn(
            accept=answer == "accept",
            conflict_of_interest=conflict == "declared",
            statement=str(form.get("statement", "")),
        )
    except ValidationError as err:
        return await _show(request, viewer, task_id, 422, form=values, refusal="; ".join(_reasons(err)))
    async with page_session(request) as read:
        try:
            await _reviewer(viewer)
            await api_tasks.respond(task_id, body, request, read, viewer.user)
        except HTTPException as err:
            return await _show(request, viewer, task_id, err.status_code, form=values, refusal=err.detail)
    return RedirectResponse(f"/app/tasks/{task_id}", status_code=303)


def _scorecard(form: FormData, definition: GateDefinition) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's answers as the API takes them, and what is missing, beside each field."""
    must: dict[str, bool] = {}
    scores: dict[str, int] = {}
    errors: dict[str, str] = {}
    for c in definition.must_meet:
        value = form.get(f"must:{c.key}")
        if value in ("met", "not_met"):
            must[c.key] = value == "met"
        else:
            errors[f"must:{c.key}"] = "choose"
    for c in definition.should_meet:
        value = str(form.get(f"score:{c.key}", ""))
        if value.isascii() and value.isdigit() and int(value) in SCORES:
            scores[c.key] = int(value)
        else:
            errors[f"score:{c.key}"] = "score"
    return {"must_meet": must, "scores": scores, "comment": str(form.get("comment", ""))}, errors


@router.post("/tasks/{task_id}/review", response_class=HTMLResponse)
async def review(task_id: str, request: Request, viewer: PageViewer) -> Response:
    form = await request.form()
    values = form_fields(form)
    async with page_session(request) as read:
        try:
            task, gate, _ = await api_tasks.reviewer_task(request, read, viewer.user, task_id)
        except HTTPException as err:
            return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
        answers, errors = _scorecard(form, GateDefinition.model_validate(gate.definition))
        if errors:
            return await _show(request, viewer, task_id, 422, form=values, errors=errors)
        try:
            body = ReviewIn.model_validate(answers)
        except ValidationError as err:
            return await _show(request, viewer, task_id, 422, form=values, refusal="; ".join(_reasons(err)))
        try:
            await _reviewer(viewer)
            amend = task.status == TaskStatus.SUBMITTED
            await api_tasks.send_review(task_id, body, request, read, viewer.user, amend=amend)
        except HTTPException as err:
            return await _show(request, viewer, task_id, err.status_code, form=values, refusal=err.detail)
    return RedirectResponse(f"/app/tasks/{task_id}", status_code=303)
