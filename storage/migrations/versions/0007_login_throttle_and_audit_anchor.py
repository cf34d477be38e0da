"""sign-in throttling (login_throttle) and the audit chain's anchor (audit_log.anchor)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 13:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import context, op

from storage.audit import anchor_of, entry_hash

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

audit_log = sa.table(
    "audit_log",
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String),
    sa.column("action", sa.String),
    sa.column("target", sa.String),
    sa.column("outcome", sa.String),
    sa.column("detail", sa.JSON),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
    sa.column("anchor", sa.String),
)


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_login_throttle_last_failure_at", "login_throttle", ["last_failure_at"])
    # A plain ADD COLUMN (no batch copy), so SQLite keeps the append-only triggers of 0004.
    op.add_column("audit_log", sa.Column("anchor", sa.String(64), server_default="", nullable=False))
    _anchor_existing_entries()


def _anchor_existing_entries() -> None:
    """The log is append-only, so older entries are not rewritten: one anchored entry is appended
    instead, whose hash chains over all of them. Only if the migration is given the key
    (storage.migrate.upgrade(audit_key=...)); otherwise the first entry written with the key
    anchors them the same way."""
    key: bytes | None = context.config.attributes.get("audit_key")
    bind = op.get_bind()
    count = bind.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()
    if key is None or count == 0:
        return
    prev = bind.execute(sa.text("SELECT last_hash FROM audit_chain_head WHERE id = 1")).scalar_one()
    at = datetime.now(UTC)
    entry = {
        "actor": "trlgate",
        "action": "anchor_audit_log",
        "target": "audit_log",
        "outcome": "ok",
        "detail": {"entries_before": count},
    }
    digest = entry_hash(prev, at, entry["actor"], entry["action"], entry["target"], entry["outcome"], entry["detail"])
    bind.execute(
        sa.insert(audit_log).values(at=at, prev_hash=prev, hash=digest, anchor=anchor_of(key, digest), **entry)
    )
    bind.execute(sa.text("UPDATE audit_chain_head SET last_hash = :h WHERE id = 1"), {"h": digest})


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_column("audit_log", "anchor")
    else:
        # SQLite drops a column by copying the table, which loses its triggers: put them back.
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_log_no_{verb.lower()}")
        with op.batch_alter_table("audit_log") as b:
            b.drop_column("anchor")
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log BEGIN "
                f"SELECT RAISE(ABORT, 'audit_log is append-only: {verb} refused'); END"
            )
    op.drop_index("ix_login_throttle_last_failure_at", "login_throttle")
    op.drop_table("login_throttle")
