"""Ledger throughput under contention, beside the raw insert rate of the same database.

    .venv/bin/python -m bench.ledger [--ops 1500] [--concurrency 16] [--backend sqlite|postgres|both]

For each backend, in one run and with the same writers (one transaction per operation, the same
retrying transaction wrapper the activities use, `--concurrency` of them at once):
  raw insert      one single-row INSERT into a plain table (the database's own ceiling here)
  reservation     ledger.reserve: every writer reserves from the same ministry allocation (its
                  row is the lock), checks the fiscal-year ceilings, posts 3 entries
  posting         ledger.pay_tranche: 2 entries, running balances, tranche row, outbox row
Each rate is printed with its ratio to the raw insert rate.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.base import DatabaseActivities
from cli.exit import hard_exit
from domain.programme import PROGRAMME_CODE
from storage import ledger, migrate
from storage.db import make_engine, make_sessionmaker
from storage.ledger import ScheduledAmount
from storage.seed import seed_demo
from tests.support import ledger_project, scratch_postgres

DAY = date(2026, 6, 1)


@asynccontextmanager
async def database(backend: str) -> AsyncIterator[str]:
    if backend == "postgres":
        async with scratch_postgres() as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await asyncio.to_thread(migrate.upgrade, url)
        yield url


async def timed(ops: int, concurrency: int, op: Callable[[int], Awaitable[None]]) -> float:
    """Operations per second with `concurrency` writers pulling from one queue."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(ops):
        queue.put_nowait(i)

    async def writer() -> None:
        while not queue.empty():
            await op(queue.get_nowait())

    start = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(concurrency)))
    return ops / (time.perf_counter() - start)


async def add_projects(sm: async_sessionmaker[AsyncSession], ids: list[str]) -> None:
    async with sm.begin() as s:
        s.add_all(ledger_project(pid, PROGRAMME_CODE, "MEXT", 1_000) for pid in ids)


async def run_backend(backend: str, ops: int, concurrency: int) -> dict[str, float]:
    async with database(backend) as url:
        engine = make_engine(url)
        sm = make_sessionmaker(engine)
        await seed_demo(sm, "bench-password")
        db = DatabaseActivities(sm)
        async with sm.begin() as s:
            await s.execute(text("CREATE TABLE bench_raw (id INTEGER PRIMARY KEY, account VARCHAR(80), amount BIGINT)"))
            await ledger.set_ceiling(
                s, programme_code=PROGRAMME_CODE, ministry="MEXT", fiscal_year=2026, amount=10**12, actor="bench"
            )
        run = uuid.uuid4().hex[:6]
        ids = [f"B{run}-{i}" for i in range(ops)]
        await add_projects(sm, ids)

        async def raw(i: int) -> None:
            async def work(s: AsyncSession) -> None:
                await s.execute(
                    text("INSERT INTO bench_raw (id, account, amount) VALUES (:i, :a, :m)"),
                    {"i": i, "a": f"raw:{i}", "m": i},
                )

            await db.transact(work)

        async def reserve(i: int) -> None:
            async def work(s: AsyncSession) -> None:
                schedule = [ScheduledAmount(1, 2026, 600), ScheduledAmount(2, 2027, 400)]
                await ledger.reserve(
                    s,
                    programme_code=PROGRAMME_CODE,
                    project_id=ids[i],
                    stage_no=1,
                    ministry="MEXT",
                    amount=1_000,
                    schedule=schedule,
                    booked_on=DAY,
                )

            await db.transact(work)

        async def pay(i: int) -> None:
            async def work(s: AsyncSession) -> None:
                await ledger.pay_tranche(
                    s,
                    project_id=ids[i],
                    stage_no=1,
                    tranche_no=1,
                    amount=600,
                    due_at=datetime(2026, 6, 1, tzinfo=UTC),
                    paid_on=DAY,
                )

            await db.transact(work)

        rates = {
            "raw insert": await timed(ops, concurrency, raw),
            "reservation": await timed(ops, concurrency, reserve),
            "posting": await timed(ops, concurrency, pay),
        }
        async with sm() as s:
            problems = await ledger.invariant_violations(s, PROGRAMME_CODE)
        await engine.dispose()
        if problems:
            raise SystemExit(f"{backend}: the books do not balance after the run: {problems[:3]}")
        return rates


async def main(args: argparse.Namespace) -> None:
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(f"ledger benchmark: {args.ops} operations per kind, {args.concurrency} concurrent writers")
    for backend in backends:
        rates = await run_backend(backend, args.ops, args.concurrency)
        raw = rates["raw insert"]
        print(f"{backend}:")
        for name, rate in rates.items():
            print(f"  {name:<12} {rate:8.0f}/s   {rate / raw:5.2f}x raw insert")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    asyncio.run(main(parser.parse_args()))
    hard_exit(0)
