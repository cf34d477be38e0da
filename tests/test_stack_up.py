"""`trlgate up` (the README's first command) as a real process: it serves, it works, Ctrl-C stops it all.
On it, the Temporal UI as an operator sees it after one sign-in to the workbench (screenshots
temporal-ui-* in data/screenshots/)."""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import httpx
from playwright.async_api import Browser, Page, expect
from temporalio.client import Client

from tests.api_stack import free_port
from tests.browser import screenshot
from tests.support import CONVERTER, assert_eventually
from tests.test_api_lifecycle import proposal_body


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent has exited or will reap it).
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


OPEN_TITLE, CLOSED_TITLE = "Open drones 5521", "Closed sonar array 7734"
BANNER = "Codec Server could not connect"
CIPHERTEXT = r'"[A-Za-z0-9+/=]{200,}"'  # a sealed payload, as the UI shows what it cannot decode


async def _text(page: Page) -> str:
    """The page's text with its frames' (the UI shows summary and details in iframes)."""
    return "\n".join([await frame.inner_text("body") for frame in page.frames])


async def _ui_page(
    page: Page, ui: str, project_id: str, name: str, input_shows: str, shows: tuple[str, ...]
) -> tuple[str, str]:
    """The Temporal UI's page of a project's workflow: its input (the first tab; `input_shows`: a
    pattern there once the UI has shown it) and its user metadata (summary, details, current
    details; `shows`: texts there once the UI has them all: its blocks render one by one), as the
    page shows them; screenshots."""
    async with page.expect_response(lambda r: "/codec/decode" in r.url) as decoded:
        await page.goto(f"{ui}/namespaces/default/workflows/project-{project_id}")
    assert (await decoded.value).status == 200  # the codec on the UI's own origin took the cookie
    await expect(page.get_by_role("heading", name="Input")).to_be_visible(timeout=30_000)
    history = await assert_eventually(
        lambda: _text(page), f"the input as {input_shows!r}", until=lambda t: re.search(input_shows, t)
    )
    await screenshot(page, f"temporal-ui-{name}")
    await page.get_by_role("tab", name="User Metadata").click()
    metadata = await assert_eventually(
        lambda: _text(page), f"{shows!r} in the UI", until=lambda t: all(text in t for text in shows)
    )
    await screenshot(page, f"temporal-ui-{name}-metadata")
    return history, metadata


async def _ops_console(browser: Browser, base: str, ui: str, open_id: str, closed_id: str) -> None:
    """One sign-in to the workbench as an uncleared operator (ops.kimura), then the Temporal UI:
    the open project decoded, the closed one ciphertext, no codec error, terminate disabled."""
    context = await browser.new_context(locale="en-GB", viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{base}/app/sign-in")
    await page.get_by_label("Username").fill("ops.kimura")
    await page.get_by_label("Password").fill("trlgate-demo")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{base}/app/operations")
    await page.goto(f"{ui}/namespaces/default/workflows")  # the UI's own first load, before the project's page
    history, metadata = await _ui_page(
        page, ui, open_id, "open-project", OPEN_TITLE, ("Stage 1 (Basic research): tranche", OPEN_TITLE)
    )
    assert BANNER not in history and BANNER not in metadata
    assert f'"title": "{OPEN_TITLE}"' in history  # the input, decoded
    assert "Stage 1 (Basic research): tranche" in metadata and OPEN_TITLE in metadata  # current details, summary
    await page.get_by_role("button", name="More Actions").click()
    # Terminate skips the clean stop: the proxy's settings disable it (and refuse its API call).
    terminate = page.get_by_test_id("terminate-button")  # the menu is rendered twice (wide and narrow)
    await expect(terminate.first).to_have_attribute("aria-disabled", "true")
    assert [await t.get_attribute("aria-disabled") for t in await terminate.all()] == ["true"] * await terminate.count()
    await screenshot(page, "temporal-ui-open-project-actions")
    await page.keyboard.press("Escape")
    history, metadata = await _ui_page(
        page, ui, closed_id, "closed-project", CIPHERTEXT, ("No Current Details", "No summary available")
    )
    assert BANNER not in history and BANNER not in metadata
    assert CLOSED_TITLE not in history + metadata and "Basic research" not in history + metadata
    assert "No summary available" in metadata  # ciphertext: the UI cannot read it
    await context.close()


async def test_up_serves_the_whole_stack_and_stops_on_ctrl_c(tmp_path: Path, browser: Browser) -> None:
    temporal_port, ui_port, api_port, smtp_port = free_port(), free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "TRLGATE_DATA_DIR": str(tmp_path),
        "TRLGATE_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "TRLGATE_TEMPORAL_UI_PORT": str(ui_port),
        "TRLGATE_API_PORT": str(api_port),
        "TRLGATE_TASK_QUEUE": "up-test",
        "TRLGATE_SMTP_PORT": str(smtp_port),
        # The worker's telemetry ports, free ones: another stack on this machine may hold the defaults.
        "TRLGATE_WORKER_PORT": str(free_port()),
        "TRLGATE_WORKER_SDK_METRICS_PORT": str(free_port()),
    }
    env.pop("TRLGATE_DATABASE_URL", None)
    up = subprocess.Popen(
        # The demo portfolio's loader has its own test (tests/test_demo_portfolio.py); here it would
        # only load the machine while this test times the stack's start.
        [str(Path(sys.prefix) / "bin" / "trlgate"), "up", "--no-demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{api_port}"
    children: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:

            async def healthy() -> bool:
                assert up.poll() is None, up.stdout.read() if up.stdout else ""
                return bool((await http.get("/health")).json().get("status") == "ok")

            await assert_eventually(
                healthy, "the stack healthy", timeout=120, interval=0.5, ignoring=(httpx.HTTPError,)
            )
            ui = await http.get(f"http://127.0.0.1:{ui_port}/")
            assert ui.status_code == 200  # the Temporal Web UI
            with closing(smtplib.SMTP("127.0.0.1", smtp_port, timeout=10)) as smtp:
                assert smtp.noop()[0] == 250  # the local mail sink
            pages = await http.get("/app/sign-in", headers={"Accept-Language": "ja"})
            assert pages.status_code == 200 and "サインイン" in pages.text  # the workbench
            token = (await http.post("/auth/token", data={"username": "pm.sato", "password": "trlgate-demo"})).json()[
                "access_token"
            ]
            pm = {"Authorization": f"Bearer {token}"}
            r = await http.post("/projects", json=proposal_body(title=OPEN_TITLE), headers=pm)
            assert r.status_code == 201, r.text
            project_id = r.json()["id"]
            closed = {"classification": "closed", "label": {"level": "SECRET", "compartments": ["QS"]}}
            body = proposal_body(title=CLOSED_TITLE, reviewers=["rev.ito", "rev.kato"]) | closed
            r = await http.post("/projects", json=body, headers=pm)
            assert r.status_code == 201, r.text
            await _ops_console(browser, base, f"http://127.0.0.1:{ui_port}", project_id, r.json()["id"])
            # A local client cannot name another address for itself (sign-in throttling is per address).
            forged = {"X-Forwarded-For": "203.0.113.9"}
            guess = await http.post("/auth/token", data={"username": "pm.sato", "password": "guess"}, headers=forged)
            assert guess.status_code == 401

        client = await Client.connect(f"127.0.0.1:{temporal_port}", data_converter=CONVERTER)

        async def listed() -> list[str]:
            return [w.id async for w in client.list_workflows(f'ProjectId="{project_id}" AND ProjectStatus="active"')]

        # Visibility is eventually consistent.
        found = await assert_eventually(listed, "the project listed by its search attributes", interval=0.1, timeout=30)
        assert found == [f"project-{project_id}"]
        children = [
            int(p) for p in subprocess.run(["pgrep", "-P", str(up.pid)], capture_output=True, text=True).stdout.split()
        ]
        assert len(children) == 5  # Temporal dev server, its UI's proxy, mail sink, worker, API
    finally:
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=60)
    assert up.returncode == 0, out
    assert "trlgate is running" in out and "pm.sato" in out and f"http://127.0.0.1:{ui_port}" in out
    assert "stopped temporal dev server" in out and "stopped mail sink" in out and "stopped temporal ui proxy" in out
    assert not [pid for pid in children if _alive(pid)]
    assert (tmp_path / "trlgate.db").exists() and (tmp_path / "temporal.db").exists()
    with closing(sqlite3.connect(tmp_path / "trlgate.db")) as db:
        logins = db.execute("SELECT detail FROM audit_log WHERE action = 'login' AND outcome = 'rejected'").fetchall()
    assert [json.loads(detail)["address"] for (detail,) in logins] == ["127.0.0.1"]
