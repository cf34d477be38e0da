"""The ministry liaisons' hand-off journey in a real browser (Debian's Chromium through
Playwright): a project driven over the API through its four gates to its hand-offs; the MOD
liaison finds the hand-off, reads the package and its SHA-256, is refused an accept without the
receiving programme (beside the field, the note kept), then accepts; the MLIT liaison declines
with a reason. axe-core finds no serious or critical violation on the list or the hand-off page."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect
from temporalio.client import Client

from tests.api_stack import ApiStack, api_stack
from tests.browser import screenshot, serious_violations
from tests.support import PM, handoff_offered
from tests.test_api_lifecycle import proposal_body, review_gate, wait_status
from tests.test_web_browser import sign_in

TITLE = "量子暗号による海洋通信の安全化"


@pytest.fixture
async def stack(local_client: Client, sqlite_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=0.001) as s:
        yield s


async def to_handoffs(stack: ApiStack) -> str:
    """Over the API: the PM's project, entered at TRL 7 (one stage: four gates would cost the suite
    time and show nothing more), passes its gate with a Go; both hand-offs are offered."""
    r = await stack.call("POST", "/projects", PM, json=proposal_body(title=TITLE, start_trl=7))
    assert r.status_code == 201, r.text
    project_id: str = r.json()["id"]
    await review_gate(stack, project_id, 1, exit_trl=9)
    r = await stack.call("POST", f"/projects/{project_id}/gates/1/decision", PM, json={"decision": "go"})
    assert r.status_code == 200, r.text
    await wait_status(stack, project_id, lambda s: len(s.handoffs_pending) == 2, "hand-offs")
    for ministry in ("MOD", "MLIT"):
        await handoff_offered(stack.client, project_id, ministry)
    return project_id


async def test_liaisons_accept_and_decline_their_hand_offs_in_the_browser(stack: ApiStack, browser: Browser) -> None:
    project_id = await to_handoffs(stack)
    base = stack.base_url
    checked: dict[str, list[object]] = {}

    context = await browser.new_context(locale="ja-JP", extra_http_headers={"Accept-Language": "ja"})
    page = await context.new_page()
    await sign_in(page, base, "liaison.mod")
    await page.get_by_role("navigation", name="メイン").get_by_role("link", name="移管").click()
    await expect(page.get_by_role("heading", name="移管", exact=True)).to_be_visible()
    row = page.get_by_role("row").filter(has_text=TITLE)
    await expect(row).to_have_count(1)  # the MLIT hand-off is not this liaison's
    await expect(row).to_contain_text("提示済み")
    await expect(row).to_contain_text("最終（公的利用）")
    checked["list"] = await serious_violations(page)
    await screenshot(page, "handoffs-ja")
    await row.get_by_role("link", name=TITLE).click()

    await expect(page.get_by_role("heading", name=TITLE)).to_be_visible()
    await expect(page.get_by_role("heading", name="移管パッケージ")).to_be_visible()
    handoffs = (await stack.call("GET", "/handoffs", "liaison.mod")).json()["items"]
    assert [h["project_id"] for h in handoffs] == [project_id]
    doc = await stack.call("GET", f"/documents/{handoffs[0]['document_id']}", "liaison.mod")
    await expect(page.locator("code.hash")).to_have_text(doc.headers["x-content-sha256"])
    await expect(page.get_by_text("TRL 9", exact=False).first).to_be_visible()
    checked["hand-off"] = await serious_violations(page)
    await screenshot(page, "handoff-ja")

    # Accept without the receiving programme: refused beside the field, the note kept.
    await page.get_by_label("備考（任意）").fill("艦隊演習で評価済み")
    await page.get_by_role("button", name="移管を受け入れる").click()
    await expect(page.get_by_text("成果を引き継ぐ事業または用途を入力してください。")).to_be_visible()
    await expect(page.get_by_label("受入れ先の事業（必須）")).to_have_attribute(
        "aria-describedby", "err-receiving_programme"
    )
    await expect(page.get_by_label("備考（任意）")).to_have_value("艦隊演習で評価済み")
    checked["hand-off with errors"] = await serious_violations(page)
    await page.get_by_label("受入れ先の事業（必須）").fill("海上自衛隊 通信近代化事業")
    await page.get_by_role("button", name="移管を受け入れる").click()
    await expect(page.get_by_text("受諾済み", exact=True)).to_be_visible()
    await expect(page.get_by_text("海上自衛隊 通信近代化事業")).to_be_visible()
    await expect(page.get_by_role("button", name="移管を受け入れる")).to_have_count(0)
    await context.close()

    context = await browser.new_context(locale="ja-JP", extra_http_headers={"Accept-Language": "ja"})
    page = await context.new_page()
    await sign_in(page, base, "liaison.mlit")
    await page.goto(f"{base}/app/handoffs")
    await page.get_by_role("link", name=TITLE).click()
    await page.get_by_label("理由（必須）").fill("当省の所掌外のため")
    await page.get_by_role("button", name="移管を辞退する").click()
    await expect(page.get_by_text("辞退", exact=True)).to_be_visible()
    await expect(page.get_by_text("当省の所掌外のため")).to_be_visible()
    await context.close()

    assert checked == {"list": [], "hand-off": [], "hand-off with errors": []}, checked
    answered = {h["ministry"]: h for h in (await stack.call("GET", "/handoffs", PM)).json()["items"]}
    assert answered["MOD"]["status"] == "accepted"
    assert answered["MOD"]["receiving_programme"] == "海上自衛隊 通信近代化事業"
    assert answered["MLIT"]["status"] == "declined" and answered["MLIT"]["reason"] == "当省の所掌外のため"
