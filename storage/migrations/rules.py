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
    _append_only_audit_log()
    # The audit chain starts from one head row (storage/audit.py locks and advances it).
    op.execute(f"INSERT INTO audit_chain_head (id, last_id, last_hash) VALUES (1, 0, '{GENESIS}')")


def drop() -> None:
    if _postgresql():
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
