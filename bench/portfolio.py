"""The portfolio at scale: every list, detail and summary the API and the workbench serve, timed
against a national portfolio loaded straight into the database (issue 15, benchmark 1).

    .venv/bin/python -m bench.portfolio --db postgres --projects 100000
    .venv/bin/python -m bench.portfolio --db sqlite --projects 10000
    .venv/bin/python -m bench.portfolio --db postgres --projects 200 --requests 20   (a few seconds)

The portfolio (bench/portfolio_data.py) has stages, gates, review tasks, tranches, ledger rows,
hand-offs, notifications, audit entries and closed work with grants, spread over about 100
projects per programme manager and 150 review panels per reviewer. PostgreSQL gets a database of
its own (pbench_<random>, dropped afterwards unless --keep); SQLite a temporary file.

The app runs in this process (httpx over ASGI, no network). There is no Temporal server: the
project detail's live workflow view is not asked for (the client is None, as when Temporal is
down; the detail still reads everything the database holds). Each endpoint is requested by its
user --requests times after --warmup requests (and for at most --seconds), timed from request to
last byte; the baseline in the same run is GET /health/live (no query, no template), so each row
prints p50, p99 and p99 over the baseline's p99. On PostgreSQL the slowest SELECTs of one request
of each endpoint are shown with EXPLAIN (ANALYZE, BUFFERS). Targets (PostgreSQL, 100,000
projects): p99 under 50 ms for lists and details, under 200 ms for the dashboard.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.portfolio_data import Shape, closed_readable_by, load, pm_of, project_id, shape_for, sqlite_url
from cli.exit import hard_exit
from storage import migrate
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.support import scratch_postgres
from web import session

AUDIT_KEY = "bench-audit-key-of-at-least-thirty-two-bytes"
TARGETS_MS = {"list": 50.0, "detail": 50.0, "dashboard": 200.0}
BASELINE = "health/live (baseline)"


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    user: str
    kind: str = "list"  # list | detail | dashboard | baseline: which target applies
    page: bool = False  # a workbench page (session cookie), not the API (bearer token)


@dataclass
class Captured:
    statement: str
    parameters: Any
    seconds: float


@dataclass
class Timing:
    samples: list[float] = field(default_factory=list)
    first: float = 0.0  # the first (cold) request
    captured: list[Captured] = field(default_factory=list)  # its SELECTs

    def ms(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.samples) * 1000


def endpoints(shape: Shape) -> list[Endpoint]:
    pm = pm_of(shape, 0)  # pm.sato: every shape.pms-th project
    own, other = project_id(0), project_id(7)
    closed = project_id(closed_readable_by(shape, "ops.hayashi"))
    return [
        Endpoint(BASELINE, "/health/live", "admin", "baseline"),
        Endpoint("GET /projects (admin)", "/projects?limit=50", "admin"),
        Endpoint("GET /projects later page (admin)", "/projects?limit=50", "admin", "list:later"),
        Endpoint("GET /projects?status=terminated (admin)", "/projects?status=terminated&limit=50", "admin"),
        Endpoint("GET /projects (PM)", "/projects?limit=50", pm),
        Endpoint("GET /projects?status=active (PM)", "/projects?status=active&limit=50", pm),
        Endpoint("GET /projects (reviewer)", "/projects?limit=50", "rev.ito"),
        Endpoint("GET /projects (MOD liaison)", "/projects?limit=50", "liaison.mod"),
        Endpoint("GET /projects (ops, closed grants)", "/projects?limit=50", "ops.hayashi"),
        Endpoint("GET /projects/{id} (admin)", f"/projects/{other}", "admin", "detail"),
        Endpoint("GET /projects/{id} (PM)", f"/projects/{own}", pm, "detail"),
        Endpoint("GET /projects/{id} closed (ops)", f"/projects/{closed}", "ops.hayashi", "detail"),
        Endpoint("GET /closed-out (admin)", "/closed-out?limit=50", "admin"),
        Endpoint("GET /closed-out (MOD liaison)", "/closed-out?limit=50", "liaison.mod"),
        Endpoint("GET /tasks (reviewer)", "/tasks", "rev.ito"),
        Endpoint("GET /tasks?status=invited (reviewer)", "/tasks?status=invited", "rev.ito"),
        Endpoint("GET /handoffs (MOD liaison)", "/handoffs", "liaison.mod"),
        Endpoint("GET /handoffs (PM)", "/handoffs", pm),
        Endpoint("GET /notifications (PM)", "/notifications?limit=50", pm),
        Endpoint("GET /notifications (reviewer)", "/notifications?limit=50&unread_only=true", "rev.ito"),
        Endpoint("GET /audit (admin)", "/audit?per_page=50", "admin"),
        Endpoint("GET /fund (finance)", "/fund", "fin.suzuki", "detail"),
        Endpoint("GET /portfolio/summary (admin)", "/portfolio/summary", "admin", "dashboard"),
        Endpoint("GET /portfolio/summary (PM)", "/portfolio/summary", pm, "dashboard"),
        Endpoint("page /app/projects (admin)", "/app/projects", "admin", page=True),
        Endpoint("page /app/projects overdue (admin)", "/app/projects?overdue=1", "admin", page=True),
        Endpoint("page /app/projects (PM)", "/app/projects?sort=trl", pm, page=True),
        Endpoint("page /app/dashboard (admin)", "/app/dashboard", "admin", "dashboard", page=True),
        Endpoint("page /app/dashboard (PM)", "/app/dashboard", pm, "dashboard", page=True),
        Endpoint("page /app/inbox (reviewer)", "/app/inbox", "rev.ito", page=True),
        Endpoint("page /app/inbox submitted (reviewer)", "/app/inbox?group=submitted&page=3", "rev.ito", page=True),
    ]


@asynccontextmanager
async def database(db: str, keep: bool) -> AsyncIterator[str]:
    """A fresh migrated database: pbench_<random> on PostgreSQL, a temporary file for SQLite."""
    if db == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = sqlite_url(tmp)
            await asyncio.to_thread(migrate.upgrade, url)
            yield url
        return
    async with scratch_postgres(prefix="pbench", keep=keep) as url:
        yield url


class Client:
    """Requests as a user: the API with a bearer token, pages with a session cookie."""

    def __init__(self, api: InProcessApi) -> None:
        self.api = api
        self.life = session.Lifetime(timedelta(hours=1), timedelta(hours=8))

    async def get(self, endpoint: Endpoint, path: str) -> Any:
        if endpoint.page:
            now = datetime.now(UTC)
            cookie = session.issue(self.api.secret, session.Session(endpoint.user, now), now, self.life)
            response = await self.api.http.get(path, headers={"Cookie": f"{session.COOKIE}={cookie}"})
        else:
            response = await self.api.call("GET", path, endpoint.user)
        if response.status_code != 200:
            raise SystemExit(f"{endpoint.name}: {path} answered {response.status_code}: {response.text[:300]}")
        return response

    async def resolve(self, endpoint: Endpoint) -> str:
        """The path to time. A later page follows the list's own paging: its `next` cursor when the
        body is an envelope, else an offset halfway through."""
        if endpoint.kind != "list:later":
            return endpoint.path
        body = (await self.get(endpoint, endpoint.path)).json()
        if isinstance(body, dict):
            cursor = body.get("next")
            return f"{endpoint.path}&cursor={cursor}" if cursor else endpoint.path
        return f"{endpoint.path}&offset={len(body) * 100}"


async def measure(client: Client, endpoint: Endpoint, path: str, requests: int, warmup: int, seconds: float) -> Timing:
    """Timed requests after the warm-up, for at most `seconds` (then 5 at least). The first request
    is the cold one, and its SELECTs are kept for EXPLAIN. An endpoint whose first request is slow
    (over 2% of the budget) warms up with that one only; one slower than the budget gets 2 timed."""
    timing = Timing()
    deadline = time.perf_counter() + seconds
    i, least = 0, 5
    while len(timing.samples) < requests:
        t0 = time.perf_counter()
        if i == 0:
            async with statements(client.api) as timing.captured:
                await client.get(endpoint, path)
        else:
            await client.get(endpoint, path)
        elapsed = time.perf_counter() - t0
        if i == 0:
            timing.first = elapsed
            warmup = warmup if elapsed < seconds / 50 else 1
            least = 5 if elapsed < seconds else 2
        if i >= warmup:
            timing.samples.append(elapsed)
        i += 1
        if time.perf_counter() > deadline and len(timing.samples) >= least:
            break
    return timing


@asynccontextmanager
async def statements(api: InProcessApi) -> AsyncIterator[list[Captured]]:
    """The SELECTs issued meanwhile, with their parameters and time in the database."""
    engine = api.sessionmaker.kw["bind"].sync_engine
    captured: list[Captured] = []

    def before(_conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool) -> None:
        context._bench_started = time.perf_counter()

    def after(_conn: Any, _cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if not many and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            captured.append(Captured(statement, params, time.perf_counter() - context._bench_started))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield captured
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


async def explain(api: InProcessApi, name: str, captured: list[Captured], worst: int) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the slowest SELECTs of the endpoint's cold request."""
    total = sum(c.seconds for c in captured) * 1000
    lines = [f"  {name}: {len(captured)} SELECTs, {total:.1f} ms in the database (cold request)"]
    async with api.sessionmaker() as s:
        raw = (await (await s.connection()).get_raw_connection()).driver_connection
        assert raw is not None
        for c in sorted(captured, key=lambda c: -c.seconds)[:worst]:
            sql = " ".join(c.statement.split())
            lines.append(f"    [{c.seconds * 1000:.1f} ms] {sql[:220]}{'...' if len(sql) > 220 else ''}")
            plan = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {c.statement}", *(c.parameters or ()))
            for row in plan[:14]:
                lines.append(f"      {row[0].rstrip()[:150]}")
            if len(plan) > 14:
                lines.append(f"      ... {len(plan) - 14} more plan lines")
    return lines


async def run(args: argparse.Namespace) -> None:
    projects = args.projects or (100_000 if args.db == "postgres" else 10_000)
    shape = shape_for(projects)
    with tempfile.TemporaryDirectory() as data_dir:
        async with database(args.db, args.keep) if not args.url else _given(args.url) as url:
            if not args.url:
                figures = await load(url, shape, audit_key=AUDIT_KEY.encode(), check=not args.no_check, progress=True)
                print(
                    f"loaded {projects:,} projects ({shape.pms:,} PMs, {shape.reviewers:,} reviewers), "
                    f"{int(figures['rows']):,} rows in {figures['load_s']:.1f} s"
                    + (f"; invariant scan {figures['check_s']:.1f} s: the books balance" if not args.no_check else "")
                )
            async with inprocess_api(url, None, audit_key=AUDIT_KEY, data_dir=Path(data_dir)) as api:
                await report(api, shape, args)


@asynccontextmanager
async def _given(url: str) -> AsyncIterator[str]:
    yield url


async def report(api: InProcessApi, shape: Shape, args: argparse.Namespace) -> None:
    """Each endpoint's row as soon as it is measured (the baseline first), then the verdict."""
    client = Client(api)
    chosen = [e for e in endpoints(shape) if e.kind == "baseline" or not args.only or args.only in e.name]
    paths: dict[str, str] = {}
    print(f"{args.db}, {shape.projects:,} projects; Temporal: none (the detail's live view is not asked for)")
    print(f"  {'endpoint':44s} {'n':>4s} {'cold':>8s} {'p50':>8s} {'p99':>8s}  {'p99/base':>8s}  target", flush=True)
    missed: list[str] = []
    timings: dict[str, Timing] = {}
    base = 0.0
    for e in chosen:
        paths[e.name] = await client.resolve(e)
        t = timings[e.name] = await measure(client, e, paths[e.name], args.requests, args.warmup, args.seconds)
        p99 = t.ms(0.99)
        base = base or p99
        target = TARGETS_MS.get(e.kind.split(":")[0])
        verdict = ""
        if target is not None:
            verdict = f"< {target:.0f} ms " + (
                "met" if p99 < target else f"MISSED by {p99 - target:.0f} ms ({p99 / target:.1f}x)"
            )
            if p99 >= target:
                missed.append(e.name)
        print(
            f"  {e.name:44s} {len(t.samples):4d} {t.first * 1000:7.1f}  {t.p50:7.1f}  {p99:7.1f}  {p99 / base:7.1f}x  {verdict}",
            flush=True,
        )
    scale = (
        "at 100,000 on PostgreSQL"
        if args.db == "postgres" and shape.projects >= 100_000
        else "(targets are set for PostgreSQL at 100,000)"
    )
    print(f"targets {scale}: {len(chosen) - 1 - len(missed)} met, {len(missed)} missed")
    if args.db == "postgres" and args.explain:
        print("EXPLAIN (ANALYZE, BUFFERS), the slowest SELECTs of one request each:")
        for e in chosen[1:]:
            for line in await explain(api, e.name, timings[e.name].captured, args.explain):
                print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--projects", type=int, default=None, help="default 100,000 on postgres, 10,000 on sqlite")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per endpoint (default 200)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests first (default 5)")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most this long per endpoint (default 20)")
    parser.add_argument("--explain", type=int, default=2, help="slowest SELECTs explained per endpoint (0: none)")
    parser.add_argument("--only", default="", help="only the endpoints whose name contains this")
    parser.add_argument("--no-check", action="store_true", help="skip the ledger invariant scan after the load")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database for another run")
    parser.add_argument("--url", default="", help="measure this already loaded database (no load)")
    args = parser.parse_args()
    asyncio.run(run(args))
    hard_exit(0)


if __name__ == "__main__":
    main()
