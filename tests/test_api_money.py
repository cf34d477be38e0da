"""Finance and performers over HTTP: ceilings, four-eyes signatures, progress reports, the
statement, CSV, reversals and the reconciliation (real API, real worker, local dev server)."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable
from typing import Any

from sqlalchemy import select
from temporalio.client import Client

from domain import search_attributes as sa
from storage.models import LedgerTransaction
from tests.api_stack import ApiStack, api_stack
from tests.support import PM, assert_eventually, listed
from tests.test_api_lifecycle import proposal_body, wait_status
from web import temporal_ui

B = 1_000_000_000
PERFORMER = "perf.aoki"


def body(**overrides: Any) -> dict[str, Any]:
    return proposal_body(
        **{"performer": PERFORMER, **overrides},
        start_trl=1,
        target_trl=3,
        total_budget=3 * B,
        start_date="2026-10-01",
        stages=[
            {
                "name": "Basic research",
                "trl_in": 1,
                "trl_out": 3,
                "duration_days": 800,
                "budget": 3 * B,
                "tranches": [
                    {"offset_days": 0, "amount": B},
                    {"offset_days": 365, "amount": B},
                    {"offset_days": 730, "amount": B},
                ],
            }
        ],
    )


async def expect(stack: ApiStack, method: str, path: str, user: str, code: int, **kw: Any) -> Any:
    r = await stack.call(method, path, user, **kw)
    assert r.status_code == code, f"{method} {path} as {user}: {r.status_code} {r.text}"
    return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text


async def items(listed: Awaitable[Any]) -> Any:
    return (await listed)["items"]


async def notices(stack: ApiStack, user: str, kind: str, timeout: float = 30) -> Any:
    """The user's notices of a kind, once there are any (the workflow says what it waits for just
    before it sends them)."""
    return await assert_eventually(
        lambda: items(expect(stack, "GET", "/notifications", user, 200, params={"kind": kind})),
        f"a {kind} notice reaching {user}",
        timeout=timeout,
    )


async def test_finance_and_performer_work_through_the_api(
    local_client: Client, sqlite_url: str, task_queue: str
) -> None:
    # A simulated year lasts ~7 s: long enough to sign tranche 1 before FY2026 ends (day 182).
    async with api_stack(
        local_client, sqlite_url, task_queue, seconds_per_day=0.02, progress_reports=True, four_eyes_threshold=B - 1
    ) as stack:
        ceiling = await expect(stack, "PUT", "/fund/ceilings/MEXT/2026", "fin.suzuki", 200, json={"amount": 2 * B})
        assert ceiling == {
            "programme": "KPROGRAM",
            "ministry": "MEXT",
            "fiscal_year": 2026,
            "amount": 2 * B,
            "set_by": "fin.suzuki",
        }
        await expect(stack, "PUT", "/fund/ceilings/MEXT/2026", PM, 403, json={"amount": B})
        await expect(stack, "PUT", "/fund/ceilings/XXX/2026", "fin.suzuki", 404, json={"amount": B})
        await expect(stack, "PUT", "/fund/ceilings/MEXT/1999", "fin.suzuki", 422, json={"amount": B})

        created = await expect(stack, "POST", "/projects", PM, 201, json=body())
        pid = created["id"]
        await wait_status(stack, pid, lambda s: "four-eyes approval" in s.waiting_for, "tranche 1 awaits approval")
        # Ops' saved query for tranches awaiting four eyes finds the project until it is approved.
        four_eyes = f'{temporal_ui.four_eyes_query()} AND {sa.PROJECT_ID.name}="{pid}"'
        await assert_eventually(lambda: listed(stack.client, four_eyes), "listed", until=lambda ids: len(ids) == 1)
        # The request for four eyes goes to the finance group: each finance user sees it, a PM does not.
        for finance in ("fin.suzuki", "fin.yamada"):
            asks = await notices(stack, finance, "tranche_approval")
            assert [(n["project_id"], n["message"][:23]) for n in asks] == [(pid, "Tranche 1 of stage 1 of")]
        assert await items(expect(stack, "GET", "/notifications", PM, 200, params={"kind": "tranche_approval"})) == []
        # The reservation is booked by fiscal year: a ceiling below what FY2026 holds is refused.
        refused = await expect(stack, "PUT", "/fund/ceilings/MEXT/2026", "fin.suzuki", 409, json={"amount": B // 2})
        assert "below what is committed" in refused["detail"]

        base = f"/projects/{pid}/tranches/1/1"
        await expect(stack, "POST", f"{base}/approve", "fin.yamada", 409)  # nothing requested yet
        await expect(stack, "POST", f"{base}/request", PERFORMER, 403)
        await expect(stack, "POST", f"{base}/request", "fin.suzuki", 200)
        same = await expect(stack, "POST", f"{base}/approve", "fin.suzuki", 409)
        assert "four eyes" in same["detail"]
        await expect(stack, "POST", f"{base}/approve", PM, 403)
        await expect(stack, "POST", f"{base}/approve", "fin.yamada", 200)
        await assert_eventually(
            lambda: listed(stack.client, four_eyes), "no longer listed", until=lambda ids: ids == []
        )
        await wait_status(stack, pid, lambda s: s.money is not None and s.money.tranches_paid == [1], "tranche 1 paid")

        # Tranche 2 (FY2027) is signed ahead of time; it still waits for the FY2026 report.
        await expect(stack, "POST", f"/projects/{pid}/tranches/1/2/request", PM, 200)
        await expect(stack, "POST", f"/projects/{pid}/tranches/1/2/approve", "fin.yamada", 200)
        await wait_status(stack, pid, lambda s: "FY2026 progress report" in s.waiting_for, "held for the report", 30)
        report = {"fiscal_year": 2026, "summary": "Concept demonstrated; see annex A."}
        await expect(stack, "POST", f"/projects/{pid}/reports", "rev.ito", 403)
        await expect(stack, "POST", f"/projects/{pid}/reports", PERFORMER, 200, json=report)
        again = await expect(stack, "POST", f"/projects/{pid}/reports", PERFORMER, 409, json=report)
        assert "already submitted" in again["detail"]
        returned = {"accept": False, "note": ""}
        await expect(stack, "POST", f"/projects/{pid}/reports/2026/review", PM, 409, json=returned)
        await expect(stack, "POST", f"/projects/{pid}/reports/2026/review", PERFORMER, 403, json={"accept": True})
        await expect(stack, "POST", f"/projects/{pid}/reports/2026/review", PM, 200, json={"accept": True})
        await wait_status(
            stack, pid, lambda s: s.money is not None and s.money.tranches_paid == [1, 2], "tranche 2 paid"
        )

        # The statement: the PM and finance read it; the performer does not.
        st = await expect(stack, "GET", f"/projects/{pid}/statement", PM, 200)
        assert [line["kind"] for line in st["lines"]] == ["reserve", "pay", "pay"]
        assert (st["reserved"], st["paid"]) == (B, 2 * B)
        await expect(stack, "GET", f"/projects/{pid}/statement", PERFORMER, 403)
        await expect(stack, "GET", f"/projects/{pid}/statement", "rev.kato", 403)  # on the panel, not finance
        text = await expect(stack, "GET", f"/projects/{pid}/statement.csv", "fin.suzuki", 200)
        assert text.startswith("\ufeff") and "\r\n" in text  # Excel: UTF-8 with BOM, CRLF rows
        rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
        assert {r["account"] for r in rows} >= {f"reservation:{pid}", f"paid:{pid}", "allocation:MEXT"}
        assert {(r["funding_ministry"], r["funding_ministry_name"]) for r in rows} == {
            ("MEXT", "Ministry of Education, Culture, Sports, Science and Technology")
        }
        assert sum(int(r["amount"]) for r in rows) == 0  # every transaction balances
        await expect(stack, "GET", "/fund/ledger.csv", PM, 403)
        whole_text = await expect(stack, "GET", "/fund/ledger.csv", "fin.suzuki", 200)
        whole = list(csv.DictReader(io.StringIO(whole_text.removeprefix("\ufeff"))))
        assert len(whole) > len(rows)

        fund = await expect(stack, "GET", "/fund", "fin.suzuki", 200)
        [mext] = [m for m in fund["by_ministry"] if m["ministry"] == "MEXT"]
        fy = {y["fiscal_year"]: y for y in mext["fiscal_years"]}
        assert fy[2026]["ceiling"] == 2 * B and fy[2026]["paid"] == B and fy[2027]["paid"] == B
        assert fy[2028]["reserved"] == B and fund["invariant_violations"] == []

        # A correction: the first payment came back from the bank.
        async with stack.sessionmaker() as s:
            pay1 = await s.scalar(
                select(LedgerTransaction.id).where(LedgerTransaction.business_key == f"pay:{pid}:1:1")
            )
        await expect(stack, "POST", f"/fund/transactions/{pay1}/reverse", PM, 403, json={"reason": "returned"})
        rev = await expect(
            stack, "POST", f"/fund/transactions/{pay1}/reverse", "fin.suzuki", 200, json={"reason": "returned"}
        )
        assert rev["created"] and rev["amount"] == B and rev["kind"] == "pay"
        twice = await expect(
            stack, "POST", f"/fund/transactions/{pay1}/reverse", "fin.suzuki", 200, json={"reason": "twice"}
        )
        assert not twice["created"] and twice["transaction_id"] == rev["transaction_id"]
        await expect(stack, "POST", "/fund/transactions/999999/reverse", "fin.suzuki", 404, json={"reason": "none"})
        st = await expect(stack, "GET", f"/projects/{pid}/statement", PM, 200)
        assert st["lines"][-1]["kind"] == "reversal" and (st["reserved"], st["paid"]) == (2 * B, B)

        # Reconciliation: this project agrees with its workflow; one killed from outside does not.
        rogue = await expect(stack, "POST", "/projects", PM, 201, json=body(performer=None))
        await wait_status(stack, rogue["id"], lambda s: "four-eyes" in s.waiting_for, "rogue reserved")
        await local_client.get_workflow_handle(f"project-{rogue['id']}").terminate("pulled the plug in the UI")
        recon = await expect(stack, "GET", "/fund/reconciliation", "fin.suzuki", 200)
        drifts = {d["project_id"]: [] for d in recon["drifts"]}
        for d in recon["drifts"]:
            drifts[d["project_id"]].append(d["problem"])
        assert pid not in drifts, drifts
        assert any("reservation(s) are still open" in p for p in drifts[rogue["id"]])
        assert any("the workflow says workflow terminated" in p for p in drifts[rogue["id"]])
        await expect(stack, "GET", "/fund/reconciliation", "rev.ito", 403)
        await expect(stack, "POST", f"/projects/{pid}/terminate", PM, 200, json={"reason": "test over"})
