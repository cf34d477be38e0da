"""What every workflow here shares: activity timeouts and retries, and the shape of a refusal."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from domain.command import Command

# Every activity is a short database write (or a render); a worker that dies mid-way is noticed
# after this long and the activity runs again, idempotently, elsewhere.
ACTIVITY_TIMEOUT = timedelta(seconds=10)
ACTIVITY_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30))


def rejected(message: str) -> ApplicationError:
    """A refusal of an Update. Raised from a validator it leaves no trace in history; raised from
    a handler (a concurrent twin got there first) it fails only that Update, never the workflow."""
    return ApplicationError(message, type="Rejected", non_retryable=True)


def keyed(command: Command | None) -> Command | None:
    """The command an Update carries, keyed by the Update's id (called in its handler): the write
    that carries it out audits it once, however often that write is retried."""
    info = workflow.current_update_info()
    if command is None or info is None:
        return command
    return command.model_copy(update={"key": f"{workflow.info().workflow_id}/{info.id}"})
