"""The audit log's checkpoint: the last entry a verification saw, kept outside the database.

Each entry's anchor (storage/audit.py) stops a database writer without the audit key from
rewriting entries, but not from cutting the newest ones off and moving the chain head back: every
remaining entry still verifies. A checkpoint, sealed with the same key and kept where the
database's writer cannot change it (another host, write-once storage), names the last entry seen
by the previous verification; if that entry is gone or is another one now, the log was cut back or
rewritten since. `trlgate audit-verify` checks the checkpoint and writes the next one, so running
it on a schedule bounds what can be removed unnoticed to the entries written since its last run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry


class CheckpointError(ValueError):
    pass


@dataclass(frozen=True)
class Checkpoint:
    entry_id: int
    hash: str
    entries: int
    taken_at: str  # UTC, ISO 8601

    def _mac(self, key: bytes) -> str:
        message = f"trlgate-audit-checkpoint\x00{self.entry_id}\x00{self.hash}\x00{self.entries}\x00{self.taken_at}"
        return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()

    def seal(self, key: bytes) -> str:
        return json.dumps({**asdict(self), "mac": self._mac(key)}, sort_keys=True) + "\n"

    @classmethod
    def unseal(cls, text: str, key: bytes) -> Checkpoint:
        try:
            data = json.loads(text)
            mac = data.pop("mac")
            checkpoint = cls(
                entry_id=int(data["entry_id"]),
                hash=str(data["hash"]),
                entries=int(data["entries"]),
                taken_at=str(data["taken_at"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise CheckpointError(f"the checkpoint cannot be read: {err}") from err
        if not isinstance(mac, str) or not hmac.compare_digest(mac, checkpoint._mac(key)):
            raise CheckpointError("the checkpoint's seal does not match: it was altered, or sealed with another key")
        return checkpoint


async def problem_since(session: AsyncSession, checkpoint: Checkpoint, entries_now: int) -> str | None:
    """What removed or rewrote entries since the checkpoint, or None. Run after the chain itself
    verified, so an entry that is still there with its checkpointed hash vouches for all before it."""
    entry = await session.get(AuditEntry, checkpoint.entry_id)
    if entry is None or entries_now < checkpoint.entries:
        return (
            f"entry {checkpoint.entry_id}, the last of {checkpoint.entries} at the checkpoint of "
            f"{checkpoint.taken_at}, is gone: the log was cut back (it now holds {entries_now})"
        )
    if entry.hash != checkpoint.hash:
        return (
            f"entry {checkpoint.entry_id} is not the one checkpointed at {checkpoint.taken_at}: the log was rewritten"
        )
    return None


def read(path: Path, key: bytes) -> Checkpoint | None:
    if not path.exists():
        return None
    return Checkpoint.unseal(path.read_text(), key)


def write(path: Path, checkpoint: Checkpoint, key: bytes) -> None:
    """Replace the checkpoint atomically: a crash leaves the old one or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "w") as f:
        f.write(checkpoint.seal(key))
    os.replace(draft, path)
