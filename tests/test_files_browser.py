"""Files in a real browser (Debian's Chromium), through the pages alone: the programme manager
attaches an evidence file on the gate page and a hand-off annex on the hand-offs page (multipart
forms, CSRF token first) and sees a program dressed as a PDF refused with the reason; the
performer attaches a CSV to the year's report; a cleared reviewer downloads the evidence file from
the review page and its bytes hash to the SHA-256 the page lists; an uncleared reviewer of the same
closed project gets 403 for the same URL. axe-core checks each page this touches.

The pages here read rows (and the gate round's view, from a stand-in for its workflow), so the API
is served without a Temporal server; the gate and task rows are written directly, as
tests/test_web_pages.py does."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.async_api import Browser, Page, expect
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from config import Settings
from domain.gate_review import GateView, ReviewPhase
from domain.proposal import StagePlan, TranchePlan
from gates.definitions import gate_for_stage
from storage.db import make_engine, make_sessionmaker
from storage.models import Gate, NeedToKnowGrant, ReviewTask
from tests.api_stack import JWT_SECRET, free_port
from tests.browser import screenshot, serious_violations
from tests.conftest import DEMO_PASSWORD
from tests.support import assert_eventually
from tests.test_files import CLOSED, EXE, OPEN, PM, project

REVIEWER, UNCLEARED = "rev.ito", "rev.mori"
EVIDENCE = b"%PDF-1.7\n" + "試験結果: 感度三倍".encode() * 500 + b"\n%%EOF\n"
ANNEX = b"licence terms,2026\nMOD,public use\n"


class GateRound:
    """The gate round's workflow as far as the gate page asks: waiting for the evidence."""

    async def query(self, *_: Any, **__: Any) -> GateView:
        return GateView(
            project_id=CLOSED,
            gate_no=1,
            round=1,
            phase=ReviewPhase.AWAITING_EVIDENCE,
            due_at=None,
            overdue=False,
            members=[],
            pending=[],
            evidence=None,
            reviews=[],
            recommendation=None,
        )


class FewWorkflows:
    """Temporal with the gate round alone: pages that would ask another workflow go without (as
    when it is down)."""

    def get_workflow_handle(self, workflow_id: str, **__: Any) -> Any:
        if workflow_id == f"project-{CLOSED}-gate-1-r1":
            return GateRound()
        raise RPCError("not connected", RPCStatusCode.UNAVAILABLE, b"")


@pytest.fixture
async def base(sqlite_url: str, tmp_path: Path) -> AsyncIterator[str]:
    settings = Settings(database_url=sqlite_url, jwt_secret=JWT_SECRET, data_dir=tmp_path / "data")
    app = create_app(settings, client=FewWorkflows())  # type: ignore[arg-type]
    engine = make_engine(sqlite_url)
    sessionmaker = make_sessionmaker(engine)
    now = datetime.now(UTC)
    stage = StagePlan(
        name="Basic research",
        trl_in=1,
        trl_out=3,
        duration_days=365,
        budget=100,
        tranches=[TranchePlan(offset_days=0, amount=100)],
    )
    async with sessionmaker.begin() as s:
        s.add_all([project(CLOSED, closed=True), project(OPEN)])
        await s.flush()
        s.add_all([NeedToKnowGrant(project_id=CLOSED, username=u, granted_by="admin") for u in (PM, REVIEWER)])
        s.add(
            Gate(
                project_id=CLOSED,
                gate_no=1,
                status="open",
                round=1,
                due_at=now + timedelta(days=5),
                workflow_id=f"project-{CLOSED}-gate-1-r1",
                definition=gate_for_stage(1, stage).model_dump(mode="json"),
                opened_at=now,
            )
        )
        for reviewer in (REVIEWER, UNCLEARED):
            s.add(
                ReviewTask(
                    id=f"{CLOSED}-g1-{reviewer}", project_id=CLOSED, gate_no=1, reviewer=reviewer, status="accepted"
                )
            )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    await assert_eventually(lambda: server.started, "uvicorn serving", interval=0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving
        await engine.dispose()


async def _page(browser: Browser, base: str, username: str) -> Page:
    context = await browser.new_context(
        locale="en-GB", extra_http_headers={"Accept-Language": "en"}, accept_downloads=True
    )
    page = await context.new_page()
    await page.goto(f"{base}/app/sign-in")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).not_to_have_url(f"{base}/app/sign-in")
    return page


async def test_a_reviewer_downloads_evidence_from_the_review_page_and_an_uncleared_one_is_refused(
    base: str, browser: Browser, tmp_path: Path
) -> None:
    sha256 = hashlib.sha256(EVIDENCE).hexdigest()
    checked: dict[str, list[object]] = {}

    pm = await _page(browser, base, PM)
    try:
        # The evidence file, on the gate page while the package is being put together.
        await pm.goto(f"{base}/app/projects/{CLOSED}/gates/1")
        evidence = tmp_path / "試験結果.pdf"
        evidence.write_bytes(EVIDENCE)
        await pm.get_by_label("Attach a file", exact=False).set_input_files(str(evidence))
        await pm.get_by_role("button", name="Upload the file").click()
        await expect(pm.get_by_role("row").filter(has_text="試験結果.pdf")).to_contain_text(sha256)
        checked["gate"] = await serious_violations(pm)
        await screenshot(pm, "gate-evidence-files")
        # A hand-off annex through the page's own form; then a program dressed as a PDF.
        await pm.goto(f"{base}/app/projects/{CLOSED}/handoffs")
        checked["handoffs"] = await serious_violations(pm)
        annex = tmp_path / "annex.csv"
        annex.write_bytes(ANNEX)
        await pm.get_by_label("Attach a file", exact=False).first.set_input_files(str(annex))
        await pm.get_by_role("button", name="Upload the file").first.click()
        await expect(pm.get_by_role("link", name="annex.csv")).to_be_visible()
        await expect(pm.get_by_text(hashlib.sha256(ANNEX).hexdigest())).to_be_visible()
        fake = tmp_path / "report.pdf"
        fake.write_bytes(EXE)
        await pm.get_by_label("Attach a file", exact=False).first.set_input_files(str(fake))
        await pm.get_by_role("button", name="Upload the file").first.click()
        await expect(pm.get_by_role("alert")).to_contain_text("allowed: PDF")
        checked["upload-refused"] = await serious_violations(pm)
        await screenshot(pm, "upload-refused")
    finally:
        await pm.context.close()

    reviewer = await _page(browser, base, REVIEWER)
    try:
        await reviewer.goto(f"{base}/app/tasks/{CLOSED}-g1-{REVIEWER}")
        row = reviewer.get_by_role("row").filter(has_text="試験結果.pdf")
        await expect(row).to_contain_text(sha256)
        checked["task"] = await serious_violations(reviewer)
        await screenshot(reviewer, "task-evidence-files")
        link = row.get_by_role("link", name="試験結果.pdf")
        url = await link.get_attribute("href")
        async with reviewer.expect_download() as downloading:
            await link.click()
        download = await downloading.value
        got = Path(await download.path()).read_bytes()
        assert hashlib.sha256(got).hexdigest() == sha256 and download.suggested_filename == "試験結果.pdf"
    finally:
        await reviewer.context.close()

    # The performer attaches a CSV to the year's report on its page.
    performer = await _page(browser, base, "perf.aoki")
    try:
        await performer.goto(f"{base}/app/projects/{OPEN}/reports/2026")
        checked["report"] = await serious_violations(performer)
        table = tmp_path / "測定値.csv"
        table.write_bytes("月,感度\n4,1.0\n5,3.1\n".encode())
        await performer.get_by_label("Attach a file", exact=False).set_input_files(str(table))
        await performer.get_by_role("button", name="Upload the file").click()
        row = performer.get_by_role("row").filter(has_text="測定値.csv")
        await expect(row).to_contain_text(hashlib.sha256(table.read_bytes()).hexdigest())
    finally:
        await performer.context.close()

    uncleared = await _page(browser, base, UNCLEARED)
    try:
        refused = await uncleared.goto(f"{base}{url}")
        assert refused is not None and refused.status in (403, 404)
        await expect(uncleared.get_by_role("alert")).to_be_visible()
        assert "試験結果" not in await uncleared.content()
    finally:
        await uncleared.context.close()
    assert checked == {name: [] for name in checked}
