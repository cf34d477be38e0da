"""A worker killed with SIGKILL (a real subprocess) in the middle of paying tranches: after a
restart every tranche is paid once and its payment instruction delivered once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from activities.payments import FileDropSink
from config import REPO_ROOT
from domain.programme import PROGRAMME_CODE
from storage import ledger
from storage.db import make_engine, make_sessionmaker
from storage.models import LedgerTransaction, PaymentInstruction, Tranche
from tests.support import assert_eventually, proposal, start_project, wait_until


def spawn_worker(env: dict[str, str], failpoint: str | None) -> subprocess.Popen[bytes]:
    run_env = dict(env)
    if failpoint:
        run_env["TRLGATE_FAILPOINTS"] = failpoint
    return subprocess.Popen(
        [sys.executable, "-m", "worker"], cwd=REPO_ROOT, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


async def wait_killed(proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    try:
        code = await asyncio.to_thread(proc.wait, timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the worker never reached {what}") from None
    assert code == -signal.SIGKILL, f"worker ended with {code}, not SIGKILL at {what}: {proc.stderr.read()!r}"  # type: ignore[union-attr]


async def test_worker_killed_mid_payment_pays_once_and_sends_once(
    local_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    queue = f"crash-{uuid.uuid4().hex[:8]}"
    drop = tmp_path / "payments"
    env = {
        **os.environ,
        "TRLGATE_DATABASE_URL": sqlite_url,
        "TRLGATE_TEMPORAL_ADDRESS": local_env.client.service_client.config.target_host,
        "TRLGATE_TASK_QUEUE": queue,
        "TRLGATE_PAYMENTS_DIR": str(drop),
        "TRLGATE_SENDER_INTERVAL_SECONDS": "0.1",
        "TRLGATE_DATA_DIR": str(tmp_path),
    }
    p = proposal()
    assert p.project_id is not None
    stage1 = p.stage_plan[0]
    # First death: right after the first tranche's ledger transaction (and its outbox row) commits,
    # before the activity can report back to Temporal.
    worker = spawn_worker(env, "after_pay_commit")
    handle = await start_project(local_env.client, queue, p, seconds_per_day=0.0)
    await wait_killed(worker, "after_pay_commit")
    # Second death: the sender has handed an instruction to the bank drop but not yet marked it sent.
    worker = spawn_worker(env, "after_instruction_delivered")
    await wait_killed(worker, "after_instruction_delivered")
    assert len(FileDropSink(drop).received()) == 1
    # Third run: nothing injected. Temporal retries the unfinished payment (the ledger returns the
    # first result) and the sender finds the delivered instruction already at the bank.
    worker = spawn_worker(env, None)
    try:
        await wait_until(
            handle,
            lambda s: (s.money is not None and len(s.money.tranches_paid) == len(stage1.tranches)) or s.open_gate == 1,
            "stage 1 paid",
            timeout=90,
        )
        engine = make_engine(sqlite_url)
        sm = make_sessionmaker(engine)
        keys = [ledger.pay_key(p.project_id, 1, n) for n in range(1, len(stage1.tranches) + 1)]

        async def settled() -> bool:
            async with sm() as s:
                pending = await s.scalar(
                    select(func.count()).select_from(PaymentInstruction).where(PaymentInstruction.status == "pending")
                )
            return pending == 0 and Counter(FileDropSink(drop).received()) == Counter(keys)

        await assert_eventually(settled, "every instruction sent and at the bank once", interval=0.1, timeout=30)
        async with sm() as s:
            tranches = (await s.scalars(select(Tranche).where(Tranche.project_id == p.project_id))).all()
            pays = (
                await s.scalars(
                    select(LedgerTransaction.business_key).where(
                        LedgerTransaction.project_id == p.project_id, LedgerTransaction.kind == "pay"
                    )
                )
            ).all()
            sent = (
                await s.scalars(select(PaymentInstruction).where(PaymentInstruction.project_id == p.project_id))
            ).all()
            assert sorted(t.tranche_no for t in tranches) == list(range(1, len(stage1.tranches) + 1))
            assert sorted(pays) == sorted(keys)
            assert sorted(i.key for i in sent) == sorted(keys) and {i.status for i in sent} == {"sent"}
            assert await ledger.invariant_violations(s, PROGRAMME_CODE) == []
        # Delivered once each: the bank's own log, and one file per key.
        assert Counter(FileDropSink(drop).received()) == Counter(keys)
        assert len(list(drop.glob("*.json"))) == len(keys)
        await engine.dispose()
    finally:
        await handle.terminate("test over")
        worker.send_signal(signal.SIGTERM)
        await asyncio.to_thread(worker.wait, 30)
