"""The fund: totals, ceilings, corrections and the reconciliation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from domain.bounds import LongText, YenOrZero

__all__ = [
    "CeilingIn",
    "CeilingOut",
    "DriftOut",
    "FiscalYearOut",
    "FundOut",
    "LedgerEntryOut",
    "MinistryFundsOut",
    "ReconciliationOut",
    "ReversalIn",
    "ReversalOut",
]


class FiscalYearOut(BaseModel):
    fiscal_year: int = Field(description="FY2026 runs 1 April 2026 - 31 March 2027.")
    ceiling: int | None = Field(description="Most the ministry may commit to this year; null: no ceiling.")
    carried_in: int = Field(description="Unused ceiling carried over from the previous year.")
    reserved: int
    paid: int
    available: int | None = Field(description="ceiling + carried_in - reserved - paid; null: no ceiling.")


class MinistryFundsOut(BaseModel):
    ministry: str
    allocated: int
    reserved: int
    paid: int
    available: int
    fiscal_years: list[FiscalYearOut] = []


class FundOut(BaseModel):
    programme: str
    name: str
    fund_total: int
    allocated: int
    reserved: int
    paid: int
    available: int
    by_ministry: list[MinistryFundsOut]
    invariant_violations: list[str]
    checked_at: datetime | None = None  # when the ledger check behind invariant_violations ran


class CeilingIn(BaseModel):
    amount: YenOrZero
    reason: Annotated[LongText, Field(max_length=2000, description="Why the ceiling changes; audited.")] = ""


class CeilingOut(BaseModel):
    programme: str
    ministry: str
    fiscal_year: int
    amount: int
    set_by: str


class ReversalIn(BaseModel):
    reason: Annotated[LongText, Field(min_length=3, max_length=2000)]


class ReversalOut(BaseModel):
    transaction_id: int
    reverses_id: int
    kind: str
    amount: int
    created: bool


class DriftOut(BaseModel):
    project_id: str
    problem: str
    kind: str = Field(
        "",
        description="paid_mismatch, no_workflow, workflow_silent, ended_with_open, "
        "status_mismatch, unpaid_in_ledger, unknown_to_workflow or no_reservation.",
    )
    facts: dict[str, int | str] = Field({}, description="The drift's figures (amounts, tranche, stage, statuses).")


class ReconciliationOut(BaseModel):
    checked: int
    drifts: list[DriftOut]


class LedgerEntryOut(BaseModel):
    """One leg of a ledger transaction, as the CSV export has it (a closed project the reader may
    not read named by its pseudonym wherever it appears)."""

    entry_id: int
    transaction_id: int
    business_key: str
    kind: str = Field(description="endow, reserve, pay, release or reversal")
    project_id: str | None
    booked_on: str | None = Field(description="The programme date the money moved on (YYYY-MM-DD).")
    recorded_at: str
    account: str
    ministry: str
    fiscal_year: int
    amount: int = Field(description="Integer yen; a transaction's entries sum to zero.")
    reverses_id: int | None
    actor: str
    memo: str
