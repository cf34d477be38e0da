"""The worker's limits come from the settings, and its sandbox shares the pure packages with the
process instead of importing them again for every workflow run."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.project import ProjectState
from gates.definitions import GateDefinition

with workflow.unsafe.imports_passed_through():  # this module is imported into the sandbox too
    import pytest

    import worker as worker_module
    from config import Settings
    from storage.db import make_engine, make_sessionmaker

# Never connected: the activities only keep it.
SESSIONMAKER = make_sessionmaker(make_engine("sqlite+aiosqlite:///:memory:"))


class Recorded:
    """Stands for temporalio's Worker: keeps what it was built with."""

    def __init__(self, client: Any, **kwargs: Any) -> None:
        self.kwargs = kwargs


def test_the_worker_is_built_with_the_settings_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "Worker", Recorded)
    settings = Settings(
        worker_max_cached_workflows=123,
        worker_max_concurrent_workflow_tasks=7,
        worker_max_concurrent_activities=11,
        worker_max_concurrent_local_activities=13,
    )
    built: Any = worker_module.build_worker(object(), "q", SESSIONMAKER, settings)  # type: ignore[arg-type]
    assert {k: built.kwargs[k] for k in worker_module.worker_limits(settings)} == {
        "max_cached_workflows": 123,
        "max_concurrent_workflow_tasks": 7,
        "max_concurrent_activities": 11,
        "max_concurrent_local_activities": 13,
    }
    restrictions = built.kwargs["workflow_runner"].restrictions
    # The pure packages pass through; the workflow modules stay sandboxed (its restrictions apply).
    assert {"domain", "gates"} <= restrictions.passthrough_modules
    assert "workflows" not in restrictions.passthrough_modules
    # A test's own worker option wins over the settings.
    again: Any = worker_module.build_worker(object(), "q", SESSIONMAKER, settings, max_cached_workflows=0)  # type: ignore[arg-type]
    assert again.kwargs["max_cached_workflows"] == 0


def test_the_defaults_bound_the_cache_and_the_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CACHED_WORKFLOWS", "CONCURRENT_WORKFLOW_TASKS", "CONCURRENT_ACTIVITIES"):
        monkeypatch.delenv(f"TRLGATE_WORKER_MAX_{name}", raising=False)
    limits = worker_module.worker_limits(Settings())
    # Below the SDK's defaults (1,000 cached runs, 100 slots each): ten thousand waiting projects
    # must not all stay in memory, and activities share a pool of 20 database connections.
    assert limits["max_cached_workflows"] <= 500
    assert limits["max_concurrent_activities"] <= 20


@workflow.defn(sandboxed=True)
class ModuleIdentity:
    @workflow.run
    async def run(self) -> list[int]:
        # Inside the sandbox: the classes as this run sees them.
        return [id(ProjectState), id(GateDefinition)]


async def test_the_sandbox_passes_the_pure_packages_through(unit_time_skipping: WorkflowEnvironment) -> None:
    """Every run sees the process's own domain and gates modules (not a copy imported for it)."""
    queue = f"unit-{uuid.uuid4().hex[:8]}"
    async with Worker(
        unit_time_skipping.client,
        task_queue=queue,
        workflows=[ModuleIdentity],
        workflow_runner=worker_module.workflow_runner(),
    ):
        seen = await unit_time_skipping.client.execute_workflow(ModuleIdentity.run, id=queue, task_queue=queue)
    assert seen == [id(ProjectState), id(GateDefinition)]
