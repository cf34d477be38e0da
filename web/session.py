"""The pages' sign-in session: a signed cookie (JWT, HS256, the API's secret under an audience of
its own, so neither kind of token passes for the other). It names the user, when they signed in
(the absolute expiry) and when they were last seen (the idle expiry); every page they open moves
"last seen" on, and the user's session epoch when it was issued: signing out moves the user's
epoch on (users.session_epoch), which ends every cookie issued before, copies included. HttpOnly, SameSite=Lax, and Secure when the request came over HTTPS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from starlette.requests import Request
from starlette.responses import Response

from config import Settings

COOKIE = "trlgate_session"
AUDIENCE = "trlgate-web"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class Session:
    username: str
    started: datetime
    # The user's session epoch at sign-in: the session is over once the user's epoch moved on.
    epoch: int = 0


@dataclass(frozen=True)
class Lifetime:
    idle: timedelta
    absolute: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Lifetime:
        return cls(timedelta(minutes=settings.web_idle_minutes), timedelta(hours=settings.web_session_hours))


def issue(secret: str, session: Session, now: datetime, lifetime: Lifetime) -> str:
    claims = {
        "sub": session.username,
        "aud": AUDIENCE,
        "iat": session.started,
        "seen": int(now.timestamp()),
        "exp": session.started + lifetime.absolute,
        "epoch": session.epoch,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read(secret: str, token: str, now: datetime, lifetime: Lifetime) -> Session | None:
    """The session, or None when the cookie is forged, expired, idle too long or not ours."""
    try:
        # The expiries are checked against `now` below, not pyjwt's clock: one clock for all three.
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["sub", "iat", "exp", "seen", "epoch"], "verify_exp": False, "verify_iat": False},
        )
        seen = datetime.fromtimestamp(int(claims["seen"]), UTC)
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
        epoch = int(claims["epoch"])
    except (jwt.InvalidTokenError, ValueError, TypeError, OverflowError):
        return None
    if now >= expires or now - seen > lifetime.idle:
        return None
    return Session(str(claims["sub"]), datetime.fromtimestamp(int(claims["iat"]), UTC), epoch)


def set_cookie(response: Response, request: Request, token: str, lifetime: Lifetime) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(lifetime.absolute.total_seconds()),
        path="/app",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https" or request.app.state.settings.web_secure_cookies,
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/app", httponly=True, samesite="lax")
