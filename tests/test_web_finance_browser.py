"""Finance's four-eyes approval in a real browser (Debian's Chromium through Playwright), by the
pages alone: a project's first tranche is above the four-eyes threshold and due; finance user A
finds it through the header's Finance link and requests it, and is refused the approval of their
own request (the workflow's rule, on the page); finance user B approves it; the workflow pays it
and the tranche's page says so. axe-core finds no serious or critical violation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect
from temporalio.client import Client

from tests.api_stack import ApiStack, api_stack
from tests.browser import screenshot, serious_violations
from tests.conftest import DEMO_PASSWORD
from tests.support import PM
from tests.test_api_lifecycle import wait_status
from tests.test_api_money import B, body

TITLE = "Four-eyes tranche demonstration"
EN = {"Accept-Language": "en-GB"}


@pytest.fixture
async def stack(local_client: Client, sqlite_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    # A simulated day of 0.2 s: tranche 1 is due at once, tranche 2 only after ~73 s.
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=0.2, four_eyes_threshold=B - 1) as s:
        yield s


async def sign_in(page: Page, base: str, username: str) -> None:
    await page.goto(f"{base}/app/finance/approvals")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{base}/app/finance/approvals")


async def reload_until(page: Page, text: str, timeout: float = 30) -> None:
    """The workflow pays after the approval, on its own time: reload until the page says so."""
    deadline = time.monotonic() + timeout
    while await page.get_by_text(text, exact=True).count() == 0:
        assert time.monotonic() < deadline, f"{text!r} never appeared"
        await asyncio.sleep(0.5)
        await page.reload()


async def test_two_finance_users_request_and_approve_a_large_tranche_in_the_browser(
    stack: ApiStack, browser: Browser
) -> None:
    r = await stack.call("POST", "/projects", PM, json=body(title=TITLE))
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    await wait_status(stack, pid, lambda s: "four-eyes approval" in s.waiting_for, "tranche 1 awaits approval")
    base = stack.base_url
    checked: dict[str, list[object]] = {}

    context = await browser.new_context(locale="en-GB", extra_http_headers=EN)
    page = await context.new_page()
    await sign_in(page, base, "fin.suzuki")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Finance").click()
    await expect(page.get_by_role("heading", name="Tranche approvals")).to_be_visible()
    row = page.get_by_role("row").filter(has_text=pid)
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text(TITLE)
    await expect(row).to_contain_text("¥1,000,000,000")
    await expect(row).to_contain_text("A request")
    checked["list"] = await serious_violations(page)
    await screenshot(page, "finance-approvals")
    await row.get_by_role("link", name="Stage 1, tranche 1").click()

    await expect(page.get_by_role("heading", name=TITLE)).to_be_visible()
    await expect(page.locator("#waiting-for")).to_contain_text("four-eyes approval")
    checked["tranche"] = await serious_violations(page)
    await page.get_by_role("button", name="Request payment").click()
    await expect(page.get_by_role("status")).to_contain_text("Your request was recorded.")
    await expect(page.locator("#requested")).to_contain_text("fin.suzuki")
    # The same person may not approve their own request: the workflow's refusal, on the page.
    await page.get_by_role("button", name="Approve payment").click()
    await expect(page.get_by_role("alert")).to_contain_text("four eyes: the approver must be someone other")
    checked["refused"] = await serious_violations(page)
    await context.close()

    context = await browser.new_context(locale="en-GB", extra_http_headers=EN)
    page = await context.new_page()
    await sign_in(page, base, "fin.yamada")
    row = page.get_by_role("row").filter(has_text=pid)
    await expect(row).to_contain_text("fin.suzuki")
    await expect(row).to_contain_text("A second approver")
    await row.get_by_role("link", name="Stage 1, tranche 1").click()
    await page.get_by_role("button", name="Approve payment").click()
    await expect(page.get_by_role("status")).to_contain_text("Your approval was recorded.")
    await expect(page.locator("#approved")).to_contain_text("fin.yamada")
    await reload_until(page, "Paid")
    await expect(page.get_by_role("button")).to_have_text(["Sign out", "Switch"])  # no signature left to give
    await page.goto(f"{base}/app/finance/approvals")
    await expect(page.locator("#approvals").get_by_role("row").filter(has_text=pid)).to_have_count(0)
    # ... and listed as approved, naming both people.
    await expect(page.locator("#approved").get_by_role("row").filter(has_text=pid)).to_contain_text("fin.suzuki")
    await context.close()

    assert checked == {"list": [], "tranche": [], "refused": []}, checked
    await wait_status(stack, pid, lambda s: s.money is not None and s.money.tranches_paid == [1], "tranche 1 paid")
