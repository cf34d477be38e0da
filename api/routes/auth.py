from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from api.audit import record
from api.deps import CurrentUser, SessionDep, SettingsDep
from api.errors import responses
from api.schemas import TokenOut, UserOut
from api.security import create_access_token, verify_password
from storage.models import User

router = APIRouter(tags=["auth"])


@router.post("/auth/token", response_model=TokenOut, responses=responses(401, 422))
async def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> TokenOut:
    """OAuth2 password flow: exchange a username and password for a bearer token (JWT)."""
    user = await session.get(User, form.username)
    if user is None or not user.active or not verify_password(form.password, user.password_hash):
        await record(request, form.username, "login", "auth", "rejected")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = create_access_token(
        request.app.state.jwt_secret, user.username, list(user.roles), timedelta(minutes=settings.jwt_ttl_minutes)
    )
    await record(request, user.username, "login", "auth", "ok")
    return TokenOut(access_token=token)


@router.get("/me", response_model=UserOut, responses=responses(401))
async def me(user: CurrentUser) -> User:
    return user
