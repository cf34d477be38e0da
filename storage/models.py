"""SQLAlchemy 2 models. The same schema runs on SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are UTC, and come back with their offset on every database: SQLite keeps none
    (it would hand back naive values, which break the API's documented date-time format)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime()}


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


class Ministry(Base):
    __tablename__ = "ministries"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class User(Base):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[Any]] = mapped_column(JSON)
    ministry: Mapped[str | None] = mapped_column(ForeignKey("ministries.code"), nullable=True)
    active: Mapped[bool] = mapped_column(default=True)
    # Security clearance for closed (保全) work: a level and compartments (domain/security.py).
    clearance_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    compartments: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    programme_code: Mapped[str] = mapped_column(ForeignKey("programmes.code"))
    workflow_id: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str] = mapped_column(String(200))
    performer: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the performer's contact user
    programme_manager: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    funding_ministry: Mapped[str] = mapped_column(String(16))
    research_vision: Mapped[str] = mapped_column(Text)
    classification: Mapped[str] = mapped_column(String(16))
    start_trl: Mapped[int] = mapped_column(Integer)
    target_trl: Mapped[int] = mapped_column(Integer)
    current_trl: Mapped[int] = mapped_column(Integer)
    stage_no: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), index=True)
    total_budget: Mapped[int] = mapped_column(BigInteger)
    reviewers: Mapped[list[Any]] = mapped_column(JSON)
    public_use_ministries: Mapped[list[Any]] = mapped_column(JSON)
    stop_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    lessons: Mapped[str] = mapped_column(Text, default="", server_default="")
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    public_use_achieved: Mapped[bool | None] = mapped_column(nullable=True)  # set when it completes
    # A closed project's label: readers need this level, these compartments and a grant.
    label_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    label_compartments: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Stage(Base):
    __tablename__ = "stages"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    stage_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    trl_in: Mapped[int] = mapped_column(Integer)
    trl_out: Mapped[int] = mapped_column(Integer)
    duration_days: Mapped[int] = mapped_column(Integer)
    budget: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="planned")  # planned|active|passed|stopped


class Gate(Base):
    __tablename__ = "gates"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    gate_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # open|decided|cancelled
    round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    workflow_id: Mapped[str | None] = mapped_column(String(120), nullable=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    recommendation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    opened_at: Mapped[datetime] = mapped_column()


class ReviewTask(Base):
    __tablename__ = "review_tasks"
    __table_args__ = (UniqueConstraint("project_id", "gate_no", "round", "reviewer", name="uq_review_tasks_round"),)

    id: Mapped[str] = mapped_column(String(120), primary_key=True)  # <project>-g<gate>[-r<round>]-<reviewer>
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    gate_no: Mapped[int] = mapped_column(Integer)
    round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    reviewer: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    # open (first design) | invited | accepted | declined | recused | reassigned | submitted | cancelled
    status: Mapped[str] = mapped_column(String(16))
    conflict_statement: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Review(Base):
    __tablename__ = "reviews"

    task_id: Mapped[str] = mapped_column(ForeignKey("review_tasks.id"), primary_key=True)
    must_meet: Mapped[dict[str, Any]] = mapped_column(JSON)
    scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    comment: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    amended_at: Mapped[datetime | None] = mapped_column(nullable=True)


class GateDecision(Base):
    __tablename__ = "decisions"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    gate_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True, default=1, server_default="1")
    decision: Mapped[str] = mapped_column(String(16))
    terms: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # conditions, recycle terms
    decided_by: Mapped[str] = mapped_column(ForeignKey("users.username"))
    justification: Mapped[str] = mapped_column(Text, default="")
    recommendation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    decided_at: Mapped[datetime] = mapped_column()


class Reservation(Base):
    """A stage's money set aside at Go. It resolves exactly once: fully paid, or the rest released."""

    __tablename__ = "reservations"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    stage_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True, default=0, server_default="0")  # 0, then recycles
    ministry: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    paid: Mapped[int] = mapped_column(BigInteger, default=0)
    released: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open|settled|released|reversed
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

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # the payment's business key
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), unique=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    payee: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16), default="pay")  # pay|reversal
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending|sent
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ProgressReport(Base):
    """A performer's report for one fiscal year, due at its end; a tranche waits for the accepted
    reports of every year that has ended before it."""

    __tablename__ = "progress_reports"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # submitted|accepted|returned
    summary: Mapped[str] = mapped_column(Text)
    submitted_by: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[datetime] = mapped_column()
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    note: Mapped[str] = mapped_column(Text, default="", server_default="")


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


class Handoff(Base):
    __tablename__ = "handoffs"
    __table_args__ = (UniqueConstraint("project_id", "ministry", "kind", name="uq_handoffs_project_ministry_kind"),)

    id: Mapped[str] = mapped_column(String(80), primary_key=True)  # <project>-h|d-<ministry>
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    ministry: Mapped[str] = mapped_column(ForeignKey("ministries.code"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="final", server_default="final")  # final|demonstration
    status: Mapped[str] = mapped_column(String(16))  # pending|accepted|declined|rerouted|cancelled
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id"))
    workflow_id: Mapped[str | None] = mapped_column(String(120), nullable=True)  # none: the first hand-offs
    accepted_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    receiving_programme: Mapped[str] = mapped_column(Text, default="", server_default="")
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    note: Mapped[str] = mapped_column(Text, default="")
    deadline_at: Mapped[datetime | None] = mapped_column(nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    rerouted_from: Mapped[str | None] = mapped_column(String(80), nullable=True)
    rerouted_to: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)


class NeedToKnowGrant(Base):
    """An explicit grant to read one closed project (保全): the clearance alone is not enough."""

    __tablename__ = "need_to_know_grants"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), primary_key=True)
    granted_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)  # business key
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # handoff_package|closeout
    template: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Who did what, when (UTC), to what, and how it ended. Written for every command.

    Tamper-evident: each entry carries the hash of the one before and its own hash over both
    (storage/audit.py); the database refuses UPDATE and DELETE (storage/migrations/rules.py)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))  # ok|rejected|error
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64), default="", server_default="")
    hash: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # HMAC of `hash` under the audit key, which lives outside the database.
    anchor: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # A person's command, audited by the write that carried it out: one entry per command (the
    # workflow id and Update id), however often that write is retried.
    command_key: Mapped[str | None] = mapped_column(String(200), unique=True, index=True, default=None)


class AuditChainHead(Base):
    """The chain's last hash: one row, locked by every transaction that appends to the log, so
    entries chain in the order they commit."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class LoginThrottle(Base):
    """Failed sign-ins in a row for one username or one client address, and its lock (storage/
    throttle.py). Kept in the database so every API process counts and locks alike."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)  # user:<name> or address:<ip>
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(index=True)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)


class Notification(Base):
    """A message to a participant (reminder, escalation, decision), keyed by its business key so a
    retried send is stored once. `at` is the workflow's own time."""

    __tablename__ = "notifications"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GateEvent(Base):
    """Every accepted gate command (evidence, invitation, declaration, review, amendment, decision)."""

    __tablename__ = "gate_events"
    __table_args__ = (UniqueConstraint("key", name="uq_gate_events_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    gate_no: Mapped[int] = mapped_column(Integer)
    round: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column()
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


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
