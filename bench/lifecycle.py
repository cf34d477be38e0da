"""Throughput and Update latency of real project lifecycles against bare workflows of the same shape.

    .venv/bin/python -m bench.lifecycle [--projects 30] [--concurrency 10] [--latency-projects 2]

Both run in the same process, on the same local dev server (in memory unless --persist-temporal:
a file's fsyncs stall it on a busy machine), with the same worker settings, one after the other.
Automated reviewers; stage timers off (no-op time). Beside wall time it counts CPU seconds (this
process and the dev server), which other load on the machine does not inflate.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import psutil
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from bench.bare import (
    GATE_UPDATES,
    LIFECYCLE_SHAPE,
    BareGateWorkflow,
    BareHandoffWorkflow,
    BareInput,
    BarePhase,
    BareUpdate,
    BareWorkflow,
    noop,
)
from cli.exit import hard_exit
from domain.gate_review import GateDecisionInput, InvitationResponse, OpenReviewInput
from domain.handoff import HandoffAnswer, HandoffKind, handoff_workflow_id
from domain.project import Decision
from tests.support import LIAISONS, embedded_stack, proposal, review_for, scratch_postgres, start_project
from worker import build_worker
from workflows.gate_review import GateReviewWorkflow, gate_workflow_id
from workflows.handoff import HandoffWorkflow


@dataclass
class Run:
    elapsed: float = 0.0
    cpu: float = 0.0  # CPU seconds: this process (client and worker) and the dev server
    latencies: list[float] = field(default_factory=list)
    rejected_retries: int = 0


def cpu_seconds() -> float:
    """CPU seconds spent so far by this process and the servers it started: unlike wall time, what
    other load on the machine does not inflate."""
    me = psutil.Process()
    total = 0.0
    for process in (me, *me.children(recursive=True)):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def until_accepted(run: Run, send: Callable[[], Awaitable[Any]], record: bool) -> Any:
    """Send an Update; while the workflow is not ready for it (not started yet, or its validator
    refuses), try again shortly."""
    backoff = 0.005
    while True:
        started = time.perf_counter()
        try:
            result = await send()
        except (WorkflowUpdateFailedError, RPCError) as err:
            # Not found: not started yet. Failed precondition: its last workflow task failed (timed
            # out on a starved machine) and is being retried.
            if isinstance(err, RPCError) and err.status not in (
                RPCStatusCode.NOT_FOUND,
                RPCStatusCode.FAILED_PRECONDITION,
            ):
                raise
            # Each refusal costs the workflow a task; back off so a slower workflow is not also
            # charged more polling.
            run.rejected_retries += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 0.08)
            continue
        if record:
            run.latencies.append(time.perf_counter() - started)
        return result


async def real_lifecycle(client: Client, queue: str, run: Run, record: bool) -> None:
    p = proposal(total_budget=100_000_000)  # small, so hundreds of projects fit in the fund
    assert p.project_id is not None
    started = await start_project(client, queue, p, seconds_per_day=0.0)
    handle = client.get_workflow_handle(started.id)  # the latest run: the workflow continues as new
    pm = p.programme_manager
    for gate_no in range(1, 5):
        gate = client.get_workflow_handle(gate_workflow_id(p.project_id, gate_no, 1))
        await until_accepted(
            run, partial(gate.execute_update, GateReviewWorkflow.open_review, OpenReviewInput(opened_by=pm)), False
        )
        for reviewer in p.reviewers:
            response = InvitationResponse(reviewer=reviewer, accept=True)
            await until_accepted(run, partial(gate.execute_update, GateReviewWorkflow.respond, response), False)
        for reviewer in p.reviewers:
            review = review_for(p, gate_no, reviewer)
            await until_accepted(run, partial(gate.execute_update, GateReviewWorkflow.submit_review, review), record)
        decision = GateDecisionInput(decided_by=pm, decision=Decision.GO)
        await until_accepted(run, partial(gate.execute_update, GateReviewWorkflow.decide, decision), False)
    for ministry in p.public_use_ministries:  # each ministry's liaison answers its hand-off workflow
        child = client.get_workflow_handle(handoff_workflow_id(p.project_id, ministry, HandoffKind.FINAL))
        accept = HandoffAnswer(accept=True, answered_by=LIAISONS[ministry], receiving_programme="bench programme")
        await until_accepted(run, partial(child.execute_update, HandoffWorkflow.answer, accept), False)
    await handle.result()


async def bare_lifecycle(client: Client, queue: str, run: Run, record: bool) -> None:
    started = await client.start_workflow(
        BareWorkflow.run, LIFECYCLE_SHAPE, id=f"bare-{uuid.uuid4().hex}", task_queue=queue
    )
    handle = client.get_workflow_handle(started.id)
    for phase_no, phase in enumerate(LIFECYCLE_SHAPE.phases):
        if phase.gate:
            gate = client.get_workflow_handle(f"{started.id}-gate-{phase_no}")
            for seq in range(GATE_UPDATES):
                # Updates 4 to 6 stand where the real gate's reviews stand: those are timed.
                await until_accepted(
                    run, partial(gate.execute_update, BareGateWorkflow.step, seq), record and 4 <= seq <= 6
                )
        for seq in range(len(phase.update_activities)):
            update = BareUpdate(phase=phase_no, seq=seq)
            await until_accepted(run, partial(handle.execute_update, BareWorkflow.step, update), False)
        for k in range(phase.handoffs):
            child = client.get_workflow_handle(f"{started.id}-handoff-{k}")
            await until_accepted(run, partial(child.execute_update, BareHandoffWorkflow.answer, k), False)
    await handle.result()


async def minimal_updates(client: Client, queue: str, n: int) -> list[float]:
    """Round trips of a minimal Update (no activity) on an idle bare workflow."""
    handle = await client.start_workflow(
        BareWorkflow.run,
        BareInput(phases=[BarePhase(main_activities=0, update_activities=[0])]),
        id=f"ping-{uuid.uuid4().hex}",
        task_queue=queue,
    )
    latencies = []
    for i in range(n):
        started = time.perf_counter()
        await handle.execute_update(BareWorkflow.ping, i)
        latencies.append(time.perf_counter() - started)
    await handle.execute_update(BareWorkflow.step, BareUpdate(phase=0, seq=0))
    return latencies


async def measure(
    lifecycle: Callable[[Client, str, Run, bool], Awaitable[None]],
    client: Client,
    queue: str,
    n: int,
    concurrency: int,
    record: bool,
) -> Run:
    run = Run()
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await lifecycle(client, queue, run, record)

    started, cpu = time.perf_counter(), cpu_seconds()
    await asyncio.gather(*(one() for _ in range(n)))
    run.elapsed, run.cpu = time.perf_counter() - started, cpu_seconds() - cpu
    return run


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


async def main(projects: int, concurrency: int, latency_projects: int, postgres: bool, persist: bool) -> None:
    if postgres:
        async with scratch_postgres() as url:
            await _main(projects, concurrency, latency_projects, url, persist)
    else:
        await _main(projects, concurrency, latency_projects, None, persist)


async def _main(
    projects: int, concurrency: int, latency_projects: int, database_url: str | None, persist: bool
) -> None:
    print(f"application database: {'PostgreSQL' if database_url else 'SQLite (embedded default)'}")
    async with embedded_stack(persist_temporal=persist, database_url=database_url) as (client, sm):
        async with (
            build_worker(client, "bench-real", sm),
            Worker(
                client,
                task_queue="bench-bare",
                workflows=[BareWorkflow, BareGateWorkflow, BareHandoffWorkflow],
                activities=[noop],
            ),
        ):
            # Warm both paths once, then measure throughput, then latency with few in flight.
            await measure(real_lifecycle, client, "bench-real", 1, 1, False)
            await measure(bare_lifecycle, client, "bench-bare", 1, 1, False)
            bare = await measure(bare_lifecycle, client, "bench-bare", projects, concurrency, False)
            real = await measure(real_lifecycle, client, "bench-real", projects, concurrency, False)
            bare_lat = await measure(bare_lifecycle, client, "bench-bare", latency_projects, latency_projects, True)
            real_lat = await measure(real_lifecycle, client, "bench-real", latency_projects, latency_projects, True)
            ping = await minimal_updates(client, "bench-bare", 50)

    real_rate, bare_rate = projects / real.elapsed, projects / bare.elapsed
    print(
        f"lifecycles: {projects} projects, {concurrency} in flight; each: about 27 activities, 32 local "
        "activities, 34 Updates, 4 gate-round and 2 hand-off child workflows"
    )
    print(f"  bare workflow     {bare_rate:6.2f} projects/s   ({bare.elapsed:.1f} s)")
    print(f"  real lifecycle    {real_rate:6.2f} projects/s   ({real.elapsed:.1f} s)")
    print(f"  ratio real/bare   {real_rate / bare_rate:6.2f}x   (target >= 0.8x)")
    print(
        f"  CPU per lifecycle: bare {bare.cpu / projects:5.2f} s, real {real.cpu / projects:5.2f} s"
        f" (worker, client and dev server): ratio bare/real {bare.cpu / real.cpu:5.2f}x"
    )
    print(f"review Update round trip, {latency_projects} projects in flight:")
    print(
        f"  bare   p50 {pct(bare_lat.latencies, 0.5):6.1f} ms  p99 {pct(bare_lat.latencies, 0.99):6.1f} ms"
        f"  (n={len(bare_lat.latencies)})"
    )
    print(
        f"  real   p50 {pct(real_lat.latencies, 0.5):6.1f} ms  p99 {pct(real_lat.latencies, 0.99):6.1f} ms"
        f"  (n={len(real_lat.latencies)})"
    )
    print(f"  minimal Update (no activity, idle workflow): p50 {pct(ping, 0.5):6.1f} ms  p99 {pct(ping, 0.99):6.1f} ms")
    same_shape = statistics.median(real_lat.latencies) / statistics.median(bare_lat.latencies)
    minimal = statistics.median(real_lat.latencies) / statistics.median(ping)
    print(f"  p50 ratio real review / bare review-shaped Update {same_shape:5.2f}x")
    print(f"  p50 ratio real review / minimal Update            {minimal:5.2f}x   (target <= 1.5x)")
    print(f"(not-ready retries: bare {bare.rejected_retries}, real {real.rejected_retries})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--latency-projects", type=int, default=2)
    parser.add_argument("--postgres", action="store_true", help="trlgate's own database on the local PostgreSQL")
    parser.add_argument("--persist-temporal", action="store_true", help="the dev server on a SQLite file")
    args = parser.parse_args()
    asyncio.run(main(args.projects, args.concurrency, args.latency_projects, args.postgres, args.persist_temporal))
    hard_exit(0)
