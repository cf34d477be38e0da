"""Append an audit entry (who, what, when in UTC, to what, how it ended)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry


def audit(
    session: AsyncSession,
    actor: str,
    action: str,
    target: str,
    outcome: str = "ok",
    **detail: Any,
) -> None:
    session.add(AuditEntry(actor=actor, action=action, target=target, outcome=outcome, detail=detail))
