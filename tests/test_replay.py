"""Stored histories must keep replaying: a change to the workflow's commands needs a patch."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from domain.project import ProjectWorkflowInput
from tests.support import CONVERTER
from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_are_stored_histories() -> None:
    names = {p.name for p in HISTORIES}
    # v1: before the local-activity patch; v2: after it; v3: gate rounds as their own workflows
    # (with hold, recycle and conditional go); v4: the fund ledger (four eyes, progress reports,
    # a return and a resubmission, a project waiting for funds). All must keep replaying.
    assert {
        "project-HIST-v1-full-run1.json",
        "project-HIST-v2-full-run1.json",
        "project-HIST-v2-kill-run2.json",
        "project-HIST-v4-money-run1.json",
        "project-HIST-v4-funds-run1.json",
    } <= names
    money = (Path(__file__).parent / "histories" / "project-HIST-v4-money-run1.json").read_text()
    for update in ("sign_tranche", "submit_report", "review_report"):
        assert f'"{update}"' in money, update
    # v5: hand-offs as workflows (a demonstration, a decline re-routed), a performer's withdrawal,
    # a Conditional Go's missed date stopping the project; its payloads are sealed (AES-GCM).
    assert {
        "project-HIST-v5-handoffs-run2.json",
        "project-HIST-v5-handoffs-handoff-MLIT.json",
        "project-HIST-v5-handoffs-handoff-NPA.json",
        "project-HIST-v5-handoffs-demo-MOD.json",
        "project-HIST-v5-withdraw-run1.json",
        "project-HIST-v5-missed-run2.json",
        # an overdue hand-off, escalated and re-routed: before and after tell-project-before-escalating
        "project-HIST-overdue-v5-handoff-MLIT.json",
        "project-HIST-overdue-v6-handoff-MLIT.json",
    } <= names
    handoffs = (Path(__file__).parent / "histories" / "project-HIST-v5-handoffs-run2.json").read_text()
    for update in ("reroute_handoff", "handoff_changed"):
        assert f'"{update}"' in handoffs, update
    assert "YmluYXJ5L2VuY3J5cHRlZA==" in handoffs  # base64 of binary/encrypted


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_stored_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


@workflow.defn(name="ProjectWorkflow", sandboxed=False)
class ChangedProjectWorkflow:
    """Stands for an unpatched change: starts with a timer where the real one runs an activity."""

    @workflow.run
    async def run(self, input: ProjectWorkflowInput) -> None:
        await workflow.sleep(1)


async def test_a_changed_command_sequence_is_caught() -> None:
    """The guard works: a workflow whose commands differ fails to replay a stored history."""
    path = HISTORIES[0]
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[ChangedProjectWorkflow], data_converter=CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
