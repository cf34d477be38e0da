"""Sign-in: failures lock a username and a client address for a growing while (429 + Retry-After,
even for the right password), shared through the database and audited; known and unknown users
cost the same work; over-long or unprintable input is a 422 that is still audited."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from temporalio.client import Client

from storage import throttle
from storage.db import make_engine, make_sessionmaker
from storage.models import AuditEntry, LoginThrottle, User
from storage.seed import password_hash
from tests.api_stack import ApiStack, api_stack
from tests.conftest import DEMO_PASSWORD
from tests.support import PM, assert_eventually

LOCK = 30.0
# Explicit, whatever the defaults become: five tries per user, more per address.
THROTTLE = {
    "login_user_max_failures": 5,
    "login_address_max_failures": 20,
    "login_lock_seconds": LOCK,
    "login_lock_max_seconds": 4 * LOCK,
}


@pytest.fixture
async def stack(local_client: Client, flow_db_url: str, task_queue: str) -> AsyncIterator[ApiStack]:
    async with api_stack(local_client, flow_db_url, task_queue, seconds_per_day=0.0, **THROTTLE) as s:
        yield s


async def sign_in(stack: ApiStack, username: str, password: str = DEMO_PASSWORD) -> httpx.Response:
    return await stack.http.post("/auth/token", data={"username": username, "password": password})


async def audit_rows(stack: ApiStack, *actions: str) -> list[AuditEntry]:
    async with stack.sessionmaker() as s:
        return list(
            (await s.scalars(select(AuditEntry).where(AuditEntry.action.in_(actions)).order_by(AuditEntry.id))).all()
        )


async def expire_lock(stack: ApiStack, key: str) -> None:
    """Let the lock run out without waiting for it."""
    async with stack.sessionmaker.begin() as s:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await s.execute(update(LoginThrottle).where(LoginThrottle.key == key).values(locked_until=past))


def retry_after(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    return int(r.headers["Retry-After"])


async def test_a_user_is_locked_after_five_failures_even_for_the_right_password(stack: ApiStack) -> None:
    for _ in range(5):
        assert (await sign_in(stack, PM, "wrong")).status_code == 401
    locked = await sign_in(stack, PM)  # the right password, during the lock
    assert LOCK - 2 < retry_after(locked) <= LOCK and "too many failed sign-ins" in locked.json()["detail"]
    assert (await sign_in(stack, "pm.tanaka")).status_code == 200  # the address is not locked (yet)

    # The lock grows with each failure after it: 30 s, then 60 s, then 120 s, and no more.
    for expected in (2 * LOCK, 4 * LOCK, 4 * LOCK):
        await expire_lock(stack, f"user:{PM}")
        assert (await sign_in(stack, PM, "wrong")).status_code == 401
        assert expected - 2 < retry_after(await sign_in(stack, PM)) <= expected

    await expire_lock(stack, f"user:{PM}")
    assert (await sign_in(stack, PM)).status_code == 200  # and a success clears the count
    for _ in range(4):
        assert (await sign_in(stack, PM, "wrong")).status_code == 401
    assert (await sign_in(stack, PM)).status_code == 200

    rows = await audit_rows(stack, "login", "login_lock")
    refused = [r for r in rows if r.action == "login" and r.detail.get("reason") == "locked"]
    assert [r.actor for r in refused] == [PM] * 4 and all(r.outcome == "rejected" for r in refused)
    locks = [r for r in rows if r.action == "login_lock"]
    assert [(r.target, r.detail["failures"]) for r in locks] == [(f"user:{PM}", n) for n in (5, 6, 7, 8)]
    assert all(r.detail["address"] == "127.0.0.1" for r in rows)


async def test_an_administrator_unlocks_a_user_and_it_is_audited(stack: ApiStack) -> None:
    for _ in range(5):  # anyone can lock an account with wrong passwords
        assert (await sign_in(stack, PM, "wrong")).status_code == 401
    assert retry_after(await sign_in(stack, PM)) > 0
    assert (await stack.http.delete(f"/auth/locks/{PM}")).status_code == 401
    assert (await stack.call("DELETE", f"/auth/locks/{PM}", user="pm.tanaka")).status_code == 403
    unlocked = await stack.call("DELETE", f"/auth/locks/{PM}", user="admin")
    assert unlocked.status_code == 200 and unlocked.json() == {"username": PM, "was_locked": True}
    assert (await sign_in(stack, PM)).status_code == 200
    again = await stack.call("DELETE", f"/auth/locks/{PM}", user="admin")
    assert again.json() == {"username": PM, "was_locked": False}
    rows = await audit_rows(stack, "unlock_sign_in")
    assert [(r.actor, r.target, r.detail) for r in rows] == [
        ("admin", f"user:{PM}", {"was_locked": True}),
        ("admin", f"user:{PM}", {"was_locked": False}),
    ]
    bad = await stack.call("DELETE", "/auth/locks/adm%01in", user="admin")
    assert bad.status_code == 422 and bad.json()["detail"] == "username contains control characters"


async def test_an_address_is_locked_across_usernames_and_a_success_never_locks_it(stack: ApiStack) -> None:
    names = [f"nobody{i}" for i in range(19)]
    for name in names:  # nineteen failures, each username below its own limit
        assert (await sign_in(stack, name, "guess")).status_code == 401
    # The twentieth attempt would lock the address, but it succeeds: the success takes its count back.
    assert (await sign_in(stack, "pm.tanaka")).status_code == 200
    assert (await sign_in(stack, "pm.tanaka")).status_code == 200
    assert (await sign_in(stack, "nobody-else", "guess")).status_code == 401  # the twentieth failure
    assert LOCK - 2 < retry_after(await sign_in(stack, "admin")) <= LOCK  # every user, from this address
    locks = await audit_rows(stack, "login_lock")
    assert [(r.target, r.actor) for r in locks] == [("address:127.0.0.1", "nobody-else")]


async def test_a_forged_forwarded_for_counts_against_the_real_address(stack: ApiStack) -> None:
    for i in range(20):  # twenty failures, each claiming another address through the header
        forged = {"X-Forwarded-For": f"203.0.113.{i}"}
        r = await stack.http.post("/auth/token", data={"username": f"nobody{i}", "password": "guess"}, headers=forged)
        assert r.status_code == 401
    assert LOCK - 2 < retry_after(await sign_in(stack, "admin")) <= LOCK  # 127.0.0.1 is locked
    assert {r.detail["address"] for r in await audit_rows(stack, "login")} == {"127.0.0.1"}


async def test_a_listed_proxy_names_the_client(local_client: Client, sqlite_url: str, task_queue: str) -> None:
    async with api_stack(
        local_client, sqlite_url, task_queue, seconds_per_day=0.0, forwarded_allow_ips="127.0.0.1", **THROTTLE
    ) as stack:
        forwarded = {"X-Forwarded-For": "203.0.113.7"}
        r = await stack.http.post("/auth/token", data={"username": PM, "password": "guess"}, headers=forwarded)
        assert r.status_code == 401
        assert [r.detail["address"] for r in await audit_rows(stack, "login")] == ["203.0.113.7"]


async def test_a_burst_of_parallel_guesses_gets_no_more_tries_than_the_limit(
    stack: ApiStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified = count_verifications(monkeypatch)
    answers = await asyncio.gather(*(sign_in(stack, PM, f"guess-{i}") for i in range(20)))
    codes = sorted(r.status_code for r in answers)
    # Recorded one after another: five failures counted, then the lock refuses the rest.
    assert codes == [401] * 5 + [429] * 15 and 5 <= len(verified) <= 20
    rows = await audit_rows(stack, "login_lock")
    assert len(rows) == 1 and rows[0].detail["failures"] == 5
    assert (await sign_in(stack, PM)).status_code == 429  # and the right password with it


async def test_parallel_sign_ins_with_the_right_password_all_succeed(stack: ApiStack) -> None:
    """A user's several tabs, or a script signing in from many tasks: none is a failure."""
    answers = await asyncio.gather(*(sign_in(stack, PM) for _ in range(12)))
    assert [r.status_code for r in answers] == [200] * 12, [r.text for r in answers if r.status_code != 200]


async def test_a_right_password_recorded_after_the_lock_is_refused(db_url: str) -> None:
    """The order of recording decides, not the order of sending: a right guess checked while
    failures locked the account is refused, so a burst gains nothing over guessing in turn."""
    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    policy = throttle.Policy(max_failures=3, lock_seconds=30, max_lock_seconds=120, forget_seconds=600)
    roomy = throttle.Policy(max_failures=50, lock_seconds=30, max_lock_seconds=120, forget_seconds=600)
    subjects = [throttle.Subject("user:pm", policy), throttle.Subject("address:10.0.0.2", roomy)]
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    try:
        async with sm.begin() as s:
            assert await throttle.record_success(s, subjects, ["user:pm"], now) == 0
        for _ in range(3):
            async with sm.begin() as s:
                failed = await throttle.record_failure(s, subjects, now)
        assert failed.locked == {"user:pm": now + timedelta(seconds=30)}
        async with sm.begin() as s:
            assert await throttle.record_success(s, subjects, ["user:pm"], now + timedelta(seconds=1)) == 29
        async with sm() as s:
            assert await throttle.locked(s, subjects, now + timedelta(seconds=1)) == 29  # the lock stays
            assert await throttle.locked(s, subjects, now + timedelta(seconds=30)) == 0
    finally:
        await engine.dispose()


async def test_right_and_wrong_passwords_at_once_for_one_user_never_fail(stack: ApiStack) -> None:
    passwords = [DEMO_PASSWORD if i % 2 else f"guess-{i}" for i in range(30)]
    answers = await asyncio.gather(*(sign_in(stack, PM, p) for p in passwords))
    assert {r.status_code for r in answers} <= {200, 401, 429}, [r.text for r in answers if r.status_code >= 500]
    assert len(await audit_rows(stack, "login")) == len(passwords)  # each one settled and audited


def count_verifications(monkeypatch: pytest.MonkeyPatch, threads: list[threading.Thread] | None = None) -> list[str]:
    """Spy on the password hasher: one entry (the hash checked against) per verification, and the
    thread each ran on."""
    calls: list[str] = []
    real: Callable[..., bool] = password_hash.verify

    def spy(password: str, hashed: str | bytes, *args: Any, **kwargs: Any) -> bool:
        calls.append(hashed if isinstance(hashed, str) else hashed.decode())
        if threads is not None:
            threads.append(threading.current_thread())
        return real(password, hashed, *args, **kwargs)

    monkeypatch.setattr(password_hash, "verify", spy)
    return calls


async def test_passwords_are_verified_off_the_event_loop(stack: ApiStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 takes tens of milliseconds of CPU: on the event loop each guess would stall every
    other request of the process. The API serves on this test's loop, in this thread."""
    threads: list[threading.Thread] = []
    count_verifications(monkeypatch, threads)
    assert (await sign_in(stack, PM)).status_code == 200
    assert (await sign_in(stack, PM, "wrong")).status_code == 401
    assert len(threads) == 2 and threading.current_thread() not in threads


def parameters(argon2_hash: str) -> str:
    return argon2_hash.rsplit("$", 2)[0]  # $argon2id$v=19$m=...,t=...,p=...


async def test_known_unknown_and_inactive_users_cost_one_verification_each(
    stack: ApiStack, monkeypatch: pytest.MonkeyPatch, product_cost_dummy: None
) -> None:
    # The test databases' hashes are cheap (tests.support.CHEAP_HASHES): give the user one at the
    # product's cost, the cost an unknown user's dummy verification must match.
    real_hash = password_hash.hash(DEMO_PASSWORD)
    async with stack.sessionmaker.begin() as s:
        await s.execute(update(User).where(User.username == "pm.tanaka").values(active=False))
        await s.execute(update(User).where(User.username == PM).values(password_hash=real_hash))
    verified = count_verifications(monkeypatch)
    for username, password in ((PM, "wrong"), ("no.such.user", "wrong"), ("pm.tanaka", DEMO_PASSWORD)):
        before = len(verified)
        assert (await sign_in(stack, username, password)).status_code == 401
        assert len(verified) == before + 1, username
    assert verified[0] == real_hash
    assert {parameters(h) for h in verified} == {parameters(real_hash)}  # the same work each time


async def test_overlong_or_unprintable_login_input_is_a_422_and_audited(stack: ApiStack) -> None:
    # Ten thousand characters: past the username column (64) by far, below any body size limit.
    long_name = "a" * 10_000
    cases = [
        (long_name, DEMO_PASSWORD, "username is longer than 64 characters"),
        ("adm\x00in", DEMO_PASSWORD, "username contains control characters"),
        (PM, "p" * 1025, "password is longer than 1024 characters"),
    ]
    for username, password, reason in cases:
        r = await sign_in(stack, username, password)
        assert r.status_code == 422 and r.json()["detail"] == reason
        assert len(r.content) < 200  # nothing echoed back
    rows = await audit_rows(stack, "login")
    assert [(r.actor, r.outcome, r.detail["reason"]) for r in rows] == [
        ("a" * 63 + "…", "rejected", cases[0][2]),
        ("adm?in", "rejected", cases[1][2]),
        (PM, "rejected", cases[2][2]),
    ]
    assert (await sign_in(stack, PM)).status_code == 200  # refused input is no failed guess


async def test_the_login_operation_documents_its_limits(stack: ApiStack) -> None:
    spec = (await stack.http.get("/openapi.json")).json()
    operation = spec["paths"]["/auth/token"]["post"]
    assert {"401", "422", "429"} <= set(operation["responses"])
    assert "Retry-After" in operation["responses"]["429"]["headers"]
    form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    fields = spec["components"]["schemas"][form["$ref"].rsplit("/", 1)[1]]["properties"]
    assert fields["username"]["maxLength"] == 64 and fields["password"]["maxLength"] == 1024


# --- the throttle's table logic, with a clock of its own -------------------------------------------------


async def test_failures_are_forgotten_after_a_while_and_locks_are_capped(db_url: str) -> None:
    policy = throttle.Policy(max_failures=3, lock_seconds=10, max_lock_seconds=40, forget_seconds=600)
    assert [policy.lock_for(n) for n in range(1, 8)] == [0, 0, 10, 20, 40, 40, 40]
    assert policy.lock_for(10**6) == 40  # no overflow however long it goes on
    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    subject = [throttle.Subject("user:x", policy)]
    t0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

    async def attempt(at: datetime) -> throttle.Attempt:
        async with sm.begin() as s:
            return await throttle.record_failure(s, subject, at)

    try:
        assert [(await attempt(t0)).failures["user:x"] for _ in range(2)] == [1, 2]
        assert (await attempt(t0 + timedelta(seconds=601))).failures["user:x"] == 1  # forgotten
        await attempt(t0 + timedelta(seconds=602))
        third = await attempt(t0 + timedelta(seconds=603))
        assert third.locked == {"user:x": t0 + timedelta(seconds=613)}
        assert (await attempt(t0 + timedelta(seconds=612))).retry_after == 1
        assert (await attempt(t0 + timedelta(seconds=613))).locked == {"user:x": t0 + timedelta(seconds=633)}
    finally:
        await engine.dispose()


async def test_a_success_and_another_attempt_at_once_never_deadlock(postgres_url: str) -> None:
    """A right password (record_success) and a wrong one for the same user from the same address
    (record_failure) in two transactions at once, interleaved as they deadlocked on PostgreSQL when the two
    took their rows in different orders: the attempt holds its first row when the success starts."""
    engine = make_engine(postgres_url)
    sm = make_sessionmaker(engine)
    policy = throttle.Policy(max_failures=5, lock_seconds=30, max_lock_seconds=120, forget_seconds=600)
    user, address = "user:pm", "address:10.0.0.1"
    subjects = [throttle.Subject(user, policy), throttle.Subject(address, policy)]
    now = datetime.now(UTC)
    async with sm.begin() as s:
        await throttle.record_failure(s, subjects, now)  # an earlier failure: both rows exist
    attempt_holds_a_row, success_started = asyncio.Event(), asyncio.Event()
    success_pid: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def a_row_is_locked() -> bool:
        try:
            async with engine.begin() as probe:
                query = select(LoginThrottle.key).where(LoginThrottle.key.in_([user, address]))
                await probe.execute(query.with_for_update(nowait=True))
        except DBAPIError:
            return True
        return False

    async def attempt() -> None:
        async with sm.begin() as s:
            for name in ("execute", "scalars"):
                real = getattr(s, name)

                async def paused(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
                    result = await _real(*args, **kwargs)
                    if not attempt_holds_a_row.is_set() and await a_row_is_locked():
                        attempt_holds_a_row.set()
                        await success_started.wait()
                    return result

                setattr(s, name, paused)
            await throttle.record_failure(s, subjects, now)

    async def succeed() -> None:
        async with sm.begin() as s:
            success_pid.set_result((await s.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            await throttle.record_success(s, subjects, [user], now)

    async def waiting_on_a_lock(pid: int) -> bool:
        async with engine.connect() as c:
            query = text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid")
            return (await c.execute(query, {"pid": pid})).scalar_one_or_none() == "Lock"

    try:
        attempting = asyncio.create_task(attempt())
        await asyncio.wait_for(attempt_holds_a_row.wait(), 10)
        succeeding = asyncio.create_task(succeed())
        pid = await success_pid

        async def success_waits_or_is_done() -> bool:
            return succeeding.done() or await waiting_on_a_lock(pid)

        await assert_eventually(
            success_waits_or_is_done, "the success waiting for the attempt's row (or done)", interval=0.01, timeout=30
        )
        success_started.set()
        outcomes = await asyncio.gather(attempting, succeeding, return_exceptions=True)
        assert [o for o in outcomes if isinstance(o, BaseException)] == []
        async with sm() as s:
            rows = {r.key: r for r in (await s.scalars(select(LoginThrottle))).all()}
        # One of the two went first; either way the success left the user unlocked.
        assert rows[user].locked_until is None and rows[user].failures <= 1
    finally:
        await engine.dispose()
