"""The notification centre: the signed-in user's notifications, newest first, unread ones marked,
paged in SQL, each with a link to where its work is done; marking one or all read. The same
service as the API's /notifications (services/notifications): only the user's own rows."""

from __future__ import annotations

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from domain.work_links import work_link
from services import notifications
from web.pages import PageViewer, page_session, render, withheld_closed

router = APIRouter()
PER_PAGE = 20


def _back(page: int, unread_only: bool) -> str:
    query = [f"page={page}"] if page > 1 else []
    if unread_only:
        query.append("unread=1")
    return "/app/notifications" + ("?" + "&".join(query) if query else "")


@router.get("/notifications", response_class=HTMLResponse)
async def notification_centre(
    request: Request,
    viewer: PageViewer,
    page: int = Query(1, ge=1, le=100_000),
    unread: bool = False,
) -> Response:
    async with page_session(request) as read:
        found = await notifications.page(read, viewer.user.username, page, PER_PAGE, unread_only=unread)
        # A notice names its project: one about closed work this user may no longer read (a grant
        # revoked, a clearance lowered) shows neither the project nor the message.
        project_ids = {n.project_id for n in found.rows}
        withheld = await withheld_closed(request, read, viewer.user, project_ids, "notifications")
    return render(
        request,
        "notifications.html",
        viewer,
        found=found,
        unread_only=unread,
        work_link=work_link,
        back=_back,
        withheld=withheld,
    )


@router.post("/notifications/read")
async def mark_read(
    request: Request,
    viewer: PageViewer,
    key: str | None = Form(None, max_length=200),
    all: bool = Form(False),
    page: int = Form(1, ge=1, le=100_000),
    unread: bool = Form(False),
) -> Response:
    async with request.app.state.sessionmaker.begin() as write:
        if all:
            await notifications.mark_all_read(write, viewer.user.username)
        elif key:
            await notifications.mark_read(write, viewer.user.username, [key])
    return RedirectResponse(_back(page, unread), status_code=303)
