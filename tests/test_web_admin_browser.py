"""Need-to-know administration in a real browser (Debian's Chromium through Playwright), by the pages
alone: the administrator finds the closed project through the header's Administration link, is
refused a grant for an uncleared reviewer (the reason beside the form), grants it to a cleared one;
that reviewer then sees the closed project in the portfolio and opens its page, while a reviewer
with the same clearance and no grant still does not; after the revoke it is gone again. axe-core
finds no serious or critical violation on the admin pages, their error states included.

The API is served by uvicorn without Temporal (the pages here read the database only), which keeps
a Temporal server off the shared machine for this test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from config import Settings
from storage.db import make_engine, make_sessionmaker
from tests.api_stack import JWT_SECRET, free_port
from tests.browser import screenshot, serious_violations
from tests.conftest import DEMO_PASSWORD
from tests.support import assert_eventually
from tests.test_web_admin_pages import CLOSED, CLOSED_TITLE, closed_project

EN = {"Accept-Language": "en-GB"}


@asynccontextmanager
async def served(database_url: str) -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    settings = Settings(database_url=database_url, jwt_secret=JWT_SECRET)
    app = create_app(settings)
    engine = make_engine(database_url)
    # What the app's lifespan sets up, without connecting to Temporal.
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
        yield f"http://127.0.0.1:{port}", make_sessionmaker(engine)
    finally:
        server.should_exit = True
        await serving
        await engine.dispose()


@pytest.fixture
async def site(sqlite_url: str) -> AsyncIterator[str]:
    async with served(sqlite_url) as (base, sessionmaker):
        await closed_project(sessionmaker)
        yield base


async def signed_in(browser: Browser, base: str, username: str) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(locale="en-GB", extra_http_headers=EN)
    page = await context.new_page()
    await page.goto(f"{base}/app/sign-in")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return context, page


async def sees_the_closed_project(browser: Browser, base: str, username: str) -> bool:
    """Whether the user finds the project in the portfolio and opens its page; either both or
    neither (a refused page shows no title)."""
    context, page = await signed_in(browser, base, username)
    await page.goto(f"{base}/app/projects")
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    listed = await page.get_by_text(CLOSED_TITLE).count() > 0
    answer = await page.goto(f"{base}/app/projects/{CLOSED}")
    assert answer is not None
    opened = answer.status == 200
    if opened:
        await expect(page.get_by_role("heading", name=CLOSED_TITLE)).to_be_visible()
    else:
        assert answer.status in (403, 404), answer.status
        assert CLOSED_TITLE not in await page.content()
    await context.close()
    assert listed == opened, (username, listed, opened)
    return opened


async def test_an_admin_grants_need_to_know_and_only_the_grantee_sees_the_closed_project(
    site: str, browser: Browser
) -> None:
    base = site
    checked: dict[str, object] = {}
    assert not await sees_the_closed_project(browser, base, "rev.ito")
    assert not await sees_the_closed_project(browser, base, "rev.kato")

    context, page = await signed_in(browser, base, "admin")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Administration").click()
    await expect(page.get_by_role("heading", name="Users")).to_be_visible()
    checked["users"] = await serious_violations(page)
    await screenshot(page, "admin-users")
    await page.get_by_role("link", name="rev.ito").click()
    await expect(page.get_by_role("heading", name="Ito Yuki (Reviewer) rev.ito")).to_be_visible()
    checked["user"] = await serious_violations(page)
    await page.get_by_role("navigation", name="Administration").get_by_role("link", name="Users").click()
    await page.get_by_role("link", name="Create a user").click()
    await page.get_by_role("button", name="Create the user").click()
    await expect(page.get_by_role("alert")).to_contain_text("The user was not created:")
    checked["new-refused"] = await serious_violations(page)

    nav = page.get_by_role("navigation", name="Administration")
    await nav.get_by_role("link", name="Need-to-know grants").click()
    await expect(page.get_by_role("heading", name="Need-to-know grants")).to_be_visible()
    checked["grants"] = await serious_violations(page)
    await page.get_by_role("link", name=CLOSED).click()
    await expect(page.get_by_role("heading", name=f"Grants of {CLOSED}")).to_be_visible()
    # An uncleared reviewer: refused, the reason beside the form, what was typed kept.
    await page.get_by_label("Username").fill("rev.mori")
    await page.get_by_label("Reason (why this person needs to know)").fill("panel member for gate 2")
    await page.get_by_role("button", name="Grant", exact=True).click()
    await expect(page.get_by_role("alert")).to_contain_text("clearance does not cover the label")
    await expect(page.get_by_label("Reason (why this person needs to know)")).to_have_value("panel member for gate 2")
    checked["grant-refused"] = await serious_violations(page)
    await page.get_by_label("Username").fill("rev.ito")
    await page.get_by_role("button", name="Grant", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("The grant was recorded.")
    await expect(
        page.get_by_role("region", name="Grants in force").get_by_role("cell", name="rev.ito", exact=True)
    ).to_be_visible()
    checked["grant"] = await serious_violations(page)
    await screenshot(page, "admin-grants")

    assert await sees_the_closed_project(browser, base, "rev.ito")
    assert not await sees_the_closed_project(browser, base, "rev.kato")  # same clearance, no grant

    await page.get_by_role("button", name="Revoke the grant of rev.ito").click()
    await expect(page.get_by_role("status")).to_contain_text("The grant was revoked.")
    assert not await sees_the_closed_project(browser, base, "rev.ito")

    await nav.get_by_role("link", name="Audit log").click()
    await expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    await expect(page.locator("#chain-verdict")).to_contain_text("Intact: verified up to entry")
    # The grant's own entries name the closed project, which the administrator (no grant) may
    # not read: withheld, as every other entry of closed work.
    await page.get_by_label("Action").select_option("grant_need_to_know")
    await page.get_by_role("button", name="Filter").click()
    await expect(page).to_have_url(f"{base}/app/admin/audit?actor=&project=&action=grant_need_to_know&since=&until=")
    await expect(page.get_by_text("No entry matches.")).to_be_visible()
    await page.get_by_label("Actor").fill("admin")
    await page.get_by_label("Action").select_option("login")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.get_by_role("table")).to_contain_text("login")
    checked["audit"] = await serious_violations(page)
    await screenshot(page, "admin-audit")
    await page.goto(f"{base}/app/admin/audit?since=2026-02-30")
    await expect(page.get_by_role("alert")).to_contain_text("a date is written YYYY-MM-DD")
    checked["audit-refused"] = await serious_violations(page)

    await page.goto(f"{base}/app/admin/ministries")
    row = page.get_by_role("row").filter(has_text="liaison.mod")
    await expect(row).to_have_count(1)
    await page.get_by_role("textbox", name="Name of MOD").fill("")
    await page.get_by_role("button", name="Save the name of MOD").click()
    await expect(page.get_by_role("alert")).to_contain_text("MOD:")
    checked["ministries-refused"] = await serious_violations(page)
    await context.close()

    assert all(found == [] for found in checked.values()), checked
