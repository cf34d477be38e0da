"""Protection of closed work: clearances and need-to-know grants (the codec endpoints the Temporal
UI calls are in api/routes/codec.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import AdminUser, SessionDep
from api.errors import AUTH, responses
from domain.bounds import LongText
from domain.proposal import Username
from domain.security import Compartment, LevelField
from storage.access import is_closed
from storage.audit import audit
from storage.models import NeedToKnowGrant, Project, User

clearances = APIRouter(prefix="/users", tags=["protection of closed work"])
router = APIRouter(prefix="/projects/{project_id}/grants", tags=["protection of closed work"])


class ClearanceIn(BaseModel):
    level: LevelField
    compartments: list[Compartment] = Field(default_factory=list, max_length=16)


class ClearanceOut(ClearanceIn):
    username: str


class GrantIn(BaseModel):
    username: Username
    reason: Annotated[LongText, Field(min_length=3, max_length=2000)]


class GrantOut(BaseModel):
    project_id: str
    username: str
    granted_by: str
    reason: str
    granted_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None


@clearances.put("/{username}/clearance", response_model=ClearanceOut, responses={**AUTH, **responses(404)})
async def set_clearance(username: str, body: ClearanceIn, request: Request, admin: AdminUser) -> ClearanceOut:
    """The security officer (admin) records a user's clearance: a level and compartments."""
    async with request.app.state.sessionmaker.begin() as session:
        user = await session.get(User, username)
        if user is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"user {username} not found")
        before = {"level": user.clearance_level, "compartments": user.compartments}
        user.clearance_level = int(body.level)
        user.compartments = sorted(set(body.compartments))
        audit(
            session,
            admin.username,
            "set_clearance",
            f"user:{username}",
            before=before,
            after={"level": user.clearance_level, "compartments": user.compartments},
        )
        return ClearanceOut(username=username, level=body.level, compartments=user.compartments)


async def _closed_project(session: AsyncSession, project_id: str) -> Project:
    project = await session.get(Project, project_id)
    if project is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"project {project_id} not found")
    if not is_closed(project):
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"project {project_id} is open: it takes no grants")
    return project


@router.get("", response_model=list[GrantOut], responses={**AUTH, **responses(404, 409)})
async def list_grants(project_id: str, session: SessionDep, admin: AdminUser) -> list[NeedToKnowGrant]:
    await _closed_project(session, project_id)
    rows = await session.scalars(
        select(NeedToKnowGrant).where(NeedToKnowGrant.project_id == project_id).order_by(NeedToKnowGrant.username)
    )
    return list(rows.all())


@router.post(
    "",
    response_model=GrantOut,
    status_code=status.HTTP_201_CREATED,
    responses={**AUTH, **responses(404, 409, 422)},
)
async def grant(project_id: str, body: GrantIn, request: Request, admin: AdminUser) -> NeedToKnowGrant:
    """An explicit need-to-know grant for one closed project; refused for a user whose clearance
    does not cover the project's label (a grant alone never opens closed work)."""
    async with request.app.state.sessionmaker.begin() as session:
        project = await _closed_project(session, project_id)
        user = await session.get(User, body.username)
        if user is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"user {body.username} does not exist")
        missing = sorted(set(project.label_compartments) - set(user.compartments))
        if user.clearance_level < project.label_level or missing:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=f"{body.username}'s clearance does not cover the label of {project_id}"
                + (f" (compartments missing: {', '.join(missing)})" if missing else ""),
            )
        row = await session.get(NeedToKnowGrant, (project_id, body.username))
        if row is not None and row.revoked_at is None:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=f"{body.username} holds a grant for {project_id}")
        if row is None:
            row = NeedToKnowGrant(project_id=project_id, username=body.username)
            session.add(row)
        row.granted_by, row.reason, row.granted_at = admin.username, body.reason, datetime.now(UTC)
        row.revoked_at = row.revoked_by = None
        audit(
            session,
            admin.username,
            "grant_need_to_know",
            f"project:{project_id}",
            user=body.username,
            reason=body.reason,
        )
        await session.flush()
        return row


@router.delete("/{username}", response_model=GrantOut, responses={**AUTH, **responses(404, 409)})
async def revoke(project_id: str, username: str, request: Request, admin: AdminUser) -> NeedToKnowGrant:
    async with request.app.state.sessionmaker.begin() as session:
        await _closed_project(session, project_id)
        row = await session.get(NeedToKnowGrant, (project_id, username))
        if row is None or row.revoked_at is not None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{username} holds no grant for {project_id}")
        row.revoked_at, row.revoked_by = datetime.now(UTC), admin.username
        audit(session, admin.username, "revoke_need_to_know", f"project:{project_id}", user=username)
        return row
