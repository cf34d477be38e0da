"""Finance's journey in a real browser (Debian's Chromium through Playwright), by the pages alone,
on the whole stack (Temporal, worker, API): a project with a Japanese title has a tranche above
the four-eyes threshold; finance user A requests it, user B approves it, and the tranche's page
and the approvals list name both; the workflow pays it. B then switches the pages to Japanese,
opens the project's statement from the tranche's page and downloads its CSV: the downloaded bytes
carry Excel's byte-order mark and CRLF rows, and the Japanese title and ministry come back intact.
axe-core finds no serious or critical violation on the fund, forecast (also refusing a bad
what-if), reconciliation, reversal and statement pages."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from temporalio.client import Client

from tests.api_stack import ApiStack, api_stack
from tests.browser import screenshot, serious_violations
from tests.support import PM
from tests.test_api_lifecycle import wait_status
from tests.test_api_money import B, body
from tests.test_web_finance_browser import EN, reload_until, sign_in

TITLE = "量子慣性航法センサーの実証"


@pytest.fixture
async def stack(local_client: Client, sqlite_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    # A simulated day of 0.2 s: tranche 1 is due at once, tranche 2 only after ~73 s.
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=0.2, four_eyes_threshold=B - 1) as s:
        yield s


async def _open_tranche(page: Page, pid: str) -> None:
    row = page.get_by_role("row").filter(has_text=pid)
    await row.get_by_role("link", name="Stage 1, tranche 1").click()
    await expect(page.get_by_role("heading", name=TITLE)).to_be_visible()


async def test_four_eyes_then_the_statement_csv_round_trips_japanese(
    stack: ApiStack, browser: Browser, tmp_path: Path
) -> None:
    r = await stack.call("POST", "/projects", PM, json=body(title=TITLE))
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    await wait_status(stack, pid, lambda s: "four-eyes approval" in s.waiting_for, "tranche 1 awaits approval")
    base = stack.base_url
    checked: dict[str, list[object]] = {}

    # A requests.
    context = await browser.new_context(locale="en-GB", extra_http_headers=EN)
    page = await context.new_page()
    await sign_in(page, base, "fin.suzuki")
    await _open_tranche(page, pid)
    await page.get_by_role("button", name="Request payment").click()
    await expect(page.get_by_role("status")).to_contain_text("Your request was recorded.")
    await context.close()

    # B approves; both are named on the tranche's page, and on the list once it is approved.
    context = await browser.new_context(locale="en-GB", extra_http_headers=EN, accept_downloads=True)
    page = await context.new_page()
    await sign_in(page, base, "fin.yamada")
    await _open_tranche(page, pid)
    await page.get_by_role("button", name="Approve payment").click()
    await expect(page.get_by_role("status")).to_contain_text("Your approval was recorded.")
    await expect(page.locator("#requested")).to_contain_text("fin.suzuki")
    await expect(page.locator("#approved")).to_contain_text("fin.yamada")
    await reload_until(page, "Paid")
    await page.goto(f"{base}/app/finance/approvals")
    approved = page.locator("#approved").get_by_role("row").filter(has_text=pid)
    await expect(approved).to_contain_text("fin.suzuki")
    await expect(approved).to_contain_text("fin.yamada")
    await expect(approved).to_contain_text("Paid")

    # The new pages, each checked by axe-core.
    nav = page.get_by_role("navigation", name="Finance pages")
    await nav.get_by_role("link", name="The fund").click()
    await expect(
        page.get_by_role("heading", name="Ministry of Education, Culture, Sports, Science and Technology")
    ).to_be_visible()
    await expect(page.locator("img.chart").first).to_be_visible()
    checked["fund"] = await serious_violations(page)
    await screenshot(page, "finance-fund")
    await nav.get_by_role("link", name="Forecast").click()
    await page.get_by_label("Kill rate per gate").fill("20")
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#forecast-summary")).to_be_visible()
    await expect(page.locator("#forecast-MEXT")).to_be_visible()
    checked["forecast"] = await serious_violations(page)
    await screenshot(page, "finance-forecast")
    await page.get_by_label("Kill rate per gate").fill("150")
    await page.get_by_role("button", name="Show").click()
    await expect(page.get_by_role("alert")).to_contain_text("kill_pct: 150 is not between 0 and 100")
    await expect(page.get_by_label("Kill rate per gate")).to_have_value("150")
    checked["forecast-refused"] = await serious_violations(page)
    await nav.get_by_role("link", name="Reconciliation").click()
    await expect(page.get_by_role("status")).to_contain_text("checked")
    checked["reconciliation"] = await serious_violations(page)
    await nav.get_by_role("link", name="Reversals").click()
    await page.get_by_role("button", name="Reverse the transaction").click()  # nothing typed: the browser asks
    await expect(page.get_by_role("alert")).to_have_count(0)  # ... and nothing was posted
    await page.get_by_label("Transaction id").fill("999999")
    await page.get_by_label("Reason (required)").fill("間違い")
    await page.get_by_role("button", name="Reverse the transaction").click()
    await expect(page.get_by_role("alert")).to_contain_text("there is no ledger transaction 999999")
    checked["reversal-refused"] = await serious_violations(page)

    # In Japanese: the statement from the tranche's page, and its CSV downloaded.
    await page.goto(f"{base}/app/finance/approvals/{pid}/1/1")
    await page.get_by_label("Language").select_option("ja")
    await page.get_by_role("button", name="Switch").click()
    await page.get_by_role("link", name="プロジェクトの明細").click()
    await expect(page.get_by_role("heading", name=f"明細: {TITLE} {pid}")).to_be_visible()
    await expect(page.locator("#statement-ministry")).to_contain_text("文部科学省")
    checked["statement"] = await serious_violations(page)
    await screenshot(page, "finance-statement-ja")
    async with page.expect_download() as info:
        await page.get_by_role("link", name="明細をダウンロード（CSV）").click()
    download = await info.value
    assert download.suggested_filename == f"statement-{pid}.csv"
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    await context.close()

    raw = saved.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel reads the Japanese as written
    assert raw.count(b"\r\n") >= 3 and b"\n" not in raw.replace(b"\r\n", b"")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert {(r["project_title"], r["funding_ministry"], r["funding_ministry_name"]) for r in rows} == {
        (TITLE, "MEXT", "文部科学省")
    }
    assert [r["kind"] for r in rows if r["account"] == f"paid:{pid}"] == ["pay"]
    assert sum(int(r["amount"]) for r in rows) == 0  # every transaction balances

    assert checked == {k: [] for k in checked}, checked
