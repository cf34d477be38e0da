"""A person's command as it travels to the write that carries it out, which audits it.

The API names the command (who, what, to what) and puts it into the Update's input; the workflow
keys it by the Update's id and hands it to the activity that writes the command's effect; that
activity appends the audit row in the same transaction as the effect, once per key (a retried
activity finds its row and adds none)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Command(BaseModel):
    actor: str
    action: str
    target: str
    detail: dict[str, Any] = Field(default_factory=dict)
    key: str = ""  # set in the workflow: the workflow id and the Update's id


class Commanded(BaseModel):
    """An Update's input: the command rides along (None when sent without the API)."""

    command: Command | None = None
