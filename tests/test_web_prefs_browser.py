"""Issue 12 in a real browser (Debian's Chromium through Playwright), with no Temporal server: the
language chosen follows the user into a Japanese-speaking browser, and a session cookie copied
before signing out no longer signs anyone in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import uvicorn
from playwright.async_api import Browser, Page, expect
from temporalio.client import Client

from api.app import create_app
from api.serving import proxy_options
from config import Settings
from tests.api_stack import JWT_SECRET, free_port
from tests.browser import screenshot, serious_violations
from tests.conftest import DEMO_PASSWORD
from tests.support import assert_eventually
from web import session

JA = {"locale": "ja-JP", "extra_http_headers": {"Accept-Language": "ja"}}


@pytest.fixture
async def served(sqlite_url: str) -> AsyncIterator[str]:
    settings = Settings(database_url=sqlite_url, jwt_secret=JWT_SECRET)
    app = create_app(settings, client=cast(Client, object()))  # these pages never call Temporal
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **proxy_options(settings))
    )
    serving = asyncio.create_task(server.serve())
    await assert_eventually(lambda: server.started, "uvicorn serving", interval=0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def _sign_in_ja(page: Page, base: str) -> None:
    await page.goto(f"{base}/app/inbox")
    await page.get_by_label("ユーザー名").fill("rev.ito")
    await page.get_by_label("パスワード").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="サインイン").click()
    await expect(page).to_have_url(f"{base}/app/inbox")


async def test_the_language_follows_the_user_and_sign_out_ends_a_copied_session(served: str, browser: Browser) -> None:
    base = served
    first = await browser.new_context(**JA)
    page = await first.new_page()
    await _sign_in_ja(page, base)
    await expect(page.get_by_role("heading", level=1)).to_have_text("審査の受信箱")
    await page.get_by_label("言語").select_option("en")
    await page.get_by_role("button", name="切り替え").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Review inbox")
    copied = [c for c in await first.cookies() if c["name"] == session.COOKIE]
    assert copied
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{base}/app/sign-in")
    await first.close()

    # A browser that never saw the switch and asks for Japanese: the user's pages in English.
    second = await browser.new_context(**JA)
    page = await second.new_page()
    await _sign_in_ja(page, base)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Review inbox")
    assert await page.locator("html").get_attribute("lang") == "en"
    violations: list[dict[str, Any]] = await serious_violations(page)
    await screenshot(page, "prefs-inbox-en-remembered")
    assert violations == [], violations
    await second.close()

    # The cookie copied before the sign-out: back to the sign-in page.
    third = await browser.new_context(**JA)
    await third.add_cookies(cast(Any, copied))
    page = await third.new_page()
    await page.goto(f"{base}/app/inbox")
    await expect(page).to_have_url(f"{base}/app/sign-in?next=/app/inbox")
    await third.close()
