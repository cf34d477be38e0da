"""The preferences page over HTTP in this process: the user's e-mail address, and the opt-out of
the mails of notices that only inform (those asking to act are always mailed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from activities.notices import store_notice
from domain.programme import PROGRAMME_CODE
from storage.models import MailOutbox, User
from storage.projects import insert_project
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.support import proposal
from tests.test_web_pages import EN, JA, sign_in, token_of

NOW = datetime(2027, 4, 1, tzinfo=UTC)


@pytest.fixture
async def api(sqlite_url: str) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url) as api:
        yield api


async def _opted_out(api: InProcessApi, username: str) -> bool:
    async with api.sessionmaker() as s:
        user = await s.get(User, username, populate_existing=True)
        assert user is not None
        return user.mail_opt_out


async def test_a_user_opts_out_of_informational_mails_and_back_in(api: InProcessApi) -> None:
    await sign_in(api.http, "perf.aoki", DEMO_PASSWORD)
    page = await api.http.get("/app/preferences", headers=JA)
    assert page.status_code == 200 and "<h1>設定</h1>" in page.text
    assert "perf.aoki@example.test にメールで送られます" in page.text
    assert 'name="informational" value="true" checked' in page.text  # informational mails on by default
    assert '<a href="/app/preferences">設定</a>' in page.text  # in every page's header

    saved = await api.http.post("/app/preferences", data={"csrftoken": token_of(page)}, headers=JA)  # box unticked

    assert saved.status_code == 303 and saved.headers["location"] == "/app/preferences?saved=1"
    assert await _opted_out(api, "perf.aoki")
    after = await api.http.get("/app/preferences?saved=1", headers=JA)
    assert "設定を保存しました。" in after.text and 'value="true" >' in after.text  # unchecked now
    # From now on only the notices asking them to act reach their mailbox.
    p = proposal()
    assert p.project_id is not None
    async with api.sessionmaker.begin() as s:
        await insert_project(s, PROGRAMME_CODE, f"project-{p.project_id}", p)
    async with api.sessionmaker.begin() as s:
        await store_notice(s, "k-accepted", p.project_id, "perf.aoki", "report_accepted", "accepted", NOW)
        await store_notice(s, "k-returned", p.project_id, "perf.aoki", "report_returned", "returned", NOW)
    async with api.sessionmaker() as s:
        assert (await s.scalars(select(MailOutbox.notification_key))).all() == ["k-returned"]

    back = await api.http.post(
        "/app/preferences", data={"csrftoken": token_of(after), "informational": "true"}, headers=JA
    )
    assert back.status_code == 303 and not await _opted_out(api, "perf.aoki")


async def test_the_page_says_when_no_address_is_on_file_and_speaks_english(api: InProcessApi) -> None:
    async with api.sessionmaker.begin() as s:
        await s.execute(update(User).where(User.username == "rev.mori").values(email=None))
    await sign_in(api.http, "rev.mori", DEMO_PASSWORD, EN)
    page = await api.http.get("/app/preferences", headers=EN)
    assert page.status_code == 200 and "No e-mail address is on file for you" in page.text
    assert "are always e-mailed" in page.text


async def test_the_preferences_form_needs_its_csrf_token_and_a_signed_in_user(api: InProcessApi) -> None:
    anonymous = await api.http.get("/app/preferences")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/app/sign-in")
    await sign_in(api.http, "perf.aoki", DEMO_PASSWORD)
    refused = await api.http.post("/app/preferences", data={"informational": "true"})
    assert refused.status_code == 403 and not await _opted_out(api, "perf.aoki")
    page = await api.http.get("/app/preferences")
    odd = await api.http.post("/app/preferences", data={"csrftoken": token_of(page), "informational": "maybe"})
    assert odd.status_code == 422 and not await _opted_out(api, "perf.aoki")  # a reason, nothing changed
