"""A project's money: its statement and its yearly progress reports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictBool

from domain.bounds import FiscalYear, LongText

__all__ = ["ReportIn", "ReportReviewIn", "StatementLineOut", "StatementOut"]


class StatementLineOut(BaseModel):
    transaction_id: int
    business_key: str
    kind: str
    booked_on: date | None
    recorded_at: datetime
    fiscal_years: list[int]
    reserved_change: int
    paid_change: int
    reserved_balance: int
    paid_balance: int
    memo: str
    reverses_id: int | None


class StatementOut(BaseModel):
    project_id: str
    funding_ministry: str
    reserved: int = Field(description="Held for the project and not yet paid.")
    paid: int
    lines: list[StatementLineOut]


class ReportIn(BaseModel):
    fiscal_year: FiscalYear
    summary: Annotated[LongText, Field(min_length=10, max_length=20000)]


class ReportReviewIn(BaseModel):
    accept: StrictBool
    note: Annotated[LongText, Field(max_length=5000)] = ""
