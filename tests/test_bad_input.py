"""Bad input gets a 4xx with a reason, never a 5xx: each case an adversarial run found, over HTTP
(real API, real worker, the local Temporal dev server, SQLite)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.client import Client

from domain.programme import PROGRAMME_CODE
from domain.project import ProjectWorkflowInput
from domain.proposal import Proposal
from storage.models import Project, User
from storage.projects import insert_project
from tests.api_stack import ApiStack, api_stack
from tests.support import PM
from tests.test_api_money import body as money_body
from tests.test_cli import trlgate
from workflows.project import ProjectWorkflow

HUGE = 10**30
FIN = "fin.suzuki"


@pytest.fixture
async def stack(local_client: Client, sqlite_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    # Real time: a started project registers and then waits in its first stage.
    async with api_stack(local_client, sqlite_url, task_queue, seconds_per_day=86400) as s:
        yield s


def fresh_id() -> str:
    """Workflow ids live as long as the test session's Temporal server: one per project."""
    return f"KP-{uuid.uuid4().hex[:10]}"


async def started(stack: ApiStack) -> str:
    project_id = fresh_id()
    r = await stack.call("POST", "/projects", PM, json=money_proposal(project_id=project_id))
    assert r.status_code == 201, r.text
    return project_id


def money_proposal(**overrides: Any) -> dict[str, Any]:
    """A valid proposal (one stage, TRL 1-3, three tranches) with some fields replaced."""
    return {**money_body(), **overrides}


def problems(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 422, f"{r.status_code} {r.text[:500]}"
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    return detail


def fields(r: httpx.Response) -> set[str]:
    return {".".join(str(part) for part in p["loc"]) for p in problems(r)}


async def count_projects(stack: ApiStack) -> int:
    async with stack.sessionmaker() as s:
        return int(await s.scalar(select(func.count()).select_from(Project)) or 0)


# ---- integers out of range ----------------------------------------------------------------------


async def test_path_integers_out_of_range_are_422_and_documented(stack: ApiStack) -> None:
    pid = await started(stack)
    cases = [
        ("GET", f"/projects/{pid}/gates/{HUGE}", PM, None, "path.gate_no"),
        ("GET", f"/projects/{pid}/gates/0", PM, None, "path.gate_no"),
        ("POST", f"/projects/{pid}/reports/{10**20}/review", PM, {"accept": True}, "path.fiscal_year"),
        ("POST", f"/projects/{pid}/tranches/0/1/request", PM, None, "path.stage_no"),
        ("POST", f"/projects/{pid}/tranches/1/-1/request", PM, None, "path.tranche_no"),
        ("POST", f"/projects/{pid}/tranches/{HUGE}/1/approve", FIN, None, "path.stage_no"),
        ("POST", f"/fund/transactions/{HUGE}/reverse", FIN, {"reason": "mistake"}, "path.transaction_id"),
        ("PUT", "/fund/ceilings/MEXT/2040", FIN, {"amount": HUGE}, "body.amount"),
        ("PUT", f"/fund/ceilings/MEXT/{HUGE}", FIN, {"amount": 1}, "path.fiscal_year"),
    ]
    for method, path, user, payload, field in cases:
        r = await stack.call(method, path, user, json=payload)
        assert field in fields(r), f"{method} {path}: {r.text}"
    spec = (await stack.http.get("/openapi.json")).json()
    gate = spec["paths"]["/projects/{project_id}/gates/{gate_no}"]["get"]["parameters"]
    bounds = {p["name"]: (p["schema"].get("minimum"), p["schema"].get("maximum")) for p in gate}
    assert bounds["gate_no"] == (1, 99)
    reverse = spec["paths"]["/fund/transactions/{transaction_id}/reverse"]["post"]["parameters"]
    assert reverse[0]["schema"]["maximum"] == 2**31 - 1


async def test_ids_beyond_an_integer_column_are_422_on_both_databases(
    local_client: Client, db_url: str, task_queue: str
) -> None:
    """Ledger transaction ids are INTEGER columns: 32 bits on PostgreSQL (int32 errors were 500s)."""
    async with api_stack(local_client, db_url, task_queue, seconds_per_day=86400) as stack:
        for transaction_id in (2**31, 2**63 - 2, HUGE):
            r = await stack.call("POST", f"/fund/transactions/{transaction_id}/reverse", FIN, json={"reason": "typo"})
            assert "path.transaction_id" in fields(r), r.text
        r = await stack.call("POST", f"/fund/transactions/{2**31 - 1}/reverse", FIN, json={"reason": "typo"})
        assert r.status_code == 404, r.text


async def test_amounts_and_days_beyond_their_bounds_are_422(stack: ApiStack) -> None:
    r = await stack.call(
        "POST", "/projects", PM, json=money_proposal(total_budget=HUGE, stages=None, project_id=fresh_id())
    )
    assert "body.total_budget" in fields(r)
    pid = await started(stack)
    # Refused by the domain's own bounds inside the handler before (a 500); now at the boundary.
    decision = {"decision": "conditional_go", "conditions": ["more tests"], "conditions_due_days": 4000}
    r = await stack.call("POST", f"/projects/{pid}/gates/1/decision", PM, json=decision)
    assert "body.conditions_due_days" in fields(r)
    r = await stack.call(
        "POST", f"/projects/{pid}/gates/1/decision", PM, json={"decision": "recycle", "recycle_days": HUGE}
    )
    assert "body.recycle_days" in fields(r)


# ---- dates a proposal may carry -----------------------------------------------------------------


@pytest.mark.parametrize(
    "start", ["9999-12-31", "0001-01-01", "1999-12-31", "2101-01-01", "2026-10-01T00:00:00+09:00", "2026-10-1"]
)
async def test_a_start_date_outside_the_programme_calendar_is_422_and_starts_nothing(
    stack: ApiStack, start: str
) -> None:
    r = await stack.call("POST", "/projects", PM, json=money_proposal(project_id=fresh_id(), start_date=start))
    assert "body.start_date" in fields(r)
    assert await count_projects(stack) == 0
    inside = await stack.call(
        "POST", "/projects", PM, json=money_proposal(project_id=fresh_id(), start_date="2100-12-31")
    )
    assert inside.status_code == 201, inside.text


async def test_policy_durations_are_bounded(stack: ApiStack) -> None:
    policy = {"max_recycle_days": HUGE, "quorum": 1000, "reminder_days_before": [HUGE]}
    r = await stack.call("POST", "/projects", PM, json=money_proposal(policy=policy))
    assert {"body.policy.max_recycle_days", "body.policy.quorum", "body.policy.reminder_days_before.0"} <= fields(r)


# ---- reconciliation with one broken project -----------------------------------------------------


async def broken_project(stack: ApiStack, task_queue: str) -> str:
    """A project whose workflow cannot run: its proposal (made before dates were bounded) starts on
    9999-12-31, so every workflow task fails and every query of it too."""
    project_id = fresh_id()
    good = money_proposal(project_id=project_id)
    proposal = Proposal.model_validate(good).model_copy(update={"start_date": date(9999, 12, 31)})
    async with stack.sessionmaker.begin() as s:
        await insert_project(s, PROGRAMME_CODE, f"project-{project_id}", proposal)
    await stack.client.start_workflow(
        ProjectWorkflow.run,
        ProjectWorkflowInput(proposal=proposal, seconds_per_day=86400, progress_reports=False),
        id=f"project-{project_id}",
        task_queue=task_queue,
    )
    return project_id


async def test_reconciliation_reports_a_broken_project_and_checks_the_others(
    stack: ApiStack, task_queue: str, sqlite_url: str
) -> None:
    healthy = await started(stack)
    broken = await broken_project(stack, task_queue)
    r = await stack.call("GET", "/fund/reconciliation", FIN)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["checked"] == 2
    lines = {d["project_id"]: d["problem"] for d in result["drifts"]}
    assert broken in lines and "cannot say what it believes" in lines[broken], result
    assert "cannot say" not in lines.get(healthy, ""), result
    # The CLI asks the same questions: a drift line and exit 1, not a crash.
    temporal = {"TRLGATE_TEMPORAL_ADDRESS": stack.client.service_client.config.target_host}
    cli = await asyncio.to_thread(trlgate, sqlite_url, "reconcile", env=temporal)
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert broken in cli.stdout and "cannot say" in cli.stdout, cli.stdout
    assert "2 project(s) checked" in cli.stdout, cli.stdout


# ---- text -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["\x00", "\x1b[31mred", "\x9b31m", "\x7f", "\u202eRTL", "zero\u200bwidth", "\u2066isolate\u2069", "\ufeff"],
)
async def test_control_characters_are_refused_in_text(stack: ApiStack, bad: str) -> None:
    r = await stack.call("POST", "/projects", PM, json=money_proposal(title=f"Title {bad}", research_vision=f"v {bad}"))
    found = {".".join(map(str, p["loc"])): p["msg"] for p in problems(r)}
    assert set(found) == {"body.title", "body.research_vision"}, found
    assert all("control or invisible character" in msg for msg in found.values())
    pid = await started(stack)
    r = await stack.call("POST", f"/projects/{pid}/terminate", PM, json={"reason": f"stop {bad} now"})
    assert "body.reason" in fields(r)
    r = await stack.call("POST", "/fund/transactions/1/reverse", FIN, json={"reason": f"typo {bad}"})
    assert "body.reason" in fields(r)


async def test_long_free_text_keeps_newlines_and_tabs(stack: ApiStack) -> None:
    r = await stack.call(
        "POST", "/projects", PM, json=money_proposal(research_vision="First line\n\tand an indented second")
    )
    assert r.status_code == 201, r.text
    r = await stack.call("POST", "/projects", PM, json=money_proposal(title="Two\nlines"))
    assert "body.title" in fields(r)


async def test_a_422_never_echoes_a_large_input(stack: ApiStack) -> None:
    megabyte = "x" * 1_000_000
    r = await stack.call("POST", "/projects", PM, json={"title": megabyte, "organisation": "y" * 900})
    found = fields(r)
    assert {"body.title", "body.programme_manager", "body.funding_ministry"} <= found
    assert len(r.content) < 5000, len(r.content)
    title = next(p for p in problems(r) if p["loc"] == ["body", "title"])
    assert title["input"].endswith("(1000000 characters)")


# ---- the body --------------------------------------------------------------------------------


async def test_an_unreadable_body_is_a_422_with_a_reason(stack: ApiStack) -> None:
    pid = await started(stack)
    headers = {**await stack.login(PM), "Content-Type": "application/json"}
    r = await stack.http.post(f"/projects/{pid}/terminate", content=b"\xff\xfe{", headers=headers)
    (problem,) = problems(r)
    assert problem["loc"] == ["body"] and "cannot be read" in problem["msg"]


async def test_a_body_over_the_limit_is_413_with_or_without_a_length(stack: ApiStack) -> None:
    padded = money_proposal(project_id=fresh_id(), notes="x" * 10_000_000)
    r = await stack.call("POST", "/projects", PM, json=padded)
    assert r.status_code == 413 and "1048576 bytes" in r.json()["detail"], r.text[:300]

    async def chunks() -> AsyncIterator[bytes]:
        text = json.dumps(padded).encode()
        for i in range(0, len(text), 64 * 1024):
            yield text[i : i + 64 * 1024]

    headers = {**await stack.login(PM), "Content-Type": "application/json"}
    r = await stack.http.post("/projects", content=chunks(), headers=headers)
    assert "content-length" not in r.request.headers and r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 413, r.text[:300]
    assert await count_projects(stack) == 0
    spec = (await stack.http.get("/openapi.json")).json()
    assert "413" in spec["paths"]["/projects"]["post"]["responses"]


# ---- strict types on what decides access and money ----------------------------------------


async def test_a_boolean_is_not_a_clearance_level(stack: ApiStack) -> None:
    for level in (False, True, 1.0, [2], "2"):
        r = await stack.call("PUT", "/users/admin/clearance", "admin", json={"level": level})
        assert "body.level" in fields(r), level
    async with stack.sessionmaker() as s:
        admin = await s.get(User, "admin")
        assert admin is not None and admin.clearance_level == 3
    ok = await stack.call("PUT", "/users/rev.mori/clearance", "admin", json={"level": "SECRET"})
    assert ok.status_code == 200 and ok.json()["level"] == "SECRET", ok.text


@pytest.mark.parametrize("amount", ["100", 100.0, True])
async def test_money_and_decisions_take_no_look_alikes(stack: ApiStack, amount: Any) -> None:
    r = await stack.call("PUT", "/fund/ceilings/MEXT/2040", FIN, json={"amount": amount})
    assert "body.amount" in fields(r)
    pid = await started(stack)
    r = await stack.call("POST", f"/projects/{pid}/reports/2026/review", PM, json={"accept": "yes"})
    assert "body.accept" in fields(r)
    r = await stack.call("POST", "/tasks/none/respond", "rev.ito", json={"accept": 1})
    assert "body.accept" in fields(r)


# ---- what every response carries --------------------------------------------------------------


async def test_timestamps_carry_their_utc_offset(stack: ApiStack) -> None:
    pid = await started(stack)
    detail = (await stack.call("GET", f"/projects/{pid}", PM)).json()
    listed = (await stack.call("GET", "/projects", PM)).json()["items"]
    for stamp in (detail["created_at"], listed[0]["created_at"]):
        assert stamp.endswith(("+00:00", "Z")), stamp


async def test_405_names_every_method_of_the_path(stack: ApiStack) -> None:
    r = await stack.call("OPTIONS", "/projects", PM)
    assert r.status_code == 405 and {"GET", "POST"} <= set(r.headers["allow"].split(", ")), r.headers
    r = await stack.call("DELETE", "/tasks/t-1/review", "rev.ito")
    assert r.status_code == 405 and {"POST", "PUT"} <= set(r.headers["allow"].split(", ")), r.headers
