"""Audit what the API decides itself (refusals, sign-ins, reads of closed work) in its own
transaction, so a refusal is kept even though the command changed nothing. Accepted commands are
audited by the write that carries them out (api/commands.py)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from api.deps import release_connection
from storage.audit import audit


async def record(request: Request, actor: str, action: str, target: str, outcome: str, **detail: Any) -> None:
    # The read connection goes back first: one request never holds two pooled connections.
    await release_connection(request)
    async with request.app.state.sessionmaker.begin() as session:
        audit(session, actor, action, target, outcome, **detail)
