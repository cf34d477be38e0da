"""Stored histories must keep replaying: a change to the workflows' commands needs a patch.

The stored files are the v1 baseline (`python -m tests.histories.record --replace`) plus, from v1
on, the histories each registered patch names. TRLGATE_HISTORIES points the test at another
directory (a trial recording, say)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from domain.project import ProjectWorkflowInput
from tests.histories.coverage import BASELINE, ENCRYPTED, check_path, facts, load
from tests.histories.scenarios import SCENARIOS
from tests.support import CONVERTER
from worker import WORKFLOWS, workflow_runner

DIRECTORY = Path(os.environ.get("TRLGATE_HISTORIES") or Path(__file__).parent / "histories")
HISTORIES = sorted(DIRECTORY.glob("project-*.json"))
# Stored by the recorders before the v1 baseline (first-design gates and hand-offs, patches):
# while it is there, the baseline has not been recorded into this directory yet.
PRE_BASELINE = "project-HIST-v5-handoffs-run1.json"


def test_there_are_stored_histories() -> None:
    assert len(HISTORIES) >= len(BASELINE), f"{DIRECTORY} holds {len(HISTORIES)} histories"


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_stored_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    # The strict sandbox: the workflows' own modules sandboxed too, so a clock read or I/O in them fails here.
    replayer = Replayer(workflows=WORKFLOWS, data_converter=CONVERTER, workflow_runner=workflow_runner())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


def test_the_recorder_records_every_path_of_the_baseline() -> None:
    assert list(SCENARIOS) == list(BASELINE)


@pytest.mark.parametrize("path", list(BASELINE))
def test_the_baseline_covers_the_path(path: str) -> None:
    """Each path's project, runs and child workflows are stored, with the Updates, signals and
    activities that make it that path (tests/histories/coverage.py)."""
    _require_baseline()
    assert check_path(DIRECTORY, path) == []


def _require_baseline() -> None:
    # The v1 baseline is stored: a directory still holding the first design's histories is an error.
    assert not (DIRECTORY / PRE_BASELINE).exists(), (
        f"{DIRECTORY} predates the v1 baseline: python -m tests.histories.record --replace"
    )


def test_payloads_are_stored_sealed() -> None:
    """What Temporal stores is encrypted (AES-GCM): every history's payloads say so."""
    _require_baseline()  # the earliest recorders predate the codec
    clear = [p.name for p in HISTORIES if ENCRYPTED not in p.read_text()]
    assert clear == []


def _patch_ids(names: Iterable[str]) -> dict[str, set[str]]:
    """The patch ids each stored history recorded, by file name."""
    return {n: facts(load(DIRECTORY / n)).patches for n in names}


def test_the_patch_registry_and_the_stored_histories_agree() -> None:
    """From v1 on every change to commands is a registered patch (the v1 baseline records none),
    and each registered patch names stored histories of both sides: recorded before it (without
    its marker) and after it (with it), so both branches replay until the patch is retired."""
    from workflows import patches

    recorded = _patch_ids(p.name for p in HISTORIES)
    registered = {p.id for p in patches.PATCHES}
    assert {name: ids - registered for name, ids in recorded.items() if ids - registered} == {}
    for patch in patches.PATCHES:
        before = {n: recorded.get(n) for n in patch.histories_before}
        after = {n: recorded.get(n) for n in patch.histories_after}
        assert None not in (*before.values(), *after.values()), f"{patch.id} names histories not stored"
        assert before and not any(patch.id in ids for ids in before.values() if ids is not None), patch.id
        assert after and all(patch.id in ids for ids in after.values() if ids is not None), patch.id


@workflow.defn(name="ProjectWorkflow", sandboxed=False)
class ChangedProjectWorkflow:
    """Stands for an unpatched change: starts with a timer where the real one runs an activity."""

    @workflow.run
    async def run(self, input: ProjectWorkflowInput) -> None:
        await workflow.sleep(1)


async def test_a_changed_command_sequence_is_caught() -> None:
    """The guard works: a workflow whose commands differ fails to replay a stored history."""
    path = next(p for p in HISTORIES if p.name.endswith("-run1.json"))
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[ChangedProjectWorkflow], data_converter=CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
