"""The ministry registry's administration (admin only): add a ministry, rename one. Everyone signed
in reads the registry with its liaisons at GET /ministries (api/routes/handoffs.py). The rules are
services/ministries.py's, shared with the admin pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from pydantic import BaseModel

from api.deps import AdminUser, release_connection
from api.errors import AUTH, responses
from services import ministries
from services.ministries import MinistryEditIn, MinistryIn, MinistryView
from services.users_admin import CODE_PATTERN

router = APIRouter(prefix="/ministries", tags=["administration"])
Code = Annotated[str, Path(pattern=CODE_PATTERN)]


class MinistryAdminOut(BaseModel):
    code: str
    name: str
    liaisons: list[str]
    inactive_liaisons: list[str]


def _out(view: MinistryView) -> MinistryAdminOut:
    return MinistryAdminOut.model_validate(view, from_attributes=True)


@router.post(
    "", response_model=MinistryAdminOut, status_code=status.HTTP_201_CREATED, responses={**AUTH, **responses(409, 422)}
)
async def create_ministry(body: MinistryIn, request: Request, admin: AdminUser) -> MinistryAdminOut:
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as session:
        return _out(await ministries.create_ministry(session, admin, body))


@router.patch("/{code}", response_model=MinistryAdminOut, responses={**AUTH, **responses(404, 422)})
async def edit_ministry(code: Code, body: MinistryEditIn, request: Request, admin: AdminUser) -> MinistryAdminOut:
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as session:
        return _out(await ministries.edit_ministry(session, admin, code, body))
