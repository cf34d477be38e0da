"""The rules the database itself enforces beyond its tables (triggers), for the v1 migration.

Kept apart from the migration so the table definitions read as one list. The statements differ by
backend: PostgreSQL runs PL/pgSQL functions, SQLite only RAISE(ABORT) in a trigger body.
"""

from __future__ import annotations

from alembic import op

from storage.audit import GENESIS

LEDGER_TABLES = ("ledger_entries", "ledger_transactions")


def _postgresql() -> bool:
    return bool(op.get_bind().dialect.name == "postgresql")


def create() -> None:
    _append_only_ledger()
    _zero_sum_ledger()
    _append_only_audit_log()
    # The audit chain starts from one head row (storage/audit.py locks and advances it).
    op.execute(f"INSERT INTO audit_chain_head (id, last_id, last_hash) VALUES (1, 0, '{GENESIS}')")


def drop() -> None:
    if _postgresql():
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_balanced ON ledger_entries")
        op.execute("DROP TRIGGER IF EXISTS ledger_transactions_balanced ON ledger_transactions")
        op.execute("DROP FUNCTION IF EXISTS ledger_balanced()")
        for table in LEDGER_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS ledger_append_only()")
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    else:
        for table in (*LEDGER_TABLES, "audit_log"):
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
        op.execute("DROP TRIGGER IF EXISTS ledger_entries_balanced")
        op.execute("DROP TRIGGER IF EXISTS ledger_transactions_after_complete")


def _append_only_ledger() -> None:
    """The database itself refuses to change or remove a ledger row: a correction is a reversal."""
    if _postgresql():
        op.execute(
            """
            CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'ledger rows are append-only: % on % refused (post a reversal instead)',
                TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
        for table in LEDGER_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()"
            )
        return
    for table in LEDGER_TABLES:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} BEGIN "
                f"SELECT RAISE(ABORT, 'ledger rows are append-only: {verb} on {table} refused "
                "(post a reversal instead)'); END"
            )


def _zero_sum_ledger() -> None:
    """Every transaction's entries sum to zero, and it has as many entries as its `legs` says.

    PostgreSQL checks each transaction once at commit (a deferred constraint trigger), whatever
    order its rows came in. SQLite has neither deferred nor statement-level triggers, and a row
    trigger sees a multi-row INSERT half done (the first leg alone never sums to zero), so the
    transaction says how many legs it has: an entry beyond that count is refused, and the sum is
    checked as the last leg goes in. A transaction left short of its legs cannot be refused at
    insert time; the next transaction is refused while it is (SQLite runs one writer at a time,
    so only the newest can be short), and the invariant scan names it."""
    if _postgresql():
        op.execute(
            """
            CREATE FUNCTION ledger_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE txn integer; total numeric; n integer; want integer;
            BEGIN
              IF TG_TABLE_NAME = 'ledger_entries' THEN txn := NEW.transaction_id; ELSE txn := NEW.id; END IF;
              SELECT coalesce(sum(amount), 0), count(*) INTO total, n FROM ledger_entries WHERE transaction_id = txn;
              SELECT legs INTO want FROM ledger_transactions WHERE id = txn;
              IF total <> 0 OR n IS DISTINCT FROM want THEN
                RAISE EXCEPTION 'ledger transaction % does not balance: % entries (% declared) sum to %',
                  txn, n, want, total USING ERRCODE = 'check_violation';
              END IF;
              RETURN NULL;
            END $$
            """
        )
        for table in LEDGER_TABLES:
            op.execute(
                f"CREATE CONSTRAINT TRIGGER {table}_balanced AFTER INSERT ON {table} "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_balanced()"
            )
        return
    count = "(SELECT count(*) FROM ledger_entries WHERE transaction_id = NEW.transaction_id)"
    legs = "(SELECT legs FROM ledger_transactions WHERE id = NEW.transaction_id)"
    total = "(SELECT sum(amount) FROM ledger_entries WHERE transaction_id = NEW.transaction_id)"
    op.execute(
        "CREATE TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries BEGIN "
        "SELECT RAISE(ABORT, 'ledger transaction does not balance: its entries must sum to zero') "
        f"WHERE {legs} IS NULL OR {count} > {legs} OR ({count} = {legs} AND {total} <> 0); END"
    )
    op.execute(
        "CREATE TRIGGER ledger_transactions_after_complete BEFORE INSERT ON ledger_transactions BEGIN "
        "SELECT RAISE(ABORT, 'the last ledger transaction is missing entries (it does not balance)') "
        "FROM ledger_transactions t WHERE t.id = (SELECT max(id) FROM ledger_transactions) "
        "AND (SELECT count(*) FROM ledger_entries e WHERE e.transaction_id = t.id) < t.legs; END"
    )


def _append_only_audit_log() -> None:
    """The audit log is append-only as well; its hash chain shows what a superuser changed anyway."""
    if _postgresql():
        op.execute(
            """
            CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
        )
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log BEGIN "
            f"SELECT RAISE(ABORT, 'audit_log is append-only: {verb} refused'); END"
        )
