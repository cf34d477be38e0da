"""Reconciliation at scale: workflow state through visibility, a page of projects at a time.

    .venv/bin/python -m bench.reconcile [--projects 10000] [--page 500] [--sample 200] [--postgres]

One run: a local dev server (its own port) with the search attributes registered, trlgate's
database (SQLite, or a scratch PostgreSQL database), `--projects` project rows with a stage-1
reservation each, and as many running workflows in visibility. The workflows are a STAND-IN, not
the real ProjectWorkflow: a workflow registered under the name "ProjectWorkflow" that carries the
search attributes the real one publishes (ProjectStatus, StageNo, Phase, TranchesPaid; set at
start) and answers the `status` query with the same snapshot, then waits. Only the baseline's
sample is on a worker's queue; the others wait on a queue no worker polls (running, and in
visibility the same). Starting 10,000 real
lifecycles (registration, reservation, their activities) would measure the lifecycle, not the
reconciliation; the reconciliation reads exactly what the real workflow publishes.
Drift is planted in every 50th project (`--drift-every`): alternately a workflow that believes a
tranche paid that the ledger lacks, and no workflow at all (visibility cannot answer: the fallback
describes it).

Measured in the same run:
  baseline   the old way, a describe and a status query per project, on the first `--sample`
             projects, extrapolated to all of them
  paged      the streamed reconciliation of every project (one visibility query and four ledger
             reads per page), with the process's RSS as it passes 1,000, 5,000 and 10,000 projects
The drifts of both ways on the sample must be the same, or the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError
from temporalio.worker import Worker

from cli.exit import hard_exit
from domain import search_attributes as sa
from domain.programme import PROGRAMME_CODE
from domain.project import MoneySnapshot, Phase, ProjectSnapshot, ProjectStatus
from domain.statuses import ReservationStatus
from services.workflow_views import workflow_view, workflow_views
from storage.models import Reservation
from storage.reconcile import Drift, ProjectRef, Tally, ViewsOf, WorkflowView, stream
from tests.support import embedded_stack, ledger_project, scratch_postgres

QUEUE = "bench-reconcile"
IDLE_QUEUE = "bench-reconcile-unpolled"
CHECKPOINTS = (1_000, 5_000, 10_000, 50_000, 100_000)


@workflow.defn(name="ProjectWorkflow", sandboxed=False)
class StandInProject:
    """Stands for a project waiting in its first stage: its status query answers as the real one."""

    def __init__(self) -> None:
        self.snapshot: ProjectSnapshot | None = None

    @workflow.run
    async def run(self, snapshot: ProjectSnapshot) -> None:
        self.snapshot = snapshot
        await workflow.wait_condition(lambda: False)

    @workflow.query
    def status(self) -> ProjectSnapshot:
        assert self.snapshot is not None
        return self.snapshot


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def project_ids(run: str, n: int) -> list[str]:
    return [f"R{run}-{i:06d}" for i in range(n)]


async def load_projects(sm: async_sessionmaker[AsyncSession], ids: list[str]) -> None:
    """Project rows and a stage-1 reservation each, in bulk (Core inserts of a thousand rows)."""
    for start in range(0, len(ids), 1_000):
        chunk = ids[start : start + 1_000]
        async with sm.begin() as s:
            s.add_all(ledger_project(pid, PROGRAMME_CODE, "MEXT", 1_000) for pid in chunk)
            await s.flush()
            await s.execute(
                insert(Reservation),
                [
                    {
                        "project_id": pid,
                        "stage_no": 1,
                        "part": 0,
                        "ministry": "MEXT",
                        "amount": 1_000,
                        "paid": 0,
                        "released": 0,
                        "status": ReservationStatus.OPEN,
                        "schedule": None,
                    }
                    for pid in chunk
                ],
            )


def snapshot(pid: str, paid: list[int]) -> ProjectSnapshot:
    return ProjectSnapshot(
        project_id=pid,
        status=ProjectStatus.ACTIVE,
        phase=Phase.STAGE,
        stage_index=0,
        stage_name="Basic research",
        trl=1,
        waiting_for="Basic research: tranche 1 due",
        open_gate=None,
        reviews_pending=[],
        handoffs_pending=[],
        history_length=3,
        money=MoneySnapshot(
            stage_no=1, tranches_paid=paid, reports={}, approvals={}, waiting_for_funds=False, programme_date=None
        ),
    )


def planted(i: int, every: int) -> str:
    """Every `every`-th project drifts: alternately a workflow that believes a tranche paid the
    ledger lacks, and no workflow at all (visibility cannot answer: the fallback describes it)."""
    if i % every != every - 1:
        return ""
    return "no workflow" if (i // every) % 2 else "believes paid"


async def start_workflows(client: Client, ids: list[str], concurrency: int, every: int, served: int) -> None:
    """The first `served` on the worker's queue (the baseline asks them); the rest on a queue no
    worker polls: running and in visibility with their attributes all the same, and no worker's
    CPU spent on first tasks that the paged reconciliation never needs."""
    gate = asyncio.Semaphore(concurrency)
    done: list[int] = []

    async def one(i: int, pid: str) -> None:
        if planted(i, every) == "no workflow":
            return
        paid = [1] if planted(i, every) else []
        attributes = TypedSearchAttributes(
            [
                SearchAttributePair(sa.PROJECT_ID, pid),
                SearchAttributePair(sa.PROJECT_STATUS, "active"),
                SearchAttributePair(sa.STAGE_NO, 1),
                SearchAttributePair(sa.PHASE, "stage"),
                SearchAttributePair(sa.TRANCHES_PAID, [str(n) for n in paid] or ["none"]),
            ]
        )
        async with gate:
            for attempt in range(5):
                try:
                    await client.start_workflow(
                        StandInProject.run,
                        snapshot(pid, paid),
                        id=f"project-{pid}",
                        task_queue=QUEUE if i < served else IDLE_QUEUE,
                        search_attributes=attributes,
                        rpc_timeout=timedelta(seconds=30),
                    )
                    break
                except WorkflowAlreadyStartedError:
                    break  # an earlier attempt that timed out had started it
                except RPCError:
                    if attempt == 4:
                        raise
            done.append(i)
            if len(done) % 1_000 == 0:
                print(f"  ... {len(done)} workflows started", flush=True)

    await asyncio.gather(*(one(i, pid) for i, pid in enumerate(ids)))


async def indexed(client: Client, n: int) -> None:
    """Wait until visibility lists every started workflow."""
    while (await client.count_workflows("WorkflowType = 'ProjectWorkflow'")).count < n:
        await asyncio.sleep(0.5)


async def first(session: AsyncSession, views_of: ViewsOf, n: int) -> tuple[list[Drift], float]:
    """The drifts of the first `n` projects (one page of n), and the seconds it took."""
    tally, found = Tally(), []
    began = time.perf_counter()
    async for drift in stream(session, views_of, tally, page_size=n):
        if tally.checked > n:
            break
        found.append(drift)
    return found, time.perf_counter() - began


@asynccontextmanager
async def database(postgres: bool) -> AsyncIterator[str | None]:
    if postgres:
        async with scratch_postgres() as url:
            yield url
    else:
        yield None


async def main(args: argparse.Namespace) -> None:
    async with database(args.postgres) as url, embedded_stack(database_url=url) as (client, sm):
        run = uuid.uuid4().hex[:6]
        ids = project_ids(run, args.projects)
        began = time.perf_counter()
        await load_projects(sm, ids)
        loaded = time.perf_counter() - began
        async with Worker(client, task_queue=QUEUE, workflows=[StandInProject], max_cached_workflows=100):
            began = time.perf_counter()
            await start_workflows(client, ids, args.concurrency, args.drift_every, min(args.sample, args.projects))
            started = time.perf_counter() - began
            expected = sum(1 for i in range(len(ids)) if planted(i, args.drift_every) != "no workflow")
            await indexed(client, expected)
            indexed_after = time.perf_counter() - began
            print(
                f"reconciliation benchmark: {args.projects} projects on {'PostgreSQL' if url else 'SQLite'}; "
                f"STAND-IN workflows (see the module's doc), {expected} running"
            )
            print(
                f"  set-up: rows loaded in {loaded:.1f} s, workflows started in {started:.1f} s, "
                f"all in visibility after {indexed_after:.1f} s"
            )

            async def per_project(page: Sequence[ProjectRef]) -> dict[str, WorkflowView]:
                return {p.id: await workflow_view(client, p) for p in page}

            async def paged(page: Sequence[ProjectRef]) -> dict[str, WorkflowView]:
                return await workflow_views(client, page)

            sample = min(args.sample, args.projects)
            async with sm() as s:
                old, old_s = await first(s, per_project, sample)
            async with sm() as s:
                new, new_s = await first(s, paged, sample)
            # A workflow task slower than its timeout on a loaded machine makes the old way report
            # the workflow silent (its query waits on the task); visibility does not depend on it.
            silent = [d for d in old if d.kind == "workflow_silent"]
            old = [d for d in old if d.kind != "workflow_silent"]
            if old != new:
                raise SystemExit(f"the paged reconciliation differs from the per-project one: {old} != {new}")

            tally, rss = Tally(), [(0, rss_mb())]
            marks = [c for c in CHECKPOINTS if c <= args.projects]

            async def measured(page: Sequence[ProjectRef]) -> dict[str, WorkflowView]:
                while marks and tally.checked >= marks[0]:
                    rss.append((marks.pop(0), rss_mb()))
                return await workflow_views(client, page)

            began = time.perf_counter()
            drifts = 0
            async with sm() as s:
                async for _ in stream(s, measured, tally, page_size=args.page):
                    drifts += 1
            elapsed = time.perf_counter() - began
            rss.append((tally.checked, rss_mb()))

    baseline = old_s / sample * args.projects
    print(
        f"  sample of {sample}: per-project {old_s:.2f} s, paged {new_s:.2f} s; the same {len(old)} drift(s)"
        + (f" (the per-project way also found {len(silent)} workflow(s) too slow to answer)" if silent else "")
    )
    print(f"{'way':<34}{'projects':>10}{'seconds':>10}{'per 1,000':>11}{'ratio':>8}")
    print(
        f"{'baseline: describe + query each':<34}{args.projects:>10}{baseline:>10.1f}"
        f"{baseline / args.projects * 1000:>11.2f}{1.0:>8.2f}   (extrapolated from {sample})"
    )
    print(
        f"{'paged: visibility, ' + str(args.page) + ' a page':<34}{tally.checked:>10}{elapsed:>10.1f}"
        f"{elapsed / max(tally.checked, 1) * 1000:>11.2f}{baseline / elapsed:>8.2f}x faster   (target < 60 s)"
    )
    print(f"  drifts found: {drifts} (planted: {sum(1 for i in range(args.projects) if planted(i, args.drift_every))})")
    print("  RSS as it went (MB): " + ", ".join(f"{n:,} checked {mb:.0f}" for n, mb in rss))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--page", type=int, default=500, help="projects per page (one visibility query each)")
    parser.add_argument("--sample", type=int, default=200, help="projects the per-project baseline reconciles")
    parser.add_argument("--drift-every", type=int, default=50, help="every n-th project drifts")
    parser.add_argument("--concurrency", type=int, default=50, help="workflow starts in flight")
    parser.add_argument("--postgres", action="store_true", help="trlgate's own database on the local PostgreSQL")
    asyncio.run(main(parser.parse_args()))
    hard_exit(0)
