"""The reconciliation at scale: paged by project id with batched ledger reads (both databases),
the workflow side from visibility search attributes, the API's streamed answer, Temporal down."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from domain import search_attributes as sa
from domain.programme import PROGRAMME_CODE
from services.workflow_views import REPORTED_PROBLEMS, _from_visibility
from storage import ledger
from storage.db import make_engine, make_sessionmaker
from storage.models import LedgerTransaction, Tranche
from storage.reconcile import ProjectRef, Tally, WorkflowView, reconcile, stream
from tests.api_inprocess import inprocess_api
from tests.support import ledger_project

NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
async def sm(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def books(sm: async_sessionmaker[AsyncSession]) -> tuple[list[str], dict[str, WorkflowView]]:
    """Six projects, between them every kind of drift, and what each one's workflow believes."""
    ns = uuid.uuid4().hex[:6]
    ids = [f"RC{ns}-{i}" for i in range(6)]
    async with sm.begin() as s:
        s.add_all(ledger_project(pid, PROGRAMME_CODE, "MEXT", 1_000) for pid in ids)
        await s.flush()
        for pid in ids[:4]:
            await ledger.reserve(
                s, programme_code=PROGRAMME_CODE, project_id=pid, stage_no=1, ministry="MEXT", amount=900
            )
        for n in (1, 2):
            await ledger.pay_tranche(s, project_id=ids[0], stage_no=1, tranche_no=n, amount=100, due_at=NOW)
        paid = await ledger.pay_tranche(s, project_id=ids[1], stage_no=1, tranche_no=1, amount=100, due_at=NOW)
        # A tranche on record that the ledger never paid: paid and recorded differ.
        txn = await s.get(LedgerTransaction, paid.transaction_id)
        assert txn is not None
        await s.execute(
            insert(Tranche).values(
                project_id=ids[1], stage_no=1, tranche_no=2, amount=50, transaction_id=txn.id, due_at=NOW
            )
        )
    views = {
        # believes tranches 1 and 3 paid: 3 is not in the ledger, 2 is unknown to it
        ids[0]: WorkflowView(
            found=True, running=True, status="active", stage_no=1, in_stage=True, tranches_paid=[1, 3]
        ),
        ids[1]: WorkflowView(found=True, running=True, status="active", stage_no=1, in_stage=True, tranches_paid=[1]),
        ids[2]: WorkflowView(found=True, status="workflow terminated"),  # ended, reservation open
        ids[3]: WorkflowView(found=True, problem="its workflow task has failed 3 times in a row"),
        ids[4]: WorkflowView(found=False),
        ids[5]: WorkflowView(found=True, running=True, status="on_hold", stage_no=2, in_stage=True),  # no reservation
    }
    return ids, views


async def test_paged_and_streamed_finds_what_the_per_project_reconciliation_finds(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    ids, views = await books(sm)
    pages: list[list[str]] = []

    async def views_of(page: Sequence[ProjectRef]) -> dict[str, WorkflowView]:
        pages.append([p.id for p in page])
        return {p.id: views.get(p.id, WorkflowView(found=False)) for p in page}

    async def view_of(project: ProjectRef) -> WorkflowView:
        return views.get(project.id, WorkflowView(found=False))

    async with sm() as s:
        whole = await reconcile(s, view_of)
        tally = Tally()
        streamed = [d async for d in stream(s, views_of, tally, page_size=2)]
    assert streamed == whole.drifts and tally.checked == whole.checked
    assert tally.drifts == len(streamed)
    # Keyset pages of two: every project once, in order, none skipped at a page's edge.
    flat = [pid for page in pages for pid in page]
    assert flat == sorted(flat) and len(flat) == len(set(flat)) == whole.checked
    assert all(len(page) == 2 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 2
    kinds = {(d.project_id, d.kind) for d in streamed if d.project_id in ids}
    assert kinds == {
        (ids[0], "unpaid_in_ledger"),
        (ids[0], "unknown_to_workflow"),
        (ids[1], "paid_mismatch"),
        (ids[1], "unknown_to_workflow"),  # the tranche on record the ledger never paid
        (ids[2], "ended_with_open"),
        (ids[2], "status_mismatch"),
        (ids[3], "workflow_silent"),
        (ids[4], "no_workflow"),
        (ids[5], "no_reservation"),
        (ids[5], "status_mismatch"),
    }
    async with sm() as s:
        one = [d async for d in stream(s, views_of, Tally(), project_id=ids[0])]
        assert {d.kind for d in one} == {"unpaid_in_ledger", "unknown_to_workflow"}
        assert await s.scalar(select(Tranche.amount).where(Tranche.project_id == ids[1], Tranche.tranche_no == 2))


def _execution(run: WorkflowExecutionStatus, **attributes: Any) -> Any:
    keys: dict[str, SearchAttributeKey[Any]] = {
        "project": sa.PROJECT_STATUS,
        "stage": sa.STAGE_NO,
        "phase": sa.PHASE,
        "paid": sa.TRANCHES_PAID,
        "problems": REPORTED_PROBLEMS,
    }
    pairs = [SearchAttributePair(keys[k], v) for k, v in attributes.items()]
    return SimpleNamespace(status=run, typed_search_attributes=TypedSearchAttributes(pairs))


def test_what_visibility_says_and_where_it_cannot_say() -> None:
    running = WorkflowExecutionStatus.RUNNING
    view = _from_visibility(_execution(running, project="active", stage=2, phase="gate", paid=["1", "2"]))
    assert view == WorkflowView(
        found=True, running=True, status="active", stage_no=2, in_stage=True, tranches_paid=[1, 2]
    )
    none_paid = _from_visibility(_execution(running, project="handoff", stage=4, phase="handoff", paid=["none"]))
    assert none_paid is not None and not none_paid.in_stage and none_paid.tranches_paid == []
    done = _from_visibility(_execution(WorkflowExecutionStatus.COMPLETED, project="completed"))
    assert done == WorkflowView(found=True, status="completed")
    ended = _from_visibility(_execution(WorkflowExecutionStatus.TERMINATED, project="active"))
    assert ended == WorkflowView(found=True, status="workflow terminated")
    # Where it cannot say, the caller asks the workflow itself.
    assert _from_visibility(_execution(running, project="active")) is None  # a run from before the attributes
    failing = _execution(
        running, project="active", stage=1, phase="stage", paid=["none"], problems=["WorkflowTaskFailed"]
    )
    assert _from_visibility(failing) is None
    assert _from_visibility(_execution(WorkflowExecutionStatus.CONTINUED_AS_NEW, project="active")) is None
    assert _from_visibility(_execution(WorkflowExecutionStatus.COMPLETED)) is None


class _Visibility:
    """Temporal as the API sees it: visibility knows no workflow, a describe finds none (or,
    `down`, the server does not answer at all)."""

    def __init__(self, down: bool = False) -> None:
        self.down = down

    async def list_workflows(self, query: str, **_: Any) -> AsyncIterator[Any]:
        if self.down:
            raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
        return
        yield

    def get_workflow_handle(self, workflow_id: str, **_: Any) -> Any:
        class Handle:
            async def describe(self) -> None:
                raise RPCError(f"workflow {workflow_id} not found", RPCStatusCode.NOT_FOUND, b"")

        return Handle()


async def test_the_api_streams_the_same_json_and_answers_503_when_temporal_is_down(sqlite_url: str) -> None:
    async with inprocess_api(sqlite_url, temporal=_Visibility()) as api:
        async with api.sessionmaker.begin() as s:
            s.add_all(ledger_project(f"RCAPI-{i}", PROGRAMME_CODE, "MEXT", 1_000) for i in range(3))
        r = await api.call("GET", "/fund/reconciliation", "fin.suzuki")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json"), r.text
        body = json.loads(r.text)
        assert set(body) == {"drifts", "checked"} and body["checked"] >= 3
        assert {d["project_id"] for d in body["drifts"] if d["kind"] == "no_workflow"} >= {
            f"RCAPI-{i}" for i in range(3)
        }
    async with inprocess_api(sqlite_url, temporal=_Visibility(down=True)) as api:
        r = await api.call("GET", "/fund/reconciliation", "fin.suzuki")
        assert r.status_code == 503 and "Temporal is unavailable" in r.json()["detail"]


def test_the_benchmark_runs_at_toy_size() -> None:
    """bench/reconcile.py at a few projects (a dev server, stand-in workflows): it fails when the
    paged reconciliation's drifts differ from the per-project one's."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.reconcile",
            "--projects",
            "12",
            "--page",
            "5",
            "--sample",
            "12",
            "--drift-every",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "the same 3 drift(s)" in run.stdout and "drifts found: 3 (planted: 3)" in run.stdout, run.stdout
