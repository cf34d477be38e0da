"""A user's notifications: review reminders, overdue escalations, decisions; and marking them read."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from api.deps import CurrentUser, SessionDep, release_connection
from api.errors import AUTH, responses
from api.paging import ListOut, PageIn
from api.schemas.common import MarkReadIn, MarkReadOut, NotificationOut
from services import notifications

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.get("", response_model=ListOut[NotificationOut], responses={**AUTH, **responses(422)})
async def my_notifications(
    session: SessionDep,
    user: CurrentUser,
    paging: PageIn,
    kind: str | None = Query(None, max_length=32, description="reminder, escalation, ..."),
    unread_only: bool = Query(False, description="only those not marked read yet"),
) -> ListOut[NotificationOut]:
    """This user's notifications (review reminders, overdue escalations), newest first."""
    found = await notifications.keyset_page(session, user.username, paging.cursor, paging.limit, unread_only, kind)
    return ListOut(items=[NotificationOut.model_validate(n) for n in found.items], total=found.total, next=found.next)


@router.post("/read", response_model=MarkReadOut, responses=AUTH | responses(422))
async def mark_read(request: Request, user: CurrentUser, body: MarkReadIn) -> MarkReadOut:
    """Mark this user's notifications read: those named by key (others' keys and unknown keys are
    ignored; one already read stays as it was), or all of them. Answers how many changed and how
    many stay unread."""
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as write:
        if body.all:
            marked = await notifications.mark_all_read(write, user.username)
        else:
            marked = await notifications.mark_read(write, user.username, body.keys)
        unread = await notifications.unread_count(write, user.username)
    return MarkReadOut(marked=marked, unread=unread)
