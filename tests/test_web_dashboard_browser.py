"""The portfolio dashboard and the registries' pages in a real browser (Debian's Chromium through
Playwright), with no Temporal server: the dashboard's figures under a filter chosen in its form
equal the API's GET /portfolio/summary for the same user and filters, a figure's link opens the
portfolio list with that many rows, and axe-core finds no serious or critical violation on the
dashboard or the registries' pages (a refused form included)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, Page, expect
from sqlalchemy import insert
from temporalio.client import Client

from api.app import create_app
from api.serving import proxy_options
from config import Settings
from storage.db import make_engine, make_sessionmaker
from storage.models import Gate, Project
from tests.api_stack import JWT_SECRET, free_port
from tests.browser import screenshot, serious_violations
from tests.conftest import DEMO_PASSWORD
from tests.support import assert_eventually
from tests.test_visions import NOW, _gate, _row

EN = {"locale": "en-GB", "extra_http_headers": {"Accept-Language": "en-GB"}}


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


async def _token(http: httpx.AsyncClient, user: str) -> dict[str, str]:
    r = await http.post("/auth/token", data={"username": user, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _portfolio(base: str, database_url: str) -> dict[str, int]:
    """Two visions, an area, and pm.sato's projects on them (a closed one they may not count)."""
    async with httpx.AsyncClient(base_url=base) as http:
        admin = await _token(http, "admin")
        ids = {}
        for kind, key, title in (
            ("visions", "quantum", "量子技術による安全保障"),
            ("visions", "marine", "海洋の安全"),
            ("areas", "ai", "AI"),
        ):
            r = await http.post(f"/{kind}", headers=admin, json={"title": title, "ministry": "MEXT"})
            assert r.status_code == 201, r.text
            ids[key] = r.json()["id"]
    rows = [
        _row(0, vision_id=ids["quantum"], area_id=ids["ai"], current_trl=3),
        _row(1, vision_id=ids["quantum"], current_trl=5, stage_no=2, status="on_hold"),
        _row(2, vision_id=ids["quantum"], current_trl=5, stage_no=3),
        _row(3, vision_id=ids["quantum"], current_trl=6, stage_no=3, funding_ministry="METI"),
        _row(4, vision_id=ids["marine"], current_trl=9, stage_no=4, status="completed", public_use_achieved=True),
        _row(
            5,
            vision_id=ids["marine"],
            current_trl=2,
            status="terminated",
            stop_reason="Kill at gate 1",
            lessons="海上試験を早めるべきだった",
            closed_at=NOW,
        ),
        _row(6, vision_id=ids["quantum"], classification="closed", label_level=2, title="秘匿", current_trl=7),
    ]
    engine = make_engine(database_url)
    async with make_sessionmaker(engine).begin() as s:
        await s.execute(insert(Project), rows)
        await s.execute(insert(Gate), [_gate("KP-D0002", NOW.replace(year=NOW.year - 1))])
    await engine.dispose()
    return ids


async def _figures(page: Page) -> dict[str, int]:
    links = page.locator("a[data-figure]")
    found = {}
    for i in range(await links.count()):
        link = links.nth(i)
        found[str(await link.get_attribute("data-figure"))] = int(await link.inner_text())
    return found


async def test_the_dashboards_figures_equal_the_apis_and_lead_to_lists_of_that_size(
    served: str, sqlite_url: str, browser: Browser
) -> None:
    base = served
    ids = await _portfolio(base, sqlite_url)
    checked: dict[str, list[Any]] = {}
    context = await browser.new_context(**EN)
    page = await context.new_page()
    await page.goto(f"{base}/app/projects")
    await page.get_by_label("Username").fill("pm.sato")
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    await expect(page.get_by_role("heading", name="Portfolio dashboard", level=1)).to_be_visible()

    # A filter chosen in the form stays in the address.
    await page.get_by_label("Funding ministry").select_option("MEXT")
    await page.get_by_role("button", name="Show").click()
    await expect(page).to_have_url(re.compile(r"/app/dashboard\?.*ministry=MEXT"))
    assert parse_qs(urlsplit(page.url).query)["ministry"] == ["MEXT"]
    shown = await _figures(page)
    checked["dashboard"] = await serious_violations(page)
    await screenshot(page, "dashboard")

    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.get("/portfolio/summary", params={"ministry": "MEXT"}, headers=await _token(http, "pm.sato"))
    api = r.json()
    expected = {
        "total": api["total"],
        "gates-due": api["gates_due"],
        "gates-overdue": api["gates_overdue"],
        "on-hold": api["on_hold"],
        "stopped": api["stopped"],
        "public-use": api["public_use"],
    }
    for name, section in (
        ("stage", "by_stage"),
        ("trl", "by_trl"),
        ("vision", "by_vision"),
        ("area", "by_area"),
        ("ministry", "by_ministry"),
        ("status", "by_status"),
    ):
        expected |= {f"by-{name}-{b['key']}": b["count"] for b in api[section]}
    expected |= {f"handoffs-{b['key']}": b["count"] for b in api["handoffs"]}
    assert shown == expected
    assert shown["total"] == 5 and shown[f"by-vision-{ids['quantum']}"] == 3  # closed and METI left out
    await expect(page.get_by_text("海上試験を早めるべきだった")).to_be_visible()  # a stop's lessons

    # The figure's link: the list behind it, that many rows.
    await page.locator(f'a[data-figure="by-vision-{ids["quantum"]}"]').click()
    await expect(page.get_by_role("heading", name="Portfolio", level=1)).to_be_visible()
    assert parse_qs(urlsplit(page.url).query) == {"ministry": ["MEXT"], "vision": [str(ids["quantum"])]}
    await expect(page.locator("table tbody tr")).to_have_count(3)
    await expect(page.get_by_label("Research vision")).to_have_value(str(ids["quantum"]))
    await page.go_back()
    await page.locator('a[data-figure="by-trl-5"]').click()
    await expect(page.locator("table tbody tr")).to_have_count(shown["by-trl-5"])

    # The registries' pages, a refused form among them.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Visions").click()
    await expect(page.get_by_role("heading", name="Research visions and technology areas")).to_be_visible()
    checked["visions"] = await serious_violations(page)
    await page.get_by_role("link", name="Register a technology area").click()
    await page.get_by_label("Title").fill("Quantum")
    await page.get_by_role("button", name="Save").click()  # no ministry chosen
    await expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    await expect(page.get_by_label("Title")).to_have_value("Quantum")
    checked["vision form refused"] = await serious_violations(page)
    await page.get_by_label("Ministry responsible").select_option("MEXT")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("The entry was registered.")
    await page.get_by_role("button", name="Retire — Quantum").click()
    await expect(page.get_by_role("status")).to_have_text("The entry was retired.")
    await screenshot(page, "visions")
    await context.close()
    assert checked == {name: [] for name in checked}
