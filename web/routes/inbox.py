"""The reviewer's inbox: invitations, reviews in progress, submitted reviews, with due dates and
overdue marks."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.access import visible
from services.review_tasks import InboxGroup, reviewer_inbox
from storage.models import Project
from web.pages import PageViewer, page_session, render

router = APIRouter()


@router.get("/inbox", response_class=HTMLResponse)
async def inbox(
    request: Request,
    viewer: PageViewer,
    group: InboxGroup = InboxGroup.INVITED,
    page: int = Query(1, ge=1, le=100_000),
) -> Response:
    async with page_session(request) as read:
        found = await reviewer_inbox(read, viewer.user.username, group, page)
        # Closed projects' tasks came because the reviewer holds a grant: the one access policy
        # still decides (clearance) and audits what is shown.
        closed_ids = {r.project_id for r in found.rows if r.closed}
        allowed: set[str] = set()
        if closed_ids:
            projects = [p for p in [await read.get(Project, pid) for pid in sorted(closed_ids)] if p is not None]
            allowed = {p.id for p in await visible(request, read, viewer.user, projects, "inbox")}
    rows = [r for r in found.rows if not r.closed or r.project_id in allowed]
    return render(request, "inbox.html", viewer, inbox=found, rows=rows, groups=list(InboxGroup))
