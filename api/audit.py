"""Audit every command, refused ones included, in its own transaction (so a refusal is kept even
though the command changed nothing)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from storage.audit import audit


async def record(request: Request, actor: str, action: str, target: str, outcome: str, **detail: Any) -> None:
    async with request.app.state.sessionmaker.begin() as session:
        audit(session, actor, action, target, outcome, **detail)
