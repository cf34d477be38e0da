"""Wall time of a ten-year project on the time-skipping test server (real 86,400 s days).

    .venv/bin/python -m bench.time_skipping [RUNS]    (3 runs unless told)

The claim behind tests/test_lifecycle_time_skipping.py, measured here rather than asserted in a
test (a busy machine must not fail the suite): ten simulated years take seconds of wall time.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid

from cli.exit import hard_exit
from domain.project import ProjectStatus
from storage import migrate
from storage.db import make_engine, make_sessionmaker
from storage.seed import seed_demo
from tests.support import start_time_skipping, ten_year_project


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/trlgate.db"
        await asyncio.to_thread(migrate.upgrade, url)
        engine = make_engine(url)
        sessionmaker = make_sessionmaker(engine)
        await seed_demo(sessionmaker, "bench")
        env = await start_time_skipping()
        try:
            walls = []
            for _ in range(runs):
                started = time.perf_counter()
                _, outcome = await ten_year_project(env, sessionmaker, f"bench-{uuid.uuid4().hex[:8]}")
                walls.append(time.perf_counter() - started)
                assert outcome.status == ProjectStatus.COMPLETED, outcome
        finally:
            await env.shutdown()
            await engine.dispose()
    print(f"ten simulated years: median {statistics.median(walls):.1f} s of wall time over {runs} run(s)")
    print(f"runs: {', '.join(f'{w:.1f}' for w in walls)} s")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
    hard_exit(0)
