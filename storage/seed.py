"""Users and the demo programme: the K Program fund, ministries and one user per role."""

from __future__ import annotations

from dataclasses import dataclass

from pwdlib import PasswordHash
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.programme import ALLOCATIONS, FUND_TOTAL, PROGRAMME_CODE, PROGRAMME_NAME
from domain.roles import PUBLIC_USE_MINISTRIES, Role
from domain.security import Level
from storage import ledger
from storage.models import FundAllocation, Ministry, Programme, User

password_hash = PasswordHash.recommended()


class UserExists(Exception):
    pass


@dataclass(frozen=True)
class DemoUser:
    username: str
    full_name: str
    roles: tuple[Role, ...]
    ministry: str | None = None
    clearance: Level = Level.NONE
    compartments: tuple[str, ...] = ()


# Clearances for the closed-work demo: a SECRET project in compartment QS (quantum sensing) is
# readable by the cleared PM, reviewer, liaison and ops user once each holds a need-to-know grant.
DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("admin", "Programme Administrator", (Role.ADMIN,), clearance=Level.TOP_SECRET, compartments=("QS",)),
    DemoUser("pm.sato", "Sato Haruka (Programme Manager)", (Role.PM,), clearance=Level.SECRET, compartments=("QS",)),
    DemoUser("pm.tanaka", "Tanaka Kenji (Programme Manager)", (Role.PM,), clearance=Level.CONFIDENTIAL),
    DemoUser("rev.ito", "Ito Yuki (Reviewer)", (Role.REVIEWER,), clearance=Level.SECRET, compartments=("QS",)),
    DemoUser("rev.kato", "Kato Ren (Reviewer)", (Role.REVIEWER,), clearance=Level.SECRET, compartments=("QS",)),
    DemoUser("rev.mori", "Mori Aoi (Reviewer)", (Role.REVIEWER,), clearance=Level.CONFIDENTIAL),
    DemoUser("fin.suzuki", "Suzuki Mei (Finance)", (Role.FINANCE,)),
    DemoUser("fin.yamada", "Yamada Jun (Finance, second approver)", (Role.FINANCE,)),
    DemoUser("perf.aoki", "Aoki Sora (Performer, Tokai Quantum Consortium)", (Role.PERFORMER,)),
    DemoUser(
        "liaison.mod",
        "Ministry of Defense liaison",
        (Role.MINISTRY,),
        "MOD",
        clearance=Level.SECRET,
        compartments=("QS",),
    ),
    DemoUser("liaison.mlit", "MLIT liaison", (Role.MINISTRY,), "MLIT"),
    DemoUser("ops.kimura", "Kimura Sho (Operations)", (Role.OPS,)),
    DemoUser(
        "ops.hayashi", "Hayashi Rin (Operations, cleared)", (Role.OPS,), clearance=Level.SECRET, compartments=("QS",)
    ),
)


async def add_user(
    session: AsyncSession,
    username: str,
    full_name: str,
    password: str,
    roles: list[Role],
    ministry: str | None = None,
) -> User:
    if await session.get(User, username) is not None:
        raise UserExists(f"user {username!r} already exists")
    if Role.MINISTRY in roles and ministry is None:
        raise ValueError("a ministry liaison needs --ministry")
    if ministry is not None and await session.get(Ministry, ministry) is None:
        raise ValueError(f"unknown ministry {ministry!r}")
    user = User(
        username=username,
        full_name=full_name,
        password_hash=password_hash.hash(password),
        roles=[r.value for r in roles],
        ministry=ministry,
    )
    session.add(user)
    await session.flush()
    return user


async def seed_programme(session: AsyncSession) -> None:
    """The programme, its fund, its allocations and the ministry registry (idempotent)."""
    for code, name in PUBLIC_USE_MINISTRIES.items():
        if await session.get(Ministry, code) is None:
            session.add(Ministry(code=code, name=name))
    if await session.get(Programme, PROGRAMME_CODE) is None:
        session.add(Programme(code=PROGRAMME_CODE, name=PROGRAMME_NAME, fund_total=FUND_TOTAL))
        await session.flush()
        for ministry, amount in ALLOCATIONS.items():
            session.add(FundAllocation(programme_code=PROGRAMME_CODE, ministry=ministry, amount=amount))
    await session.flush()
    for ministry, amount in ALLOCATIONS.items():
        await ledger.endow(session, programme_code=PROGRAMME_CODE, ministry=ministry, amount=amount)


def demo_email(username: str) -> str:
    """A demo user's address, in a domain reserved for tests (RFC 2606): mail to it goes to the
    local sink or Mailpit, never to a real mailbox."""
    return f"{username}@example.test"


async def seed_demo(sessionmaker: async_sessionmaker[AsyncSession], password: str) -> list[DemoUser]:
    """Seed programme and demo users; returns the users created now (existing ones are kept)."""
    created: list[DemoUser] = []
    async with sessionmaker.begin() as session:
        await seed_programme(session)
        existing = set((await session.scalars(select(User.username))).all())
        for demo in DEMO_USERS:
            if demo.username not in existing:
                user = await add_user(session, demo.username, demo.full_name, password, list(demo.roles), demo.ministry)
                user.clearance_level, user.compartments = int(demo.clearance), list(demo.compartments)
                user.email = demo_email(demo.username)
                created.append(demo)
    return created
