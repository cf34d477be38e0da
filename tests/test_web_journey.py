"""The whole journey of one project in a real browser (Debian's Chromium through Playwright),
through the pages alone, each person in their own browser context: the programme manager starts
a project with a Japanese title and a one-stage custom plan whose tranche is above the four-eyes
threshold; finance requests it and a second finance user approves it, and the workflow pays it;
at the stage's gate the PM submits the evidence, three reviewers accept, declare no conflict and
score; the PM decides Go; the ministry liaison finds the hand-off through a notification and
accepts it; the project completes. Nothing is done over the API: the API is only read, to check
the pages told the truth. axe-core checks the project's page in two states here; each other page
is checked, in its error states too, by its own browser test."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from temporalio.client import Client

from tests.api_stack import ApiStack, api_stack
from tests.browser import screenshot, serious_violations
from tests.conftest import DEMO_PASSWORD
from tests.support import PM, REVIEWERS

TITLE = "深海探査用の長距離音響通信網"
AMOUNT = 700_000_000  # one tranche, above the threshold below: four eyes
THRESHOLD = 500_000_000
JA = {"Accept-Language": "ja"}


@pytest.fixture
async def stack(local_client: Client, sqlite_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    async with api_stack(
        local_client, sqlite_url, task_queue, seconds_per_day=0.01, four_eyes_threshold=THRESHOLD
    ) as s:
        yield s


async def person(browser: Browser, base: str, username: str, start: str) -> tuple[BrowserContext, Page]:
    """A browser of this person's own, signed in on the page they start from."""
    context = await browser.new_context(locale="ja-JP", extra_http_headers=JA)
    page = await context.new_page()
    await page.goto(f"{base}{start}")
    await page.get_by_label("ユーザー名").fill(username)
    await page.get_by_label("パスワード").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="サインイン").click()
    await expect(page).to_have_url(f"{base}{start}")
    return context, page


async def reload_until(page: Page, ready: Callable[[], Awaitable[bool]], what: str, timeout: float = 60) -> None:
    """The workflow moves on its own time: reload the page until it shows what is awaited."""
    deadline = time.monotonic() + timeout
    while not await ready():
        assert time.monotonic() < deadline, f"the page never showed {what}"
        await asyncio.sleep(0.5)
        await page.reload()


async def test_one_project_from_start_to_completion_through_the_pages(stack: ApiStack, browser: Browser) -> None:
    base = stack.base_url
    checked: dict[str, list[object]] = {}

    # The programme manager starts the project against a registered vision: a custom one-stage plan from TRL 7.
    vision = await stack.call("POST", "/visions", PM, json={"title": "深海の観測網を常時つなぐ", "ministry": "MEXT"})
    assert vision.status_code == 201, vision.text
    pm, pm_page = await person(browser, base, PM, "/app/projects/new")
    page = pm_page
    await page.get_by_label("プロジェクト名").fill(TITLE)
    await page.get_by_label("実施機関").fill("海洋音響研究所")
    await page.get_by_label("研究ビジョン", exact=True).select_option(label="深海の観測網を常時つなぐ")
    await page.get_by_label("審査員(ユーザー名、カンマまたは空白区切り)").fill(", ".join(REVIEWERS))
    await page.get_by_label("公的利用省庁(MOD、MLIT などのコード)").fill("MOD")
    await page.get_by_label("開始 TRL(後の TRL から始めると前のステージは省かれます)").select_option("7")
    await page.get_by_label("総予算(円)").fill(str(AMOUNT))
    await page.get_by_role("button", name="標準の計画を入れる").click()
    await page.get_by_label("下の表のステージ(独自の計画)").check()
    await page.locator("#stage-0-name").fill("社会実装")
    await page.locator("#stage-0-duration_days").fill("40")
    await page.locator("#stage-0-tranches").fill(f"0={AMOUNT}")
    await page.get_by_role("button", name="プロジェクトを開始する").last.click()
    await expect(page).to_have_url(re.compile(re.escape(base) + r"/app/projects/KP-\d{4}-[0-9a-f]{8}$"))
    project_id = page.url.rsplit("/", 1)[1]
    await expect(page.get_by_role("heading", level=1)).to_contain_text(TITLE)
    waiting = page.locator("#waiting-for")

    async def waits_for(text: str) -> bool:
        return text in await waiting.inner_text()

    await reload_until(page, lambda: waits_for("four-eyes"), "the tranche waiting for four eyes")
    checked["project"] = await serious_violations(page)
    await screenshot(page, "journey-project-four-eyes")

    # Finance: one requests, a second approves; the workflow pays.
    for username, button, done in (
        ("fin.suzuki", "支払いを申請", "#requested"),
        ("fin.yamada", "支払いを承認", "#approved"),
    ):
        context, page = await person(browser, base, username, "/app/finance/approvals")
        row = page.get_by_role("row").filter(has_text=project_id)
        await expect(row).to_contain_text(TITLE)
        await row.get_by_role("link").first.click()
        await page.get_by_role("button", name=button).click()
        await expect(page.locator(done)).to_contain_text(username)
        if username == "fin.yamada":

            async def paid(page: Page = page) -> bool:
                return await page.get_by_text("支払済み", exact=True).count() > 0

            await reload_until(page, paid, "the tranche paid")
        await context.close()

    # The stage ends: the gate waits for the evidence, which the PM submits on the gate page.
    page = pm_page
    await page.goto(f"{base}/app/projects/{project_id}")
    gate_link = page.get_by_role("link", name="ゲート 1 のページを開く").first

    async def gate_opened() -> bool:
        return await gate_link.count() > 0

    await reload_until(page, gate_opened, "gate 1 open")
    await gate_link.click()
    for field in await page.locator("textarea[id^='evidence_']").all():
        await field.fill("段階報告書 第3章: 深海 4,000 m での通信試験")
    await page.get_by_role("button", name="エビデンスを提出して審査を始める").click()
    await expect(page.get_by_role("status")).to_have_text("エビデンスを提出しました。審査が始まりました。")

    # Three reviewers accept, declare no conflict of interest and score.
    for reviewer in REVIEWERS:
        context, page = await person(browser, base, reviewer, "/app/inbox")
        await page.get_by_role("link", name=TITLE).click()
        await page.get_by_label("引き受ける").check()
        await page.get_by_label("このプロジェクトとの利益相反はありません").check()
        await page.get_by_role("button", name="回答を送る").click()
        await expect(page.get_by_role("heading", name="評価票")).to_be_visible()
        for group in await page.get_by_role("group").all():
            await group.get_by_label("満たす", exact=True).check()
        for select in await page.get_by_role("combobox").all():
            if await select.get_attribute("name") != "lang":
                await select.select_option("4")
        await page.get_by_label("コメント").fill(f"{reviewer}: 深海試験の結果は十分")
        await page.get_by_role("button", name="審査を提出する").click()
        await expect(
            page.get_by_role("heading", name="あなたの審査（パネルが締め切られるまで修正できます）")
        ).to_be_visible()
        await context.close()

    # The PM decides Go on the gate page.
    page = pm_page
    await page.goto(f"{base}/app/projects/{project_id}/gates/1")
    await expect(page.locator("#recommendation")).to_have_text("Go（次段階へ）")
    await page.get_by_role("radio", name="Go（次段階へ）").check()
    await page.get_by_role("button", name="判断を記録する").click()
    await expect(page).to_have_url(f"{base}/app/projects/{project_id}")

    # The MOD liaison is told, follows the notice and accepts the hand-off.
    context, page = await person(browser, base, "liaison.mod", "/app/notifications")

    async def offered() -> bool:
        return await page.get_by_role("row").filter(has_text=project_id).count() > 0

    await reload_until(page, offered, "the hand-off notice")
    await page.get_by_role("row").filter(has_text=project_id).get_by_role("link", name="作業のページへ").first.click()
    await page.get_by_role("link", name=TITLE).click()
    await expect(page.get_by_role("heading", name="移管パッケージ")).to_be_visible()
    await page.get_by_label("受入れ先の事業（必須）").fill("防衛装備庁 水中通信事業")
    await page.get_by_role("button", name="移管を受け入れる").click()
    await expect(page.get_by_text("受諾済み", exact=True)).to_be_visible()
    await context.close()

    # The project completes; its page says so.
    page = pm_page
    await page.goto(f"{base}/app/projects/{project_id}")

    async def completed() -> bool:
        return await page.locator("#status").filter(has_text="完了").count() > 0

    await reload_until(page, completed, "the project completed")
    await screenshot(page, "journey-project-completed")
    checked["completed"] = await serious_violations(page)
    await pm.close()

    project = (await stack.call("GET", f"/projects/{project_id}", PM)).json()
    assert project["title"] == TITLE and project["status"] == "completed"
    assert [(t["amount"], t["stage_no"]) for t in project["tranches"]] == [(AMOUNT, 1)]
    assert [(h["ministry"], h["status"]) for h in project["handoffs"]] == [("MOD", "accepted")]
    assert all(v == [] for v in checked.values()), checked
