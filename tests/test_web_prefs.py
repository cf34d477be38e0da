"""Issue 12 over HTTP in this process (no Temporal): the language remembered per user, sign-out
ending the session on the server, list counts without withheld closed work, due dates against the
real clock, and malformed input answered 4xx (a NUL notification key on PostgreSQL, a multipart
body without a boundary)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import jwt
import pytest
from sqlalchemy import select, update

from services.gates import open_gates_of
from services.handoffs import handoff_inbox
from services.review_tasks import InboxGroup, reviewer_inbox
from storage.models import AuditEntry, Gate, NeedToKnowGrant, User
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.test_web_handoffs_pages import add_handoff
from tests.test_web_pages import EN, JA, _closed_project_under_review, sign_in, token_of
from web import session
from web.pages import LANG_COOKIE


@pytest.fixture
async def api(sqlite_url: str) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url) as api:
        yield api


def browser(api: InProcessApi) -> httpx.AsyncClient:
    """Another browser: a cookie jar of its own on the same application."""
    return httpx.AsyncClient(transport=api.http._transport, base_url="http://trlgate.test")


async def _user(api: InProcessApi, username: str) -> User:
    async with api.sessionmaker() as s:
        user = await s.get(User, username)
    assert user is not None
    return user


async def test_the_language_chosen_is_remembered_for_the_user_in_any_browser(api: InProcessApi) -> None:
    assert (await sign_in(api.http, "rev.ito", DEMO_PASSWORD, JA)).status_code == 303
    inbox = await api.http.get("/app/inbox", headers=JA)
    assert inbox.headers["content-language"] == "ja"
    switched = await api.http.post(
        "/app/language", data={"lang": "en", "next": "/app/inbox", "csrftoken": token_of(inbox)}, headers=JA
    )
    assert switched.status_code == 303 and LANG_COOKIE in switched.headers["set-cookie"]
    assert (await _user(api, "rev.ito")).language == "en"
    out = await api.http.post("/app/sign-out", data={"csrftoken": token_of(inbox)})
    assert out.status_code == 303
    # A browser that never saw the switch, asking for Japanese: the user's pages are in English.
    async with browser(api) as other:
        assert (await sign_in(other, "rev.ito", DEMO_PASSWORD, JA)).status_code == 303
        page = await other.get("/app/inbox", headers=JA)
        assert page.status_code == 200 and page.headers["content-language"] == "en"
        assert ">Review inbox</h1>" in page.text
        # Before signing in, that browser's own choice (none: Accept-Language) decides.
        await other.post("/app/sign-out", data={"csrftoken": token_of(page)})
        assert (await other.get("/app/sign-in", headers=JA)).headers["content-language"] == "ja"
    # Another user is not affected by rev.ito's choice.
    async with browser(api) as third:
        assert (await sign_in(third, "rev.kato", DEMO_PASSWORD, JA)).status_code == 303
        assert (await third.get("/app/inbox", headers=JA)).headers["content-language"] == "ja"
        assert (await _user(api, "rev.kato")).language is None


async def test_the_users_choice_wins_over_the_cookie_and_the_browser(api: InProcessApi) -> None:
    async with api.sessionmaker.begin() as s:
        await s.execute(update(User).where(User.username == "rev.ito").values(language="ja"))
    api.http.cookies.set(LANG_COOKIE, "en", path="/app")
    assert (await sign_in(api.http, "rev.ito", DEMO_PASSWORD, EN)).status_code == 303
    assert (await api.http.get("/app/inbox", headers=EN)).headers["content-language"] == "ja"
    # An unknown language posted changes nothing.
    page = await api.http.get("/app/inbox", headers=EN)
    await api.http.post("/app/language", data={"lang": "xx", "csrftoken": token_of(page)})
    assert (await _user(api, "rev.ito")).language == "ja"


async def test_a_copied_session_cookie_is_dead_after_sign_out(api: InProcessApi) -> None:
    assert (await sign_in(api.http, "rev.ito", DEMO_PASSWORD)).status_code == 303
    copied = api.http.cookies.get(session.COOKIE, path="/app")
    assert copied
    inbox = await api.http.get("/app/inbox")
    assert inbox.status_code == 200
    async with browser(api) as thief:  # the copy works while the session lasts
        thief.cookies.set(session.COOKIE, copied, path="/app")
        assert (await thief.get("/app/inbox")).status_code == 200
    assert (await api.http.post("/app/sign-out", data={"csrftoken": token_of(inbox)})).status_code == 303
    async with browser(api) as thief:
        thief.cookies.set(session.COOKIE, copied, path="/app")
        replay = await thief.get("/app/inbox")
        assert replay.status_code == 303 and replay.headers["location"] == "/app/sign-in?next=/app/inbox"
    async with api.sessionmaker() as s:
        logouts = (await s.scalars(select(AuditEntry.actor).where(AuditEntry.action == "logout"))).all()
    assert logouts == ["rev.ito"]
    # Signing in again opens a new session at once.
    assert (await sign_in(api.http, "rev.ito", DEMO_PASSWORD)).status_code == 303
    assert (await api.http.get("/app/inbox")).status_code == 200


async def test_deactivating_a_user_ends_their_sessions(api: InProcessApi) -> None:
    assert (await sign_in(api.http, "rev.ito", DEMO_PASSWORD)).status_code == 303
    assert (await api.http.get("/app/inbox")).status_code == 200
    async with api.sessionmaker.begin() as s:
        await s.execute(update(User).where(User.username == "rev.ito").values(active=False))
    assert (await api.http.get("/app/inbox")).status_code == 303


async def test_list_counts_leave_out_closed_work_the_user_may_not_read(api: InProcessApi) -> None:
    """rev.mori and pm.tanaka (CONFIDENTIAL) hold grants for a SECRET project: the grant alone does
    not let it into the counts; rev.ito (SECRET, QS) with a grant sees it counted and listed."""
    pid = await _closed_project_under_review(api, pm="pm.tanaka")
    async with api.sessionmaker.begin() as s:
        for username in ("rev.mori", "rev.ito", "pm.tanaka"):
            s.add(NeedToKnowGrant(project_id=pid, username=username, granted_by="admin"))
        # Past due, so the overdue count would give it away too.
        await s.execute(
            update(Gate).where(Gate.project_id == pid).values(due_at=datetime.now(UTC) - timedelta(hours=1))
        )
    users = {name: await _user(api, name) for name in ("rev.mori", "rev.ito", "pm.tanaka")}
    async with api.sessionmaker() as s:
        mori = await reviewer_inbox(s, users["rev.mori"], InboxGroup.INVITED)
        ito = await reviewer_inbox(s, users["rev.ito"], InboxGroup.INVITED)
        tanaka = await open_gates_of(s, users["pm.tanaka"])
    assert (mori.counts[InboxGroup.INVITED], mori.overdue, mori.rows) == (0, 0, [])
    assert (ito.counts[InboxGroup.INVITED], ito.overdue, [r.project_id for r in ito.rows]) == (1, 1, [pid])
    assert (tanaka.total, tanaka.rows) == (0, [])
    async with browser(api) as http:
        assert (await sign_in(http, "rev.mori", DEMO_PASSWORD, EN)).status_code == 303
        page = await http.get("/app/inbox", headers=EN)
        assert "Invitations (0)" in page.text and "overdue" not in page.text and pid not in page.text
    async with browser(api) as http:
        assert (await sign_in(http, "pm.tanaka", DEMO_PASSWORD, EN)).status_code == 303
        page = await http.get("/app/gates", headers=EN)
        assert page.status_code == 200 and pid not in page.text and "of your projects" not in page.text


async def test_hand_off_totals_leave_out_closed_work_the_user_may_not_read(api: InProcessApi) -> None:
    # Both liaisons hold a grant; liaison.mlit has no clearance for SECRET work.
    await add_handoff(api, 1, "MLIT", closed=True)
    await add_handoff(api, 2, "MLIT")
    mlit = await _user(api, "liaison.mlit")
    async with api.sessionmaker() as s:
        found = await handoff_inbox(s, mlit)
    assert (found.total, [r.project_id for r in found.rows]) == (1, ["KP-H002"])
    assert (await sign_in(api.http, "liaison.mlit", DEMO_PASSWORD, EN)).status_code == 303
    page = await api.http.get("/app/handoffs", headers=EN)
    assert "(1)" in page.text and "KP-H001" not in page.text


async def test_a_due_date_just_past_is_overdue_and_shown_to_the_minute(api: InProcessApi) -> None:
    """Due dates are real UTC instants: the mark, the count and the shown date and time agree
    with the real clock (a date alone would read 'due today' beside 'overdue')."""
    pid = await _closed_project_under_review(api, pm="pm.sato")
    due = (datetime.now(UTC) - timedelta(minutes=2)).replace(second=0, microsecond=0)
    async with api.sessionmaker.begin() as s:
        s.add(NeedToKnowGrant(project_id=pid, username="rev.ito", granted_by="admin"))
        s.add(NeedToKnowGrant(project_id=pid, username="pm.sato", granted_by="admin"))
        await s.execute(update(Gate).where(Gate.project_id == pid).values(due_at=due))
    shown = due.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M JST")
    for user, path in (("rev.ito", "/app/inbox"), ("pm.sato", "/app/gates")):
        async with browser(api) as http:
            assert (await sign_in(http, user, DEMO_PASSWORD, EN)).status_code == 303
            page = await http.get(path, headers=EN)
            assert shown in page.text and page.text.count('class="overdue"') == 1, (user, path)
    rev, pm = await _user(api, "rev.ito"), await _user(api, "pm.sato")
    async with api.sessionmaker() as s:
        ito = await reviewer_inbox(s, rev, InboxGroup.INVITED)
        assert ito.overdue == 1 and ito.rows[0].overdue
        # A minute before it fell due: neither the mark nor the count.
        before = await reviewer_inbox(s, rev, InboxGroup.INVITED, now=due - timedelta(minutes=1))
        assert before.overdue == 0 and not before.rows[0].overdue
        gates = await open_gates_of(s, pm, now=due - timedelta(minutes=1))
        assert not gates.rows[0].overdue


async def test_a_multipart_post_without_a_boundary_is_a_400(api: InProcessApi) -> None:
    assert (await sign_in(api.http, "rev.ito", DEMO_PASSWORD)).status_code == 303
    for content_type in ("multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; charset=x"):
        r = await api.http.post("/app/notifications/read", content=b"--x\r\n", headers={"Content-Type": content_type})
        assert r.status_code == 400, content_type
    # A body that is no UTF-8, or a broken multipart body: 400 too, never a 500.
    bad = await api.http.post(
        "/app/notifications/read",
        content=b"csrftoken=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert bad.status_code == 400
    # A well-formed multipart body: the pages' forms are urlencoded, and say so (asgi-csrf cannot
    # read the token from multipart with this python-multipart: a 500 before).
    page = await api.http.get("/app/notifications")
    body = f'--abc\r\nContent-Disposition: form-data; name="csrftoken"\r\n\r\n{token_of(page)}\r\n--abc--\r\n'
    multipart = await api.http.post(
        "/app/notifications/read", content=body.encode(), headers={"Content-Type": 'multipart/form-data;boundary="abc"'}
    )
    assert multipart.status_code == 415
    # The API is not the pages': its own parsing answers there.
    assert (
        await api.http.post("/notifications/read", headers={"Content-Type": "multipart/form-data"})
    ).status_code < 500


@pytest.mark.postgres
async def test_a_nul_in_a_notification_key_is_ignored_on_postgresql(postgres_url: str) -> None:
    async with inprocess_api(postgres_url) as api:
        assert (await sign_in(api.http, "rev.ito", DEMO_PASSWORD)).status_code == 303
        page = await api.http.get("/app/notifications")
        r = await api.http.post("/app/notifications/read", data={"key": "n-\x00-1", "csrftoken": token_of(page)})
        assert r.status_code == 303
        api_read = await api.call("POST", "/notifications/read", "rev.ito", json={"keys": ["a\x00b"]})
        assert api_read.status_code < 500


def test_a_session_carries_its_epoch_and_a_token_without_one_is_refused() -> None:
    life = session.Lifetime(timedelta(minutes=30), timedelta(hours=8))
    now = datetime.now(UTC).replace(microsecond=0)
    token = session.issue("s" * 32, session.Session("rev.ito", now, 3), now, life)
    assert session.read("s" * 32, token, now, life) == session.Session("rev.ito", now, 3)
    claims = jwt.decode(token, "s" * 32, algorithms=["HS256"], audience=session.AUDIENCE)
    del claims["epoch"]
    old = jwt.encode(claims, "s" * 32, algorithm="HS256")  # issued before epochs: not a session now
    assert session.read("s" * 32, old, now, life) is None
