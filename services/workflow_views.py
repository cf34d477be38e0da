"""What a project's workflow believes, read from Temporal for the reconciliation (storage/reconcile.py
compares it with the ledger). Shared by the API, the CLI and the daily repair's activities."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from domain.project import Phase, ProjectOutcome
from storage.models import Project
from storage.reconcile import WorkflowView
from workflows.project import ProjectWorkflow

_QUERY_TIMEOUT = timedelta(seconds=5)


async def workflow_view(client: Client, project: Project) -> WorkflowView:
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


async def _ask_workflow(client: Client, project: Project) -> WorkflowView:
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
