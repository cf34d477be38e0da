"""The web workbench: server-rendered pages under /app, served by the API's application, on the
same service layer and access rules. Plain forms (post-redirect-get) that work without JavaScript;
CSRF tokens on every form (asgi-csrf, double-submit cookie); Japanese and English."""

from __future__ import annotations

from urllib.parse import quote

from asgi_csrf import asgi_csrf
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from python_multipart.multipart import parse_options_header
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.body_limit import is_upload
from api.errors import invalid_request
from web.pages import HERE, SignInRequired, render, validation_reasons
from web.upload_csrf import UploadCsrfRefused, vouch

PREFIX = "/app"


def _outside_pages(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    return path != PREFIX and not path.startswith(PREFIX + "/")


def _unreadable_form(headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes] | None:
    """Why a page cannot take this body (status and reason), or None. The pages' forms are
    urlencoded; asgi-csrf would look for the token in a multipart body and fail with a 500 (on a
    missing boundary, and on any multipart body with python-multipart 0.0.34: FormParser no longer
    takes its FileClass argument)."""
    for key, value in headers:
        if key.lower() == b"content-type":
            kind, options = parse_options_header(value)
            if kind == b"multipart/form-data":
                if not options.get(b"boundary"):
                    return 400, b"Bad request: a multipart body without a boundary cannot be read."
                return 415, b"The pages take forms as application/x-www-form-urlencoded."
    return None


async def _refuse(send: Send, status: int, reason: bytes) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": reason})


class Csrf:
    """asgi-csrf as a Starlette middleware class, for the pages only: the API authenticates with
    bearer tokens, which a browser never sends on its own. The sign-in form is protected too (no
    forced sign-in into someone else's account), although its poster has no cookie yet."""

    def __init__(self, app: ASGIApp, secret: str, secure: bool = False) -> None:
        self.secret = secret
        self.app = asgi_csrf(
            app,
            signing_secret=secret,
            skip_if_scope=_outside_pages,
            always_protect={f"{PREFIX}/sign-in"},
            cookie_path=PREFIX,
            cookie_samesite="Lax",
            cookie_secure=secure,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _outside_pages(scope):
            # asgi-csrf waves through any request with a bearer header; the pages take no bearer
            # tokens (they sign in by cookie), so on them the header is dropped, not believed.
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"authorization"]
            scope = {**scope, "headers": headers}
            if is_upload(scope):
                # An upload form's token is read from its first field (web/upload_csrf.py).
                try:
                    scope, receive = await vouch(scope, receive, self.secret)
                except UploadCsrfRefused as refused:
                    await _refuse(send, refused.status, refused.reason.encode())
                    return
            elif scope["method"] not in ("GET", "HEAD") and (unreadable := _unreadable_form(headers)):
                await _refuse(send, *unreadable)
                return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except UnicodeDecodeError:
            # asgi-csrf decodes an urlencoded body as UTF-8 to find the token: bytes that are no
            # UTF-8 are the client's fault, a 400, not a 500.
            if started:
                raise
            await _refuse(send, 400, b"Bad request: the form is not UTF-8.")


async def _invalid_on_page(request: Request, err: Exception) -> Response:
    """A page's bad address (a query parameter out of range, an unknown sort) gets an HTML page
    with the reason and 422; the API keeps its JSON list of field problems."""
    assert isinstance(err, RequestValidationError)
    if _outside_pages(request.scope):
        return await invalid_request(request, err)
    return render(request, "refused.html", status_code=422, reason=validation_reasons(err, skip=1))


async def _to_sign_in(request: Request, err: Exception) -> RedirectResponse:
    assert isinstance(err, SignInRequired)
    return RedirectResponse(f"{PREFIX}/sign-in?next={quote(err.next_url)}", status_code=303)


def page_routers() -> list[APIRouter]:
    """The pages' routers, for api.routing to include under PREFIX."""
    from web.routes import (
        admin,
        auth,
        dashboard,
        files,
        finance,
        gates,
        handoffs,
        inbox,
        notifications,
        operations,
        preferences,
        project,
        projects,
        reports,
        tasks,
        visions,
    )

    modules = (
        auth,
        inbox,
        tasks,
        gates,
        projects,
        project,
        handoffs,
        finance,
        reports,
        operations,
        notifications,
        files,
        preferences,
        admin,
        visions,
        dashboard,
    )
    return [module.router for module in modules]


def install(app: FastAPI, csrf_secret: str, secure_cookies: bool = False) -> None:
    """What the pages need beside their routes (api.routing includes those)."""
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(SignInRequired, _to_sign_in)
    app.add_exception_handler(RequestValidationError, _invalid_on_page)
    app.add_middleware(Csrf, secret=csrf_secret, secure=secure_cookies)
