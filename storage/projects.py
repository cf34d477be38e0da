"""Project rows: written once per project id, by the API at start and again (idempotently) by the
workflow's first activity, so a project exists in the database whichever of them commits first."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.project import ProjectStatus
from domain.proposal import Proposal
from domain.statuses import StageStatus
from storage.models import Document, NeedToKnowGrant, Project, Stage


async def insert_project(session: AsyncSession, programme_code: str, workflow_id: str, proposal: Proposal) -> bool:
    """Insert the project and its planned stages; False when it is there already."""
    assert proposal.project_id is not None
    if await session.get(Project, proposal.project_id) is not None:
        return False
    session.add(
        Project(
            id=proposal.project_id,
            programme_code=programme_code,
            workflow_id=workflow_id,
            title=proposal.title,
            organisation=proposal.organisation,
            performer=proposal.performer,
            programme_manager=proposal.programme_manager,
            funding_ministry=proposal.funding_ministry.value,
            research_vision=proposal.research_vision or "",
            vision_id=proposal.vision_id,
            area_id=proposal.area_id,
            classification=proposal.classification.value,
            start_trl=proposal.start_trl,
            target_trl=proposal.target_trl,
            current_trl=proposal.start_trl,
            stage_no=1,
            status=ProjectStatus.ACTIVE,
            total_budget=proposal.total_budget,
            reviewers=list(proposal.reviewers),
            public_use_ministries=list(proposal.public_use_ministries),
            label_level=proposal.label.level if proposal.label else 0,
            label_compartments=list(proposal.label.compartments) if proposal.label else [],
        )
    )
    await session.flush()
    if proposal.label is not None:
        # Closed work: its programme manager (cleared for the label, checked at the start) is the
        # first to need to know; everyone else is granted explicitly.
        session.add(
            NeedToKnowGrant(
                project_id=proposal.project_id,
                username=proposal.programme_manager,
                granted_by=proposal.programme_manager,
                reason="programme manager of the project",
            )
        )
    session.add_all(
        Stage(
            project_id=proposal.project_id,
            stage_no=no,
            name=stage.name,
            trl_in=stage.trl_in,
            trl_out=stage.trl_out,
            duration_days=stage.duration_days,
            budget=stage.budget,
            status=StageStatus.PLANNED,
        )
        for no, stage in enumerate(proposal.stage_plan, start=1)
    )
    await session.flush()
    return True


# Set-based reads for lists (one query for all rows instead of one per row).


async def projects_by_id(session: AsyncSession, ids: Iterable[str]) -> dict[str, Project]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {p.id: p for p in (await session.scalars(select(Project).where(Project.id.in_(wanted)))).all()}


async def existing_documents(session: AsyncSession, ids: Iterable[str]) -> set[str]:
    """Which of these document ids are stored (e.g. each closed project's `<id>-closeout`)."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    return set((await session.scalars(select(Document.id).where(Document.id.in_(wanted)))).all())
