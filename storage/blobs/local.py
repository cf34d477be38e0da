"""The embedded blob store: one file per key in a folder (under the data folder by default)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from storage.blobs import CHUNK, sweep


class FolderStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        # Where uploads arrive: on the store's own file system, so that `put` is a rename (atomic).
        self.incoming = root / ".incoming"
        self.incoming.mkdir(parents=True, exist_ok=True, mode=0o700)
        sweep(self.incoming)

    def path(self, key: str) -> Path:
        # Keys are hex digests with a namespace; two levels of fan-out keep folders small.
        namespace, _, digest = key.rpartition("/")
        if not digest.isalnum() or not all(part.isalnum() for part in namespace.split("/") if part):
            raise ValueError(f"bad blob key {key!r}")
        return self.root / namespace / digest[:2] / digest[2:4] / digest

    async def put(self, key: str, source: Path) -> bool:
        return await asyncio.to_thread(self._put, key, source)

    def _put(self, key: str, source: Path) -> bool:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with source.open("rb") as f:
                os.fsync(f.fileno())  # on disk before it has a name: a crash leaves no torn blob
            # A link fails where the key exists: two uploads of the same bytes at once store one.
            os.link(source, target)
            return True
        except FileExistsError:
            return False
        finally:
            source.unlink(missing_ok=True)

    async def exists(self, key: str) -> bool:
        return self.path(key).exists()

    async def read(self, key: str) -> AsyncIterator[bytes]:
        f = await asyncio.to_thread(self.path(key).open, "rb")
        try:
            while chunk := await asyncio.to_thread(f.read, CHUNK):
                yield chunk
        finally:
            f.close()

    async def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
