"""The programme manager's project pages: the start-project form with its stage-plan editor, a
project's page (timeline, the workflow's live "waiting for", a Temporal UI link) and its hold and
stop commands. The start and the reads are services/projects.py's, the commands the API's own
route functions: the same access, rules, audit and refusals as the API."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.context import ProjectContext, project_context
from api.deps import get_client, has_role, release_connection, require_roles
from api.routes import gates as api_gates
from api.routes import projects as api_projects
from api.schemas.gates import NoteIn
from api.schemas.projects import TerminateIn
from config import Settings
from domain.project import ProjectStatus
from domain.proposal import Classification, Proposal, default_stage_plan
from domain.roles import FundingMinistry, Role
from domain.security import Level
from domain.trl import MAX_TRL, MIN_TRL
from domain.visions import Registry
from services import projects as projects_service
from services import visions
from web import temporal_ui
from web.pages import PageViewer, Viewer, page_session, posted, render, validation_reasons

router = APIRouter()
_pm = require_roles(Role.PM, Role.ADMIN)
STAGE_FIELDS = ("name", "trl_in", "trl_out", "duration_days", "budget", "tranches")
_INTEGER = re.compile(r"-?\d+")
_LIST = re.compile(r"[\s,、]+")
# Where a database reason (api/proposals.proposal_problems) belongs on the form.
_PROBLEM_FIELDS = (
    ("programme_manager", "programme_manager"),
    ("reviewer ", "reviewers"),
    ("performer ", "performer"),
    ("public-use ministry", "public_use_ministries"),
    ("the ", "total_budget"),  # "the MEXT allocation has ... available"
    ("project id", "project_id"),
    ("research vision", "vision_id"),
    ("technology area", "area_id"),
)


@dataclass
class StartForm:
    """The form as typed: every value kept as text, the stage rows in order."""

    values: dict[str, str]
    rows: list[dict[str, str]]
    errors: dict[str, list[str]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def fail(self, key: str, reason: str) -> None:
        self.errors.setdefault(key, []).append(reason)
        self.reasons.append(reason)


def _blank_row() -> dict[str, str]:
    return dict.fromkeys(STAGE_FIELDS, "")


def _int(text: str) -> int | str:
    """Digits (with thousands separators) as an integer; anything else left as typed, for the
    proposal's own validation to refuse with the API's words."""
    plain = text.strip().replace(",", "").replace("_", "")
    return int(plain) if _INTEGER.fullmatch(plain) else text.strip()


def _default_rows(values: dict[str, str]) -> list[dict[str, str]]:
    """The programme's default plan for the typed TRLs and budget (domain/proposal.py's own cut);
    without a usable budget, the stages and TRLs with the money left blank."""
    start, target = _int(values.get("start_trl", "")), _int(values.get("target_trl", ""))
    if not (isinstance(start, int) and isinstance(target, int) and MIN_TRL <= start < target <= MAX_TRL):
        start, target = MIN_TRL, MAX_TRL
    typed = _int(values.get("total_budget", ""))
    budget = typed if isinstance(typed, int) and typed >= 1000 else 0
    try:
        plan = default_stage_plan(start, target, budget or 1_000_000)
    except ValidationError:
        plan = default_stage_plan(start, target, 1_000_000)
        budget = 0
    return [
        {
            "name": s.name,
            "trl_in": str(s.trl_in),
            "trl_out": str(s.trl_out),
            "duration_days": str(s.duration_days),
            "budget": str(s.budget) if budget else "",
            "tranches": "; ".join(f"{t.offset_days}={t.amount}" for t in s.tranches) if budget else "",
        }
        for s in plan
    ]


def _initial(viewer: Viewer) -> StartForm:
    values = {
        "programme_manager": viewer.user.username,
        "funding_ministry": FundingMinistry.MEXT.value,
        "classification": Classification.OPEN.value,
        "start_trl": str(MIN_TRL),
        "target_trl": str(MAX_TRL),
        "plan": "default",
    }
    return StartForm(values, [*_default_rows(values), _blank_row()])


def _read_form(form: dict[str, str]) -> StartForm:
    values = {k: v for k, v in form.items() if not k.startswith("stage-") and k not in ("csrftoken", "action")}
    count = _int(form.get("rows", "0"))
    rows = []
    for i in range(min(count, 30) if isinstance(count, int) else 0):
        if form.get(f"stage-{i}-remove"):
            continue
        row = {name: form.get(f"stage-{i}-{name}", "") for name in STAGE_FIELDS}
        if any(v.strip() for v in row.values()):
            rows.append(row)
    return StartForm(values, rows)


def _tranches(text: str) -> list[Any]:
    """ "day=yen; day=yen" as the API's tranche objects; a part without "=" is passed as typed."""
    found: list[Any] = []
    for part in (p.strip() for p in re.split(r"[;\n]", text) if p.strip()):
        day, sep, amount = part.partition("=")
        found.append({"offset_days": _int(day), "amount": _int(amount)} if sep else part)
    return found


def _proposal_data(form: StartForm) -> dict[str, Any]:
    """The form as the API's JSON body: empty optional fields absent, lists split."""
    v = form.values
    data: dict[str, Any] = {
        name: v.get(name, "").strip() for name in ("title", "organisation", "programme_manager", "funding_ministry")
    }
    # The vision chosen from the registry; a client of the form from before the registry may
    # still post the text (services/visions.name_the_vision finds the vision of that title).
    for name in ("vision_id", "area_id"):
        if v.get(name, "").strip():
            data[name] = _int(v[name])
    if "vision_id" not in data and v.get("research_vision"):
        data["research_vision"] = v["research_vision"]  # as typed: its lines are the PM's
    for name in ("project_id", "performer", "start_date"):
        if v.get(name, "").strip():
            data[name] = v[name].strip()
    for name in ("start_trl", "target_trl", "total_budget"):
        data[name] = _int(v.get(name, ""))
    data["reviewers"] = [r for r in _LIST.split(v.get("reviewers", "")) if r]
    data["public_use_ministries"] = [m.upper() for m in _LIST.split(v.get("public_use_ministries", "")) if m]
    data["classification"] = v.get("classification", Classification.OPEN.value)
    if data["classification"] == Classification.CLOSED.value:
        compartments = [c for c in _LIST.split(v.get("compartments", "")) if c]
        data["label"] = {"level": v.get("label_level") or Level.CONFIDENTIAL.name, "compartments": compartments}
    if v.get("plan") == "custom":
        data["stages"] = [
            {
                "name": row["name"].strip(),
                "trl_in": _int(row["trl_in"]),
                "trl_out": _int(row["trl_out"]),
                "duration_days": _int(row["duration_days"]),
                "budget": _int(row["budget"]),
                "tranches": _tranches(row["tranches"]),
            }
            for row in form.rows
        ]
    return data


def _validationvalidation_reasons(form: StartForm, err: ValidationError) -> None:
    """Each of pydantic's reasons (the API's 422 lists the same), beside its field: `stages.1.budget`
    beside row 1's budget, a stage's own rule beside its row, the proposal's rules above the form."""
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        if loc[:1] == ["stages"] and len(loc) > 3:
            loc = loc[:3]  # a tranche's problem, beside the row's tranches
        key = ".".join(loc) if loc else "form"
        where = " → ".join(loc)
        form.fail(key, f"{where}: {e['msg']}" if where else str(e["msg"]))


def _problem_field(problem: str) -> str:
    return next((key for prefix, key in _PROBLEM_FIELDS if problem.startswith(prefix)), "form")


async def _show_form(request: Request, viewer: Viewer, form: StartForm, status_code: int = 200) -> Response:
    await release_connection(request)  # a caller's read session goes back before this one
    async with page_session(request) as read:
        choices = {
            "visions": await visions.entries(read, Registry.VISIONS, active_only=True),
            "areas": await visions.entries(read, Registry.AREAS, active_only=True),
        }
    return render(
        request,
        "project_new.html",
        viewer,
        status_code=status_code,
        values=form.values,
        rows=form.rows,
        errors=form.errors,
        reasons=form.reasons,
        ministries=[m.value for m in FundingMinistry],
        levels=[lvl.name for lvl in Level if lvl != Level.NONE],
        trls=range(MIN_TRL, MAX_TRL + 1),
        fields=STAGE_FIELDS,
        **choices,
    )


async def _refused_role(request: Request, viewer: Viewer) -> Response | None:
    try:
        await _pm(viewer.user)
    except HTTPException as err:
        return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
    return None


@router.get("/projects/new", response_class=HTMLResponse)
async def new_project(request: Request, viewer: PageViewer) -> Response:
    if refused := await _refused_role(request, viewer):
        return refused
    return await _show_form(request, viewer, _initial(viewer))


@router.post("/projects/new", response_class=HTMLResponse)
async def start_project(request: Request, viewer: PageViewer) -> Response:
    if refused := await _refused_role(request, viewer):
        return refused
    raw = await posted(request)
    form = _read_form(raw)
    action = raw.get("action", "start")
    if action == "default":  # the default plan for the typed TRLs and budget
        form.values["plan"] = "default"
        form.rows = [*_default_rows(form.values), _blank_row()]
        return await _show_form(request, viewer, form)
    if action == "add":  # one more blank row: a custom plan
        form.values["plan"] = "custom"
        form.rows.append(_blank_row())
        return await _show_form(request, viewer, form)
    try:
        proposal = Proposal.model_validate(_proposal_data(form))
    except ValidationError as err:
        _validationvalidation_reasons(form, err)
        form.rows.append(_blank_row())
        return await _show_form(request, viewer, form, 422)
    settings: Settings = request.app.state.settings
    async with page_session(request) as read:
        try:
            project = await projects_service.start_project(
                request, read, get_client(request), viewer.user, settings, proposal
            )
        except HTTPException as err:
            reasons = err.detail.split("; ") if err.status_code == 422 else [str(err.detail)]
            for reason in reasons:
                form.fail(_problem_field(reason) if err.status_code == 422 else "form", reason)
            form.rows.append(_blank_row())
            return await _show_form(request, viewer, form, err.status_code)
        project_id = project.id
    return RedirectResponse(f"/app/projects/{quote(project_id)}", status_code=303)


async def _show_project(
    request: Request, viewer: Viewer, project_id: str, status_code: int = 200, **extra: Any
) -> Response:
    await release_connection(request)  # a caller still inside its own session hands it back first
    async with page_session(request) as read:
        try:
            ctx = await project_context(project_id, request, read, viewer.user)
            detail = await projects_service.project_detail(ctx)
        except HTTPException as err:
            return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
        is_pm = ctx.is_pm
    settings: Settings = request.app.state.settings
    open_ = detail.status not in (ProjectStatus.COMPLETED, ProjectStatus.TERMINATED)
    on_hold = detail.status == ProjectStatus.ON_HOLD or (detail.live is not None and detail.live.on_hold)
    return render(
        request,
        "project.html",
        viewer,
        status_code=status_code,
        p=detail,
        temporal_link=temporal_ui.workflow_url(
            settings.resolved_temporal_ui_url(), settings.temporal_namespace, detail.workflow_id
        ),
        may_command=is_pm and has_role(viewer.user, Role.PM, Role.ADMIN),
        may_stop=open_,
        on_hold=on_hold,
        form=extra.get("form", {}),
        refusal=extra.get("refusal"),
        unconfirmed=extra.get("unconfirmed", False),
        here=f"/app/projects/{quote(project_id)}",  # a command's re-render: the language switch returns to the page
        done=extra.get("done") or request.query_params.get("done"),
    )


@router.get("/projects/{project_id}", response_class=HTMLResponse)
async def project_page(project_id: str, request: Request, viewer: PageViewer) -> Response:
    return await _show_project(request, viewer, project_id)


async def _pm_context(request: Request, read: Any, viewer: Viewer, project_id: str) -> ProjectContext:
    """As the API's ProjectPm/ProjectPmRole: the role first (naming no project), then the reader."""
    await _pm(viewer.user)
    return await project_context(project_id, request, read, viewer.user)


@router.post("/projects/{project_id}/resume", response_class=HTMLResponse)
async def resume(project_id: str, request: Request, viewer: PageViewer) -> Response:
    form = await posted(request)
    try:
        body = NoteIn(note=form.get("note", ""))
    except ValidationError as err:
        return await _show_project(request, viewer, project_id, 422, form=form, refusal=validation_reasons(err))
    async with page_session(request) as read:
        try:
            ctx = await _pm_context(request, read, viewer, project_id)
            if not ctx.is_pm:  # the API's ProjectPm
                raise HTTPException(403, detail="only the project's programme manager may do this")
            await api_gates.resume(body, ctx)
        except HTTPException as err:
            return await _show_project(request, viewer, project_id, err.status_code, form=form, refusal=err.detail)
    return RedirectResponse(f"/app/projects/{quote(project_id)}?done=resumed", status_code=303)


@router.post("/projects/{project_id}/stop", response_class=HTMLResponse)
async def stop(project_id: str, request: Request, viewer: PageViewer) -> Response:
    form = await posted(request)
    try:
        body = TerminateIn(reason=form.get("reason", ""), lessons=form.get("lessons", ""))
    except ValidationError as err:
        return await _show_project(request, viewer, project_id, 422, form=form, refusal=validation_reasons(err))
    if form.get("confirm") != "yes":
        return await _show_project(request, viewer, project_id, 422, form=form, unconfirmed=True)
    async with page_session(request) as read:
        try:
            ctx = await _pm_context(request, read, viewer, project_id)
            await api_projects.terminate_project(body, ctx)
        except HTTPException as err:
            return await _show_project(request, viewer, project_id, err.status_code, form=form, refusal=err.detail)
    return RedirectResponse(f"/app/projects/{quote(project_id)}?done=stopped", status_code=303)
