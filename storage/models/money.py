"""The fund's tables: the programme and its allocations, the ledger, reservations and
tranches, ceilings, the payment outbox, four-eyes approvals and the recorded fund checks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from domain.statuses import PaymentStatus, ReservationStatus
from storage.models.base import Base, StatusType, status_check, utcnow


class Programme(Base):
    __tablename__ = "programmes"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    fund_total: Mapped[int] = mapped_column(BigInteger)


class FundAllocation(Base):
    """A funding ministry's share of a programme's fund. Its row is the lock for reservations."""

    __tablename__ = "fund_allocations"

    programme_code: Mapped[str] = mapped_column(ForeignKey("programmes.code"), primary_key=True)
    ministry: Mapped[str] = mapped_column(String(16), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)


class Reservation(Base):
    """A stage's money set aside at Go. It resolves exactly once: fully paid, or the rest released."""

    __tablename__ = "reservations"
    __table_args__ = (status_check("reservations", ReservationStatus),)

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    stage_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True, default=0, server_default="0")  # 0, then recycles
    ministry: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    paid: Mapped[int] = mapped_column(BigInteger, default=0)
    released: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[ReservationStatus] = mapped_column(StatusType(ReservationStatus), index=True)
    # Where the money is planned to be paid: [{"tranche_no", "fiscal_year", "amount"}], summing to amount.
    schedule: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Tranche(Base):
    """A paid tranche. The primary key is the business key, so a repeat can never pay twice."""

    __tablename__ = "tranches"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    stage_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    tranche_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"))
    due_at: Mapped[datetime] = mapped_column()
    paid_at: Mapped[datetime] = mapped_column(default=utcnow)
    part: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    fiscal_year: Mapped[int | None] = mapped_column(Integer, nullable=True)  # when it was paid
    planned_fiscal_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reversal_transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"), nullable=True)


class LedgerTransaction(Base):
    """Append-only (the database refuses UPDATE and DELETE); a correction is a reversal."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (CheckConstraint("legs >= 2", name="ck_ledger_transactions_legs"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    business_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # endow|reserve|pay|release|reversal
    project_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The programme date the money moved on (a project's own calendar; see domain/fiscal.py).
    booked_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"), nullable=True, unique=True)
    memo: Mapped[str] = mapped_column(Text, default="", server_default="")
    actor: Mapped[str] = mapped_column(String(64), default="system", server_default="system")
    # How many entries the transaction has: SQLite can only check that they sum to zero once the
    # last of them is in (storage/migrations/rules.py).
    legs: Mapped[int] = mapped_column(Integer)


class LedgerEntry(Base):
    """One leg of a transaction. Balance of an account = sum of its entries; legs sum to zero.
    Append-only: the database refuses UPDATE and DELETE."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account: Mapped[str] = mapped_column(String(80), index=True)
    ministry: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    # Reservation legs: the fiscal year the money is planned for; paid legs: the year it was paid;
    # endowment and allocation legs: the year of booking.
    fiscal_year: Mapped[int] = mapped_column(Integer, server_default="0")


class AccountBalance(Base):
    """Running balance of an account in a fiscal year, kept in the same transaction as its
    entries so reads never sum the whole ledger. `invariant_violations` checks it against them."""

    __tablename__ = "account_balances"

    account: Mapped[str] = mapped_column(String(80), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # endowment|allocation|reservation|paid
    ministry: Mapped[str] = mapped_column(String(16), index=True)
    balance: Mapped[int] = mapped_column(BigInteger)


class MinistryYearTotal(Base):
    """What each ministry has committed (reserved and not yet paid, or paid) to each fiscal year,
    kept with the entries so a ceiling check reads a few rows however many projects there are.
    A payment in the year it was planned for leaves it unchanged, so postings of different
    projects do not queue on these rows."""

    __tablename__ = "ministry_year_totals"

    ministry: Mapped[str] = mapped_column(String(16), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    committed: Mapped[int] = mapped_column(BigInteger)


class FiscalCeiling(Base):
    """The most a ministry's allocation may commit (reserve or pay) to one fiscal year.
    What a year leaves unused carries over to the next; a year without a ceiling is unlimited."""

    __tablename__ = "fiscal_ceilings"

    programme_code: Mapped[str] = mapped_column(ForeignKey("programmes.code"), primary_key=True)
    ministry: Mapped[str] = mapped_column(String(16), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    set_by: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[datetime] = mapped_column(default=utcnow)


class PaymentInstruction(Base):
    """The outbox: written in the ledger transaction that pays a tranche, sent by the sender."""

    __tablename__ = "payment_instructions"
    __table_args__ = (status_check("payment_instructions", PaymentStatus),)

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # the payment's business key
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), unique=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    payee: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16), default="pay")  # pay|reversal
    status: Mapped[PaymentStatus] = mapped_column(StatusType(PaymentStatus), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)


class TrancheApproval(Base):
    """Four eyes on a large tranche: requested by one person, approved by another from finance."""

    __tablename__ = "tranche_approvals"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    stage_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    tranche_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column()
    approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(nullable=True)


class FundCheck(Base):
    """One run of the full ledger invariant scan and what it found, so reads (GET /fund) show the
    latest result instead of scanning the whole ledger each time (storage/fund_checks.py)."""

    __tablename__ = "fund_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    violations: Mapped[list[Any]] = mapped_column(JSON)
    # What ran it: "schedule" or "cli:fund-check".
    ran_by: Mapped[str] = mapped_column(String(120))
    # A scheduled run's business key (its workflow id), so a retried activity records it once.
    key: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
