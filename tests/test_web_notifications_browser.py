"""The notification centre in a real browser (Debian's Chromium through Playwright), with no
Temporal server (the page reads the database alone): the header's count, marking one read by
mouse and all read by keyboard, and axe-core finding no serious or critical violation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import uvicorn
from playwright.async_api import Browser, expect
from temporalio.client import Client

from api.app import create_app
from api.serving import proxy_options
from config import Settings
from storage.db import make_engine, make_sessionmaker
from tests.api_stack import JWT_SECRET, free_port
from tests.browser import screenshot, serious_violations
from tests.conftest import DEMO_PASSWORD
from tests.support import assert_eventually
from tests.test_notifications import ME, seed


@pytest.fixture
async def served(sqlite_url: str) -> AsyncIterator[str]:
    settings = Settings(database_url=sqlite_url, jwt_secret=JWT_SECRET)
    # A stand-in for the Temporal client: these pages never call it.
    app = create_app(settings, client=cast(Client, object()))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **proxy_options(settings))
    )
    serving = asyncio.create_task(server.serve())
    await assert_eventually(lambda: server.started, "uvicorn serving", interval=0.01)
    engine = make_engine(sqlite_url)
    try:
        await seed(make_sessionmaker(engine), mine=3, others=2)
        yield f"http://127.0.0.1:{port}"
    finally:
        await engine.dispose()
        server.should_exit = True
        await serving


async def test_the_notification_centre_in_the_browser(served: str, browser: Browser) -> None:
    base = served
    context = await browser.new_context(locale="ja-JP", extra_http_headers={"Accept-Language": "ja"})
    page = await context.new_page()
    await page.goto(f"{base}/app/notifications")
    await page.get_by_label("ユーザー名").fill(ME)
    await page.get_by_label("パスワード").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="サインイン").click()
    await expect(page).to_have_url(f"{base}/app/notifications")
    header_link = page.get_by_role("link", name="通知（未読 3 件）")
    await expect(header_link).to_have_text("通知 (3)")
    await expect(page.get_by_role("table", name="あなたへの通知（新しい順）")).to_be_visible()
    violations: list[dict[str, Any]] = await serious_violations(page)
    await screenshot(page, "notifications-ja")
    assert violations == [], violations
    # The newest first; mark it read with the mouse.
    rows = page.get_by_role("row")
    await expect(rows.nth(1)).to_contain_text("notice 2")
    await rows.nth(1).get_by_role("button", name="既読にする", exact=True).click()
    await expect(page).to_have_url(f"{base}/app/notifications")
    await expect(page.get_by_role("link", name="通知（未読 2 件）")).to_be_visible()
    await expect(page.get_by_role("button", name="既読にする", exact=True)).to_have_count(2)
    # All the rest by keyboard.
    await page.get_by_role("button", name="すべて既読にする").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("link", name="通知（未読 0 件）")).to_be_visible()
    await expect(page.get_by_role("button", name="既読にする", exact=True)).to_have_count(0)
    await context.close()
