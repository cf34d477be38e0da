"""The lists' SQL form of the access policy (storage/access.readable_sql) answers as the policy
itself (domain/security.decide through storage/access.decide_for) for every combination of
label level, compartments, grant (held, revoked, none) and role, on both databases."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from sqlalchemy import select

from domain.programme import PROGRAMME_CODE
from domain.security import Level
from storage.access import decide_for, readable_sql
from storage.db import make_engine, make_sessionmaker
from storage.models import NeedToKnowGrant, Project, User
from tests.support import ledger_project

LABELS = [[], ["QS"], ["QS", "BIO"], ["BIO"]]
USERS = [
    # (name, roles, clearance, compartments)
    ("adm", ["admin"], Level.TOP_SECRET, ["QS", "BIO"]),
    ("ops", ["ops"], Level.SECRET, ["QS"]),
    ("fin", ["finance"], Level.CONFIDENTIAL, []),
    ("pm1", ["pm"], Level.TOP_SECRET, ["QS", "BIO"]),
    ("rev", ["reviewer"], Level.SECRET, ["BIO"]),
    ("nob", ["performer"], Level.NONE, []),
]


async def test_the_sql_policy_answers_as_decide(db_url: str) -> None:
    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    try:
        async with sm.begin() as s:
            for name, roles, clearance, compartments in USERS:
                s.add(
                    User(
                        username=f"acl-{name}",
                        full_name=name,
                        password_hash="x",
                        roles=roles,
                        clearance_level=int(clearance),
                        compartments=compartments,
                    )
                )
            await s.flush()  # the projects name them
            projects = []
            for n, (level, label, pm) in enumerate(itertools.product(list(Level)[1:], LABELS, ["acl-pm1", "pm.sato"])):
                p = ledger_project(f"KP-ACL-{n:03d}", PROGRAMME_CODE, "MEXT", 1_000_000)
                p.classification = "closed"
                p.label_level = int(level)
                p.label_compartments = label
                p.programme_manager = pm
                p.reviewers = ["acl-rev"] if n % 2 else []
                projects.append(p)
            opened = ledger_project("KP-ACL-OPEN", PROGRAMME_CODE, "MEXT", 1_000_000)
            s.add_all([*projects, opened])
            await s.flush()
            now = datetime.now(UTC)
            for i, (p, (name, *_)) in enumerate(itertools.product(projects, USERS)):
                if i % 3 == 2:
                    continue  # no grant
                s.add(
                    NeedToKnowGrant(
                        project_id=p.id,
                        username=f"acl-{name}",
                        granted_by="admin",
                        reason="need to know",
                        revoked_at=now if i % 3 == 1 else None,
                    )
                )
        async with sm() as s:
            users = (await s.scalars(select(User).where(User.username.like("acl-%")))).all()
            every = (await s.scalars(select(Project).where(Project.id.like("KP-ACL-%")))).all()
            grants = {
                (g.username, g.project_id)
                for g in (await s.scalars(select(NeedToKnowGrant).where(NeedToKnowGrant.revoked_at.is_(None)))).all()
            }
            allowed = 0
            for user in users:
                by_sql = set(
                    (await s.scalars(select(Project.id).where(Project.id.like("KP-ACL-%"), readable_sql(user)))).all()
                )
                by_policy = {
                    p.id
                    for p in every
                    if p.classification != "closed" or decide_for(user, p, (user.username, p.id) in grants)
                }
                assert by_sql == by_policy, user.username
                assert "KP-ACL-OPEN" in by_sql
                allowed += len(by_sql) - 1
            # The matrix reaches both answers: of every (user, closed project), some read, some refused.
            assert len(users) == len(USERS) and 0 < allowed < len(users) * (len(every) - 1)
    finally:
        await engine.dispose()
