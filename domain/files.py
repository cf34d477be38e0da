"""An attachment as workflows see it: a reference and a hash, never the file's bytes.

Temporal keeps every payload in its event history (and each history has a size limit); a 50 MB
evidence file must not travel there. The bytes stay in the blob store; the workflow carries what
identifies them, so a document rendered from the payload (the evidence record, the hand-off
package) names the exact files it was rendered with."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, StrictInt


class AttachedTo(StrEnum):
    """What a file is attached to; its `ref` names which one."""

    EVIDENCE = "evidence"  # a gate's evidence package; ref: the gate number
    REPORT = "report"  # a yearly progress report; ref: the fiscal year
    HANDOFF = "handoff"  # a hand-off package's annex; ref: the hand-off kind (final|demonstration)


class FileRef(BaseModel):
    file_id: Annotated[str, Field(max_length=40)]
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
    name: Annotated[str, Field(max_length=255)]
    size: Annotated[StrictInt, Field(ge=0)]
