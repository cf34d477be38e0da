"""The trlgate CLI, run as a real process (so its exit path is exercised too)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.security import verify_password
from storage.models import LedgerEntry, LedgerTransaction, User
from storage.seed import PROGRAMME_CODE


def trlgate(sqlite_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRLGATE_DATABASE_URL": sqlite_url}
    exe = Path(sys.prefix) / "bin" / "trlgate"
    return subprocess.run([str(exe), *args], input=stdin, env=env, capture_output=True, text=True, timeout=60)


def test_add_user_then_refuse_duplicate(sqlite_url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    args = ["add-user", "liaison.jcg", "--role", "ministry", "--full-name", "JCG liaison", "--ministry", "JCG"]
    done = trlgate(sqlite_url, *args, "--password", "s3cret-pass")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "added liaison.jcg (ministry)" in done.stdout

    async def check() -> None:
        async with sessionmaker() as session:
            user = await session.get(User, "liaison.jcg")
            assert user is not None and user.roles == ["ministry"] and user.ministry == "JCG"
            assert verify_password("s3cret-pass", user.password_hash)

    asyncio.run(check())
    again = trlgate(sqlite_url, *args, "--password", "s3cret-pass")
    assert again.returncode == 1 and "already exists" in again.stdout


def test_add_user_refuses_bad_input(sqlite_url: str) -> None:
    short = trlgate(sqlite_url, "add-user", "x.y", "--role", "pm", "--full-name", "X", "--password", "short")
    assert short.returncode == 2 and "at least 8 characters" in short.stdout
    liaison = trlgate(
        sqlite_url, "add-user", "x.y", "--role", "ministry", "--full-name", "X", "--password", "longenough"
    )
    assert liaison.returncode == 1 and "needs --ministry" in liaison.stdout
    role = trlgate(sqlite_url, "add-user", "x.y", "--role", "king", "--full-name", "X", "--password", "longenough")
    assert role.returncode == 2 and "king" in role.stderr


def test_fund_check_reports_sound_books_and_detects_drift(
    sqlite_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ok = trlgate(sqlite_url, "fund-check")
    assert ok.returncode == 0 and "books balance" in ok.stdout
    assert "MEXT: allocated 125,000,000,000" in ok.stdout

    async def corrupt() -> None:
        # An entry that breaks the zero-sum rule (what a bad manual fix would do).
        async with sessionmaker.begin() as session:
            txn = await session.get(LedgerTransaction, 1)
            assert txn is not None
            session.add(LedgerEntry(transaction_id=txn.id, account="allocation:MEXT", ministry="MEXT", amount=5))

    asyncio.run(corrupt())
    bad = trlgate(sqlite_url, "fund-check")
    assert bad.returncode == 1 and "does not balance" in bad.stdout and PROGRAMME_CODE not in bad.stderr
