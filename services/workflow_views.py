"""What a project's workflow believes, read from Temporal for the reconciliation (storage/reconcile.py
compares it with the ledger). Shared by the API, the CLI and the daily repair's activities.

`workflow_views`: a page of projects through visibility, one list query per page (the search
attributes each project keeps: ProjectStatus, StageNo, Phase, TranchesPaid). Where visibility
cannot answer for a project (not indexed yet, a run from before those attributes, a workflow task
failing, a run that just continued as new), `workflow_view` asks that one workflow: describe, then
its status query."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
)
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from domain import search_attributes as sa
from domain.project import Phase, ProjectOutcome
from storage.reconcile import ProjectRef, WorkflowView
from workflows.project import ProjectWorkflow

_QUERY_TIMEOUT = timedelta(seconds=5)
# Set by the server on a workflow whose tasks keep failing or timing out (Temporal 1.28+).
REPORTED_PROBLEMS = SearchAttributeKey.for_keyword_list("TemporalReportedProblems")
IN_STAGE = (Phase.STAGE.value, Phase.GATE.value)


async def workflow_views(client: Client, projects: Sequence[ProjectRef]) -> dict[str, WorkflowView]:
    """What each project's workflow believes, by project id: one visibility query for the page,
    a describe (and query) only for the projects it cannot answer for. Temporal being down fails
    the whole reconciliation, as in `workflow_view`."""
    latest: dict[str, WorkflowExecution] = {}
    if projects:
        ids = ", ".join(_quoted(p.workflow_id) for p in projects)
        query = f"WorkflowType = 'ProjectWorkflow' AND WorkflowId IN ({ids})"
        async for execution in client.list_workflows(query, page_size=max(100, 2 * len(projects))):
            if _later(execution, latest.get(execution.id)):
                latest[execution.id] = execution
    views: dict[str, WorkflowView] = {}
    for project in projects:
        found = latest.get(project.workflow_id)
        view = _from_visibility(found) if found is not None else None
        views[project.id] = view if view is not None else await workflow_view(client, project)
    return views


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _later(execution: WorkflowExecution, than: WorkflowExecution | None) -> bool:
    """The run that speaks for the workflow: the running one, else the latest started."""
    if than is None or execution.status == WorkflowExecutionStatus.RUNNING:
        return True
    return than.status != WorkflowExecutionStatus.RUNNING and execution.start_time > than.start_time


def _from_visibility(execution: WorkflowExecution) -> WorkflowView | None:
    """The view from the run's search attributes; None where they cannot say."""
    attrs = execution.typed_search_attributes
    status = attrs.get(sa.PROJECT_STATUS)
    if execution.status == WorkflowExecutionStatus.COMPLETED:
        # The last publish before the run returns says its final status (its outcome's).
        return WorkflowView(found=True, status=status) if status else None
    if execution.status != WorkflowExecutionStatus.RUNNING:
        if execution.status in (None, WorkflowExecutionStatus.CONTINUED_AS_NEW):
            return None  # its next run is not indexed yet
        return WorkflowView(found=True, status=f"workflow {execution.status.name.lower()}")
    stage_no, phase, paid = attrs.get(sa.STAGE_NO), attrs.get(sa.PHASE), attrs.get(sa.TRANCHES_PAID)
    if attrs.get(REPORTED_PROBLEMS) or not status or stage_no is None or phase is None or paid is None:
        return None
    return WorkflowView(
        found=True,
        running=True,
        status=status,
        stage_no=stage_no,
        in_stage=phase in IN_STAGE,
        tranches_paid=[int(n) for n in paid if n.isdigit()],
    )


async def workflow_view(client: Client, project: ProjectRef) -> WorkflowView:
    """Ask Temporal what the project's workflow believes (running: its status query). Temporal
    being down fails the whole reconciliation; one workflow that cannot answer is its drift."""
    try:
        return await _ask_workflow(client, project)
    except RPCError as err:
        if err.status == RPCStatusCode.UNAVAILABLE:
            raise
        if err.status == RPCStatusCode.DEADLINE_EXCEEDED:
            return WorkflowView(found=True, problem=f"its status query had no answer within {_QUERY_TIMEOUT}")
        return WorkflowView(found=True, problem=str(err))
    except (WorkflowQueryFailedError, WorkflowFailureError) as err:
        return WorkflowView(found=True, problem=f"{err}: {err.__cause__}" if err.__cause__ else str(err))


async def _ask_workflow(client: Client, project: ProjectRef) -> WorkflowView:
    handle = client.get_workflow_handle(project.workflow_id, result_type=ProjectOutcome)
    try:
        desc = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return WorkflowView(found=False)
        raise
    if desc.status == WorkflowExecutionStatus.RUNNING:
        task = desc.raw_description.pending_workflow_task
        if task.attempt > 1:  # it would not answer a query either; no need to wait for one
            return WorkflowView(
                found=True, problem=f"its workflow task has failed {task.attempt - 1} times in a row (see its history)"
            )
        snap = await handle.query(ProjectWorkflow.status, rpc_timeout=_QUERY_TIMEOUT)
        return WorkflowView(
            found=True,
            running=True,
            status=snap.status.value,
            stage_no=snap.stage_index + 1,
            in_stage=snap.phase in (Phase.STAGE, Phase.GATE),
            tranches_paid=snap.money.tranches_paid if snap.money else [],
        )
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        outcome: ProjectOutcome = await handle.result()
        return WorkflowView(found=True, status=outcome.status.value)
    closed = desc.status.name.lower() if desc.status is not None else "closed"
    return WorkflowView(found=True, status=f"workflow {closed}")
