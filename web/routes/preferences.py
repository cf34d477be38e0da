"""The user's own preferences: the e-mail address notices go to (set by an administrator) and
whether the mails of notices that ask nothing of them are sent. Notices that ask the user to act
are always mailed (domain/mail.py), so the page offers no switch for those."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services import user_prefs
from web.pages import PageViewer, render

router = APIRouter()


@router.get("/preferences", response_class=HTMLResponse)
async def preferences(request: Request, viewer: PageViewer, saved: bool = False) -> Response:
    return render(request, "preferences.html", viewer, saved=saved)


@router.post("/preferences")
async def save_preferences(request: Request, viewer: PageViewer, informational: bool = Form(False)) -> Response:
    """An unchecked box is not posted: a form without it opts out."""
    async with request.app.state.sessionmaker.begin() as write:
        await user_prefs.choose_mail(write, viewer.user.username, informational=informational)
    return RedirectResponse("/app/preferences?saved=1", status_code=303)
