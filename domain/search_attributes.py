"""The typed search attributes every project workflow keeps current, for ops in the Temporal UI.

`docker-compose.yml` and the dev server register exactly these (a test checks they agree).
Those that never change for a workflow are given when it starts; the workflow upserts the others,
and only when their value changes (every upsert is a command and an event in its history).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes

from domain.project import ProjectState
from domain.proposal import Classification, Proposal

PROJECT_ID = SearchAttributeKey.for_keyword("ProjectId")
STAGE = SearchAttributeKey.for_keyword("Stage")
TRL = SearchAttributeKey.for_int("TRL")
PROJECT_STATUS = SearchAttributeKey.for_keyword("ProjectStatus")
PROGRAMME_MANAGER = SearchAttributeKey.for_keyword("ProgrammeManager")
FUNDING_MINISTRY = SearchAttributeKey.for_keyword("FundingMinistry")
# On each gate review workflow: which gate, when it is due, whether it is overdue.
GATE_NO = SearchAttributeKey.for_int("GateNo")
GATE_DUE_AT = SearchAttributeKey.for_datetime("GateDueAt")
GATE_OVERDUE = SearchAttributeKey.for_bool("GateOverdue")
# On a project workflow: a due tranche waits for finance's second approver.
AWAITING_FOUR_EYES = SearchAttributeKey.for_bool("AwaitingFourEyes")
# On each hand-off workflow: its deadline, and whether it passed unanswered (escalated).
HANDOFF_DEADLINE = SearchAttributeKey.for_datetime("HandoffDeadline")
HANDOFF_OVERDUE = SearchAttributeKey.for_bool("HandoffOverdue")

# On a project workflow, for the reconciliation read through visibility (services/workflow_views.py):
# the stage whose money runs, the phase (in_stage: stage or gate), and the stage's tranches paid.
STAGE_NO = SearchAttributeKey.for_int("StageNo")
PHASE = SearchAttributeKey.for_keyword("Phase")
TRANCHES_PAID = SearchAttributeKey.for_keyword_list("TranchesPaid")

ALL: tuple[SearchAttributeKey, ...] = (
    PROJECT_ID,
    STAGE,
    TRL,
    PROJECT_STATUS,
    PROGRAMME_MANAGER,
    FUNDING_MINISTRY,
    GATE_NO,
    GATE_DUE_AT,
    GATE_OVERDUE,
    AWAITING_FOUR_EYES,
    HANDOFF_DEADLINE,
    HANDOFF_OVERDUE,
    STAGE_NO,
    PHASE,
    TRANCHES_PAID,
)

# Temporal CLI / operator spelling of each key's type.
CLI_TYPE_NAMES = {
    "KEYWORD": "Keyword",
    "INT": "Int",
    "DATETIME": "Datetime",
    "BOOL": "Bool",
    "KEYWORD_LIST": "KeywordList",
}


def cli_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={CLI_TYPE_NAMES[key.indexed_value_type.name]}"]
    return flags


def project_values(proposal: Proposal, project_id: str, state: ProjectState) -> list[SearchAttributeUpdate[Any]]:
    """What a project workflow shows: its id, manager and ministry never change; its stage, TRL
    and status follow its state. (In the order the workflows have always upserted them.)"""
    closed = proposal.classification == Classification.CLOSED
    return [
        PROJECT_ID.value_set(project_id),
        # A closed project's stage names its work: only the stage number goes in clear.
        STAGE.value_set(f"stage {state.stage_index + 1}" if closed else proposal.stage_plan[state.stage_index].name),
        TRL.value_set(state.trl),
        PROJECT_STATUS.value_set(state.status.value),
        PROGRAMME_MANAGER.value_set(proposal.programme_manager),
        FUNDING_MINISTRY.value_set(proposal.funding_ministry.value),
    ]


def project_start(proposal: Proposal) -> TypedSearchAttributes:
    """A new project workflow's attributes, given at its start (its first run then upserts none)."""
    assert proposal.project_id is not None
    return as_start(project_values(proposal, proposal.project_id, ProjectState(trl=proposal.start_trl)))


def gate_values(project_id: str, gate_no: int, overdue: bool = False) -> list[SearchAttributeUpdate[Any]]:
    """A gate round's attributes: whose, which gate (these never change), and whether overdue
    (not when it starts)."""
    return [PROJECT_ID.value_set(project_id), GATE_NO.value_set(gate_no), GATE_OVERDUE.value_set(overdue)]


def as_start(values: Sequence[SearchAttributeUpdate[Any]]) -> TypedSearchAttributes:
    return TypedSearchAttributes([SearchAttributePair(v.key, v.value) for v in values])


def changed(
    values: Sequence[SearchAttributeUpdate[Any]], current: TypedSearchAttributes
) -> list[SearchAttributeUpdate[Any]]:
    """The values that differ from those the workflow has (given at start, upserted since, or
    carried over by continue-as-new)."""
    return [v for v in values if current.get(v.key) != v.value]
