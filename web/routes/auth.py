"""Signing in and out of the pages, and the language switch."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import clear_codec_cookie, set_codec_cookie
from config import Settings
from domain.roles import Role
from services import sign_in, user_prefs
from web import session
from web.formatting import LANGS
from web.pages import LANG_COOKIE, PageViewer, lifetime, render, signed_in

router = APIRouter()
HOME = "/app/"  # each role's own first page (home_for)
# Where each role's routine work starts, in order of precedence.
ROLE_HOMES = (
    ({Role.PM, Role.ADMIN}, "/app/projects"),
    ({Role.FINANCE}, "/app/finance/approvals"),
    ({Role.OPS}, "/app/operations"),
    ({Role.PERFORMER}, "/app/reports"),
    ({Role.REVIEWER}, "/app/inbox"),
    ({Role.MINISTRY}, "/app/handoffs"),
)


def home_for(roles: list[str]) -> str:
    for wanted, page in ROLE_HOMES:
        if {r.value for r in wanted} & set(roles):
            return page
    return "/app/notifications"


def _safe_next(target: str | None) -> str:
    """Only a path of the pages themselves: never an open redirect to another site."""
    if target and target.startswith("/app/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
async def home(viewer: PageViewer) -> RedirectResponse:
    return RedirectResponse(home_for(list(viewer.user.roles)), status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, next: str | None = None) -> Response:
    return render(request, "sign_in.html", next=_safe_next(next), username="", error=None)


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in_form(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = HOME,
) -> Response:
    settings: Settings = request.app.state.settings
    address = request.client.host if request.client else "unknown"
    db = sign_in.Databases(request.app.state.sessionmaker, request.app.state.read_sessionmaker)
    try:
        user = await sign_in.sign_in(db, settings, username, password, address)
    except sign_in.SignInRefused as err:
        status_code = 429 if isinstance(err, sign_in.Locked) else 422 if isinstance(err, sign_in.InvalidInput) else 401
        # The username typed stays in the form; the password never comes back.
        return render(
            request,
            "sign_in.html",
            status_code=status_code,
            next=_safe_next(next),
            username=username[: sign_in.USERNAME_MAX],
            error=err,
            locked=isinstance(err, sign_in.Locked),
        )
    now = datetime.now(UTC)
    response = RedirectResponse(_safe_next(next), status_code=303)
    token = session.issue(
        request.app.state.jwt_secret, session.Session(user.username, now, user.session_epoch), now, lifetime(settings)
    )
    session.set_cookie(response, request, token, lifetime(settings))
    if {Role.OPS.value, Role.ADMIN.value} & set(user.roles):
        # The one sign-in of ops staff opens the Temporal UI's payloads too (api/deps.CODEC_COOKIE).
        set_codec_cookie(response, request, token, int(lifetime(settings).absolute.total_seconds()))
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> RedirectResponse:
    """Ends the session on the server too: a copy of the cookie no longer signs anyone in."""
    viewer = await signed_in(request)
    if viewer is not None:
        address = request.client.host if request.client else "unknown"
        async with request.app.state.sessionmaker.begin() as write:
            await user_prefs.end_sessions(write, viewer.user.username, address)
    response = RedirectResponse("/app/sign-in", status_code=303)
    session.clear_cookie(response)
    clear_codec_cookie(response)
    return response


@router.post("/language")
async def choose_language(
    request: Request, lang: Annotated[str, Form()] = "", next: Annotated[str, Form()] = HOME
) -> RedirectResponse:
    """The language switch: remembered for a signed-in user (their pages follow it in any browser)
    and in a cookie (the sign-in page's, before anyone signs in)."""
    response = RedirectResponse(_safe_next(next), status_code=303)
    if lang in LANGS:
        viewer = await signed_in(request)
        if viewer is not None:
            async with request.app.state.sessionmaker.begin() as write:
                await user_prefs.remember_language(write, viewer.user.username, lang)
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, path="/app", samesite="lax", httponly=True)
    return response
