"""Passwords (argon2 via pwdlib) and access tokens (JWT via pyjwt)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from storage.models import User
from storage.seed import password_hash

ALGORITHM = "HS256"


# Unknown and inactive users are checked against this, made by the same hasher with the same
# parameters, so a refusal costs the same whether the username exists or not (no enumeration by
# timing). Made at import so not even the first unknown user takes longer.
_DUMMY_HASH = password_hash.hash(secrets.token_urlsafe(32))


def verify_password(password: str, hashed: str | None) -> bool:
    """One argon2 verification, always: `hashed` None (no such user) verifies against the dummy
    hash and fails."""
    matches = password_hash.verify(password, hashed if hashed is not None else _DUMMY_HASH)
    return matches and hashed is not None


def create_access_token(secret: str, username: str, roles: list[str], ttl: timedelta, epoch: int | None = None) -> str:
    """`epoch`: the user's session epoch (users.session_epoch); once an administrator deactivates
    the user or resets their password, or they sign out, the epoch moves on and the token is void."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {"sub": username, "roles": roles, "iat": now, "exp": now + ttl}
    if epoch is not None:
        claims["epoch"] = epoch
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(secret: str, token: str) -> dict[str, Any]:
    """Raises jwt.InvalidTokenError for anything but a valid, unexpired token of ours."""
    return jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})


def access_token_for(secret: str, user: User, ttl_minutes: int) -> str:
    """A signed-in user's access token, as the API's sign-in answers it."""
    return create_access_token(
        secret, user.username, list(user.roles), timedelta(minutes=ttl_minutes), epoch=user.session_epoch
    )
