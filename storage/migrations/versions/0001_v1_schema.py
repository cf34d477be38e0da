"""v1 schema: the whole schema of the first release in one step

No deployment existed before v1, so the nine migrations that built this schema were folded into
this one (it created exactly what they did; the zero-sum triggers, the status CHECK constraints
and fund_checks came after). From here on every schema change is a new migration on top of it.

Over 400 lines on purpose: the baseline is the whole schema as one reviewed unit, a declarative
list of tables that reads top to bottom; the triggers live in storage/migrations/rules.py.

Revision ID: 0001
Revises:
Create Date: 2026-11-30 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.migrations import rules

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Creation order (a table after those it references); downgrade drops them in reverse.
TABLES = (
    "account_balances",
    "audit_chain_head",
    "audit_log",
    "ledger_transactions",
    "login_throttle",
    "ministries",
    "ministry_year_totals",
    "programmes",
    "fiscal_ceilings",
    "fund_checks",
    "fund_allocations",
    "ledger_entries",
    "users",
    "projects",
    "decisions",
    "documents",
    "gate_events",
    "gates",
    "need_to_know_grants",
    "notifications",
    "payment_instructions",
    "progress_reports",
    "reservations",
    "review_tasks",
    "stages",
    "tranche_approvals",
    "tranches",
    "handoffs",
    "reviews",
)


def upgrade() -> None:
    op.create_table(
        "account_balances",
        sa.Column("account", sa.String(length=80), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ministry", sa.String(length=16), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", "fiscal_year"),
    )
    op.create_index("ix_account_balances_kind", "account_balances", ["kind"], unique=False)
    op.create_index("ix_account_balances_ministry", "account_balances", ["ministry"], unique=False)
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), server_default="", nullable=False),
        sa.Column("hash", sa.String(length=64), server_default="", nullable=False),
        sa.Column("anchor", sa.String(length=64), server_default="", nullable=False),
        sa.Column("command_key", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.create_index("ix_audit_log_command_key", "audit_log", ["command_key"], unique=True)
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("business_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("booked_on", sa.Date(), nullable=True),
        sa.Column("reverses_id", sa.Integer(), nullable=True),
        sa.Column("memo", sa.Text(), server_default="", nullable=False),
        sa.Column("actor", sa.String(length=64), server_default="system", nullable=False),
        sa.Column("legs", sa.Integer(), nullable=False),
        sa.CheckConstraint("legs >= 2", name="ck_ledger_transactions_legs"),
        sa.ForeignKeyConstraint(["reverses_id"], ["ledger_transactions.id"], name="fk_ledger_transactions_reverses"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("business_key"),
        sa.UniqueConstraint("reverses_id", name="uq_ledger_transactions_reverses_id"),
    )
    op.create_index("ix_ledger_transactions_project_id", "ledger_transactions", ["project_id"], unique=False)
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_login_throttle_last_failure_at", "login_throttle", ["last_failure_at"], unique=False)
    op.create_table(
        "ministries",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "ministry_year_totals",
        sa.Column("ministry", sa.String(length=16), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("committed", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("ministry", "fiscal_year"),
    )
    op.create_table(
        "programmes",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("fund_total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "fiscal_ceilings",
        sa.Column("programme_code", sa.String(length=32), nullable=False),
        sa.Column("ministry", sa.String(length=16), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("set_by", sa.String(length=64), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_code"],
            ["programmes.code"],
        ),
        sa.PrimaryKeyConstraint("programme_code", "ministry", "fiscal_year"),
    )
    op.create_table(
        "fund_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("violations", sa.JSON(), nullable=False),
        sa.Column("ran_by", sa.String(length=120), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_fund_checks_checked_at", "fund_checks", ["checked_at"], unique=False)
    op.create_table(
        "fund_allocations",
        sa.Column("programme_code", sa.String(length=32), nullable=False),
        sa.Column("ministry", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_code"],
            ["programmes.code"],
        ),
        sa.PrimaryKeyConstraint("programme_code", "ministry"),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=80), nullable=False),
        sa.Column("ministry", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ledger_entries_account", "ledger_entries", ["account"], unique=False)
    op.create_index("ix_ledger_entries_transaction_id", "ledger_entries", ["transaction_id"], unique=False)
    op.create_table(
        "users",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("ministry", sa.String(length=16), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clearance_level", sa.Integer(), server_default="0", nullable=False),
        sa.Column("compartments", sa.JSON(), server_default="[]", nullable=False),
        sa.ForeignKeyConstraint(
            ["ministry"],
            ["ministries.code"],
        ),
        sa.PrimaryKeyConstraint("username"),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("programme_code", sa.String(length=32), nullable=False),
        sa.Column("workflow_id", sa.String(length=80), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("organisation", sa.String(length=200), nullable=False),
        sa.Column("programme_manager", sa.String(length=64), nullable=False),
        sa.Column("funding_ministry", sa.String(length=16), nullable=False),
        sa.Column("research_vision", sa.Text(), nullable=False),
        sa.Column("classification", sa.String(length=16), nullable=False),
        sa.Column("start_trl", sa.Integer(), nullable=False),
        sa.Column("target_trl", sa.Integer(), nullable=False),
        sa.Column("current_trl", sa.Integer(), nullable=False),
        sa.Column("stage_no", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total_budget", sa.BigInteger(), nullable=False),
        sa.Column("reviewers", sa.JSON(), nullable=False),
        sa.Column("public_use_ministries", sa.JSON(), nullable=False),
        sa.Column("stop_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("performer", sa.String(length=64), nullable=True),
        sa.Column("lessons", sa.Text(), server_default="", nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("public_use_achieved", sa.Boolean(), nullable=True),
        sa.Column("label_level", sa.Integer(), server_default="0", nullable=False),
        sa.Column("label_compartments", sa.JSON(), server_default="[]", nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_code"],
            ["programmes.code"],
        ),
        sa.ForeignKeyConstraint(
            ["programme_manager"],
            ["users.username"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workflow_id"),
        sa.CheckConstraint(
            "status IN ('active', 'on_hold', 'handoff', 'completed', 'terminated')", name="ck_projects_status"
        ),
    )
    op.create_index("ix_projects_programme_manager", "projects", ["programme_manager"], unique=False)
    op.create_index("ix_projects_status", "projects", ["status"], unique=False)
    op.create_table(
        "decisions",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("gate_no", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("recommendation", sa.JSON(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("round", sa.Integer(), server_default="1", nullable=False),
        sa.Column("terms", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["users.username"],
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.PrimaryKeyConstraint("project_id", "gate_no", "round"),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_documents_project_id", "documents", ["project_id"], unique=False)
    op.create_table(
        "gate_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("gate_no", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_gate_events_key"),
    )
    op.create_index("ix_gate_events_project_id", "gate_events", ["project_id"], unique=False)
    op.create_table(
        "gates",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("gate_no", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("recommendation", sa.JSON(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("round", sa.Integer(), server_default="1", nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("workflow_id", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.PrimaryKeyConstraint("project_id", "gate_no"),
        sa.CheckConstraint("status IN ('open', 'decided', 'cancelled')", name="ck_gates_status"),
    )
    op.create_table(
        "need_to_know_grants",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("granted_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.ForeignKeyConstraint(
            ["username"],
            ["users.username"],
        ),
        sa.PrimaryKeyConstraint("project_id", "username"),
    )
    op.create_table(
        "notifications",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_notifications_project_id", "notifications", ["project_id"], unique=False)
    op.create_index("ix_notifications_recipient", "notifications", ["recipient"], unique=False)
    op.create_table(
        "payment_instructions",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("payee", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
        ),
        sa.PrimaryKeyConstraint("key"),
        sa.UniqueConstraint("transaction_id"),
        sa.CheckConstraint("status IN ('pending', 'sent')", name="ck_payment_instructions_status"),
    )
    op.create_index("ix_payment_instructions_project_id", "payment_instructions", ["project_id"], unique=False)
    op.create_index("ix_payment_instructions_status", "payment_instructions", ["status"], unique=False)
    op.create_table(
        "progress_reports",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("submitted_by", sa.String(length=64), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by", sa.String(length=64), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.PrimaryKeyConstraint("project_id", "fiscal_year"),
        sa.CheckConstraint("status IN ('submitted', 'accepted', 'returned')", name="ck_progress_reports_status"),
    )
    op.create_table(
        "reservations",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("stage_no", sa.Integer(), nullable=False),
        sa.Column("ministry", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("paid", sa.BigInteger(), nullable=False),
        sa.Column("released", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("part", sa.Integer(), server_default="0", nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.PrimaryKeyConstraint("project_id", "stage_no", "part"),
        sa.CheckConstraint("status IN ('open', 'settled', 'released', 'reversed')", name="ck_reservations_status"),
    )
    op.create_index("ix_reservations_status", "reservations", ["status"], unique=False)
    op.create_table(
        "review_tasks",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("gate_no", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("round", sa.Integer(), server_default="1", nullable=False),
        sa.Column("conflict_statement", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.ForeignKeyConstraint(
            ["reviewer"],
            ["users.username"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "gate_no", "round", "reviewer", name="uq_review_tasks_round"),
        sa.CheckConstraint(
            "status IN ('open', 'invited', 'accepted', 'declined', 'recused', 'reassigned', 'submitted', 'cancelled')",
            name="ck_review_tasks_status",
        ),
    )
    op.create_index("ix_review_tasks_project_id", "review_tasks", ["project_id"], unique=False)
    op.create_index("ix_review_tasks_reviewer", "review_tasks", ["reviewer"], unique=False)
    op.create_table(
        "stages",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("stage_no", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("trl_in", sa.Integer(), nullable=False),
        sa.Column("trl_out", sa.Integer(), nullable=False),
        sa.Column("duration_days", sa.Integer(), nullable=False),
        sa.Column("budget", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.PrimaryKeyConstraint("project_id", "stage_no"),
        sa.CheckConstraint(
            "status IN ('planned', 'active', 'passed', 'stopped', 'on_hold', 'recycled')", name="ck_stages_status"
        ),
    )
    op.create_table(
        "tranche_approvals",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("stage_no", sa.Integer(), nullable=False),
        sa.Column("tranche_no", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.PrimaryKeyConstraint("project_id", "stage_no", "tranche_no"),
    )
    op.create_table(
        "tranches",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("stage_no", sa.Integer(), nullable=False),
        sa.Column("tranche_no", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("part", sa.Integer(), server_default="0", nullable=False),
        sa.Column("fiscal_year", sa.Integer(), nullable=True),
        sa.Column("planned_fiscal_year", sa.Integer(), nullable=True),
        sa.Column("reversal_transaction_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.ForeignKeyConstraint(["reversal_transaction_id"], ["ledger_transactions.id"], name="fk_tranches_reversal"),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
        ),
        sa.PrimaryKeyConstraint("project_id", "stage_no", "tranche_no"),
    )
    op.create_table(
        "handoffs",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("ministry", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document_id", sa.String(length=120), nullable=False),
        sa.Column("accepted_by", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("kind", sa.String(length=16), server_default="final", nullable=False),
        sa.Column("workflow_id", sa.String(length=120), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("receiving_programme", sa.Text(), server_default="", nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rerouted_from", sa.String(length=80), nullable=True),
        sa.Column("rerouted_to", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
        ),
        sa.ForeignKeyConstraint(
            ["ministry"],
            ["ministries.code"],
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "ministry", "kind", name="uq_handoffs_project_ministry_kind"),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'declined', 'rerouted', 'cancelled')", name="ck_handoffs_status"
        ),
    )
    op.create_index("ix_handoffs_ministry", "handoffs", ["ministry"], unique=False)
    op.create_index("ix_handoffs_project_id", "handoffs", ["project_id"], unique=False)
    op.create_table(
        "reviews",
        sa.Column("task_id", sa.String(length=120), nullable=False),
        sa.Column("must_meet", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("amended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["review_tasks.id"],
        ),
        sa.PrimaryKeyConstraint("task_id"),
    )

    rules.create()


def downgrade() -> None:
    rules.drop()
    for table in reversed(TABLES):
        op.drop_table(table)
