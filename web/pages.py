"""What every page shares: the templates (jinja2 with Babel's translations), the language of the
request, the signed-in user, and rendering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from api.access import visible
from api.deps import has_role, set_codec_cookie
from config import Settings
from domain.roles import Role
from services.notifications import unread_count
from storage import queries
from storage.access import is_closed
from storage.models import User
from telemetry import context as log_context
from web import formatting, i18n, session
from web.formatting import Lang

HERE = Path(__file__).parent
LANG_COOKIE = "trlgate_lang"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
# Autoescaped HTML; the i18n extension's gettext goes through the request's translations.
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, extensions=["jinja2.ext.i18n"]
)
i18n.install(_env)
templates = Jinja2Templates(env=_env)
TRANSLATIONS = i18n.load_translations(HERE / "locale")


class SignInRequired(Exception):
    """Raised by a page that needs a user; answered with a redirect to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def lifetime(settings: Settings) -> session.Lifetime:
    return session.Lifetime.of(settings)


def language(request: Request) -> Lang:
    """The signed-in user's stored choice (set by `signed_in`), else the cookie of the language
    switch (the sign-in page's), else the browser's Accept-Language."""
    chosen = getattr(request.state, "user_language", None) or request.cookies.get(LANG_COOKIE)
    return formatting.negotiate(request.headers.get("accept-language"), chosen)


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of a page and the session that will be renewed with its response."""

    user: User
    session: session.Session
    # The user's unread notifications, for the header of every page (one COUNT query).
    unread: int = 0


async def signed_in(request: Request) -> Viewer | None:
    """The request's signed-in user, or None: no cookie, a forged or expired one, a user since
    deactivated, or a session ended by signing out (its epoch is behind the user's)."""
    settings: Settings = request.app.state.settings
    token = request.cookies.get(session.COOKIE)
    found = token and session.read(request.app.state.jwt_secret, token, datetime.now(UTC), lifetime(settings))
    if not found:
        return None
    async with request.app.state.read_sessionmaker() as read:
        user = await read.get(User, found.username)
        if user is None or not user.active or user.session_epoch != found.epoch:
            return None
        request.state.user_language = user.language
        log_context.bind(user=user.username)
        return Viewer(user, found, await unread_count(read, user.username))


async def _viewer(request: Request) -> Viewer:
    viewer = await signed_in(request)
    if viewer is not None:
        return viewer
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        # A form posted after the session ended: after signing in, back to the form's own page
        # (the post's address answers only posts), the sign-in page vets it like any other.
        referer = urlsplit(request.headers.get("referer", ""))
        same_site = referer.netloc in ("", request.url.netloc)
        target = referer.path + (f"?{referer.query}" if referer.query else "") if same_site else "/app/"
    raise SignInRequired(target)


PageViewer = Annotated[Viewer, Depends(_viewer)]


@asynccontextmanager
async def page_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A page's read session, registered as the API's is (api/deps.get_session), so that the
    API functions a page calls hand its connection back before they wait on Temporal or write:
    a page never holds a pooled connection while asking for another."""
    async with request.app.state.read_sessionmaker() as session:
        request.state.read_session = session
        try:
            yield session
        finally:
            request.state.read_session = None


async def withheld_closed(
    request: Request, read: AsyncSession, user: User, project_ids: set[str], action: str
) -> set[str]:
    """Of these projects, the closed ones this user may not read: a list's SQL lets closed work
    through only where the user holds a grant, and the one access policy still decides
    (clearance) and audits what is shown and withheld. One query for the projects."""
    projects = await queries.projects_by_id(read, project_ids)
    closed = [p for p in projects.values() if is_closed(p)]
    if not closed:
        return set()
    return {p.id for p in closed} - {p.id for p in await visible(request, read, user, closed, action)}


def form_fields(form: FormData) -> dict[str, str]:
    """A posted form's fields as text, without the CSRF token. A browser sends a textarea's line
    breaks as CRLF, which the API's text fields refuse (no control character but the newline):
    they are newlines here, for every page's form."""
    return {k: str(v).replace("\r\n", "\n") for k, v in form.items() if k != "csrftoken"}


async def posted(request: Request) -> dict[str, str]:
    return form_fields(await request.form())


def validation_reasons(err: ValidationError | Any, skip: int = 0) -> str:
    """Each field's problem in one line, as the API's 422 lists them ("field: message"); `skip`
    drops leading location parts (a request's "query"/"path")."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'][skip:])}: {e['msg']}" for e in err.errors())


def render(
    request: Request, name: str, viewer: Viewer | None = None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render a page in the request's language; a signed-in viewer's session is renewed (its idle
    expiry moves on)."""
    lang = language(request)
    token = i18n.use(TRANSLATIONS[lang])
    try:
        response = templates.TemplateResponse(
            request,
            name,
            {
                "lang": lang,
                "viewer": viewer.user if viewer else None,
                "unread": viewer.unread if viewer else 0,
                "csrftoken": request.scope["csrftoken"]() if "csrftoken" in request.scope else "",
                "yen": partial(formatting.yen, lang=lang),
                "yen_large": partial(formatting.yen_large, lang=lang),
                "jst_date": partial(formatting.jst_date, lang=lang),
                "jst_datetime": partial(formatting.jst_datetime, lang=lang),
                "fiscal_year_label": partial(formatting.fiscal_year_label, lang=lang),
                "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
                **context,
            },
            status_code=status_code,
        )
    finally:
        i18n.reset(token)
    response.headers["Content-Language"] = lang
    # Nothing but this application's own files: no inline script, no other origin, no framing.
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    if viewer is not None:
        settings: Settings = request.app.state.settings
        now = datetime.now(UTC)
        fresh = session.issue(request.app.state.jwt_secret, viewer.session, now, lifetime(settings))
        session.set_cookie(response, request, fresh, lifetime(settings))
        if has_role(viewer.user, Role.OPS, Role.ADMIN):
            # The Temporal UI's codec cookie is this session too, and lives as long (idle and absolute).
            set_codec_cookie(response, request, fresh, int(lifetime(settings).absolute.total_seconds()))
    return response
