"""Passwords (argon2 via pwdlib) and access tokens (JWT via pyjwt)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from storage.seed import password_hash

ALGORITHM = "HS256"


def verify_password(password: str, hashed: str) -> bool:
    return password_hash.verify(password, hashed)


def create_access_token(secret: str, username: str, roles: list[str], ttl: timedelta) -> str:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {"sub": username, "roles": roles, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(secret: str, token: str) -> dict[str, Any]:
    """Raises jwt.InvalidTokenError for anything but a valid, unexpired token of ours."""
    return jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
