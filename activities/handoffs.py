"""Hand-off activities: the package, the liaisons' answers, reminders and escalation.

Every write is keyed by the hand-off's business id (`<project>-h|d-<ministry>`), so a retried
activity finds its first result. Notifications go through the notifications outbox, keyed too.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from activities.base import SYSTEM_ACTOR, DatabaseActivities
from activities.documents import render, store_document
from activities.notices import readers
from domain.command import Command
from domain.handoff import HandoffInput, HandoffKind, HandoffStatus
from domain.roles import Role
from domain.security import Level
from domain.trl import NASA_TRL
from storage import ledger
from storage.access import is_closed
from storage.audit import audit, audit_command, audit_effect
from storage.models import Gate, GateDecision, Handoff, Ministry, Notification, Project, Stage, User

HANDOFF_PACKAGE_TEMPLATE = "handoff_package.v2.html.j2"  # v2: brief, evidence per gate, label, contacts


class PrepareHandoffInput(BaseModel):
    handoff: HandoffInput
    workflow_id: str
    deadline_at: datetime
    at: datetime


class PrepareHandoffResult(BaseModel):
    document_id: str
    liaisons: list[str]  # who was offered the package (cleared and granted, for closed work)


class RecordAnswerInput(BaseModel):
    handoff_id: str
    status: HandoffStatus
    by: str | None = None
    receiving_programme: str = ""
    reason: str = ""
    rerouted_to: str | None = None
    at: datetime
    command: Command | None = None  # the liaison's answer or the PM's re-route


class HandoffNoticeInput(BaseModel):
    """A reminder to the liaisons (`escalate` False) or an escalation to the programme manager."""

    handoff_id: str
    n: int
    escalate: bool
    message: str
    at: datetime


async def liaisons_for(session: AsyncSession, project: Project, ministry: str) -> list[str]:
    """The ministry's active liaisons who may receive this project's package: all of them for open
    work; for closed work only those cleared for its label and granted need-to-know."""
    users = (
        await session.scalars(
            select(User).where(User.ministry == ministry, User.active.is_(True)).order_by(User.username)
        )
    ).all()
    return await readers(session, project, [u for u in users if Role.MINISTRY.value in u.roles])


def _notify(
    session: AsyncSession, key: str, project_id: str, recipient: str, kind: str, message: str, at: datetime
) -> None:
    session.add(Notification(key=key, project_id=project_id, recipient=recipient, kind=kind, message=message, at=at))


async def _absent(session: AsyncSession, key: str) -> bool:
    return await session.get(Notification, key) is None


class HandoffActivities(DatabaseActivities):
    @activity.defn
    async def prepare_handoff(self, input: PrepareHandoffInput) -> PrepareHandoffResult:
        h = input.handoff
        hid = h.handoff_id

        async def work(session: AsyncSession) -> PrepareHandoffResult:
            project = await session.get(Project, h.project_id)
            ministry = await session.get(Ministry, h.ministry)
            assert project is not None and ministry is not None, f"{h.project_id} or {h.ministry} is not registered"
            if h.ministry not in project.public_use_ministries:
                # A re-route or a demonstration brings in a ministry the proposal did not name:
                # its liaisons now take part in the project (and may read what they are offered).
                project.public_use_ministries = [*project.public_use_ministries, h.ministry]
            liaisons = await liaisons_for(session, project, h.ministry)
            existing = await session.get(Handoff, hid)
            if existing is not None:
                return PrepareHandoffResult(document_id=existing.document_id, liaisons=liaisons)
            stages = (
                await session.scalars(select(Stage).where(Stage.project_id == project.id).order_by(Stage.stage_no))
            ).all()
            decisions = (
                await session.scalars(
                    select(GateDecision)
                    .where(GateDecision.project_id == project.id)
                    .order_by(GateDecision.gate_no, GateDecision.round)
                )
            ).all()
            gates = (await session.scalars(select(Gate).where(Gate.project_id == project.id))).all()
            content = render(
                HANDOFF_PACKAGE_TEMPLATE,
                project=project,
                ministry=ministry,
                kind=h.kind.value,
                brief=h.brief,
                trl=h.trl,
                trl_text=NASA_TRL[h.trl],
                paid=await ledger.balance(session, ledger.paid_account(project.id)),
                decisions=decisions,
                stage_names={s.stage_no: s.name for s in stages},
                trl_out={s.stage_no: s.trl_out for s in stages},
                evidence={g.gate_no: list(g.definition.get("deliverables", [])) for g in gates},
                label=_label(project),
                deadline_at=input.deadline_at,
                rerouted_from=h.rerouted_from,
                liaisons=liaisons,
            )
            doc = await store_document(
                session, f"{hid}-package", project.id, "handoff_package", HANDOFF_PACKAGE_TEMPLATE, content
            )
            session.add(
                Handoff(
                    id=hid,
                    project_id=project.id,
                    ministry=h.ministry,
                    kind=h.kind.value,
                    status=HandoffStatus.PENDING.value,
                    document_id=doc.id,
                    workflow_id=input.workflow_id,
                    deadline_at=input.deadline_at,
                    rerouted_from=h.rerouted_from,
                    created_at=input.at,
                )
            )
            what = "for demonstration use" if h.kind == HandoffKind.DEMONSTRATION else "for public use"
            for name in liaisons:
                _notify(
                    session,
                    f"{hid}-offered-{name}",
                    project.id,
                    name,
                    "handoff_offered",
                    f"{project.id} is handed off to {h.ministry} {what}: accept (naming the receiving programme) "
                    f"or decline by {input.deadline_at:%Y-%m-%d}. Package: {doc.id}",
                    input.at,
                )
            if not liaisons:
                _notify(
                    session,
                    f"{hid}-no-liaison",
                    project.id,
                    h.programme_manager,
                    "handoff_no_liaison",
                    f"{h.ministry} has no liaison who may receive the package of {project.id}"
                    + (" (cleared and granted need-to-know)" if is_closed(project) else "")
                    + ": grant one, or re-route the hand-off when it escalates.",
                    input.at,
                )
            audit(
                session,
                SYSTEM_ACTOR,
                "handoff_offered",
                f"handoff:{hid}",
                ministry=h.ministry,
                kind=h.kind.value,
                document=doc.id,
                sha256=doc.sha256,
                liaisons=liaisons,
            )
            await audit_command(session, h.command, handoff=hid)  # a re-route or a demonstration
            return PrepareHandoffResult(document_id=doc.id, liaisons=liaisons)

        return await self.transact(work)

    @activity.defn
    async def record_answer(self, input: RecordAnswerInput) -> HandoffStatus:
        """Accept, decline, re-route or cancel: the first resolution stands (a retry returns it)."""

        async def work(session: AsyncSession) -> HandoffStatus:
            handoff = await session.get(Handoff, input.handoff_id)
            assert handoff is not None, f"hand-off {input.handoff_id} is not prepared"
            if handoff.status != HandoffStatus.PENDING.value:
                if input.rerouted_to and handoff.rerouted_to is None:  # a declined one, re-routed after
                    handoff.rerouted_to = input.rerouted_to
                    await audit_effect(
                        session,
                        input.command,
                        input.by or SYSTEM_ACTOR,
                        "handoff_rerouted",
                        f"handoff:{handoff.id}",
                        to=input.rerouted_to,
                    )
                return HandoffStatus(handoff.status)
            project = await session.get(Project, handoff.project_id)
            assert project is not None
            handoff.status = input.status
            handoff.decided_by = input.by
            handoff.receiving_programme = input.receiving_programme
            handoff.reason = input.reason
            handoff.rerouted_to = input.rerouted_to
            handoff.resolved_at = input.at
            if input.status == HandoffStatus.ACCEPTED:
                handoff.accepted_by = input.by
            if input.status in (HandoffStatus.ACCEPTED, HandoffStatus.DECLINED):
                said = (
                    f"accepted for {input.receiving_programme}"
                    if input.status == HandoffStatus.ACCEPTED
                    else f"declined: {input.reason}"
                )
                _notify(
                    session,
                    f"{handoff.id}-{input.status.value}",
                    project.id,
                    project.programme_manager,
                    f"handoff_{input.status.value}",
                    f"{handoff.ministry} {said} (by {input.by})."
                    + (" You may re-route it to another ministry." if input.status == HandoffStatus.DECLINED else ""),
                    input.at,
                )
            await audit_effect(
                session,
                input.command,
                input.by or SYSTEM_ACTOR,
                f"handoff_{input.status.value}",
                f"handoff:{handoff.id}",
                receiving_programme=input.receiving_programme,
                reason=input.reason,
                rerouted_to=input.rerouted_to,
            )
            return input.status

        return await self.transact(work)

    @activity.defn
    async def handoff_notice(self, input: HandoffNoticeInput) -> int:
        """Remind the liaisons, or escalate to the programme manager; returns notices written."""

        async def work(session: AsyncSession) -> int:
            handoff = await session.get(Handoff, input.handoff_id)
            assert handoff is not None
            if handoff.status != HandoffStatus.PENDING.value:
                return 0  # answered meanwhile: no reminder after the fact
            project = await session.get(Project, handoff.project_id)
            assert project is not None
            written = 0
            if input.escalate:
                key = f"{handoff.id}-escalated"
                if await _absent(session, key):
                    _notify(
                        session,
                        key,
                        project.id,
                        project.programme_manager,
                        "handoff_escalated",
                        input.message,
                        input.at,
                    )
                    written += 1
                if handoff.escalated_at is None:
                    handoff.escalated_at = input.at
                    audit(session, SYSTEM_ACTOR, "handoff_escalated", f"handoff:{handoff.id}")
                return written
            for name in await liaisons_for(session, project, handoff.ministry):
                key = f"{handoff.id}-reminder-{input.n}-{name}"
                if await _absent(session, key):
                    _notify(session, key, project.id, name, "handoff_reminder", input.message, input.at)
                    written += 1
            return written

        return await self.transact(work)


def _label(project: Project) -> str:
    if not is_closed(project):
        return ""
    compartments = "/".join(project.label_compartments)
    return Level(project.label_level).name.replace("_", " ") + (f" {compartments}" if compartments else "")
