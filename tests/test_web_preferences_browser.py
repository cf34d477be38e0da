"""The preferences page in a real browser (Debian's Chromium through Playwright): reached from the
header, the informational mails turned off and the choice shown back; axe-core finds no serious
or critical violation, in Japanese and in English. No Temporal: the page needs none."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import uvicorn
from playwright.async_api import Browser, expect
from sqlalchemy import select

from api.app import create_app
from config import Settings
from storage.db import make_engine, make_sessionmaker
from storage.models import User
from tests.api_stack import JWT_SECRET, free_port
from tests.browser import screenshot, serious_violations
from tests.conftest import DEMO_PASSWORD
from tests.support import assert_eventually


@pytest.fixture
async def served(sqlite_url: str) -> AsyncIterator[str]:
    """The app served over HTTP as the API's own state would have it, without connecting to Temporal."""
    settings = Settings(database_url=sqlite_url, jwt_secret=JWT_SECRET)
    app = create_app(settings)
    engine = make_engine(sqlite_url)
    app.state.settings = settings
    app.state.sessionmaker = make_sessionmaker(engine, audit_key=settings.resolved_audit_key())
    app.state.read_sessionmaker = make_sessionmaker(engine, read_only=True)
    app.state.jwt_secret = settings.resolved_jwt_secret()
    app.state.temporal = None
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    await assert_eventually(lambda: server.started, "uvicorn serving", interval=0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving
        await engine.dispose()


async def test_a_performer_turns_informational_mails_off_in_the_browser(
    served: str, browser: Browser, sqlite_url: str
) -> None:
    checked: dict[str, list[object]] = {}
    context = await browser.new_context(locale="ja-JP", extra_http_headers={"Accept-Language": "ja-JP"})
    page = await context.new_page()
    await page.goto(f"{served}/app/preferences")
    await page.get_by_label("ユーザー名").fill("perf.aoki")
    await page.get_by_label("パスワード").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="サインイン").click()
    await expect(page).to_have_url(f"{served}/app/preferences")
    await page.get_by_role("navigation", name="メイン").get_by_role("link", name="設定").click()
    await expect(page.get_by_role("heading", name="設定", exact=True)).to_be_visible()
    await expect(page.get_by_text("perf.aoki@example.test にメールで送られます。")).to_be_visible()
    box = page.get_by_role("checkbox")
    await expect(box).to_be_checked()
    checked["ja"] = await serious_violations(page)

    await box.uncheck()
    await page.get_by_role("button", name="設定を保存").click()

    await expect(page.get_by_role("status")).to_have_text("設定を保存しました。")
    await expect(page.get_by_role("checkbox")).not_to_be_checked()
    checked["ja saved"] = await serious_violations(page)
    await screenshot(page, "preferences-ja")
    engine = make_engine(sqlite_url)
    async with make_sessionmaker(engine)() as s:
        assert await s.scalar(select(User.mail_opt_out).where(User.username == "perf.aoki")) is True
    await engine.dispose()
    await context.close()

    english = await browser.new_context(locale="en-GB", extra_http_headers={"Accept-Language": "en-GB"})
    page = await english.new_page()
    await page.goto(f"{served}/app/preferences")
    await page.get_by_label("Username").fill("rev.ito")
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Preferences", exact=True)).to_be_visible()
    checked["en"] = await serious_violations(page)
    await english.close()
    assert checked == {"ja": [], "ja saved": [], "en": []}
