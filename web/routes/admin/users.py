"""Users: a paged list with a search, the create form, a user's page (edit, deactivate or
reactivate, reset the password). services/users_admin.py decides; a password the server generated
is shown once, on the answer to the post that made it, and never again."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from domain.bounds import PlainText
from domain.roles import Role
from domain.security import Level
from services import ministries as ministries_service
from services import users_admin
from services.users_admin import USERNAME_PATTERN, PasswordIn, UserCreateIn, UserEditIn, UserView
from web.pages import PageViewer, Viewer, form_fields, page_session, render
from web.routes.admin.common import FormState, refused

router = APIRouter()
PER_PAGE = 25
# A username as the database holds them: anything else is a bad address (422), never a query.
Username = Annotated[str, Path(pattern=USERNAME_PATTERN)]
_LIST = re.compile(r"[\s,、]+")
# Where a service refusal belongs on the form.
_WHERE = {"ministry": "ministry", "already exists": "username", "password": "password"}


def _values(user: UserView) -> dict[str, Any]:
    return {
        "username": user.username,
        "full_name": user.full_name,
        "email": user.email or "",
        "roles": list(user.roles),
        "ministry": user.ministry or "",
        "clearance_level": user.clearance_level.name,
        "compartments": ", ".join(user.compartments),
    }


def _typed(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = form_fields(form)
    values["roles"] = [str(r) for r in form.getlist("roles")]
    return values


def _data(values: dict[str, Any]) -> dict[str, Any]:
    """The form as the API's JSON body (services/users_admin.UserFields)."""
    data: dict[str, Any] = {
        "full_name": values.get("full_name", "").strip(),
        "email": values.get("email", "").strip() or None,
        "roles": values.get("roles", []),
        "ministry": values.get("ministry", "").strip() or None,
        "clearance_level": values.get("clearance_level") or Level.NONE.name,
        "compartments": [c for c in _LIST.split(values.get("compartments", "").upper()) if c],
    }
    return data


async def _form_page(
    request: Request, viewer: Viewer, template: str, form: FormState, status_code: int = 200, **context: Any
) -> Response:
    async with page_session(request) as read:
        ministries = await ministries_service.list_ministries(read)
    return render(
        request,
        template,
        viewer,
        status_code=status_code,
        values=form.values,
        errors=form.errors,
        reasons=form.reasons,
        roles=list(Role),
        levels=list(Level),
        ministries=ministries,
        **context,
    )


@router.get("/users", response_class=HTMLResponse)
async def users_page(
    request: Request,
    viewer: PageViewer,
    page: int = Query(1, ge=1, le=100_000),
    q: Annotated[PlainText, Query(max_length=64)] = "",
) -> Response:
    if refusal := await refused(request, viewer):
        return refusal
    async with page_session(request) as read:
        found = await users_admin.list_users(read, page, PER_PAGE, q.strip())
    prefix = "/app/admin/users?" + urlencode({**({"q": q} if q else {}), "page": ""})
    return render(request, "admin_users.html", viewer, found=found, q=q, prefix=prefix)


@router.get("/users/new", response_class=HTMLResponse)
async def new_user(request: Request, viewer: PageViewer) -> Response:
    if refusal := await refused(request, viewer):
        return refusal
    form = FormState({"roles": [], "clearance_level": Level.NONE.name})
    return await _form_page(request, viewer, "admin_user_new.html", form)


@router.post("/users/new", response_class=HTMLResponse)
async def create_user(request: Request, viewer: PageViewer) -> Response:
    if refusal := await refused(request, viewer):
        return refusal
    values = _typed(await request.form())
    form = FormState(values)
    try:
        password = values.get("password", "") or None
        body = UserCreateIn.model_validate(
            {**_data(values), "username": values.get("username", "").strip(), "password": password}
        )
    except ValidationError as err:
        form.invalid(err)
        form.values.pop("password", None)  # a password is never sent back
        return await _form_page(request, viewer, "admin_user_new.html", form, 422)
    try:
        async with request.app.state.sessionmaker.begin() as write:
            result = await users_admin.create_user(write, viewer.user, body)
    except HTTPException as err:
        form.refused(err, _WHERE)
        form.values.pop("password", None)
        return await _form_page(request, viewer, "admin_user_new.html", form, err.status_code)
    # Not a redirect: a generated password is shown on this answer, once, and kept nowhere.
    return await _show_user(request, viewer, result.user.username, 201, done="created", shown=result.generated_password)


async def _show_user(
    request: Request,
    viewer: Viewer,
    username: str,
    status_code: int = 200,
    form: FormState | None = None,
    done: str | None = None,
    shown: str | None = None,
) -> Response:
    async with page_session(request) as read:
        try:
            user = await users_admin.get_user(read, username)
        except HTTPException as err:
            return render(request, "refused.html", viewer, status_code=err.status_code, reason=err.detail)
    form = form or FormState()
    # A refused deactivation or password keeps the edit form as stored; a refused edit as typed.
    form.values = form.values or _values(user)
    return await _form_page(
        request,
        viewer,
        "admin_user.html",
        form,
        status_code,
        user=user,
        done=done or request.query_params.get("done"),
        shown=shown,
        action=f"/app/admin/users/{quote(username)}",
        here=f"/app/admin/users/{quote(username)}",
    )


@router.get("/users/{username}", response_class=HTMLResponse)
async def user_page(username: Username, request: Request, viewer: PageViewer) -> Response:
    if refusal := await refused(request, viewer):
        return refusal
    return await _show_user(request, viewer, username)


@router.post("/users/{username}", response_class=HTMLResponse)
async def edit_user(username: Username, request: Request, viewer: PageViewer) -> Response:
    if refusal := await refused(request, viewer):
        return refusal
    values = _typed(await request.form())
    form = FormState({**values, "username": username})
    data = _data(values)
    try:
        body = UserEditIn.model_validate(
            {**data, "clear_ministry": data["ministry"] is None, "clear_email": data["email"] is None}
        )
    except ValidationError as err:
        form.invalid(err)
        return await _show_user(request, viewer, username, 422, form=form)
    try:
        async with request.app.state.sessionmaker.begin() as write:
            await users_admin.edit_user(write, viewer.user, username, body)
    except HTTPException as err:
        form.refused(err, _WHERE)
        return await _show_user(request, viewer, username, err.status_code, form=form)
    return RedirectResponse(f"/app/admin/users/{quote(username)}?done=saved", status_code=303)


@router.post("/users/{username}/active", response_class=HTMLResponse)
async def set_active(username: Username, request: Request, viewer: PageViewer) -> Response:
    if refusal := await refused(request, viewer):
        return refusal
    active = form_fields(await request.form()).get("active") == "1"
    try:
        async with request.app.state.sessionmaker.begin() as write:
            await users_admin.set_active(write, viewer.user, username, active)
    except HTTPException as err:
        form = FormState()
        form.fail("active", str(err.detail))
        return await _show_user(request, viewer, username, err.status_code, form=form)
    done = "reactivated" if active else "deactivated"
    return RedirectResponse(f"/app/admin/users/{quote(username)}?done={done}", status_code=303)


@router.post("/users/{username}/password", response_class=HTMLResponse)
async def reset_password(username: Username, request: Request, viewer: PageViewer) -> Response:
    if refusal := await refused(request, viewer):
        return refusal
    typed = form_fields(await request.form()).get("password", "")
    problem = FormState()
    try:
        body = PasswordIn(password=typed or None)
        async with request.app.state.sessionmaker.begin() as write:
            result = await users_admin.reset_password(write, viewer.user, username, body)
    except ValidationError as err:
        problem.invalid(err)
        return await _show_user(request, viewer, username, 422, form=problem)
    except HTTPException as err:
        problem.fail("password", str(err.detail))
        return await _show_user(request, viewer, username, err.status_code, form=problem)
    if result.generated_password is None:
        return RedirectResponse(f"/app/admin/users/{quote(username)}?done=password", status_code=303)
    return await _show_user(request, viewer, username, done="password", shown=result.generated_password)
