"""The reviewers' journey in a real browser (Debian's Chromium through Playwright), through the
pages alone: sign in, find the invitation in the inbox, see no material before declaring no
conflict of interest, score, correct a mistake without losing what was typed. axe-core checks
every page on the way. Screenshots go to data/screenshots/."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect
from temporalio.client import Client

from tests.api_stack import ApiStack, api_stack
from tests.browser import screenshot, serious_violations
from tests.conftest import DEMO_PASSWORD
from tests.support import PM, REVIEWERS
from tests.test_api_lifecycle import proposal_body, wait_gate_open

TITLE = "量子暗号による海洋通信の安全化"


@pytest.fixture
async def stack(local_client: Client, sqlite_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=0.001) as s:
        yield s


async def open_gate_one(stack: ApiStack) -> str:
    """The PM starts a project with a Japanese title and submits gate 1's evidence (over the API)."""
    r = await stack.call("POST", "/projects", PM, json=proposal_body(title=TITLE))
    assert r.status_code == 201, r.text
    project_id: str = r.json()["id"]
    required = (await wait_gate_open(stack, project_id, 1))["requirements"]
    evidence = {
        "claimed_trl": required["exit_trl"],
        "deliverables": required["deliverables"],
        "criteria_evidence": {c["key"]: "Stage report, chapter 4" for c in required["must_meet"]},
    }
    r = await stack.call("POST", f"/projects/{project_id}/gates/1/evidence", PM, json=evidence)
    assert r.status_code == 200, r.text
    return project_id


async def review_over_api(stack: ApiStack, project_id: str, reviewer: str, comment: str) -> None:
    tasks = (await stack.call("GET", "/tasks", reviewer, params={"status": "invited"})).json()["items"]
    (task,) = [t for t in tasks if t["project_id"] == project_id]
    task = (await stack.call("GET", f"/tasks/{task['id']}", reviewer)).json()
    r = await stack.call("POST", f"/tasks/{task['id']}/respond", reviewer, json={"accept": True})
    assert r.status_code == 200, r.text
    review = {
        "must_meet": {c["key"]: True for c in task["must_meet"]},
        "scores": {c["key"]: 4 for c in task["should_meet"]},
        "comment": comment,
    }
    r = await stack.call("POST", f"/tasks/{task['id']}/review", reviewer, json=review)
    assert r.status_code == 200, r.text


async def sign_in(page: Page, base: str, username: str) -> None:
    """By keyboard alone: tab to the fields, type, press Enter."""
    await page.goto(f"{base}/app/inbox")
    await expect(page).to_have_url(f"{base}/app/sign-in?next=/app/inbox")
    await page.get_by_label("ユーザー名").focus()
    await page.keyboard.type(username)
    await page.keyboard.press("Tab")
    await page.keyboard.type(DEMO_PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{base}/app/inbox")


async def test_three_reviewers_accept_declare_and_score_in_the_browser(stack: ApiStack, browser: Browser) -> None:
    project_id = await open_gate_one(stack)
    base = stack.base_url
    checked: dict[str, list[object]] = {}
    for n, reviewer in enumerate(REVIEWERS):
        if n > 0:
            # The other two over the API: the whole panel in the browser is the journey's
            # (tests/test_web_journey.py); this test is about the refusals on the way.
            await review_over_api(stack, project_id, reviewer, f"{reviewer}: 水中試験の結果は十分")
            continue
        context = await browser.new_context(locale="ja-JP", extra_http_headers={"Accept-Language": "ja"})
        page = await context.new_page()
        first = n == 0  # axe and screenshots once per page: Chromium's CPU is the suite's too
        await page.goto(f"{base}/app/sign-in")
        if first:
            checked["sign-in"] = await serious_violations(page)
            await screenshot(page, "sign-in-ja")
            # A wrong password: refused without saying which part, the username kept.
            await page.get_by_label("ユーザー名").fill(reviewer)
            await page.get_by_label("パスワード").fill("wrong")
            await page.get_by_role("button", name="サインイン").click()
            await expect(page.get_by_role("alert")).to_have_text("ユーザー名またはパスワードが正しくありません。")
            await expect(page.get_by_label("ユーザー名")).to_have_value(reviewer)
        await sign_in(page, base, reviewer)
        await expect(page.get_by_role("heading", name="審査の受信箱")).to_be_visible()
        link = page.get_by_role("link", name=TITLE)
        await expect(link).to_be_visible()
        if first:
            checked["inbox"] = await serious_violations(page)
            await screenshot(page, "inbox-ja")
        await link.click()

        # The invitation: no material before the declaration.
        await expect(page.get_by_role("heading", name="審査への招待")).to_be_visible()
        await expect(page.get_by_text("必須基準")).to_have_count(0)
        if first:
            checked["invitation"] = await serious_violations(page)
        await page.get_by_label("引き受ける").check()
        await page.get_by_role("button", name="回答を送る").click()
        # Accepting without the declaration is refused beside the field, the answer kept.
        await expect(page.get_by_text("利益相反の有無を申告してください。")).to_be_visible()
        await expect(page.get_by_label("引き受ける")).to_be_checked()
        await page.get_by_label("このプロジェクトとの利益相反はありません").check()
        await page.get_by_role("button", name="回答を送る").click()

        # The scorecard.
        await expect(page.get_by_role("heading", name="評価票")).to_be_visible()
        if first:
            checked["scorecard"] = await serious_violations(page)
            await screenshot(page, "scorecard-ja")
        for group in await page.get_by_role("group").all():
            await group.get_by_label("満たす", exact=True).check()
        selects = await page.get_by_role("combobox").all()
        scores = [s for s in selects if await s.get_attribute("name") != "lang"]
        comment = f"{reviewer}: 水中試験の結果は十分"
        await page.get_by_label("コメント").fill(comment)
        for select in scores[1:]:  # the first score forgotten
            await select.select_option("4")
        await page.get_by_role("button", name="審査を提出する").click()
        await expect(page.get_by_text("点数を選んでください。")).to_be_visible()
        await expect(page.get_by_label("コメント")).to_have_value(comment)  # nothing typed is lost
        await expect(scores[1]).to_have_value("4")
        if first:
            checked["scorecard with errors"] = await serious_violations(page)
            await screenshot(page, "scorecard-error-ja")
        await scores[0].select_option("4")
        await page.get_by_role("button", name="審査を提出する").click()
        await expect(
            page.get_by_role("heading", name="あなたの審査（パネルが締め切られるまで修正できます）")
        ).to_be_visible()
        await expect(page.get_by_label("コメント")).to_have_value(comment)
        await context.close()

    view = (await stack.call("GET", f"/projects/{project_id}/gates/1", PM)).json()
    assert len(view["reviews"]) == 3 and view["recommendation"]["decision"] == "go"
    assert {r["comment"] for r in view["reviews"]} == {f"{r}: 水中試験の結果は十分" for r in REVIEWERS}

    # The programme manager decides in the pages: against the panel only with a justification.
    context = await browser.new_context(locale="ja-JP", extra_http_headers={"Accept-Language": "ja"})
    page = await context.new_page()
    await sign_in(page, base, PM)
    # The last review told the PM: the notification leads to the project's gate under review.
    await page.get_by_role("link", name=re.compile(r"通知（未読 [1-9]\d* 件）")).click()
    told = page.get_by_role("row").filter(has_text="the decision is yours")
    await expect(told).to_have_count(1)
    await told.get_by_role("link", name="作業のページへ").click()
    await expect(page).to_have_url(f"{base}/app/projects/{project_id}/gates/1")
    await expect(page.locator("#recommendation")).to_have_text("Go（次段階へ）")
    checked["gate"] = await serious_violations(page)
    await page.get_by_role("radio", name="中止").check()
    lessons = "海中での通信距離の限界を学んだ"
    await page.get_by_label("教訓（中止の場合）").fill(lessons)
    await page.get_by_role("button", name="判断を記録する").click()
    await expect(page.get_by_role("alert")).to_contain_text("needs a written justification")
    await expect(page.get_by_label("教訓（中止の場合）")).to_have_value(lessons)  # kept
    await screenshot(page, "gate-refused-ja")
    await page.get_by_role("radio", name="Go（次段階へ）").check()
    await page.get_by_role("button", name="判断を記録する").click()
    await expect(page).to_have_url(f"{base}/app/projects/{project_id}")  # the project's page
    await page.goto(f"{base}/app/projects")
    await expect(page.get_by_role("cell", name=TITLE, exact=False)).to_be_visible()
    checked["portfolio"] = await serious_violations(page)
    await screenshot(page, "portfolio-ja")
    await context.close()
    project = (await stack.call("GET", f"/projects/{project_id}", PM)).json()
    assert project["current_trl"] == 3

    assert len(checked) == 7 and all(v == [] for v in checked.values()), checked
    # Only a task's own reviewer opens it: a colleague of the same panel gets 404, in English.
    tasks = (await stack.call("GET", "/tasks", "rev.ito", params={"status": "submitted"})).json()["items"]
    task_id = next(t["id"] for t in tasks if t["project_id"] == project_id)
    context = await browser.new_context(extra_http_headers={"Accept-Language": "en"})
    page = await context.new_page()
    await sign_in_en(page, base, "rev.kato")
    response = await page.goto(f"{base}/app/tasks/{task_id}")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("alert")).to_contain_text("not found")
    await context.close()


async def sign_in_en(page: Page, base: str, username: str) -> None:
    await page.goto(f"{base}/app/sign-in")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{base}/app/inbox")
