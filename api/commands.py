"""Commands reach a project's workflow as Updates; every one is audited, refused or not."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.audit import record
from api.errors import refusal


async def send_update(
    request: Request,
    client: Client,
    workflow_id: str,
    update: Any,
    arg: Any,
    *,
    actor: str,
    action: str,
    target: str,
    **detail: Any,
) -> Any:
    """Execute `update` on the workflow; a refusal becomes 409 with the validator's reason."""
    try:
        result = await client.get_workflow_handle(workflow_id).execute_update(update, arg)
    except (WorkflowUpdateFailedError, RPCError) as err:
        http = refusal(err)
        await record(request, actor, action, target, "rejected", reason=http.detail)
        raise http from err
    await record(request, actor, action, target, "ok", **detail)
    return result
