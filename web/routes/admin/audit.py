"""The audit log viewer: filters in the address (a GET form: actor, project, action, a date range
in JST), one page counted and cut in SQL, newest first, and the hash chain's verification state.
services/audit_log.py reads; closed work the administrator may not read is left out or
pseudonymised there, by the one access policy."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError

from api.pseudonyms import pseudonyms_for
from domain.bounds import PlainText
from services import audit_log
from services.audit_log import AuditFilter
from web.pages import PageViewer, page_session, render
from web.routes.admin.common import FormState, refused

router = APIRouter()
PER_PAGE = 50
_TEXT = TypeAdapter(PlainText)
FILTERS = ("actor", "project", "action", "since", "until")


def _filter(values: dict[str, str], form: FormState) -> AuditFilter:
    days: dict[str, date | None] = {}
    for name in ("since", "until"):
        text = values.get(name, "")
        try:
            days[name] = date.fromisoformat(text) if text else None
        except ValueError:
            form.fail(name, f"{name}: a date is written YYYY-MM-DD")
            days[name] = None
    since, until = days["since"], days["until"]
    for name, reason in audit_log.range_problems(since, until):
        form.fail(name, reason)
    for name in ("actor", "project", "action"):
        if len(values.get(name, "")) > 200:
            form.fail(name, f"{name}: at most 200 characters")
        else:
            try:
                _TEXT.validate_python(values.get(name, ""))
            except ValidationError as err:
                form.fail(name, f"{name}: {err.errors()[0]['msg']}")
    return AuditFilter(values["actor"], values["project"], values["action"], since, until)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    viewer: PageViewer,
    page: int = Query(1, ge=1, le=100_000),
    actor: str = "",
    project: str = "",
    action: str = "",
    since: str = "",
    until: str = "",
    verify: str = "",
) -> Response:
    if refusal := await refused(request, viewer):
        return refusal
    values = {
        "actor": actor.strip(),
        "project": project.strip(),
        "action": action.strip(),
        "since": since,
        "until": until,
    }
    form = FormState(values)
    found = _filter(values, form)
    async with page_session(request) as read:
        actions = await audit_log.actions(read)
        chain = await audit_log.app_verifier(request).state(read, full=verify == "full")
        if form.reasons:
            entries = audit_log.AuditPage([], 0, 1, 1)
        else:
            names = await pseudonyms_for(request, read, viewer.user, "audit_log")
            entries = await audit_log.entries(read, viewer.user, names, found, page, PER_PAGE)
    kept = {k: v for k, v in values.items() if v}
    return render(
        request,
        "admin_audit.html",
        viewer,
        status_code=422 if form.reasons else 200,
        found=entries,
        chain=chain,
        actions=actions,
        values=values,
        errors=form.errors,
        reasons=form.reasons,
        prefix="/app/admin/audit?" + urlencode({**kept, "page": ""}),
    )
