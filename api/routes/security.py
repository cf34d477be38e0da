"""Protection of closed work: clearances and need-to-know grants (the codec endpoints the Temporal
UI calls are in api/routes/codec.py). The rules are services/need_to_know.py's and
services/users_admin.py's, shared with the admin pages."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from api.deps import AdminUser, SessionDep, release_connection
from api.errors import AUTH, responses
from domain.security import Compartment, LevelField
from services import need_to_know, users_admin
from services.need_to_know import GrantIn
from storage.models import NeedToKnowGrant

clearances = APIRouter(prefix="/users", tags=["protection of closed work"])
router = APIRouter(prefix="/projects/{project_id}/grants", tags=["protection of closed work"])


class ClearanceIn(BaseModel):
    level: LevelField
    compartments: list[Compartment] = Field(default_factory=list, max_length=16)


class ClearanceOut(ClearanceIn):
    username: str


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
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as session:
        user = await users_admin.set_clearance(session, admin, username, body.level, body.compartments)
    return ClearanceOut(username=username, level=body.level, compartments=user.compartments)


@router.get("", response_model=list[GrantOut], responses={**AUTH, **responses(404, 409)})
async def list_grants(project_id: str, session: SessionDep, admin: AdminUser) -> list[NeedToKnowGrant]:
    return await need_to_know.grants(session, project_id)


@router.post(
    "",
    response_model=GrantOut,
    status_code=status.HTTP_201_CREATED,
    responses={**AUTH, **responses(404, 409, 422)},
)
async def grant(project_id: str, body: GrantIn, request: Request, admin: AdminUser) -> NeedToKnowGrant:
    """An explicit need-to-know grant for one closed project; refused for a user whose clearance
    does not cover the project's label (a grant alone never opens closed work)."""
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as session:
        return await need_to_know.grant(session, admin, project_id, body)


@router.delete("/{username}", response_model=GrantOut, responses={**AUTH, **responses(404, 409)})
async def revoke(project_id: str, username: str, request: Request, admin: AdminUser) -> NeedToKnowGrant:
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as session:
        return await need_to_know.revoke(session, admin, project_id, username)
