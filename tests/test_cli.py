"""The trlgate CLI, run as a real process (so its exit path is exercised too)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.payments import FileDropSink
from api.security import verify_password
from domain.programme import PROGRAMME_CODE
from storage import ledger
from storage.audit import audit
from storage.models import AccountBalance, AuditEntry, FundCheck, LoginThrottle, User
from storage.projects import insert_project
from tests.cli import trlgate, trlgate_script
from tests.support import proposal


def test_add_user_then_refuse_duplicate(sqlite_url: str, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    args = ["add-user", "liaison.jcg", "--role", "ministry", "--full-name", "JCG liaison", "--ministry", "JCG"]
    done = trlgate_script(sqlite_url, *args, "--password", "s3cret-pass")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "added liaison.jcg (ministry)" in done.stdout

    async def check() -> None:
        async with sessionmaker() as session:
            user = await session.get(User, "liaison.jcg")
            assert user is not None and user.roles == ["ministry"] and user.ministry == "JCG"
            assert verify_password("s3cret-pass", user.password_hash)

    asyncio.run(check())
    again = trlgate_script(sqlite_url, *args, "--password", "s3cret-pass")
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
        # A running balance that no longer matches its entries (what a bad manual fix would do;
        # the database itself refuses an entry that breaks the zero-sum rule).
        async with sessionmaker.begin() as session:
            await session.execute(
                update(AccountBalance).where(AccountBalance.account == "allocation:MEXT").values(balance=5)
            )

    asyncio.run(corrupt())
    bad = trlgate(sqlite_url, "fund-check")
    assert bad.returncode == 1 and "running balance of allocation:MEXT" in bad.stdout, bad.stdout
    assert PROGRAMME_CODE not in bad.stderr

    async def recorded() -> list[tuple[str, int]]:
        async with sessionmaker() as session:
            checks = (await session.scalars(select(FundCheck).order_by(FundCheck.id))).all()
            return [(c.ran_by, len(c.violations)) for c in checks]

    [(first_by, first), (second_by, second)] = asyncio.run(recorded())  # each run is recorded for GET /fund
    assert first_by == second_by == "cli:fund-check" and first == 0 and second >= 1


def test_ceilings_payments_and_reconciliation_from_the_cli(
    sqlite_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path, local_env: WorkflowEnvironment
) -> None:
    set_ok = trlgate(sqlite_url, "set-ceiling", "MEXT", "2026", "900", "--by", "fin.suzuki")
    assert set_ok.returncode == 0 and "MEXT FY2026 ceiling: 900 yen" in set_ok.stdout
    p = proposal()
    assert p.project_id is not None
    pid = p.project_id

    async def pay() -> None:
        async with sessionmaker.begin() as s:
            await insert_project(s, PROGRAMME_CODE, f"project-{pid}", p)
            await ledger.reserve(
                s,
                programme_code=PROGRAMME_CODE,
                project_id=pid,
                stage_no=1,
                ministry="MEXT",
                amount=800,
                booked_on=date(2026, 6, 1),
            )
            await ledger.pay_tranche(
                s,
                project_id=pid,
                stage_no=1,
                tranche_no=1,
                amount=300,
                due_at=datetime(2026, 6, 1, tzinfo=UTC),
                paid_on=date(2026, 6, 1),
            )

    asyncio.run(pay())
    below = trlgate(sqlite_url, "set-ceiling", "MEXT", "2026", "500")
    assert below.returncode == 1 and "below what is committed" in below.stdout
    check = trlgate(sqlite_url, "fund-check")
    assert (
        check.returncode == 0
        and "FY2026: ceiling 900 + carried 0; reserved 500, paid 300, available 100" in check.stdout
    )

    drop = tmp_path / "drop"
    env = {"TRLGATE_PAYMENTS_DIR": str(drop)}
    sent = trlgate(sqlite_url, "send-payments", env=env)
    assert sent.returncode == 0 and "1 payment instruction(s) sent" in sent.stdout, sent.stdout + sent.stderr
    assert trlgate(sqlite_url, "send-payments", env=env).stdout.startswith("0 payment instruction(s)")
    assert FileDropSink(drop).received() == [f"pay:{pid}:1:1"]

    # The project has money on the books but no workflow: a drift the reconciliation reports.
    temporal = {"TRLGATE_TEMPORAL_ADDRESS": local_env.client.service_client.config.target_host}
    drift = trlgate(sqlite_url, "reconcile", env=temporal)
    assert drift.returncode == 1, drift.stdout + drift.stderr
    assert f"no workflow project-{pid} exists" in drift.stdout and "1 project(s) checked, 1 drift(s)" in drift.stdout


def test_unlock_clears_a_users_sign_in_lock_and_is_audited(
    sqlite_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async def lock() -> None:
        async with sessionmaker.begin() as s:
            until = datetime.now(UTC) + timedelta(hours=1)
            s.add(LoginThrottle(key="user:admin", failures=9, last_failure_at=datetime.now(UTC), locked_until=until))

    async def state() -> tuple[LoginThrottle | None, list[tuple[str, str, dict[str, object]]]]:
        async with sessionmaker() as s:
            row = await s.get(LoginThrottle, "user:admin")
            entries = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "unlock_sign_in"))).all()
            return row, [(e.actor, e.target, e.detail) for e in entries]

    asyncio.run(lock())
    done = trlgate(sqlite_url, "unlock", "admin", "--by", "ops.kato")
    assert done.returncode == 0 and "admin unlocked" in done.stdout, done.stdout + done.stderr
    row, entries = asyncio.run(state())
    assert row is not None and row.failures == 0 and row.locked_until is None
    assert entries == [("ops.kato", "user:admin", {"was_locked": True})]
    again = trlgate(sqlite_url, "unlock", "admin")
    assert again.returncode == 0 and "admin was not locked" in again.stdout
    assert asyncio.run(state())[1][1:] == [("cli", "user:admin", {"was_locked": False})]
    assert trlgate(sqlite_url, "unlock", "a" * 65).returncode == 2


def test_audit_verify_reports_the_first_broken_link(
    sqlite_url: str, sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    # The hash chain alone: no audit key in this data folder (anchors: tests/test_audit_chain.py).
    keyless = {"TRLGATE_DATA_DIR": str(tmp_path)}

    async def write() -> None:
        for i in range(3):
            async with sessionmaker.begin() as s:
                audit(s, "fin.suzuki", "test", f"thing:{i}")

    asyncio.run(write())
    ok = trlgate(sqlite_url, "audit-verify", env=keyless)
    assert ok.returncode == 0 and "audit log intact" in ok.stdout, ok.stdout + ok.stderr

    async def tamper() -> int:
        async with sessionmaker.begin() as s:
            victim = await s.scalar(select(func.max(AuditEntry.id)))
            await s.execute(text("DROP TRIGGER audit_log_no_update"))
            await s.execute(text("UPDATE audit_log SET outcome = 'rejected' WHERE id = :i"), {"i": victim})
            return int(victim or 0)

    victim = asyncio.run(tamper())
    bad = trlgate(sqlite_url, "audit-verify", env=keyless)
    assert bad.returncode == 1 and f"broken at audit entry {victim}: entry {victim} was changed" in bad.stdout


def test_rotate_key_puts_a_new_key_in_front_and_keeps_the_old(sqlite_url: str, tmp_path: Path) -> None:
    from connection.codec import Keyring

    env = {"TRLGATE_CODEC_KEYS": "", "TRLGATE_DATA_DIR": str(tmp_path)}
    first = Keyring.from_file(tmp_path / "codec-keys")
    done = trlgate(sqlite_url, "rotate-key", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    rotated = Keyring.from_file(tmp_path / "codec-keys", create=False)
    assert rotated.keys[1:] == first.keys and rotated.active[0] != first.active[0]
    assert f"active key is now {rotated.active[0]}" in done.stdout
    refused = trlgate(sqlite_url, "rotate-key", env={"TRLGATE_CODEC_KEYS": first.dump().strip()})
    assert refused.returncode == 2 and "TRLGATE_CODEC_KEYS" in refused.stdout


@pytest.mark.postgres
def test_migrate_never_prints_the_database_password(postgres_url: str) -> None:
    done = trlgate(postgres_url, "migrate", env={"TRLGATE_DATABASE_PASSWORD": "hunter2-secret"})
    assert done.returncode == 0, done.stdout + done.stderr
    printed = " ".join(done.stdout.split())  # rich wraps a long line
    assert "migrated postgresql+asyncpg://postgres:***@" in printed and "hunter2" not in done.stdout


def test_replay_tells_whether_a_history_replays_on_this_code(sqlite_url: str, tmp_path: Path) -> None:
    stored = Path(__file__).parent / "histories" / "project-HIST-v1-cancel-run1.json"
    ok = trlgate(sqlite_url, "replay", str(stored))
    assert ok.returncode == 0 and "replays on this code" in ok.stdout, ok.stdout
    # the same history after a command changed without a patch: the first activity is another one
    history = json.loads(stored.read_text())
    scheduled = next(e for e in history["events"] if "activityTaskScheduledEventAttributes" in e)
    scheduled["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "renamed_activity"
    changed = tmp_path / "project-changed.json"
    changed.write_text(json.dumps(history))
    failed = trlgate(sqlite_url, "replay", str(changed))
    assert failed.returncode == 1 and "Nondeterminism" in " ".join(failed.stdout.split()), failed.stdout
    missing = trlgate(sqlite_url, "replay", str(tmp_path / "absent.json"))
    assert missing.returncode == 2 and "cannot read a history" in missing.stdout
