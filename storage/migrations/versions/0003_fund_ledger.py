"""fund ledger: fiscal years, running balances, ceilings, outbox, reports, four eyes, append-only

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 20:05:00
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("ledger_entries", "ledger_transactions")
JST = timezone(timedelta(hours=9))


def _fiscal_year(moment: datetime | str | None) -> int:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment is None:
        moment = datetime.now(JST)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    day: date = moment.astimezone(JST).date()
    return day.year if day.month >= 4 else day.year - 1


def upgrade() -> None:
    with op.batch_alter_table("ledger_transactions") as b:
        b.add_column(sa.Column("booked_on", sa.Date(), nullable=True))
        b.add_column(sa.Column("reverses_id", sa.Integer(), nullable=True))
        b.add_column(sa.Column("memo", sa.Text(), server_default="", nullable=False))
        b.add_column(sa.Column("actor", sa.String(64), server_default="system", nullable=False))
        b.create_foreign_key("fk_ledger_transactions_reverses", "ledger_transactions", ["reverses_id"], ["id"])
        b.create_unique_constraint("uq_ledger_transactions_reverses_id", ["reverses_id"])
    with op.batch_alter_table("ledger_entries") as b:
        b.add_column(sa.Column("fiscal_year", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("reservations") as b:
        b.add_column(sa.Column("schedule", sa.JSON(), nullable=True))
    with op.batch_alter_table("tranches") as b:
        b.add_column(sa.Column("part", sa.Integer(), server_default="0", nullable=False))
        b.add_column(sa.Column("fiscal_year", sa.Integer(), nullable=True))
        b.add_column(sa.Column("planned_fiscal_year", sa.Integer(), nullable=True))
        b.add_column(sa.Column("reversal_transaction_id", sa.Integer(), nullable=True))
        b.create_foreign_key("fk_tranches_reversal", "ledger_transactions", ["reversal_transaction_id"], ["id"])
    with op.batch_alter_table("projects") as b:
        b.add_column(sa.Column("performer", sa.String(64), nullable=True))

    op.create_table(
        "account_balances",
        sa.Column("account", sa.String(80), primary_key=True),
        sa.Column("fiscal_year", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False, index=True),
        sa.Column("ministry", sa.String(16), nullable=False, index=True),
        sa.Column("balance", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "ministry_year_totals",
        sa.Column("ministry", sa.String(16), primary_key=True),
        sa.Column("fiscal_year", sa.Integer(), primary_key=True),
        sa.Column("committed", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "fiscal_ceilings",
        sa.Column("programme_code", sa.String(32), sa.ForeignKey("programmes.code"), primary_key=True),
        sa.Column("ministry", sa.String(16), primary_key=True),
        sa.Column("fiscal_year", sa.Integer(), primary_key=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("set_by", sa.String(64), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "payment_instructions",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("transaction_id", sa.Integer(), sa.ForeignKey("ledger_transactions.id"), nullable=False, unique=True),
        sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), nullable=False, index=True),
        sa.Column("payee", sa.String(200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "progress_reports",
        sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), primary_key=True),
        sa.Column("fiscal_year", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("submitted_by", sa.String(64), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by", sa.String(64), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
    )
    op.create_table(
        "tranche_approvals",
        sa.Column("project_id", sa.String(40), sa.ForeignKey("projects.id"), primary_key=True),
        sa.Column("stage_no", sa.Integer(), primary_key=True),
        sa.Column("tranche_no", sa.Integer(), primary_key=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(64), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
    )

    # Existing entries: the fiscal year of their transaction's booking; then running balances.
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT e.id, e.account, e.ministry, e.amount, t.created_at FROM ledger_entries e "
            "JOIN ledger_transactions t ON t.id = e.transaction_id"
        )
    ).all()
    balances: dict[tuple[str, int], list] = {}
    for entry_id, account, ministry, amount, created_at in rows:
        fy = _fiscal_year(created_at)
        bind.execute(sa.text("UPDATE ledger_entries SET fiscal_year = :fy WHERE id = :id"), {"fy": fy, "id": entry_id})
        slot = balances.setdefault((account, fy), [account.split(":", 1)[0], ministry, 0])
        slot[2] += amount
    totals: dict[tuple[str, int], int] = {}
    for (_account, fy), (kind, ministry, balance) in balances.items():
        if kind in ("reservation", "paid"):
            totals[(ministry, fy)] = totals.get((ministry, fy), 0) + balance
    for (ministry, fy), committed in totals.items():
        bind.execute(
            sa.text("INSERT INTO ministry_year_totals (ministry, fiscal_year, committed) VALUES (:m, :fy, :c)"),
            {"m": ministry, "fy": fy, "c": committed},
        )
    for (account, fy), (kind, ministry, balance) in balances.items():
        bind.execute(
            sa.text(
                "INSERT INTO account_balances (account, fiscal_year, kind, ministry, balance) "
                "VALUES (:a, :fy, :k, :m, :b)"
            ),
            {"a": account, "fy": fy, "k": kind, "m": ministry, "b": balance},
        )

    # Append-only: the database itself refuses to change or remove a ledger row.
    if bind.dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'ledger rows are append-only: % on % refused (post a reversal instead)',
                TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()"
            )
    else:
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} BEGIN "
                    f"SELECT RAISE(ABORT, 'ledger rows are append-only: {verb} on {table} refused "
                    "(post a reversal instead)'); END"
                )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS ledger_append_only()")
    else:
        for table in APPEND_ONLY:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    for table in (
        "tranche_approvals",
        "progress_reports",
        "payment_instructions",
        "fiscal_ceilings",
        "account_balances",
    ):
        op.drop_table(table)
    with op.batch_alter_table("projects") as b:
        b.drop_column("performer")
    with op.batch_alter_table("tranches") as b:
        b.drop_constraint("fk_tranches_reversal", type_="foreignkey")
        for col in ("reversal_transaction_id", "planned_fiscal_year", "fiscal_year", "part"):
            b.drop_column(col)
    with op.batch_alter_table("reservations") as b:
        b.drop_column("schedule")
    with op.batch_alter_table("ledger_entries") as b:
        b.drop_column("fiscal_year")
    with op.batch_alter_table("ledger_transactions") as b:
        b.drop_constraint("uq_ledger_transactions_reverses_id", type_="unique")
        b.drop_constraint("fk_ledger_transactions_reverses", type_="foreignkey")
        for col in ("actor", "memo", "reverses_id", "booked_on"):
            b.drop_column(col)
