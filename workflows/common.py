"""What every workflow here shares: activity timeouts and retries, the shape of a refusal, and
how search attributes are published."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate, TypedSearchAttributes
from temporalio.exceptions import ApplicationError

from domain import search_attributes as sa
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


# Search attributes that never change are given in the start options, the others upserted only
# when their value changes (workflows/patches.py). Runs begun before it upsert every value at every
# publish, as their histories say.
SEARCH_ATTRIBUTES_ON_CHANGE = "search-attributes-on-change"


def attributes_on_change() -> bool:
    return workflow.patched(SEARCH_ATTRIBUTES_ON_CHANGE)


def start_attributes(values: Sequence[SearchAttributeUpdate[Any]]) -> TypedSearchAttributes | None:
    """A child workflow's start options: its unchanging attributes (none for a run begun before
    the patch, whose start command carried none)."""
    return sa.as_start(values) if attributes_on_change() else None


def publish(values: Sequence[SearchAttributeUpdate[Any]]) -> None:
    """Upsert what differs from the attributes the run has (from its start, its upserts, or the
    run it continued): an upsert is a command and an event, and most publishes change nothing."""
    if attributes_on_change():
        values = sa.changed(values, workflow.info().typed_search_attributes)
    if values:
        workflow.upsert_search_attributes(values)
