"""Hypothesis drives reserve / pay / release / reverse / ceilings in random order against a small
model of the books, and checks every ledger invariant after each step, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.fiscal import fiscal_years
from storage import ledger
from storage.db import make_engine, make_sessionmaker
from storage.ledger import ScheduledAmount
from storage.models import FundAllocation, Programme, Tranche
from tests.support import ledger_project, sized

ALLOCATION = 1_000
PROJECTS = 3
YEARS = (2026, 2027, 2028)
# No shrinking: every example sets up its own programme in the database, so shrinking a failure
# would outlast the test's timeout. A failure prints its whole step sequence, unshrunk.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate]


@dataclass
class ModelReservation:
    amount: int
    schedule: dict[int, tuple[int, int]]  # tranche -> (planned FY, amount)
    paid: dict[int, int] = field(default_factory=dict)  # tranche -> amount (not reversed)
    status: str = "open"


@dataclass
class Model:
    available: int = ALLOCATION
    ceilings: dict[int, int] = field(default_factory=dict)
    reservations: dict[tuple[int, int], ModelReservation] = field(default_factory=dict)
    paid_by_year: dict[int, int] = field(default_factory=dict)

    def reserved_by_year(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for r in self.reservations.values():
            if r.status != "open":
                continue
            for t, (fy, amount) in r.schedule.items():
                if t not in r.paid:
                    out[fy] = out.get(fy, 0) + amount
        return out

    def within_ceilings(self, extra: dict[int, int] | None = None, ceilings: dict[int, int] | None = None) -> bool:
        reserved = self.reserved_by_year()
        for fy, v in (extra or {}).items():
            reserved[fy] = reserved.get(fy, 0) + v
        rows = fiscal_years(self.ceilings if ceilings is None else ceilings, reserved, self.paid_by_year)
        return all(r.available is None or r.available >= 0 for r in rows)


def run_machine(url: str, examples: int) -> None:
    loop = asyncio.new_event_loop()
    engine = make_engine(url)
    sm: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)

    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            ns = uuid.uuid4().hex[:8]
            self.code, self.ministry = f"H{ns}", f"H{ns}"
            self.projects = [f"H{ns}-{i}" for i in range(PROJECTS)]
            self.model = Model()
            self.txns: list[int] = []
            loop.run_until_complete(self._setup())

        async def _setup(self) -> None:
            async with sm.begin() as s:
                s.add(Programme(code=self.code, name="hypothesis", fund_total=ALLOCATION))
                await s.flush()
                s.add(FundAllocation(programme_code=self.code, ministry=self.ministry, amount=ALLOCATION))
                await ledger.endow(
                    s, programme_code=self.code, ministry=self.ministry, amount=ALLOCATION, booked_on=date(2026, 4, 1)
                )
                for pid in self.projects:
                    s.add(ledger_project(pid, self.code, self.ministry, ALLOCATION))

        def _run(self, coro_fn):  # type: ignore[no-untyped-def]
            async def go():  # type: ignore[no-untyped-def]
                async with sm.begin() as s:
                    return await coro_fn(s)

            return loop.run_until_complete(go())

        @rule(
            p=st.integers(0, PROJECTS - 1),
            stage=st.integers(1, 2),
            amounts=st.lists(st.integers(1, 300), min_size=1, max_size=2),
            years=st.lists(st.sampled_from(YEARS), min_size=2, max_size=2),
        )
        def reserve(self, p: int, stage: int, amounts: list[int], years: list[int]) -> None:
            schedule = {t: (years[t - 1], a) for t, a in enumerate(amounts, start=1)}
            amount = sum(amounts)
            existing = self.model.reservations.get((p, stage))
            extra: dict[int, int] = {}
            for fy, a in schedule.values():
                extra[fy] = extra.get(fy, 0) + a
            expect_ok = existing is None and self.model.available >= amount and self.model.within_ceilings(extra)
            try:
                view = self._run(
                    lambda s: ledger.reserve(
                        s,
                        programme_code=self.code,
                        project_id=self.projects[p],
                        stage_no=stage,
                        ministry=self.ministry,
                        amount=amount,
                        schedule=[ScheduledAmount(t, fy, a) for t, (fy, a) in schedule.items()],
                        booked_on=date(2026, 6, 1),
                    )
                )
            except ledger.InsufficientFunds:
                assert existing is None and not expect_ok
                return
            except ledger.IdempotencyConflict:
                assert existing is not None and existing.amount != amount
                return
            if existing is not None:
                assert not view.created and existing.amount == amount
                return
            assert expect_ok and view.created
            self.model.available -= amount
            self.model.reservations[(p, stage)] = ModelReservation(amount, schedule)

        @rule(
            p=st.integers(0, PROJECTS - 1),
            stage=st.integers(1, 2),
            tranche=st.integers(1, 2),
            fy=st.sampled_from(YEARS),
        )
        def pay(self, p: int, stage: int, tranche: int, fy: int) -> None:
            r = self.model.reservations.get((p, stage))
            planned = r.schedule.get(tranche) if r is not None else None
            amount = planned[1] if planned is not None else 7
            try:
                view = self._run(
                    lambda s: ledger.pay_tranche(
                        s,
                        project_id=self.projects[p],
                        stage_no=stage,
                        tranche_no=tranche,
                        amount=amount,
                        due_at=datetime(fy, 6, 1, tzinfo=UTC),
                        paid_on=date(fy, 6, 1),
                    )
                )
            except ledger.NoOpenReservation:
                assert r is None or r.status != "open"
                return
            except ledger.InsufficientFunds:
                # Paid in another year than planned: the move must break that year's ceiling.
                assert r is not None and planned is not None and planned[0] != fy
                assert not self.model.within_ceilings(extra={fy: amount, planned[0]: -amount})
                return
            except ledger.LedgerError:
                assert r is not None and (planned is None or tranche in r.paid)
                return
            assert r is not None and planned is not None
            if not view.created:
                return  # a repeat of a payment (perhaps since reversed): the first result
            assert r.status == "open" and tranche not in r.paid
            assert planned[0] == fy or self.model.within_ceilings(extra={fy: amount, planned[0]: -amount})
            self.txns.append(view.transaction_id)
            r.paid[tranche] = amount
            self.model.paid_by_year[fy] = self.model.paid_by_year.get(fy, 0) + amount
            if sum(r.paid.values()) == r.amount:
                r.status = "settled"

        @rule(p=st.integers(0, PROJECTS - 1))
        def release(self, p: int) -> None:
            released = self._run(
                lambda s: ledger.release_open(s, project_id=self.projects[p], booked_on=date(2028, 6, 1))
            )
            expected = 0
            for (q, _), r in self.model.reservations.items():
                if q == p and r.status == "open":
                    expected += r.amount - sum(r.paid.values())
                    r.status = "released"
            assert released == expected
            self.model.available += expected

        @rule(data=st.data())
        def reverse(self, data: st.DataObject) -> None:
            if not self.txns:
                return
            txn_id = data.draw(st.sampled_from(self.txns))
            try:
                view = self._run(
                    lambda s: ledger.reverse(
                        s, transaction_id=txn_id, actor="fin.suzuki", memo="hypothesis", booked_on=date(2028, 6, 1)
                    )
                )
            except ledger.NotReversible:
                return
            if not view.created:
                return
            # Find the payment in the model through the ledger (the model keeps no transaction ids).
            tranche = self._run(lambda s: _tranche_of(s, txn_id))
            p = self.projects.index(tranche[0])
            r = self.model.reservations[(p, tranche[1])]
            assert r.status in ("open", "settled")
            amount = r.paid.pop(tranche[2])
            self.model.paid_by_year[tranche[3]] -= amount
            r.status = "open"
            self.txns.remove(txn_id)

        @rule(fy=st.sampled_from(YEARS), amount=st.integers(0, 600))
        def set_ceiling(self, fy: int, amount: int) -> None:
            proposed = dict(self.model.ceilings)
            proposed[fy] = amount
            expect_ok = self.model.within_ceilings(ceilings=proposed)
            try:
                self._run(
                    lambda s: ledger.set_ceiling(
                        s,
                        programme_code=self.code,
                        ministry=self.ministry,
                        fiscal_year=fy,
                        amount=amount,
                        actor="fin.suzuki",
                    )
                )
            except ledger.InsufficientFunds:
                assert not expect_ok
                return
            assert expect_ok
            self.model.ceilings[fy] = amount

        @invariant()
        def books_are_sound(self) -> None:
            async def check(s: AsyncSession) -> tuple[list[str], ledger.MinistryFunds]:
                funds = [m for m in await ledger.fund_summary(s, self.code) if m.ministry == self.ministry]
                return await ledger.invariant_violations(s, self.code), funds[0]

            violations, funds = self._run(check)
            assert violations == []
            assert funds.available == self.model.available
            assert funds.reserved == sum(self.model.reserved_by_year().values())
            assert funds.paid == sum(self.model.paid_by_year.values())
            assert funds.paid + funds.reserved + funds.available == funds.allocated == ALLOCATION

    try:
        run_state_machine_as_test(
            LedgerMachine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
                phases=PHASES,
            ),
        )
    finally:
        loop.run_until_complete(engine.dispose())
        loop.close()


async def _tranche_of(s: AsyncSession, transaction_id: int) -> tuple[str, int, int, int]:
    t = await s.scalar(select(Tranche).where(Tranche.transaction_id == transaction_id))
    assert t is not None and t.fiscal_year is not None
    return t.project_id, t.stage_no, t.tranche_no, t.fiscal_year


@pytest.mark.stress
async def test_random_money_movements_keep_every_invariant(db_url: str) -> None:
    await asyncio.to_thread(run_machine, db_url, sized(suite=8, deep=60))
