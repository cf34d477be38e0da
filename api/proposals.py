"""What the database says about a proposal that is well-formed on its own (registered people,
clearances, the fund, workflow ids), and how its workflow is summarised in the Temporal UI."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.proposal import Proposal
from domain.roles import Role
from domain.security import SecurityLabel
from domain.visions import Registry
from services import visions
from storage import ledger
from storage.models import Ministry, Project, User


async def proposal_problems(session: AsyncSession, proposal: Proposal) -> list[str]:
    """What the database says is wrong with a proposal that is well-formed on its own."""
    problems: list[str] = []
    pm = await session.get(User, proposal.programme_manager)
    if pm is None or Role.PM.value not in pm.roles:
        problems.append(f"programme_manager {proposal.programme_manager!r} is not a programme manager")
    label = proposal.label
    if label is not None and pm is not None and not covers(pm, label):
        problems.append(
            f"programme_manager {proposal.programme_manager!r} is not cleared for the label {label_text(label)}"
        )
    for name in proposal.reviewers:
        reviewer = await session.get(User, name)
        if reviewer is None or Role.REVIEWER.value not in reviewer.roles:
            problems.append(f"reviewer {name!r} is not a registered reviewer")
        elif label is not None and not covers(reviewer, label):  # a closed panel reads closed evidence
            problems.append(f"reviewer {name!r} is not cleared for the label {label_text(label)}")
    if proposal.performer is not None:
        performer = await session.get(User, proposal.performer)
        if performer is None or Role.PERFORMER.value not in performer.roles:
            problems.append(f"performer {proposal.performer!r} is not a registered performer")
    for code in proposal.public_use_ministries:
        if await session.get(Ministry, code) is None:
            problems.append(f"public-use ministry {code!r} is not in the ministry registry")
    problems += await visions.choice_problems(session, Registry.VISIONS, proposal.vision_id)
    problems += await visions.choice_problems(session, Registry.AREAS, proposal.area_id)
    ministry = proposal.funding_ministry.value
    available = await ledger.balance(session, ledger.allocation_account(ministry))
    if available < proposal.total_budget:
        problems.append(
            f"the {ministry} allocation has {available} yen available; the project needs {proposal.total_budget}"
        )
    if proposal.project_id is not None and re.fullmatch(r"KP-\d{4}", proposal.project_id):
        # Else it would share workflow ids with every project whose id is generated (below).
        problems.append(f"project id {proposal.project_id!r} is reserved: generated project ids begin with it")
    elif proposal.project_id is not None and await _shares_workflow_ids(session, proposal.project_id):
        problems.append(
            f"project id {proposal.project_id!r} would share workflow ids with another project (one id followed by"
            " '-' begins the other): choose another id"
        )
    return problems


async def _shares_workflow_ids(session: AsyncSession, project_id: str) -> bool:
    """Whether an existing project's id is a hyphen-prefix of this one, or this one of it. Children
    are named `project-<id>-gate-N-rM`, `-handoff-<M>`, `-demo-<M>`: such a project's workflow id
    could be the other's child's, taking that id (the child cannot start while it runs) and the
    payloads stamped with it. The refusal names no project: the other may be closed."""
    parts = project_id.split("-")
    prefixes = ["-".join(parts[:i]) for i in range(1, len(parts))]
    if prefixes and await session.scalar(select(Project.id).where(Project.id.in_(prefixes)).limit(1)):
        return True
    # LIKE narrows (no project id holds % or _); startswith decides: LIKE is case-blind on SQLite.
    longer = await session.scalars(select(Project.id).where(Project.id.like(f"{project_id}-%")))
    return any(other.startswith(f"{project_id}-") for other in longer)


def covers(user: User, label: SecurityLabel) -> bool:
    return user.clearance_level >= label.level and set(label.compartments) <= set(user.compartments)


def label_text(label: SecurityLabel) -> str:
    return " ".join([label.level.name, "/".join(label.compartments)]).strip()


def summary(p: Proposal) -> str:
    if p.label is not None:  # closed work: nothing that names the work itself
        return f"{p.project_id}: closed project ({p.label.level.name}); PM {p.programme_manager}; {p.funding_ministry.value}"
    return (
        f"{p.project_id}: {p.title} ({p.organisation}); PM {p.programme_manager}; {p.funding_ministry.value}; "
        f"TRL {p.start_trl}->{p.target_trl}; budget {p.total_budget:,} yen"
    )
