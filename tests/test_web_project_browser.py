"""A programme manager starts a project with a Japanese title through the start-project form in a
real browser (Debian's Chromium through Playwright), lands on the project's page and sees its
timeline and what the workflow waits for. axe-core checks both pages; screenshots go to
data/screenshots/ ("project-new", "project")."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect
from temporalio.client import Client

from tests.api_stack import ApiStack, api_stack
from tests.browser import screenshot, serious_violations
from tests.conftest import DEMO_PASSWORD
from tests.support import PM

TITLE = "海底ケーブル監視用の自律型水中ドローン"


@pytest.fixture
async def stack(local_client: Client, sqlite_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=0.001) as s:
        yield s


async def test_a_pm_starts_a_project_through_the_form_and_reads_its_page(stack: ApiStack, browser: Browser) -> None:
    base = stack.base_url
    vision = await stack.call(
        "POST", "/visions", PM, json={"title": "海底インフラの常時監視と保護", "ministry": "MEXT"}
    )
    assert vision.status_code == 201, vision.text
    context = await browser.new_context(locale="ja-JP", extra_http_headers={"Accept-Language": "ja"})
    page = await context.new_page()
    await page.goto(f"{base}/app/projects/new")
    await page.get_by_label("ユーザー名").fill(PM)
    await page.get_by_label("パスワード").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="サインイン").click()
    await expect(page).to_have_url(f"{base}/app/projects/new")
    await expect(page.get_by_label("ステージ 1: ステージ名")).to_have_value("Basic research")  # the default plan
    form_violations = await serious_violations(page)
    await screenshot(page, "project-new")

    await page.get_by_label("プロジェクト名").fill(TITLE)
    await page.get_by_label("実施機関").fill("神戸海洋ロボティクス")
    await page.get_by_label("研究ビジョン", exact=True).select_option(label="海底インフラの常時監視と保護")
    await page.get_by_label("審査員(ユーザー名、カンマまたは空白区切り)").fill("rev.ito, rev.kato, rev.mori")
    await page.get_by_label("公的利用省庁(MOD、MLIT などのコード)").fill("MOD, MLIT")
    await page.get_by_label("開始 TRL(後の TRL から始めると前のステージは省かれます)").select_option("3")
    await page.get_by_label("総予算(円)").fill("1000000000")
    await page.get_by_label("総予算(円)").press("Enter")  # the keyboard's submit starts (not "add a stage")

    await expect(page).to_have_url(re.compile(re.escape(base) + r"/app/projects/KP-\d{4}-[0-9a-f]{8}$"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text(TITLE)
    await expect(page.get_by_role("heading", name="タイムライン")).to_be_visible()
    await expect(page.get_by_role("heading", name="ステージ 1: Applied research")).to_be_visible()
    # The workflow answers its status query once the worker has taken its first task.
    waiting = page.locator("#waiting-for")
    gate = page.get_by_role("link", name="ゲート 1 のページを開く").first  # gate 1 opens soon (a quick clock)
    for _ in range(30):
        live = "warning" not in (await waiting.get_attribute("class") or "")
        if live and "registering" not in await waiting.inner_text() and await gate.count():
            break
        await asyncio.sleep(1)
        await page.reload()
    await expect(waiting).not_to_have_class("warning")
    await expect(waiting).not_to_have_text("registering")
    await expect(gate).to_have_attribute("href", re.compile(r"/app/projects/KP-[\w-]+/gates/1$"))
    link = page.get_by_role("link", name="Temporal UI でこのプロジェクトのワークフローを開く")
    await expect(link).to_have_attribute("href", re.compile(r"/namespaces/[^/]+/workflows/project-KP-"))
    project_violations = await serious_violations(page)
    await screenshot(page, "project")
    assert form_violations == [] and project_violations == []

    # A form posted without its CSRF token (as a forged form on another site would) is refused.
    await page.goto(f"{base}/app/projects/new")
    await page.locator("input[name=csrftoken]").evaluate_all("inputs => inputs.forEach(i => i.remove())")
    await page.get_by_label("プロジェクト名").fill("トークンのないフォーム")
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.get_by_role("button", name="プロジェクトを開始する").last.click()
    assert (await posted.value).status == 403
    projects = (await stack.call("GET", "/projects", PM)).json()["items"]
    assert [p["title"] for p in projects] == [TITLE]  # nothing started
    await context.close()
