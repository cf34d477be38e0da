"""The demo portfolio `trlgate up` loads: every promised state reached through the real API and
workflows, nothing loaded twice, and `--no-demo` (or an existing data folder) loads nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from typer.testing import CliRunner

from cli import demo, main, stack
from cli.demo import load_demo, should_load_demo
from cli.main import app
from config import Settings
from domain.project import ProjectOutcome, ProjectSnapshot
from tests.api_stack import api_stack
from tests.conftest import DEMO_PASSWORD
from tests.support import assert_eventually
from workflows.project import ProjectWorkflow, workflow_id_for

TITLES = {script.__name__: body["title"] for body, script in demo.portfolio()}


async def test_demo_portfolio_reaches_every_promised_state(
    local_client: Client, sqlite_url: str, task_queue: str
) -> None:
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=0.005) as s:
        # The loader's own poll (0.2 s): twelve projects polled every 50 ms made the polls (a
        # project's detail, a reviewer's tasks, a liaison's hand-offs) a sixth of the test's CPU.
        assert await load_demo(s.base_url, DEMO_PASSWORD, timeout=45) == 12
        # The admin holds no need-to-know grant for the closed project; its cleared PM reads it.
        projects = [
            *(await s.call("GET", "/projects", "admin")).json()["items"],
            *(await s.call("GET", "/projects", "pm.sato", params={"status": "active"})).json()["items"],
        ]
        projects = list({p["id"]: p for p in projects}.values())
        assert len(projects) == 12
        assert {p["funding_ministry"] for p in projects} == {"MEXT", "METI"}
        ids = {p["title"]: p["id"] for p in projects}
        pid = {script: ids[title] for script, title in TITLES.items()}

        async def snap(script: str) -> ProjectSnapshot:
            handle = s.client.get_workflow_handle(workflow_id_for(pid[script]))
            result: ProjectSnapshot = await handle.query(ProjectWorkflow.status)
            return result

        async def gate(script: str, pm: str = "pm.sato") -> dict[str, Any]:
            r = await s.call("GET", f"/projects/{pid[script]}/gates/1", pm)
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body

        in_review = await gate("_in_review")
        assert in_review["pending"] == ["rev.mori"] and len(in_review["reviews"]) == 2, in_review
        complete = await gate("_panel_complete", "pm.tanaka")
        assert complete["pending"] == [] and len(complete["reviews"]) == 3, complete  # the decision is next
        assert (await snap("_panel_complete")).open_gate == 1
        waiting = await gate("_gate_waiting_for_evidence", "pm.tanaka")
        assert waiting["evidence"] is None and waiting["reviews"] == [], waiting
        assert (await snap("_on_hold")).on_hold
        second = await snap("_second_stage")
        assert second.stage_index == 1 and second.trl >= 3
        four_eyes = await snap("_four_eyes")
        assert four_eyes.money is not None
        approval = four_eyes.money.approvals["1/1"]
        assert approval.requested_by == "pm.sato" and approval.approved_by is None

        offered = (await s.call("GET", "/handoffs", "liaison.mlit")).json()["items"]
        assert {h["status"] for h in offered if h["project_id"] == pid["_handoff_offered"]} == {"pending"}

        handle = s.client.get_workflow_handle(workflow_id_for(pid["_completed"]), result_type=ProjectOutcome)
        outcome = await handle.result()
        assert outcome.status == "completed" and outcome.public_use_achieved

        closed_out = (await s.call("GET", "/closed-out", "pm.sato")).json()["items"]
        killed = next(c for c in closed_out if c["project_id"] == pid["_killed"])
        assert "温度耐性" in killed["lessons"]

        closed = pid["_closed"]
        for uncleared in ("rev.mori", "pm.tanaka", "fin.suzuki"):
            seen = [p["id"] for p in (await s.call("GET", "/projects", uncleared)).json()["items"]]
            assert closed not in seen
            assert (await s.call("GET", f"/projects/{closed}", uncleared)).status_code in (403, 404)
        assert closed in [p["id"] for p in (await s.call("GET", "/projects", "rev.ito")).json()["items"]]
        await closed_work_is_invisible_in_every_page(s.base_url, closed, TITLES["_closed"])
        grants = (await s.call("GET", f"/projects/{closed}/grants", "admin")).json()
        assert {g["username"] for g in grants} == {"pm.sato", "rev.ito", "rev.kato", "liaison.mod", "ops.hayashi"}

        async def fund() -> dict[str, Any]:
            body: dict[str, Any] = (await s.call("GET", "/fund", "fin.suzuki")).json()
            return body

        assert await assert_eventually(fund, "the fund figures", until=lambda f: bool(f))

        # Loaded once: a restart finds projects and starts none.
        assert await load_demo(s.base_url, DEMO_PASSWORD) == 0
        assert len((await s.call("GET", "/projects", "admin")).json()["items"]) == 11


# Every page and list of the workbench, for the closed project's own pages too.
LISTS = (
    "/app/projects",
    "/app/projects?sort=title",
    "/app/inbox",
    "/app/gates",
    "/app/handoffs",
    "/app/notifications",
    "/app/finance/approvals",
    "/app/operations",
    "/app/reports",
)
PROJECT_PAGES = ("", "/gates", "/gates/1", "/handoffs", "/conditions", "/reports/2026")
UNCLEARED = ("admin", "pm.tanaka", "rev.mori", "fin.suzuki", "ops.kimura", "liaison.mlit", "perf.aoki")


async def signed_in(base_url: str, username: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=base_url, timeout=30)
    form = await http.get("/app/sign-in")
    token = re.search(r'name="csrftoken" value="([^"]+)"', form.text)
    assert token is not None
    r = await http.post(
        "/app/sign-in", data={"username": username, "password": DEMO_PASSWORD, "csrftoken": token.group(1)}
    )
    assert r.status_code == 303, (username, r.text)
    return http


async def closed_work_is_invisible_in_every_page(base_url: str, project_id: str, title: str) -> None:
    """Through the pages, as each role without clearance or grant: neither the closed project's id
    nor its title in any list, its own pages refused (403/404) without its title, and no server
    error; the cleared PM, as the control, finds it."""
    for username in UNCLEARED:
        http = await signed_in(base_url, username)
        try:
            for path in (*LISTS, *(f"/app/projects/{project_id}{tail}" for tail in PROJECT_PAGES)):
                page = await http.get(path)
                assert page.status_code < 500, (username, path, page.status_code)
                assert title not in page.text, (username, path)
                if path.startswith(f"/app/projects/{project_id}"):
                    # Refused; the id was the asker's own (the address), so it may be named back.
                    assert page.status_code in (403, 404), (username, path, page.status_code)
                else:
                    assert project_id not in page.text, (username, path)
        finally:
            await http.aclose()
    http = await signed_in(base_url, "pm.sato")
    try:
        assert title in (await http.get("/app/projects")).text
        assert title in (await http.get(f"/app/projects/{project_id}")).text
    finally:
        await http.aclose()


def test_only_a_fresh_data_folder_gets_the_demo(tmp_path: Path) -> None:
    assert should_load_demo(True, tmp_path)
    assert not should_load_demo(False, tmp_path)
    (tmp_path / "temporal.db").write_bytes(b"")
    assert not should_load_demo(True, tmp_path)


def test_up_no_demo_passes_the_flag(monkeypatch: Any, tmp_path: Path) -> None:
    seen: list[bool] = []

    def fake_run_stack(settings: Any, *, demo: bool = True) -> int:
        seen.append(demo)
        return 0

    monkeypatch.setattr(main, "get_settings", lambda: Settings(data_dir=tmp_path))  # not the cached one
    monkeypatch.setattr(stack, "run_stack", fake_run_stack)
    runner = CliRunner()
    assert runner.invoke(app, ["up", "--no-demo"]).exit_code == 0
    assert runner.invoke(app, ["up"]).exit_code == 0
    assert seen == [False, True]


async def test_a_refused_step_is_logged_and_the_others_carry_on(caplog: Any) -> None:
    class Started:
        async def start(self, body: dict[str, Any]) -> str:
            return "KP-DEMO-1"

    async def refused(api: Any, pid: str, body: dict[str, Any]) -> None:
        raise demo.DemoStepRefused("POST /projects/KP-DEMO-1/gates/1/decision as pm.sato: 409 not open")

    assert await demo._drive(Started(), {"title": "量子"}, refused) == ("KP-DEMO-1", False)  # type: ignore[arg-type]
    assert "KP-DEMO-1 (量子) stopped short of its state" in caplog.text and "409" in caplog.text
