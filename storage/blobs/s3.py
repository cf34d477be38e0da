"""Blobs in an S3-compatible store (AWS S3, MinIO, Ceph ...), through boto3.

boto3 is synchronous; each call runs in a worker thread. `upload_file` sends a large body in
parts and the object appears only when the last part is in, so an interrupted put leaves nothing
under the key. Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID ..., a profile, an
instance role)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from storage.blobs import CHUNK, sweep


class S3Store:
    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None, incoming: Path) -> None:
        import boto3

        self.incoming = incoming  # uploads arrive here before they are sent
        incoming.mkdir(parents=True, exist_ok=True, mode=0o700)
        sweep(incoming)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    async def put(self, key: str, source: Path) -> bool:
        try:
            if await self.exists(key):
                return False
            await asyncio.to_thread(self.client.upload_file, str(source), self.bucket, self._key(key))
            return True
        finally:
            await asyncio.to_thread(source.unlink, missing_ok=True)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        from botocore.exceptions import ClientError

        try:
            answer = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(key) from err
            raise
        body = answer["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self._key(key))
