"""A reservation's schedule: in which fiscal year each tranche's money is planned to be paid."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.fiscal import fiscal_year, jst_date
from storage.ledger.accounts import UNSCHEDULED
from storage.ledger.posting import LedgerError
from storage.models import Reservation, Tranche


@dataclass(frozen=True)
class ScheduledAmount:
    """Part of a reservation planned for one tranche, in the fiscal year it falls due."""

    tranche_no: int
    fiscal_year: int
    amount: int


class Planned(Protocol):
    """What a schedule is read from: a Reservation, or a row of its columns (the ledger's hot path)."""

    project_id: str
    stage_no: int
    amount: int
    schedule: list[Any] | None
    created_at: datetime


def schedule_of(reservation: Planned) -> list[dict[str, int]]:
    """The reservation's plan; one stored without a schedule is unscheduled in the year it was
    booked."""
    return reservation.schedule or [
        {
            "tranche_no": UNSCHEDULED,
            "fiscal_year": fiscal_year(jst_date(reservation.created_at)),
            "amount": reservation.amount,
        }
    ]


def planned_year(reservation: Planned, tranche_no: int, amount: int | None = None) -> int:
    """The fiscal year the tranche was reserved for; a tranche the schedule does not hold (or
    holds with another amount) is refused. An unscheduled reservation: its one planned year."""
    schedule = schedule_of(reservation)
    if schedule[0]["tranche_no"] == UNSCHEDULED:
        return int(schedule[0]["fiscal_year"])
    for s in schedule:
        if s["tranche_no"] == tranche_no:
            if amount is not None and s["amount"] != amount:
                raise LedgerError(
                    f"tranche {tranche_no} of stage {reservation.stage_no} of {reservation.project_id} was "
                    f"reserved as {s['amount']} yen, not {amount}"
                )
            return int(s["fiscal_year"])
    raise LedgerError(
        f"stage {reservation.stage_no} of {reservation.project_id} has no tranche {tranche_no} in its schedule"
    )


async def unpaid_by_year(session: AsyncSession, reservation: Reservation) -> dict[int, int]:
    """What the reservation still holds, by the fiscal year it was planned for."""
    rest: dict[int, int] = defaultdict(int)
    for s in schedule_of(reservation):
        rest[int(s["fiscal_year"])] += int(s["amount"])
    paid = await session.scalars(
        select(Tranche).where(
            Tranche.project_id == reservation.project_id,
            Tranche.stage_no == reservation.stage_no,
            Tranche.part == reservation.part,
            Tranche.reversal_transaction_id.is_(None),
        )
    )
    for t in paid.all():
        rest[
            t.planned_fiscal_year if t.planned_fiscal_year is not None else planned_year(reservation, t.tranche_no)
        ] -= t.amount
    return {fy: v for fy, v in rest.items() if v}
