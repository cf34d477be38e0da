"""The audit viewer's verification (services/audit_log.ChainVerifier), on both databases: the whole
walk starts from the sealed checkpoint `trlgate audit-verify` keeps, each later view walks only
the entries written since, a changed start entry or a growing log is told apart from an intact one,
and a checkpoint that does not open under the key is ignored (the walk starts at the genesis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.audit_log import ChainVerifier
from storage import audit_checkpoint
from storage.db import make_engine, make_sessionmaker
from storage.models import AuditEntry
from tests.test_audit_chain import KEY, tamper, write_entries


@pytest.fixture
async def keyed(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine, audit_key=KEY)
    await engine.dispose()


async def ids(sm: async_sessionmaker[AsyncSession]) -> list[int]:
    async with sm() as s:
        return list((await s.scalars(select(AuditEntry.id).order_by(AuditEntry.id))).all())


async def checkpoint_at(sm: async_sessionmaker[AsyncSession], path: Path, entry_id: int, entries: int) -> None:
    async with sm() as s:
        entry = await s.get(AuditEntry, entry_id)
        assert entry is not None
    point = audit_checkpoint.Checkpoint(entry_id, entry.hash, entries, "2026-12-01T00:00:00+00:00")
    audit_checkpoint.write(path, point, KEY)


async def test_views_walk_from_the_checkpoint_then_only_what_is_new(
    keyed: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await write_entries(keyed, 4)
    first = await ids(keyed)
    path = tmp_path / "audit-checkpoint"
    await checkpoint_at(keyed, path, first[-1], len(first))
    verifier = ChainVerifier(KEY, path)
    # An entry before the checkpoint rewritten in place: the CLI's walk vouched for it, so the
    # viewer's walk from the checkpoint does not look again (what the checkpoint is for).
    await tamper(keyed, "UPDATE audit_log SET actor = 'x' WHERE id = :i", i=first[0])
    async with keyed() as s:
        state = await verifier.state(s)
    assert state.broken_at is None and state.verified_to == first[-1] and state.full_at is not None
    assert state.anchors_checked

    await write_entries(keyed, 2)  # the log grows: the next view walks the new entries only
    newest = (await ids(keyed))[-1]
    async with keyed() as s:
        grown = await verifier.state(s)
    assert grown.broken_at is None and grown.verified_to == newest and grown.full_at == state.full_at

    await tamper(keyed, "UPDATE audit_log SET actor = 'y' WHERE id = :i", i=newest)
    async with keyed() as s:
        changed = await verifier.state(s)
    assert changed.broken_at == newest and "is gone or changed" in changed.problem


async def test_a_change_after_the_checkpoint_is_found_and_a_forged_checkpoint_ignored(
    keyed: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await write_entries(keyed, 6)
    every = await ids(keyed)
    path = tmp_path / "audit-checkpoint"
    await checkpoint_at(keyed, path, every[1], 2)
    await tamper(keyed, "UPDATE audit_log SET actor = 'x' WHERE id = :i", i=every[-2])
    async with keyed() as s:
        state = await ChainVerifier(KEY, path).state(s)
    assert state.broken_at == every[-2] and "was changed after it was written" in state.problem
    assert state.verified_to == every[-2] - 1

    path.write_text(path.read_text().replace('"entries": 2', '"entries": 1'))  # the seal no longer holds
    async with keyed() as s:
        from_genesis = await ChainVerifier(KEY, path, full_every=timedelta(0)).state(s)
    assert from_genesis.broken_at == every[-2]


async def test_without_a_key_the_hash_chain_alone_is_checked(keyed: async_sessionmaker[AsyncSession]) -> None:
    await write_entries(keyed, 3)
    async with keyed() as s:
        state = await ChainVerifier(None, None).state(s)
    assert state.broken_at is None and state.verified_to == (await ids(keyed))[-1]
    assert state.anchors_checked is False
