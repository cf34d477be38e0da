"""The payment sender: reads the outbox (`payment_instructions`, written in the same transaction
as the ledger posting) and delivers each instruction once.

Delivery is a file drop, the way a bank's transfer interface usually works: one JSON file per
instruction, named by its business key and created exclusively, so a second delivery of the same
key is recognised at the sink and skipped. A crash after the ledger write leaves the instruction
pending (nothing lost); a crash after delivery but before the row is marked sent re-runs the
delivery, which the sink refuses (nothing sent twice). Several senders (worker replicas) may run:
each claims rows with FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serialises writers anyway.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities import failpoints
from domain.statuses import PaymentStatus
from storage.db import write_lock
from storage.models import PaymentInstruction, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    key: str
    delivered: bool  # False: the sink already had it (a re-run after a crash)


class FileDropSink:
    """The bank drop folder. `received.log` lists each instruction the sink actually took in."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.folder / (key.replace(":", "_") + ".json")

    def deliver(self, instruction: PaymentInstruction) -> Delivery:
        body = json.dumps(
            {
                "key": instruction.key,
                "kind": instruction.kind,
                "payee": instruction.payee,
                "amount_jpy": instruction.amount,
                "project_id": instruction.project_id,
                "ledger_transaction": instruction.transaction_id,
            },
            sort_keys=True,
        ).encode()
        try:
            fd = os.open(self._path(instruction.key), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except FileExistsError:
            return Delivery(instruction.key, delivered=False)
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        with (self.folder / "received.log").open("a") as f:
            f.write(instruction.key + "\n")
        return Delivery(instruction.key, delivered=True)

    def received(self) -> list[str]:
        path = self.folder / "received.log"
        return path.read_text().split() if path.exists() else []


class PaymentSender:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], sink: FileDropSink, batch: int = 50) -> None:
        self.sessionmaker = sessionmaker
        self.sink = sink
        self.batch = batch
        self.lock = write_lock(sessionmaker)

    async def send_pending(self) -> list[Delivery]:
        """Deliver what is pending, in one transaction per batch; returns what was handled."""
        if self.lock is None:
            return await self._send_batch()
        async with self.lock:
            return await self._send_batch()

    async def _send_batch(self) -> list[Delivery]:
        async with self.sessionmaker.begin() as session:
            rows = (
                await session.scalars(
                    select(PaymentInstruction)
                    .where(PaymentInstruction.status == "pending")
                    .order_by(PaymentInstruction.created_at, PaymentInstruction.key)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            out: list[Delivery] = []
            for row in rows:
                row.attempts += 1
                delivery = await asyncio.to_thread(self.sink.deliver, row)
                failpoints.hit("after_instruction_delivered")
                row.status = PaymentStatus.SENT
                row.sent_at = utcnow()
                out.append(delivery)
            return out

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                sent = await self.send_pending()
                if sent:
                    log.info("payment instructions sent: %s", ", ".join(d.key for d in sent))
            except Exception:  # keep sending after a database hiccup; the rows stay pending
                log.exception("payment sender pass failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass
