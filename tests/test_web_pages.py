"""The pages over HTTP in this process (no Temporal needed): sign-in and sign-out, the session
cookie, CSRF on every form, the language, and the reviewer's inbox."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy import select

from config import Settings
from domain.programme import PROGRAMME_CODE
from domain.security import Level
from storage.models import AuditEntry, Gate, NeedToKnowGrant, Notification, Project, ReviewTask
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from web import session as web_session

JA = {"Accept-Language": "ja-JP,ja;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


@pytest.fixture
async def api(sqlite_url: str) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url) as api:
        yield api


def token_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrftoken" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(
    http: httpx.AsyncClient, username: str, password: str, headers: dict[str, str] = JA
) -> httpx.Response:
    form = await http.get("/app/sign-in", headers=headers)
    return await http.post(
        "/app/sign-in",
        data={"username": username, "password": password, "csrftoken": token_of(form), "next": "/app/inbox"},
        headers=headers,
    )


async def test_the_sign_in_page_speaks_the_browsers_language_and_sets_a_csrf_cookie(api: InProcessApi) -> None:
    ja = await api.http.get("/app/sign-in", headers=JA)
    assert ja.status_code == 200 and ja.headers["content-language"] == "ja"
    assert "サインイン" in ja.text and '<html lang="ja">' in ja.text
    assert "csrftoken" in ja.cookies
    csp = ja.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert ja.headers["x-content-type-options"] == "nosniff" and ja.headers["cache-control"] == "no-store"
    en = await api.http.get("/app/sign-in", headers=EN)
    assert en.headers["content-language"] == "en" and ">Sign in</h1>" in en.text


async def test_a_wrong_password_is_refused_without_saying_which_part_and_keeps_the_username(api: InProcessApi) -> None:
    wrong = await sign_in(api.http, "rev.ito", "not-the-password")
    assert wrong.status_code == 401
    assert "ユーザー名またはパスワードが正しくありません" in wrong.text
    assert 'value="rev.ito"' in wrong.text and "not-the-password" not in wrong.text
    unknown = await sign_in(api.http, "nobody.here", "not-the-password")
    assert unknown.status_code == 401 and "ユーザー名またはパスワードが正しくありません" in unknown.text
    async with api.sessionmaker() as s:
        reasons = (await s.scalars(select(AuditEntry.detail).where(AuditEntry.action == "login"))).all()
    assert [r["reason"] for r in reasons] == ["incorrect username or password"] * 2  # the same rule as the API


async def test_signing_in_opens_the_inbox_with_a_session_cookie_and_signing_out_ends_it(api: InProcessApi) -> None:
    assert (await api.http.get("/app/inbox")).headers["location"] == "/app/sign-in?next=/app/inbox"
    signed_in = await sign_in(api.http, "rev.ito", DEMO_PASSWORD)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/app/inbox"
    cookie = signed_in.headers["set-cookie"]
    assert "trlgate_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/app" in cookie
    inbox = await api.http.get("/app/inbox", headers=JA)
    assert inbox.status_code == 200 and "審査の受信箱" in inbox.text and "Ito Yuki" in inbox.text
    out = await api.http.post("/app/sign-out", data={"csrftoken": token_of(inbox)})
    assert out.status_code == 303
    assert (await api.http.get("/app/inbox")).status_code == 303  # back to the sign-in page


async def test_an_ops_sign_in_opens_the_codec_for_the_temporal_ui_and_sign_out_ends_it(api: InProcessApi) -> None:
    """One sign-in: the cookie (path /codec, any port of this host) lets the UI's codec calls through."""
    reviewer = await sign_in(api.http, "rev.ito", DEMO_PASSWORD)
    assert "trlgate_codec" not in reviewer.headers.get("set-cookie", "")  # only ops and admin decode
    api.http.cookies.clear()
    signed_in = await sign_in(api.http, "ops.kimura", DEMO_PASSWORD)
    codec = next(c for c in signed_in.headers.get_list("set-cookie") if c.startswith("trlgate_codec="))
    assert "Path=/codec" in codec and "HttpOnly" in codec and "SameSite=lax" in codec
    token = codec.split(";")[0].split("=", 1)[1]
    decode = await api.http.post("/codec/decode", json={"payloads": []})  # the cookie alone, as the UI sends it
    assert decode.status_code == 200
    # It is the workbench session, renewed by the UI's codec calls, and no API token: sent as a bearer
    # token it opens nothing.
    assert any(c.startswith("trlgate_codec=") for c in decode.headers.get_list("set-cookie"))
    bearer = await api.http.get("/fund", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 401
    # A session idle past the workbench's limit opens no payload either, though its cookie is still held.
    defaults = Settings.model_fields
    lifetime = web_session.Lifetime(
        timedelta(minutes=defaults["web_idle_minutes"].default), timedelta(hours=defaults["web_session_hours"].default)
    )
    idle_since = datetime.now(UTC) - lifetime.idle - timedelta(minutes=1)  # within its absolute lifetime
    claims = jwt.decode(token, options={"verify_signature": False})
    stale = web_session.issue(
        api.secret, web_session.Session("ops.kimura", idle_since, int(claims["epoch"])), idle_since, lifetime
    )
    async with httpx.AsyncClient(transport=api.http._transport, base_url=str(api.http.base_url)) as idle:
        idle.cookies.set("trlgate_codec", stale, path="/codec")
        assert (await idle.post("/codec/decode", json={"payloads": []})).status_code == 401
    page = await api.http.get("/app/operations")
    out = await api.http.post("/app/sign-out", data={"csrftoken": token_of(page)})
    assert any(c.startswith('trlgate_codec=""') and "Path=/codec" in c for c in out.headers.get_list("set-cookie"))
    # A copy of the cookie is dead too: the sign-out moved the user's session epoch on.
    api.http.cookies.set("trlgate_codec", token, path="/codec")
    copied = await api.http.post("/codec/decode", json={"payloads": []})
    assert copied.status_code == 401


async def test_form_posts_without_the_csrf_token_are_refused(api: InProcessApi) -> None:
    await api.http.get("/app/sign-in")  # the browser holds the CSRF cookie now
    forged = await api.http.post("/app/sign-in", data={"username": "rev.ito", "password": DEMO_PASSWORD})
    assert forged.status_code == 403
    # A poster with no cookie at all (another site's form) is refused too.
    async with httpx.AsyncClient(transport=api.http._transport, base_url="http://trlgate.test") as other:
        cold = await other.post("/app/sign-in", data={"username": "rev.ito", "password": DEMO_PASSWORD})
        assert cold.status_code == 403
    signed_in = await sign_in(api.http, "rev.ito", DEMO_PASSWORD)
    assert signed_in.status_code == 303
    assert (await api.http.post("/app/sign-out", data={})).status_code == 403
    assert (await api.http.post("/app/language", data={"lang": "en"})).status_code == 403
    # The API is not behind the pages' CSRF check: it takes bearer tokens, never cookies.
    assert (await api.call("GET", "/me", "rev.ito")).status_code == 200


async def test_the_language_switch_is_remembered_over_the_browsers_language(api: InProcessApi) -> None:
    page = await api.http.get("/app/sign-in", headers=JA)
    switched = await api.http.post(
        "/app/language", data={"lang": "en", "next": "/app/sign-in", "csrftoken": token_of(page)}, headers=JA
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/app/sign-in"
    again = await api.http.get("/app/sign-in", headers=JA)
    assert again.headers["content-language"] == "en" and ">Sign in</h1>" in again.text


async def test_after_sign_in_only_the_pages_own_paths_are_followed(api: InProcessApi) -> None:
    form = await api.http.get("/app/sign-in")
    for target in ("https://evil.example/", "//evil.example/app/", "/projects", "/app\\..\\x"):
        r = await api.http.post(
            "/app/sign-in",
            data={"username": "rev.ito", "password": DEMO_PASSWORD, "csrftoken": token_of(form), "next": target},
        )
        assert r.status_code == 303 and r.headers["location"] == "/app/", target


async def _closed_project_under_review(api: InProcessApi, pm: str) -> str:
    """A closed SECRET project in compartment QS, its gate 1 under review by the demo panel
    (rows only: the pages read them; no workflow is needed to list them)."""
    now = datetime.now(UTC)
    pid = "KP-CLOSED-1"
    async with api.sessionmaker.begin() as s:
        s.add(
            Project(
                id=pid,
                programme_code=PROGRAMME_CODE,
                workflow_id=f"project-{pid}",
                title="秘匿プロジェクト",
                organisation="Closed Lab",
                programme_manager=pm,
                funding_ministry="MOD",
                research_vision="closed",
                classification="closed",
                label_level=int(Level.SECRET),
                label_compartments=["QS"],
                start_trl=1,
                target_trl=9,
                current_trl=1,
                status="active",
                total_budget=1_000_000_000,
                reviewers=["rev.ito", "rev.mori"],
                public_use_ministries=["MOD"],
            )
        )
        await s.flush()
        s.add(
            Gate(
                project_id=pid,
                gate_no=1,
                status="open",
                round=1,
                due_at=now + timedelta(days=5),
                workflow_id=f"project-{pid}-gate-1-r1",
                definition={},
                opened_at=now,
            )
        )
        for reviewer in ("rev.ito", "rev.mori"):
            s.add(ReviewTask(id=f"{pid}-g1-{reviewer}", project_id=pid, gate_no=1, reviewer=reviewer, status="invited"))
    return pid


async def test_a_closed_project_stays_out_of_uncleared_users_pages(api: InProcessApi) -> None:
    # pm.tanaka (CONFIDENTIAL, no grant) is its PM on paper; rev.mori (CONFIDENTIAL) is on its panel.
    await _closed_project_under_review(api, pm="pm.tanaka")
    for user, path in (("rev.mori", "/app/inbox"), ("pm.tanaka", "/app/gates")):
        async with httpx.AsyncClient(transport=api.http._transport, base_url="http://trlgate.test") as http:
            assert (await sign_in(http, user, DEMO_PASSWORD)).status_code == 303
            page = await http.get(path, headers=JA)
            assert page.status_code == 200
            assert "秘匿プロジェクト" not in page.text and "KP-CLOSED-1" not in page.text, (user, path)
    # rev.ito is cleared (SECRET, QS) but holds no grant: not shown either, until granted.
    async with httpx.AsyncClient(transport=api.http._transport, base_url="http://trlgate.test") as http:
        assert (await sign_in(http, "rev.ito", DEMO_PASSWORD)).status_code == 303
        assert "秘匿プロジェクト" not in (await http.get("/app/inbox")).text
        async with api.sessionmaker.begin() as s:
            s.add(NeedToKnowGrant(project_id="KP-CLOSED-1", username="rev.ito", granted_by="admin"))
        assert "秘匿プロジェクト" in (await http.get("/app/inbox")).text
    async with api.sessionmaker() as s:
        audited = (await s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("list_closed:%")))).all()
    assert "list_closed:inbox" in audited  # what closed work a list showed is audited


async def test_repeated_failures_lock_the_page_sign_in_like_the_apis(api: InProcessApi) -> None:
    for _ in range(5):
        assert (await sign_in(api.http, "rev.kato", "guess")).status_code == 401
    locked = await sign_in(api.http, "rev.kato", DEMO_PASSWORD)  # the right password, during the lock
    assert locked.status_code == 429
    assert re.search(r"サインインの失敗が続きました。\d+ 秒後にもう一度お試しください。", locked.text)
    assert (
        await api.http.post("/auth/token", data={"username": "rev.kato", "password": DEMO_PASSWORD})
    ).status_code == 429


async def test_a_bearer_header_does_not_let_a_page_post_skip_the_csrf_check(api: InProcessApi) -> None:
    assert (await sign_in(api.http, "rev.ito", DEMO_PASSWORD)).status_code == 303
    forged = await api.http.post("/app/sign-out", data={}, headers={"Authorization": "Bearer anything"})
    assert forged.status_code == 403
    assert (await api.http.get("/app/inbox")).status_code == 200  # still signed in


async def test_switching_language_returns_to_the_same_filtered_page(api: InProcessApi) -> None:
    assert (await sign_in(api.http, "pm.sato", DEMO_PASSWORD)).status_code == 303
    page = await api.http.get("/app/projects?status=active&sort=trl", headers=JA)
    assert 'name="next" value="/app/projects?status=active&amp;sort=trl"' in page.text
    switched = await api.http.post(
        "/app/language",
        data={"lang": "en", "next": "/app/projects?status=active&sort=trl", "csrftoken": token_of(page)},
    )
    assert switched.headers["location"] == "/app/projects?status=active&sort=trl"


async def test_odd_numbers_in_page_input_are_no_server_error(api: InProcessApi) -> None:
    assert (await sign_in(api.http, "pm.sato", DEMO_PASSWORD)).status_code == 303
    assert (await api.http.get("/app/projects", params={"stage": "²", "trl": "٣"})).status_code == 200
    for gate in ("99999999999", "-1", "x"):
        assert (await api.http.get(f"/app/projects/KP-NONE/gates/{gate}")).status_code == 422, gate


async def test_a_notice_about_closed_work_shows_nothing_of_it_to_whom_may_not_read_it(api: InProcessApi) -> None:
    pid = await _closed_project_under_review(api, pm="pm.sato")
    async with api.sessionmaker.begin() as s:
        s.add(
            Notification(
                key="n-closed",
                project_id=pid,
                recipient="rev.mori",
                kind="reminder",
                message="秘匿プロジェクト is due",
                at=datetime.now(UTC),
            )
        )
    assert (await sign_in(api.http, "rev.mori", DEMO_PASSWORD)).status_code == 303
    page = await api.http.get("/app/notifications", headers=JA)
    assert page.status_code == 200 and "秘匿プロジェクト" not in page.text and pid not in page.text
    assert "閲覧できなくなった秘匿案件についての通知です。" in page.text


async def test_each_role_starts_on_its_own_page(api: InProcessApi) -> None:
    assert (await api.http.get("/app/")).headers["location"] == "/app/sign-in?next=/app/"
    homes = (
        ("pm.sato", "/app/projects"),
        ("rev.ito", "/app/inbox"),
        ("liaison.mod", "/app/handoffs"),
        ("fin.suzuki", "/app/finance/approvals"),
        ("ops.hayashi", "/app/operations"),
        ("perf.aoki", "/app/reports"),
    )
    for user, home in homes:
        async with httpx.AsyncClient(transport=api.http._transport, base_url="http://trlgate.test") as http:
            form = await http.get("/app/sign-in?next=/app/")
            signed_in = await http.post(
                "/app/sign-in",
                data={"username": user, "password": DEMO_PASSWORD, "csrftoken": token_of(form), "next": "/app/"},
            )
            assert signed_in.headers["location"] == "/app/"
            assert (await http.get("/app/")).headers["location"] == home, user


async def test_a_form_posted_after_the_session_ended_returns_to_its_page_after_sign_in(api: InProcessApi) -> None:
    page = await api.http.get("/app/sign-in")  # a CSRF cookie, but no session
    task_page = "http://trlgate.test/app/tasks/KP-X-g1-rev.ito"
    posted = await api.http.post(
        "/app/tasks/KP-X-g1-rev.ito/respond", data={"csrftoken": token_of(page)}, headers={"Referer": task_page}
    )
    assert posted.status_code == 303
    assert posted.headers["location"] == "/app/sign-in?next=/app/tasks/KP-X-g1-rev.ito"
    elsewhere = await api.http.post(
        "/app/sign-out", data={"csrftoken": token_of(page)}, headers={"Referer": "https://evil.example/app/x"}
    )
    assert elsewhere.status_code == 303  # sign-out needs no session; a command does:
    cross = await api.http.post(
        "/app/tasks/KP-X/respond", data={"csrftoken": token_of(page)}, headers={"Referer": "https://evil.example/app/x"}
    )
    assert cross.headers["location"] == "/app/sign-in?next=/app/"
