"""The pages' session cookie: signed, idle and absolute expiry, not interchangeable with API tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from api.security import create_access_token
from web import session

SECRET = "a-secret-of-at-least-thirty-two-bytes-long"
LIFE = session.Lifetime(idle=timedelta(minutes=30), absolute=timedelta(hours=8))
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_a_session_reads_back_while_in_use_and_ends_when_idle() -> None:
    token = session.issue(SECRET, session.Session("rev.ito", T0), T0, LIFE)
    assert session.read(SECRET, token, T0 + timedelta(minutes=29), LIFE) == session.Session("rev.ito", T0)
    assert session.read(SECRET, token, T0 + timedelta(minutes=31), LIFE) is None


def test_renewing_moves_the_idle_expiry_but_never_the_absolute_one() -> None:
    started = session.Session("rev.ito", T0)
    renewed_at = T0 + timedelta(hours=7, minutes=50)
    token = session.issue(SECRET, started, renewed_at, LIFE)
    assert session.read(SECRET, token, renewed_at + timedelta(minutes=5), LIFE) == started
    assert session.read(SECRET, token, T0 + timedelta(hours=8, minutes=1), LIFE) is None  # absolute


def test_forged_or_foreign_tokens_are_no_session() -> None:
    token = session.issue(SECRET, session.Session("rev.ito", T0), T0, LIFE)
    assert session.read("another-secret-of-thirty-two-bytes-or-more", token, T0, LIFE) is None
    assert session.read(SECRET, token[:-2] + "xx", T0, LIFE) is None
    # An API bearer token signed with the same secret is not a page session (another audience).
    api_token = create_access_token(SECRET, "admin", ["admin"], timedelta(hours=1))
    assert session.read(SECRET, api_token, datetime.now(UTC), LIFE) is None
    # A session cookie is not an API token either: the API requires no audience, but rejects one.
    page_token = session.issue(SECRET, session.Session("admin", datetime.now(UTC)), datetime.now(UTC), LIFE)
    try:
        jwt.decode(page_token, SECRET, algorithms=["HS256"])
        accepted = True
    except jwt.InvalidAudienceError:
        accepted = False
    assert not accepted
