"""The portfolio benchmark at toy size, so neither it nor its loader can rot: the loaded books pass
the full invariant scan and the audit chain verifies with its anchors, on both databases; the
benchmark times every endpoint (and on PostgreSQL explains their queries) end to end."""

from __future__ import annotations

import argparse

import pytest
from sqlalchemy import func, select

from bench import portfolio
from bench.portfolio_data import closed_readable_by, load, shape_for
from storage.audit import verify_chain
from storage.db import make_engine, make_sessionmaker
from storage.models import AuditEntry, NeedToKnowGrant, Project, Reservation, ReviewTask

KEY = portfolio.AUDIT_KEY.encode()  # the key the app under test anchors with too


def _args(**overrides: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "db": "sqlite",
        "projects": 40,
        "requests": 1,
        "warmup": 0,
        "seconds": 5.0,
        "explain": 0,
        "only": "",
        "no_check": False,
        "keep": False,
        "url": "",
    }
    return argparse.Namespace(**{**values, **overrides})


async def test_loaded_portfolio_is_sound_and_every_endpoint_answers(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    shape = shape_for(40)
    figures = await load(db_url, shape, audit_key=KEY, check=True)  # SystemExit if the books do not balance
    assert figures["rows"] > 1000
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as s:
            chain = await verify_chain(s, KEY)
            entries = await s.scalar(select(func.count()).select_from(AuditEntry))
            assert chain.broken_at is None and chain.checked == entries and chain.anchored == entries
            assert await s.scalar(select(func.count()).select_from(Project)) == 40
            assert await s.scalar(select(func.count()).select_from(ReviewTask)) > 40
            assert await s.scalar(select(func.count()).select_from(Reservation).where(Reservation.status == "open"))
            closed = closed_readable_by(shape, "ops.hayashi")
            grant = await s.get(NeedToKnowGrant, (f"KP-B{closed:07d}", "ops.hayashi"))
            assert grant is not None and grant.revoked_at is None
    finally:
        await engine.dispose()

    postgres = not db_url.startswith("sqlite")
    # Each endpoint once (a non-200 answer ends the run), measured on the database just loaded.
    await portfolio.run(_args(db="postgres" if postgres else "sqlite", url=db_url, explain=1))
    out = capsys.readouterr().out
    for endpoint in portfolio.endpoints(shape):
        assert endpoint.name in out
    assert "targets (targets are set for PostgreSQL at 100,000)" in out
    if postgres:
        assert "EXPLAIN (ANALYZE, BUFFERS)" in out and "Execution Time" in out
