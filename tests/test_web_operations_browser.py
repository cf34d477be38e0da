"""The operations page in a real browser (Debian's Chromium): an operator finds it in the
navigation, sees each section's stuck work, and axe-core finds nothing serious. Screenshot
"operations" in data/screenshots/."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect
from temporalio.client import Client

from tests.api_stack import ApiStack, api_stack
from tests.browser import screenshot, serious_violations
from tests.conftest import DEMO_PASSWORD
from tests.test_web_operations_pages import CLOSED_TITLE, OPEN_ID, seed


@pytest.fixture
async def stack(local_client: Client, sqlite_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=0.001) as s:
        await seed(s.sessionmaker)
        yield s


async def test_an_operator_reads_the_stuck_work(stack: ApiStack, browser: Browser) -> None:
    context = await browser.new_context(locale="en-GB", extra_http_headers={"Accept-Language": "en"})
    page = await context.new_page()
    await page.goto(f"{stack.base_url}/app/sign-in")
    await page.get_by_label("Username").fill("ops.kimura")
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Operations").click()
    await expect(page.get_by_role("heading", name="Operations", exact=True)).to_be_visible()
    for heading in ("Gates past due", "Projects on hold", "Hand-offs past their deadline", "Payments not yet sent"):
        section = page.get_by_role("region", name=heading)
        await expect(section.get_by_text("Open optics").first).to_be_visible()
    # The reconciliation asked the real Temporal: these rows have no workflow behind them.
    drift = page.get_by_role("region", name="Reconciliation drift")
    await expect(drift.get_by_text(f"no workflow project-{OPEN_ID} exists for this project")).to_be_visible()
    link = page.get_by_role("link", name=f"Workflows of {OPEN_ID} in Temporal").first
    assert "ProjectId%3D%22KP-OPS-OPEN%22" in (await link.get_attribute("href") or "")
    assert CLOSED_TITLE not in await page.content()
    assert await serious_violations(page) == []
    await screenshot(page, "operations")
    await context.close()
