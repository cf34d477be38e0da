"""The blob store: file bodies by key, behind one small interface.

Keys are content addresses (`files.blob_key`: the SHA-256 of the plaintext), so the same bytes
uploaded twice are stored once. A body is handed over as a finished local file and becomes
visible under its key all at once (a rename in a folder, a completed PUT on S3): a reader never
sees half a blob, and an upload that breaks off before `put` leaves nothing behind.

The embedded default is a folder under the data folder; `TRLGATE_BLOB_STORE=s3://bucket/prefix`
puts the same keys into an S3-compatible store (storage/blobs/s3.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

CHUNK = 64 * 1024
# An upload still arriving writes its temporary file all the time; one untouched this long was
# left by a process that died mid-upload (a `finally` that never ran).
STALE_SECONDS = 24 * 3600


def sweep(incoming: Path, older_than: float = STALE_SECONDS) -> None:
    """Remove what dead uploads left in the incoming folder."""
    limit = time.time() - older_than
    for leftover in incoming.iterdir():
        try:
            if leftover.is_file() and leftover.stat().st_mtime < limit:
                leftover.unlink()
        except FileNotFoundError:
            pass  # another process swept it first


class BlobStore(Protocol):
    # A private local folder where an upload is written while it arrives (and hashed, checked,
    # sealed) before `put`; for the folder store on its own file system, so `put` is a rename.
    incoming: Path

    async def put(self, key: str, source: Path) -> bool:
        """Store the file at `source` under `key`, which must be new or hold the same content;
        `source` is consumed (moved or deleted). True when the key was new."""

    async def exists(self, key: str) -> bool: ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The blob's bytes, in chunks; FileNotFoundError when there is none."""

    async def delete(self, key: str) -> None: ...


def open_store(url: str, data_dir: Path, endpoint_url: str = "") -> BlobStore:
    """The store a setting names: empty for the folder `data_dir/blobs`, `file:///path` for another
    folder, `s3://bucket/prefix` for S3 (or MinIO and the like, at `endpoint_url`)."""
    from storage.blobs.local import FolderStore

    if not url:
        return FolderStore(data_dir / "blobs")
    if url.startswith("file://"):
        return FolderStore(Path(url.removeprefix("file://")))
    if url.startswith("s3://"):
        from storage.blobs.s3 import S3Store

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return S3Store(bucket, prefix, endpoint_url or None, data_dir / "uploads")
    raise ValueError(f"unknown blob store {url!r}: use file:///path or s3://bucket/prefix")
