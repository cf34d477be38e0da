"""Who may do what, and what they did: ministries, users, need-to-know grants, the audit log
and sign-in throttling."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, utcnow


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
    # The pages' language the user chose (web/formatting.LANGS); None follows the browser.
    language: Mapped[str | None] = mapped_column(String(8), nullable=True, default=None)
    # Page sessions carry the epoch they were issued in; signing out moves it on, so a copied
    # cookie dies with the sign-out instead of living until it expires (web/session.py).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Where notices are e-mailed (None: not at all), and whether the user opted out of the mails
    # of notices that ask nothing of them (those that ask them to act are always sent).
    email: Mapped[str | None] = mapped_column(String(320), nullable=True, default=None)
    mail_opt_out: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NeedToKnowGrant(Base):
    """An explicit grant to read one closed project (保全): the clearance alone is not enough."""

    __tablename__ = "need_to_know_grants"
    # A user's grants, read by every list (storage/access.readable_sql); the key leads with the project.
    __table_args__ = (Index("ix_need_to_know_grants_username", "username"),)

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), primary_key=True)
    granted_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditEntry(Base):
    """Who did what, when (UTC), to what, and how it ended. Written for every command.

    Tamper-evident: each entry carries the hash of the one before and its own hash over both
    (storage/audit.py); the database refuses UPDATE and DELETE (storage/migrations/rules.py)."""

    __tablename__ = "audit_log"
    # The log's filters with its keyset order (newest first by id).
    __table_args__ = (
        Index("ix_audit_log_actor_id", "actor", "id"),
        Index("ix_audit_log_action_id", "action", "id"),
        Index("ix_audit_log_target_id", "target", "id"),
    )

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
