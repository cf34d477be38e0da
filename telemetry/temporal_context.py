"""A client interceptor that adds the workflow a request starts or writes to (workflow_id,
run_id) to the request's log fields, whatever route made the call."""

from __future__ import annotations

from typing import Any

from temporalio import client

from telemetry import context


class _Outbound(client.OutboundInterceptor):
    async def start_workflow(self, input: client.StartWorkflowInput) -> client.WorkflowHandle[Any, Any]:
        handle = await self.next.start_workflow(input)
        context.bind(workflow_id=handle.id, run_id=handle.result_run_id)
        return handle

    async def signal_workflow(self, input: client.SignalWorkflowInput) -> None:
        context.bind(workflow_id=input.id, run_id=input.run_id)
        await self.next.signal_workflow(input)

    async def start_workflow_update(self, input: client.StartWorkflowUpdateInput) -> client.WorkflowUpdateHandle[Any]:
        context.bind(workflow_id=input.id, run_id=input.run_id)
        handle = await self.next.start_workflow_update(input)
        context.bind(run_id=handle.workflow_run_id)
        return handle

    async def cancel_workflow(self, input: client.CancelWorkflowInput) -> None:
        context.bind(workflow_id=input.id, run_id=input.run_id)
        await self.next.cancel_workflow(input)

    async def terminate_workflow(self, input: client.TerminateWorkflowInput) -> None:
        context.bind(workflow_id=input.id, run_id=input.run_id)
        await self.next.terminate_workflow(input)


class WorkflowIdsInLogs(client.Interceptor):
    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _Outbound(next)
