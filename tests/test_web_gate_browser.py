"""The programme manager's gate page in a real browser (Debian's Chromium through Playwright),
by the pages alone from a freshly started project: submit the evidence package (the deliverables
prefilled from what the gate requires), which opens the review; after a reviewer declines, invite
another to fill the vacancy; extend the deadline. axe-core finds no serious or critical violation
on the page in each of its states; the screenshot is data/screenshots/gate.png."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from playwright.async_api import Browser, expect
from temporalio.client import Client

from tests.api_stack import ApiStack, api_stack
from tests.browser import screenshot, serious_violations
from tests.support import PM, handoff_offered
from tests.test_api_lifecycle import proposal_body, wait_gate_open
from tests.test_web_browser import sign_in
from tests.test_web_handoffs import to_handoffs

TITLE = "量子暗号による海洋通信の安全化"


@pytest.fixture
async def stack(local_client: Client, sqlite_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=0.001) as s:
        yield s


async def test_the_pm_opens_the_review_and_fills_the_panel_in_the_browser(stack: ApiStack, browser: Browser) -> None:
    body = proposal_body(title=TITLE, reviewers=["rev.ito", "rev.kato"])
    r = await stack.call("POST", "/projects", PM, json=body)
    assert r.status_code == 201, r.text
    project_id: str = r.json()["id"]
    required = (await wait_gate_open(stack, project_id, 1))["requirements"]
    base = stack.base_url
    gate = f"{base}/app/projects/{project_id}/gates/1"
    checked: dict[str, list[object]] = {}

    context = await browser.new_context(locale="ja-JP", extra_http_headers={"Accept-Language": "ja"})
    page = await context.new_page()
    await sign_in(page, base, PM)
    await page.goto(f"{base}/app/projects/{project_id}/gates")  # where a gate notice leads
    await expect(page).to_have_url(gate)
    await expect(page.get_by_role("heading", name="エビデンス", exact=True)).to_be_visible()
    await expect(page.get_by_label("成果物（1 行に 1 件。ゲートが求めるものすべて）")).to_have_value(
        "\n".join(required["deliverables"])
    )
    await expect(page.get_by_label("到達を主張する TRL（3 以上）")).to_have_value("3")
    checked["evidence"] = await serious_violations(page)

    # One criterion's evidence forgotten: the workflow's reason, the other kept.
    first, second = required["must_meet"]
    await page.get_by_label(first["text"]).fill("段階報告書 第4章")
    await page.get_by_role("button", name="エビデンスを提出して審査を始める").click()
    await expect(page.get_by_role("alert")).to_contain_text(f"evidence missing for must-meet criteria: {second['key']}")
    await expect(page.get_by_label(first["text"])).to_have_value("段階報告書 第4章")
    checked["evidence refused"] = await serious_violations(page)
    await page.get_by_label(second["text"]).fill("保護措置の記録 第5章")
    await page.get_by_role("button", name="エビデンスを提出して審査を始める").click()
    await expect(page.get_by_role("status")).to_have_text("エビデンスを提出しました。審査が始まりました。")
    await expect(page.get_by_role("heading", name="エビデンス", exact=True)).to_have_count(0)

    # A reviewer declines: the vacancy shows, and the PM invites a registered reviewer to fill it.
    tasks = (await stack.call("GET", "/tasks", "rev.kato", params={"status": "invited"})).json()["items"]
    (task,) = [t for t in tasks if t["project_id"] == project_id]
    r = await stack.call("POST", f"/tasks/{task['id']}/respond", "rev.kato", json={"accept": False})
    assert r.status_code == 200, r.text
    await page.reload()
    await expect(page.locator("#vacancies")).to_contain_text("審査パネルの欠員は 1 名です。")
    await expect(page.locator("#vacancies")).to_contain_text("辞退・回避: rev.kato")
    checked["vacancy"] = await serious_violations(page)
    await page.get_by_label("審査員", exact=True).first.select_option("rev.mori")
    await page.get_by_role("button", name="招待する").click()
    await expect(page.get_by_role("status")).to_have_text("審査員を招待しました。")
    await expect(page.get_by_role("row").filter(has_text="rev.mori")).to_contain_text("招待中")
    await expect(page.locator("#vacancies")).to_contain_text("審査パネルの欠員は 0 名です。")

    # The deadline moved by the days asked for.
    due = datetime.fromisoformat((await stack.call("GET", f"/projects/{project_id}/gates/1", PM)).json()["due_at"])
    await page.get_by_label("延長する日数").fill("5")
    await page.get_by_role("button", name="延長する", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text("期限を延長しました。")
    view = (await stack.call("GET", f"/projects/{project_id}/gates/1", PM)).json()
    assert (datetime.fromisoformat(view["due_at"]) - due).total_seconds() == pytest.approx(0.005, abs=1e-4)
    assert {m["reviewer"]: m["status"] for m in view["members"]} == {
        "rev.ito": "invited",
        "rev.kato": "declined",
        "rev.mori": "invited",
    }
    checked["review open"] = await serious_violations(page)
    await screenshot(page, "gate")
    await context.close()
    assert checked == {"evidence": [], "evidence refused": [], "vacancy": [], "review open": []}, checked


async def test_the_pm_re_routes_a_declined_hand_off_in_the_browser(stack: ApiStack, browser: Browser) -> None:
    project_id = await to_handoffs(stack)
    handoffs = {h["ministry"]: h["id"] for h in (await stack.call("GET", "/handoffs", PM)).json()["items"]}
    r = await stack.call("POST", f"/handoffs/{handoffs['MLIT']}/decline", "liaison.mlit", json={"reason": "所掌外"})
    assert r.status_code == 200, r.text
    base = stack.base_url
    checked: dict[str, list[object]] = {}

    context = await browser.new_context(locale="ja-JP", extra_http_headers={"Accept-Language": "ja"})
    page = await context.new_page()
    await sign_in(page, base, PM)
    await page.goto(f"{base}/app/projects/{project_id}/handoffs")
    await expect(page.get_by_role("heading", name="プロジェクトの移管")).to_be_visible()
    checked["project hand-offs"] = await serious_violations(page)
    await page.get_by_role("row").filter(has_text="辞退").get_by_role("link", name="MLIT").click()

    await expect(page.get_by_role("heading", name="移管を他省庁へ回付する")).to_be_visible()
    checked["hand-off"] = await serious_violations(page)
    await page.get_by_label("回付先の省庁").select_option("JCG")
    await page.get_by_label("備考（任意）").fill("海上保安庁に打診済み")
    await page.get_by_role("button", name="回付する").click()
    await expect(page).to_have_url(f"{base}/app/handoffs/{handoffs['MLIT']}")
    await expect(page.get_by_role("heading", name="移管を他省庁へ回付する")).to_have_count(0)  # done
    await expect(page.get_by_role("definition").filter(has_text="JCG")).to_have_count(1)  # re-routed to
    await handoff_offered(stack.client, project_id, "JCG")
    await page.get_by_role("link", name="このプロジェクトのすべての移管").click()
    await expect(page.get_by_role("link", name="JCG")).to_be_visible()
    await screenshot(page, "project-handoffs-ja")

    # Concluding while the re-routed one waits: the workflow's reason, the note kept.
    await page.locator("#conclude-note").fill("回付先の回答待ち")
    await page.get_by_role("button", name="完了する").click()
    await expect(page.get_by_role("alert")).to_contain_text("hand-offs are still open")
    await expect(page.locator("#conclude-note")).to_have_value("回付先の回答待ち")
    checked["project hand-offs refused"] = await serious_violations(page)

    await page.goto(f"{base}/app/projects/{project_id}/conditions")
    await expect(page.get_by_role("heading", name="条件付き Go の条件")).to_be_visible()
    checked["conditions"] = await serious_violations(page)
    await context.close()
    assert checked == {"project hand-offs": [], "hand-off": [], "project hand-offs refused": [], "conditions": []}
    assert (await stack.call("GET", f"/handoffs/{handoffs['MLIT']}", PM)).json()["rerouted_to"] == "JCG"
