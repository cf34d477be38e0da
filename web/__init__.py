"""The web workbench: server-rendered pages under /app, served by the API's application, on the
same service layer and access rules. Plain forms (post-redirect-get) that work without JavaScript;
CSRF tokens on every form (asgi-csrf, double-submit cookie); Japanese and English."""

from __future__ import annotations

from urllib.parse import quote

from asgi_csrf import asgi_csrf
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from web.pages import HERE, SignInRequired

PREFIX = "/app"


def _outside_pages(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    return path != PREFIX and not path.startswith(PREFIX + "/")


class Csrf:
    """asgi-csrf as a Starlette middleware class, for the pages only: the API authenticates with
    bearer tokens, which a browser never sends on its own. The sign-in form is protected too (no
    forced sign-in into someone else's account), although its poster has no cookie yet."""

    def __init__(self, app: ASGIApp, secret: str, secure: bool = False) -> None:
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
        await self.app(scope, receive, send)


async def _to_sign_in(request: Request, err: Exception) -> RedirectResponse:
    assert isinstance(err, SignInRequired)
    return RedirectResponse(f"{PREFIX}/sign-in?next={quote(err.next_url)}", status_code=303)


def install(app: FastAPI, csrf_secret: str, secure_cookies: bool = False) -> None:
    from web.routes import auth, finance, gates, handoffs, inbox, notifications, operations, projects, tasks

    routers = (auth, inbox, tasks, gates, projects, handoffs, finance, notifications, operations)
    for router in (module.router for module in routers):
        app.include_router(router, prefix=PREFIX, include_in_schema=False)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(SignInRequired, _to_sign_in)
    app.add_middleware(Csrf, secret=csrf_secret, secure=secure_cookies)
