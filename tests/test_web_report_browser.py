"""A year's progress report in a real browser, through the pages alone: the FY2026 report falls
overdue (a short simulated day) and holds tranche 2; the performer files it, the programme manager
returns it with a note, the performer reads the note and resubmits, the PM accepts, and the held
tranche is released. axe-core checks the list, the performer's form and the PM's review."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from temporalio.client import Client

from tests.api_stack import ApiStack, api_stack
from tests.browser import screenshot, serious_violations
from tests.support import PM
from tests.test_api_lifecycle import wait_status
from tests.test_api_money import PERFORMER, body, notices
from tests.test_web_browser import sign_in

TITLE = "量子センサーによる地下構造の可視化"
FIRST = "試作機を完成し、地下5メートルまでの構造を可視化した。"
NOTE = "予算の執行状況を追記してください。"
SECOND = FIRST + "\n予算の執行率は92%です。"


@pytest.fixture
async def stack(local_client: Client, sqlite_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    # A simulated year lasts ~7 s: FY2026 (from 2026-10-01) ends on day 182, tranche 2 falls due on day 365.
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=0.02, progress_reports=True) as s:
        yield s


async def _signed_in(browser: Browser, base: str, username: str) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(locale="ja-JP", extra_http_headers={"Accept-Language": "ja"})
    page = await context.new_page()
    await sign_in(page, base, username)
    return context, page


async def _open_fy2026(page: Page, base: str, project_id: str) -> None:
    """From the navigation to the list, then the year's own page."""
    await page.get_by_role("navigation", name="メイン").get_by_role("link", name="進捗報告").click()
    await expect(page).to_have_url(f"{base}/app/reports")
    await expect(page.get_by_role("rowheader").filter(has_text=project_id)).to_be_visible()
    await page.get_by_role("link", name="2026年度").click()
    await expect(page).to_have_url(f"{base}/app/projects/{project_id}/reports/2026")


async def test_a_report_is_filed_returned_resubmitted_and_accepted_in_the_browser(
    stack: ApiStack, browser: Browser
) -> None:
    r = await stack.call("POST", "/projects", PM, json=body(title=TITLE))
    assert r.status_code == 201, r.text
    project_id: str = r.json()["id"]
    await wait_status(stack, project_id, lambda s: "FY2026 progress report" in s.waiting_for, "held for the report")
    # FY2026's end told the performer that its report is due (a timer per year, not only the hold).
    due = await notices(stack, PERFORMER, "report_due")
    assert [(n["project_id"], n["message"][:15]) for n in due][-1] == (project_id, "FY2026 has ende")
    base = stack.base_url
    checked: dict[str, list[object]] = {}

    performer, as_performer = await _signed_in(browser, base, PERFORMER)
    pm, as_pm = await _signed_in(browser, base, PM)
    try:
        # The notice opens the year's report page.
        await as_performer.goto(f"{base}/app/notifications")
        notice = as_performer.get_by_role("row").filter(has_text="FY2026 has ended").first
        await expect(notice.get_by_role("link", name="作業のページへ")).to_have_attribute(
            "href", f"/app/projects/{project_id}/reports/2026"
        )
        # The performer's list: FY2026 has ended without a report, marked overdue.
        await as_performer.goto(f"{base}/app/reports")
        row = as_performer.get_by_role("row").filter(has_text="2026年度")
        await expect(row.locator(".overdue")).to_contain_text("期限超過")
        checked["reports"] = await serious_violations(as_performer)
        await screenshot(as_performer, "reports")
        await _open_fy2026(as_performer, base, project_id)
        checked["report-form"] = await serious_violations(as_performer)
        await as_performer.get_by_label("今年度の進捗の概要（10文字以上）").fill(FIRST)
        await as_performer.get_by_role("button", name="提出", exact=True).click()
        await expect(as_performer.get_by_role("status")).to_contain_text("報告を提出しました")
        await expect(as_performer.locator("#report-status")).to_have_text("提出済み（審査待ち）")

        # The PM returns it with a note.
        await _open_fy2026(as_pm, base, project_id)
        await expect(as_pm.locator("#report-text")).to_have_text(FIRST)
        checked["report-review"] = await serious_violations(as_pm)
        await screenshot(as_pm, "report-review")
        await as_pm.get_by_label("実施者に差し戻す").check()
        await as_pm.get_by_label("実施者へのメモ（差し戻す場合は必須）").fill(NOTE)
        await as_pm.get_by_role("button", name="審査を記録する").click()
        await expect(as_pm.get_by_role("status")).to_contain_text("差し戻しました")

        # The performer sees the note above the form, the text as filed, and resubmits.
        await as_performer.reload()
        await expect(as_performer.locator("#return-note")).to_have_text(NOTE)
        await expect(as_performer.get_by_role("status")).to_have_count(0)  # "submitted" is old news now
        checked["report-returned"] = await serious_violations(as_performer)
        await screenshot(as_performer, "report-returned")
        summary = as_performer.get_by_label("今年度の進捗の概要（10文字以上）")
        await expect(summary).to_have_value(FIRST)
        await summary.fill(SECOND)
        await as_performer.get_by_role("button", name="再提出").click()
        await expect(as_performer.get_by_role("status")).to_contain_text("報告を提出しました")

        # The PM accepts; the held tranche is then paid.
        await as_pm.reload()
        await expect(as_pm.locator("#report-text")).to_have_text(SECOND)
        await as_pm.get_by_label("報告を受理する").check()
        await as_pm.get_by_role("button", name="審査を記録する").click()
        await expect(as_pm.get_by_role("status")).to_contain_text("報告を受理しました")
        await expect(as_pm.locator("#report-status")).to_have_text("受諾済み")
    finally:
        await performer.close()
        await pm.close()
    # Accepted, FY2026 no longer holds tranche 2 (paid, or held for FY2027 if the browser was slow
    # enough for a second simulated year to end).
    moved_on = await wait_status(
        stack, project_id, lambda s: "FY2026" not in s.waiting_for, "tranche 2 no longer held for FY2026"
    )
    assert moved_on.money is not None and moved_on.money.reports.get(2026) == "accepted"
    assert checked == {"reports": [], "report-form": [], "report-review": [], "report-returned": []}
