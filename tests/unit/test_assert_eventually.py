"""The one waiting helper: what it returns, what it tolerates, what it says when it gives up."""

from __future__ import annotations

import pytest

from tests.support import assert_eventually


async def test_returns_the_first_value_that_satisfies_the_condition() -> None:
    seen = iter([0, 0, 3, 4])
    assert await assert_eventually(lambda: next(seen), "a non-zero value", interval=0) == 3


async def test_an_async_probe_is_awaited_and_listed_exceptions_count_as_not_yet() -> None:
    tries: list[int] = []

    async def probe() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise LookupError("not started yet")
        return "ready"

    assert await assert_eventually(probe, "ready", until=lambda v: v == "ready", ignoring=(LookupError,), interval=0)
    assert len(tries) == 3


async def test_other_exceptions_end_the_wait_at_once() -> None:
    def probe() -> bool:
        raise ValueError("a bug, not a wait")

    with pytest.raises(ValueError, match="a bug"):
        await assert_eventually(probe, "never", ignoring=(LookupError,))


async def test_giving_up_says_what_was_awaited_and_the_last_thing_seen() -> None:
    with pytest.raises(AssertionError, match=r"the escalation: not within 0 s; last seen: \[\]"):
        await assert_eventually(lambda: [], "the escalation", timeout=0)


async def test_a_pause_replaces_the_sleep_between_tries() -> None:
    state = {"skipped": 0}

    async def skip() -> None:
        state["skipped"] += 1

    await assert_eventually(lambda: state["skipped"] >= 2, "two skips", pause=skip)
    assert state["skipped"] == 2
