"""Many open project workflows on one dev server and one worker process: the worker's memory, the
time to start them all, and the status query's latency while they wait in their first stage.

    .venv/bin/python -m bench.open_workflows [--workflows 10000] [--baseline 10] [--queries 500]

One dev server (its own ports; in memory unless --persist-temporal: a file's fsyncs stall it on a
busy machine) and the real worker (`python -m worker`, the
settings' limits: TRLGATE_WORKER_*) as a subprocess, so its RSS is its own. Each project is
started as the API starts one (the same input, options and start attributes), in real time (a
day lasts a day), so it registers, reserves its first stage and waits. Baselines measured in the
same run: the idle worker's RSS before any start, and the query's latency with `--baseline`
workflows open (all of them in the worker's cache).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError

from bench.lifecycle import pct
from cli.exit import hard_exit
from config import REPO_ROOT, Settings
from domain import search_attributes as sa
from domain.project import Phase
from services.projects import workflow_input
from storage.models import Reservation
from tests.support import embedded_stack, proposal, scratch_postgres
from workflows.project import ProjectWorkflow, workflow_id_for

QUEUE = "bench-open"
GB = 1024**3
RSS_TARGET = 1 * GB
# Starts sent at once: the dev server keeps everything in one SQLite database, and more at once
# only make its writes time out (and be retried) on a busy machine.
STARTS_IN_FLIGHT = 8


@dataclass
class Memory:
    """The worker's RSS, sampled every `every` seconds while the benchmark runs."""

    process: psutil.Process
    peak: int = 0
    samples: list[int] = field(default_factory=list)

    def now(self) -> int:
        rss = int(self.process.memory_info().rss)
        self.peak = max(self.peak, rss)
        self.samples.append(rss)
        return rss

    async def watch(self, every: float = 0.25) -> None:
        while self.process.is_running():
            self.now()
            await asyncio.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def worker_process(
    client: Client, database_url: str, tmp: Path, log: Path, extra: dict[str, str]
) -> Iterator[psutil.Process]:
    """`python -m worker` against this run's server and database; its HTTP ports off, its mail
    going nowhere (no notice is due while the projects wait)."""
    env = {
        **os.environ,
        "TRLGATE_TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TRLGATE_DATABASE_URL": database_url,
        "TRLGATE_DATA_DIR": str(tmp),
        "TRLGATE_TASK_QUEUE": QUEUE,
        "TRLGATE_WORKER_PORT": "0",
        "TRLGATE_WORKER_SDK_METRICS_PORT": "0",
        "TRLGATE_SMTP_PORT": str(free_port()),
        "TRLGATE_MAIL_SINK": "false",
        # As deployed (compose): the console format renders each retried activity's traceback with
        # its locals, on the event loop, which starved the activities into more retries.
        "TRLGATE_LOG_FORMAT": "json",
        **extra,
    }
    with log.open("w") as out:
        child = subprocess.Popen([sys.executable, "-m", "worker"], cwd=REPO_ROOT, env=env, stdout=out, stderr=out)
        try:
            yield psutil.Process(child.pid)
        finally:
            child.terminate()
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float, every: float = 0.5) -> float:
    """Seconds until `check` holds; SystemExit with `what` at the timeout."""
    began = time.perf_counter()
    while not await check():
        if time.perf_counter() - began > timeout:
            raise SystemExit(f"gave up after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(every)
    return time.perf_counter() - began


async def start_projects(client: Client, ids: list[str]) -> float:
    """Start one project workflow per id, as the API does; returns the seconds it took."""
    room = asyncio.Semaphore(STARTS_IN_FLIGHT)
    settings = Settings(seconds_per_day=86400.0)

    async def one(project_id: str) -> None:
        # Small budgets: ten thousand first stages fit in the fund's yearly ceilings.
        p = proposal(project_id=project_id, total_budget=10_000_000)
        async with room:
            await client.start_workflow(
                ProjectWorkflow.run,
                workflow_input(p, settings),
                id=workflow_id_for(project_id),
                task_queue=QUEUE,
                search_attributes=sa.project_start(p),
            )

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in ids))
    return time.perf_counter() - began


async def reserved(sm: async_sessionmaker[AsyncSession]) -> int:
    """Projects whose first stage is reserved: the last write before a project waits."""
    async with sm() as session:
        return int(await session.scalar(select(func.count(func.distinct(Reservation.project_id)))) or 0)


async def settled(memory: Memory, at_most: float, quiet: float = 0.05) -> None:
    """Until the worker's CPU falls to `quiet` of a core for a second (its backlog is done), or
    `at_most` seconds."""
    began = time.perf_counter()
    while time.perf_counter() - began < at_most:
        if await asyncio.to_thread(memory.process.cpu_percent, 1.0) <= quiet * 100:
            return


async def status_queries(client: Client, ids: list[str], n: int, in_flight: int) -> tuple[list[float], int]:
    """`n` status queries to random workflows among `ids`; their latencies (s) and how many were
    not waiting in their first stage."""
    room = asyncio.Semaphore(in_flight)
    latencies: list[float] = []
    elsewhere = 0

    async def one(project_id: str) -> None:
        nonlocal elsewhere
        async with room:
            began = time.perf_counter()
            try:
                snapshot = await client.get_workflow_handle(workflow_id_for(project_id)).query(ProjectWorkflow.status)
            except RPCError:  # timed out (a swamped worker): counted, at the time it took
                elsewhere += 1
            else:
                elsewhere += snapshot.phase != Phase.STAGE or snapshot.stage_index != 0
            latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(one(random.choice(ids)) for _ in range(n)))
    return latencies, elsewhere


async def main(
    workflows: int,
    baseline: int,
    queries: int,
    in_flight: int,
    extra: dict[str, str],
    persist: bool,
    settle: float,
    postgres: bool,
    give_up: float,
) -> None:
    print(f"application database: {'PostgreSQL' if postgres else 'SQLite'}")
    async with AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(scratch_postgres()) if postgres else None
        client, sm = await stack.enter_async_context(embedded_stack(persist, database_url))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="worker-open-")))
        url = sm.kw["bind"].url.render_as_string(hide_password=False)
        process = stack.enter_context(worker_process(client, url, tmp, tmp / "worker.log", extra))
        memory = Memory(process)
        await until(
            lambda: asyncio.to_thread(lambda: "worker polling" in (tmp / "worker.log").read_text()),
            "the worker to poll",
            120,
        )
        await settled(memory, settle)
        idle = memory.now()
        watching = asyncio.create_task(memory.watch())

        few = [f"KP-base-{i:05d}" for i in range(baseline)]
        await start_projects(client, few)
        await until(lambda: _count(sm, baseline), "the baseline projects to reserve", 300)
        await settled(memory, settle)
        base_lat, base_off = await status_queries(client, few, queries, in_flight)
        print(
            f"  baselines: idle worker RSS {idle / 1024**2:.0f} MB; status query with {baseline} open:"
            f" p50 {pct(base_lat, 0.5):.1f} ms, p99 {pct(base_lat, 0.99):.1f} ms",
            flush=True,
        )

        many = [f"KP-open-{i:05d}" for i in range(workflows)]
        memory.peak = 0
        began = time.perf_counter()
        starting = asyncio.create_task(start_projects(client, many))
        while (waiting := await reserved(sm) - baseline) < workflows and time.perf_counter() - began < give_up:
            await asyncio.sleep(min(30.0, max(2.0, give_up / 100)))
            waiting = await reserved(sm) - baseline
            print(
                f"  {time.perf_counter() - began:6.0f} s: {started_count(starting, many)} started,"
                f" {waiting} reserved and waiting; worker RSS {memory.now() / 1024**2:.0f} MB (peak"
                f" {memory.peak / 1024**2:.0f})",
                flush=True,
            )
        parked = time.perf_counter() - began
        started = await starting if starting.done() else float("nan")
        await settled(memory, settle)
        after_start = memory.now()
        # Queried: those waiting (all of them, unless the run gave up first).
        lat, off = await status_queries(client, await waiting_ids(sm, "KP-open-"), queries, in_flight)
        end = memory.now()
        watching.cancel()
        peak = memory.peak

    mb = 1024**2
    print(f"open workflows: {workflows} project workflows waiting in their first stage, one dev server, one worker")
    print(f"worker settings: {extra or 'the defaults (config.py)'}; status queries: {queries}, {in_flight} in flight")
    print(f"{'':<34}{'figure':>12}{'baseline':>12}{'ratio':>8}")
    print(
        f"{'worker RSS peak (MB)':<34}{peak / mb:>12.0f}{idle / mb:>12.0f}{peak / idle:>7.2f}x   (baseline: idle worker)"
    )
    print(f"{'worker RSS settled (MB)':<34}{after_start / mb:>12.0f}{idle / mb:>12.0f}{after_start / idle:>7.2f}x")
    print(f"{'worker RSS after the queries (MB)':<34}{end / mb:>12.0f}{idle / mb:>12.0f}{end / idle:>7.2f}x")
    print(f"{'time to start all (s)':<34}{started:>12.1f}{'':>12}   ({workflows / started:.0f} starts/s)")
    print(f"{'time until all reserved (s)':<34}{parked:>12.1f}{'':>12}   ({waiting / parked:.1f} projects/s)")
    if waiting < workflows:
        print(f"GAVE UP after {give_up:.0f} s: {waiting} of {workflows} waiting in their first stage")
    for label, q in (("status query p50 (ms)", 0.5), ("status query p99 (ms)", 0.99)):
        ratio = pct(lat, q) / pct(base_lat, q)
        print(f"{label:<34}{pct(lat, q):>12.1f}{pct(base_lat, q):>12.1f}{ratio:>7.2f}x   (baseline: {baseline} open)")
    if off or base_off:
        print(
            f"not in their first stage (or timed out) when queried: {off} of {queries} ({base_off} of the baseline's)"
        )
    verdict = "met" if peak < RSS_TARGET else f"MISSED by {(peak - RSS_TARGET) / mb:.0f} MB"
    print(f"target worker RSS < 1 GB (peak): {verdict}")


async def _count(sm: async_sessionmaker[AsyncSession], n: int) -> bool:
    return await reserved(sm) >= n


async def waiting_ids(sm: async_sessionmaker[AsyncSession], prefix: str) -> list[str]:
    async with sm() as session:
        found = await session.scalars(
            select(Reservation.project_id).where(Reservation.project_id.startswith(prefix)).distinct()
        )
        return list(found)


def started_count(starting: asyncio.Task[float], ids: list[str]) -> str:
    return f"all {len(ids)}" if starting.done() else "not all"


def worker_env(args: argparse.Namespace) -> dict[str, str]:
    """The worker limits given on the command line, as the worker's settings."""
    names = ("max_cached_workflows", "max_concurrent_workflow_tasks", "max_concurrent_activities")
    return {f"TRLGATE_WORKER_{n.upper()}": str(getattr(args, n)) for n in names if getattr(args, n) is not None}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=10, help="workflows open for the query baseline")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--in-flight", type=int, default=4, help="status queries at once")
    parser.add_argument("--persist-temporal", action="store_true", help="the dev server on a SQLite file")
    parser.add_argument("--postgres", action="store_true", help="trlgate's own database on the local PostgreSQL")
    parser.add_argument("--give-up", type=float, default=3600.0, help="report what is waiting after this long (s)")
    parser.add_argument("--settle", type=float, default=60.0, help="at most this long for the worker to go quiet (s)")
    for name in ("max_cached_workflows", "max_concurrent_workflow_tasks", "max_concurrent_activities"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, help="the worker's setting")
    args = parser.parse_args()
    asyncio.run(
        main(
            args.workflows,
            args.baseline,
            args.queries,
            args.in_flight,
            worker_env(args),
            args.persist_temporal,
            args.settle,
            args.postgres,
            args.give_up,
        )
    )
    hard_exit(0)
