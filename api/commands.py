"""Commands reach a project's workflow as Updates; every one is audited, refused or not.

An accepted command is audited by the write that carries it out: the Update's input carries the
command (who, what, to what), and the activity that writes its effect appends the audit row in the
same transaction, so no effect exists without its row, even if this process dies before the Update
returns. A refusal changed nothing: the API audits it here."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request, status
from temporalio.client import Client, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from api.audit import record
from api.deps import release_connection
from api.errors import refusal
from domain.command import Command, Commanded

UNANSWERED = (
    "the workflow did not answer in time; the command may still be carried out: "
    "send it again with the same Idempotency-Key for its answer"
)


async def send_update(
    request: Request,
    client: Client,
    workflow_id: str,
    update: Any,
    arg: Commanded,
    *,
    actor: str,
    action: str,
    target: str,
    update_id: str | None = None,
    **detail: Any,
) -> Any:
    """Execute `update` on the workflow; a refusal becomes 409 with the validator's reason.

    `update_id` (from the client's idempotency key) makes a retry the same Update: Temporal
    returns the first one's outcome instead of running it again (None: a fresh id)."""
    command = Command(actor=actor, action=action, target=target, detail=detail)
    await release_connection(request)
    try:
        return await client.get_workflow_handle(workflow_id).execute_update(
            update, arg.model_copy(update={"command": command}), id=update_id
        )
    except (WorkflowUpdateFailedError, RPCError) as err:
        http = refusal(err)
        await record(request, actor, action, target, "rejected", reason=http.detail)
        raise http from err
    except WorkflowUpdateRPCTimeoutOrCancelledError as err:
        # Not refused: still on its way (an overloaded worker), and the workflow may yet carry it
        # out, its write auditing it then. The client's retry with the same key gets its answer.
        await record(request, actor, action, target, "error", reason=UNANSWERED)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=UNANSWERED, headers={"Retry-After": "1"}
        ) from err
