"""The audit log is tamper-evident: entries chain by hash in commit order, the database refuses
to change or remove them, and the verify command finds the first broken link."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.audit import ANCHORING_BEGAN, GENESIS, audit, entry_hash, verify_chain
from storage.db import make_engine, make_sessionmaker
from storage.models import AuditEntry

KEY = b"the-audit-key-kept-outside-the-database"
T = TypeVar("T")


@pytest.fixture
async def sm(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def write_entries(sm: async_sessionmaker[AsyncSession], n: int) -> None:
    async def one(i: int) -> None:
        async with sm.begin() as s:
            audit(s, f"user{i}", "test", f"thing:{i}", amount=i, note="日本語も")
            if i % 3 == 0:
                audit(s, f"user{i}", "test-second", f"thing:{i}")

    await asyncio.gather(*(one(i) for i in range(n)))  # concurrent transactions chain in commit order


async def tamper(sm: async_sessionmaker[AsyncSession], statement: str, **params: object) -> None:
    await tamper_all(sm, [(statement, params)])


async def tamper_all(sm: async_sessionmaker[AsyncSession], statements: list[tuple[str, dict[str, object]]]) -> None:
    """What someone with the database owner's rights could do: lift the guard, edit, restore it."""
    async with sm.begin() as s:
        postgres = s.get_bind().dialect.name == "postgresql"
        if postgres:
            await s.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        else:
            await s.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            await s.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        for statement, params in statements:
            await s.execute(text(statement), params)
        if postgres:
            await s.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


async def test_concurrent_entries_chain_and_verify(sm: async_sessionmaker[AsyncSession]) -> None:
    await write_entries(sm, 12)
    async with sm() as s:
        report = await verify_chain(s)
        count = len((await s.scalars(select(AuditEntry.id))).all())
    assert report.broken_at is None and report.checked == count >= 16


async def test_the_database_refuses_to_change_or_remove_audit_entries(sm: async_sessionmaker[AsyncSession]) -> None:
    await write_entries(sm, 2)
    for stmt in (update(AuditEntry).values(outcome="ok"), delete(AuditEntry)):
        with pytest.raises(DBAPIError, match="append-only"):
            async with sm.begin() as s:
                await s.execute(stmt)


async def test_a_changed_entry_is_found(sm: async_sessionmaker[AsyncSession]) -> None:
    await write_entries(sm, 6)
    async with sm() as s:
        ids = (await s.scalars(select(AuditEntry.id).order_by(AuditEntry.id))).all()
    victim = ids[len(ids) // 2]
    await tamper(sm, "UPDATE audit_log SET actor = 'someone-else' WHERE id = :i", i=victim)
    async with sm() as s:
        report = await verify_chain(s)
    assert report.broken_at == victim and "changed after it was written" in report.problem
    assert report.checked == ids.index(victim)


async def test_a_removed_entry_is_found(sm: async_sessionmaker[AsyncSession]) -> None:
    await write_entries(sm, 6)
    async with sm() as s:
        ids = (await s.scalars(select(AuditEntry.id).order_by(AuditEntry.id))).all()
    await tamper(sm, "DELETE FROM audit_log WHERE id = :i", i=ids[2])
    async with sm() as s:
        report = await verify_chain(s)
    assert report.broken_at == ids[3] and f"does not follow entry {ids[1]}" in report.problem
    await tamper(sm, "DELETE FROM audit_log WHERE id >= :i", i=ids[2])  # cut the tail off instead
    async with sm() as s:
        report = await verify_chain(s)
    assert report.broken_at is not None and "were removed" in report.problem


@pytest.fixture
async def keyed(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Writers as the API and worker make them: with the deployment's audit key."""
    engine = make_engine(db_url)
    yield make_sessionmaker(engine, audit_key=KEY)
    await engine.dispose()


async def rewrite_and_rehash(sm: async_sessionmaker[AsyncSession], victim: int, *, strip_anchors: bool = False) -> None:
    """Someone with write access to the database but not the audit key: change an entry, then
    recompute every hash from it on with plain SHA-256 (and the head), so the chain holds again."""
    async with sm() as s:
        entries = (await s.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    prev, edits = GENESIS, []
    for e in entries:
        actor = "someone-else" if e.id == victim else e.actor
        digest = entry_hash(prev, e.at, actor, e.action, e.target, e.outcome, e.detail)
        anchor = "" if strip_anchors and e.id >= victim else e.anchor
        edits.append(
            (
                "UPDATE audit_log SET actor = :a, prev_hash = :p, hash = :h, anchor = :n WHERE id = :i",
                {"a": actor, "p": prev, "h": digest, "n": anchor, "i": e.id},
            )
        )
        prev = digest
    edits.append(("UPDATE audit_chain_head SET last_hash = :h WHERE id = 1", {"h": prev}))
    await tamper_all(sm, edits)


async def test_a_rewritten_chain_with_recomputed_hashes_is_found_by_its_anchor(
    keyed: async_sessionmaker[AsyncSession],
) -> None:
    await write_entries(keyed, 6)
    async with keyed() as s:
        ids = (await s.scalars(select(AuditEntry.id).order_by(AuditEntry.id))).all()
        assert (await verify_chain(s, KEY)).anchored == len(ids)
    victim = ids[len(ids) // 2]
    await rewrite_and_rehash(keyed, victim)
    async with keyed() as s:
        assert (await verify_chain(s)).broken_at is None  # the hash chain alone is fooled
        report = await verify_chain(s, KEY)
    assert report.broken_at == victim and "anchor does not match" in report.problem
    assert report.checked == ids.index(victim)


async def test_stripped_anchors_are_found(keyed: async_sessionmaker[AsyncSession]) -> None:
    await write_entries(keyed, 6)
    async with keyed() as s:
        ids = (await s.scalars(select(AuditEntry.id).order_by(AuditEntry.id))).all()
    await rewrite_and_rehash(keyed, ids[3], strip_anchors=True)
    async with keyed() as s:
        report = await verify_chain(s, KEY)
    assert report.broken_at == ids[3] and "has no anchor though entries before it have" in report.problem


async def test_entries_from_before_anchoring_are_unanchored_and_vouched_for_by_the_next(
    sm: async_sessionmaker[AsyncSession], keyed: async_sessionmaker[AsyncSession]
) -> None:
    await write_entries(sm, 3)  # written without the key (before the upgrade)
    async with sm() as s:
        first = await s.scalar(select(func.min(AuditEntry.id)))
        report = await verify_chain(s, KEY)
    # Not one anchor under the key: indistinguishable from a log whose anchors were stripped.
    assert report.broken_at == first and "no entry carries an anchor" in report.problem
    async with keyed.begin() as s:
        audit(s, "admin", "test", "thing:new")
    async with keyed() as s:
        entries = (await s.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
        report = await verify_chain(s, KEY)
    # The first keyed entry says, in its anchored detail, that anchoring began with it.
    vouch = entries[-1]
    assert vouch.anchor and vouch.detail == {ANCHORING_BEGAN: True}
    assert report.broken_at is None and (report.unanchored, report.anchored, report.vouched_by) == (4, 1, vouch.id)
    async with keyed.begin() as s:
        audit(s, "admin", "test", "thing:newer")  # anchoring has begun: no second vouching entry
    async with keyed() as s:
        newer = await s.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))
        assert newer is not None and newer.detail == {}
    await rewrite_and_rehash(keyed, entries[0].id)  # an old entry: the anchor after it no longer matches
    async with keyed() as s:
        report = await verify_chain(s, KEY)
    assert report.broken_at == vouch.id and "anchor does not match" in report.problem


async def test_a_log_stripped_of_every_anchor_is_found(keyed: async_sessionmaker[AsyncSession]) -> None:
    """Rewrite from the first entry on and strip every anchor: no anchored entry remains to be
    checked, which under the key is itself the finding."""
    await write_entries(keyed, 6)
    async with keyed() as s:
        ids = (await s.scalars(select(AuditEntry.id).order_by(AuditEntry.id))).all()
    await rewrite_and_rehash(keyed, ids[0], strip_anchors=True)
    async with keyed() as s:
        assert (await verify_chain(s)).broken_at is None  # the hash chain alone is fooled
        report = await verify_chain(s, KEY)
    assert report.broken_at == ids[0] and "no entry carries an anchor" in report.problem


async def test_stripped_anchors_before_an_ordinary_anchored_entry_are_found(
    keyed: async_sessionmaker[AsyncSession],
) -> None:
    """Strip the anchors of the oldest entries only (leaving the rest, whose anchors still match
    since nothing was rewritten): only the vouching entry may follow un-anchored ones."""
    await write_entries(keyed, 6)
    async with keyed() as s:
        ids = (await s.scalars(select(AuditEntry.id).order_by(AuditEntry.id))).all()
    await tamper_all(keyed, [("UPDATE audit_log SET anchor = '' WHERE id < :i", {"i": ids[2]})])
    async with keyed() as s:
        report = await verify_chain(s, KEY)
    assert report.broken_at == ids[2] and "carry no anchor" in report.problem


def keyed_run(sqlite_url: str, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """Run `work` as a writer with the audit key, from a synchronous test that also runs the CLI."""

    async def run() -> T:
        engine = make_engine(sqlite_url)
        try:
            return await work(make_sessionmaker(engine, audit_key=KEY))
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def last_id(sm: async_sessionmaker[AsyncSession]) -> int:
    async with sm() as s:
        return int(await s.scalar(select(func.max(AuditEntry.id))) or 0)


def test_audit_verify_finds_a_rewritten_chain(sqlite_url: str, tmp_path: Path) -> None:
    from tests.cli import trlgate

    def with_keyed(work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
        return keyed_run(sqlite_url, work)

    with_keyed(lambda sm: write_entries(sm, 3))
    env = {"TRLGATE_AUDIT_KEY": KEY.decode(), "TRLGATE_DATA_DIR": str(tmp_path)}
    ok = trlgate(sqlite_url, "audit-verify", env=env)
    assert ok.returncode == 0 and "audit log intact: 4 entries verified, 4 anchored" in ok.stdout, ok.stdout
    no_key = trlgate(sqlite_url, "audit-verify", env={"TRLGATE_DATA_DIR": str(tmp_path)})
    assert no_key.returncode == 0 and "anchors not checked: no audit key" in no_key.stdout
    assert not (tmp_path / "audit-key").exists()  # verifying never makes a key

    last = with_keyed(last_id)
    with_keyed(lambda sm: rewrite_and_rehash(sm, last))
    bad = trlgate(sqlite_url, "audit-verify", env=env)
    assert bad.returncode == 1 and f"broken at audit entry {last}: entry {last}'s anchor does not match" in bad.stdout


def test_audit_verify_finds_a_log_cut_back_since_its_checkpoint(sqlite_url: str, tmp_path: Path) -> None:
    """Cutting the newest entries off and moving the chain head back leaves a log whose every
    entry verifies; the checkpoint the last verification wrote outside the database does not."""
    from tests.cli import trlgate

    checkpoint = tmp_path / "elsewhere" / "audit-checkpoint"
    env = {
        "TRLGATE_AUDIT_KEY": KEY.decode(),
        "TRLGATE_DATA_DIR": str(tmp_path),
        "TRLGATE_AUDIT_CHECKPOINT": str(checkpoint),
    }
    keyed_run(sqlite_url, lambda sm: write_entries(sm, 5))
    first = trlgate(sqlite_url, "audit-verify", env=env)
    last = keyed_run(sqlite_url, last_id)
    assert first.returncode == 0 and f"checkpoint written to {checkpoint}: entry {last} of" in first.stdout.replace(
        "\n", ""
    ), first.stdout
    keyed_run(sqlite_url, lambda sm: write_entries(sm, 1))  # the log grows: still in place
    again = trlgate(sqlite_url, "audit-verify", env=env)
    assert again.returncode == 0 and f"entry {last} of the checkpoint" in again.stdout, again.stdout
    newest = keyed_run(sqlite_url, last_id)

    async def cut_back(sm: async_sessionmaker[AsyncSession]) -> None:
        # Someone with database write access but not the key: drop the two newest entries and point
        # the chain's head at what is now the last one, so the chain and every anchor still hold.
        async with sm() as s:
            keep = await s.scalar(select(AuditEntry).where(AuditEntry.id == newest - 2))
            assert keep is not None
        await tamper_all(
            sm,
            [
                ("DELETE FROM audit_log WHERE id > :i", {"i": keep.id}),
                ("UPDATE audit_chain_head SET last_hash = :h WHERE id = 1", {"h": keep.hash}),
            ],
        )

    keyed_run(sqlite_url, cut_back)
    fooled = trlgate(sqlite_url, "audit-verify", "--checkpoint", str(tmp_path / "none-yet"), env=env)
    assert fooled.returncode == 0, fooled.stdout  # without the checkpoint, nothing shows the cut
    cut = trlgate(sqlite_url, "audit-verify", env=env)
    assert cut.returncode == 1 and f"entry {newest}," in cut.stdout and "was cut back" in cut.stdout, cut.stdout
    # A checkpoint edited to name an older entry does not open under the key.
    checkpoint.write_text(checkpoint.read_text().replace(f'"entry_id": {newest}', f'"entry_id": {newest - 2}'))
    forged = trlgate(sqlite_url, "audit-verify", env=env)
    assert forged.returncode == 1 and "seal does not match" in forged.stdout.replace("\n", " "), forged.stdout
