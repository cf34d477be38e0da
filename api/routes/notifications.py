"""A user's notifications: review reminders, overdue escalations, decisions."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import select

from api.deps import CurrentUser, SessionDep
from api.errors import AUTH
from api.schemas.common import NotificationOut
from storage.models import Notification

router = APIRouter(prefix="/notifications", tags=["notifications"])


@router.get("", response_model=list[NotificationOut], responses=AUTH)
async def my_notifications(
    session: SessionDep,
    user: CurrentUser,
    kind: str | None = Query(None, description="reminder, escalation, ..."),
    limit: int = Query(100, ge=1, le=1000),
) -> list[Notification]:
    """This user's notifications (review reminders, overdue escalations), newest first."""
    query = select(Notification).where(Notification.recipient == user.username)
    if kind is not None:
        query = query.where(Notification.kind == kind)
    return list((await session.scalars(query.order_by(Notification.at.desc()).limit(limit))).all())
