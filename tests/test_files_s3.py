"""The blob store one setting away: S3 (moto's S3 server on a loopback port, spoken to over HTTP
by boto3 as a real S3 or MinIO would be). The same content addressing, the same sealing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from storage.blobs import open_store
from storage.blobs.s3 import S3Store
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.api_stack import free_port
from tests.test_files import CLEARED, CLOSED, PDF, UNCLEARED, seed, upload

BUCKET = "trlgate-files"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket=BUCKET)
    try:
        yield url
    finally:
        server.stop()


def objects(url: str) -> dict[str, bytes]:
    client = boto3.client("s3", endpoint_url=url)
    listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


async def test_the_s3_store_keeps_each_key_once_and_reads_it_back(s3: str, tmp_path: Path) -> None:
    store = open_store(f"s3://{BUCKET}/blobs", tmp_path, s3)
    assert isinstance(store, S3Store)
    key = "plain/" + "cd" * 32
    for first in (True, False):
        source = store.incoming / "up"
        source.write_bytes(b"x" * 300_000)
        assert await store.put(key, source) is first
        assert not source.exists()
    assert await store.exists(key) and list(objects(s3)) == [f"blobs/{key}"]
    assert b"".join([c async for c in store.read(key)]) == b"x" * 300_000
    with pytest.raises(FileNotFoundError):
        [c async for c in store.read("plain/" + "00" * 32)]
    await store.delete(key)
    assert not await store.exists(key)


@pytest.fixture
async def api(sqlite_url: str, tmp_path: Path, s3: str) -> AsyncIterator[InProcessApi]:
    settings = {"data_dir": tmp_path / "data", "blob_store": f"s3://{BUCKET}/trlgate", "blob_endpoint_url": s3}
    async with inprocess_api(sqlite_url, **settings) as api:
        await seed(api)
        yield api


async def test_uploads_go_to_s3_by_hash_and_a_closed_projects_sealed(api: InProcessApi, s3: str) -> None:
    assert (await upload(api, PDF)).status_code == 201
    assert (await upload(api, PDF, ref="2")).status_code == 201
    closed = await upload(api, PDF, pid=CLOSED)
    assert closed.status_code == 201 and closed.json()["encrypted"] is True
    stored = objects(s3)
    sha = closed.json()["sha256"]
    assert sorted(stored) == [f"trlgate/plain/{sha}", f"trlgate/sealed/{sha}"]  # once each
    assert stored[f"trlgate/plain/{sha}"] == PDF and PDF[:40] not in stored[f"trlgate/sealed/{sha}"]
    got = await api.call("GET", f"/files/{closed.json()['id']}", CLEARED)
    assert got.status_code == 200 and got.content == PDF
    assert (await api.call("GET", f"/files/{closed.json()['id']}", UNCLEARED)).status_code == 403
