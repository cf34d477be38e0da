"""The reviewer's inbox: invitations, reviews in progress, submitted reviews, with due dates and
overdue marks."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.review_tasks import InboxGroup, reviewer_inbox
from web.pages import PageViewer, page_session, render, withheld_closed

router = APIRouter()


@router.get("/inbox", response_class=HTMLResponse)
async def inbox(
    request: Request,
    viewer: PageViewer,
    group: InboxGroup = InboxGroup.INVITED,
    page: int = Query(1, ge=1, le=100_000),
) -> Response:
    async with page_session(request) as read:
        found = await reviewer_inbox(read, viewer.user, group, page)
        withheld = await withheld_closed(request, read, viewer.user, {r.project_id for r in found.rows}, "inbox")
    rows = [r for r in found.rows if r.project_id not in withheld]
    return render(request, "inbox.html", viewer, inbox=found, rows=rows, groups=list(InboxGroup))
