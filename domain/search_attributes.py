"""The typed search attributes every project workflow keeps current, for ops in the Temporal UI.

`docker-compose.yml` and the dev server register exactly these (a test checks they agree).
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

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
