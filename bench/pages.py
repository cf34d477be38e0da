"""Server time of the workbench's lists at a national portfolio's size.

    .venv/bin/python -m bench.pages [--projects 10000] [--requests 200]

A migrated, seeded SQLite database gets `--projects` projects (bench/portfolio_data.py: stages,
gates, review tasks, money, hand-offs, notifications, audit), all of one programme manager and the
demo panel of three reviewers, written in bulk. The app
runs in this process (httpx over ASGI, no network, no Temporal): each page is requested
`--requests` times by its signed-in user and timed from request to last byte. The baseline, in the
same run, is the sign-in page (a template and no query), so the ratios show what each list costs
beyond rendering a page at all.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from api.app import create_app
from bench.portfolio_data import Shape, load
from cli.exit import hard_exit
from config import Settings
from storage import migrate
from storage.db import make_engine, make_sessionmaker
from web import session

REVIEWERS = ["rev.ito", "rev.kato", "rev.mori"]
PM = "pm.sato"
SECRET = "bench-secret-of-at-least-thirty-two-bytes"


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000


async def run(projects: int, requests: int) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await asyncio.to_thread(migrate.upgrade, url)
        # One programme manager and the three demo reviewers hold the whole portfolio: the lists' worst case.
        figures = await load(url, Shape(projects, pms=1, reviewers=len(REVIEWERS)), check=False)
        print(f"portfolio: {projects} projects, {int(figures['rows'])} rows in {figures['load_s']:.1f} s")
        settings = Settings(database_url=url, jwt_secret=SECRET, data_dir=tmp)
        app = create_app(settings)
        engine = make_engine(url)
        app.state.settings = settings
        app.state.sessionmaker = make_sessionmaker(engine, audit_key=settings.resolved_audit_key())
        app.state.read_sessionmaker = make_sessionmaker(engine, read_only=True)
        app.state.jwt_secret = SECRET
        app.state.temporal = None
        life = session.Lifetime(timedelta(hours=1), timedelta(hours=8))

        def cookie(user: str) -> dict[str, str]:
            now = datetime.now(UTC)
            return {session.COOKIE: session.issue(SECRET, session.Session(user, now), now, life)}

        pages: dict[str, tuple[str, str | None]] = {
            "sign-in page (baseline)": ("/app/sign-in", None),
            "review inbox, invitations": ("/app/inbox", "rev.ito"),
            "review inbox, page 50": ("/app/inbox?group=submitted&page=50", "rev.ito"),
            "PM's gates under review": ("/app/gates", PM),
            "PM's gates, page 200": ("/app/gates?page=200", PM),
            "portfolio (PM), newest": ("/app/projects", PM),
            "portfolio (PM), page 300 by TRL": ("/app/projects?sort=trl&page=300", PM),
            "portfolio (admin), overdue": ("/app/projects?overdue=1", "admin"),
            "portfolio (reviewer)": ("/app/projects?sort=budget", "rev.ito"),
        }
        results: dict[str, tuple[float, float]] = {}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as http:
            for name, (path, user) in pages.items():
                jar: dict[str, Any] = cookie(user) if user else {}
                samples = []
                for i in range(requests + 5):
                    t0 = time.perf_counter()
                    r = await http.get(path, cookies=jar)
                    elapsed = time.perf_counter() - t0
                    assert r.status_code == 200, (path, r.status_code, r.text[:200])
                    if i >= 5:  # warm-up
                        samples.append(elapsed)
                results[name] = _ms(samples)
        await engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    results = asyncio.run(run(args.projects, args.requests))
    base_p95 = results["sign-in page (baseline)"][1]
    for name, (p50, p95) in results.items():
        print(f"  {name:32s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms   p95 / baseline p95 {p95 / base_p95:5.1f}x")
    print("target: p95 under 100 ms for the lists")
    hard_exit(0)


if __name__ == "__main__":
    main()
