"""What every activity class shares: the database, and the mapping of business refusals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from storage.db import write_lock
from storage.ledger import InsufficientFunds, LedgerError

T = TypeVar("T")
SYSTEM_ACTOR = "system:worker"
# Refusals a workflow expects and answers (see `refusal`).
EXPECTED_REFUSALS = (InsufficientFunds,)


class DatabaseActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.lock = write_lock(sessionmaker)

    async def transact(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `work` in one transaction.

        A unique-key collision means a concurrent attempt with the same business key committed
        first; running `work` again then finds that row and returns it. Business refusals become
        non-retryable ApplicationErrors named after the refusal, so the workflow can branch on them.
        """
        for attempt in range(2):
            try:
                if self.lock is None:
                    async with self.sessionmaker.begin() as session:
                        return await work(session)
                async with self.lock, self.sessionmaker.begin() as session:
                    return await work(session)
            except IntegrityError:
                if attempt == 1:
                    raise
            except LedgerError as err:
                raise refusal(err) from err
        raise AssertionError("unreachable")


def refusal(err: LedgerError) -> ApplicationError:
    """A ledger refusal as a non-retryable ApplicationError named after it. The refusals the
    workflows expect and act on (the fund cannot cover a stage or tranche: the project waits on
    Hold) are business outcomes, not faults: logged here as one line with the reason and marked
    BENIGN, which Temporal's worker logs at DEBUG instead of as a failure with its traceback and
    leaves out of its failure metrics. Any other ledger error keeps the full failure log."""
    name = type(err).__name__
    if isinstance(err, EXPECTED_REFUSALS):
        activity.logger.info("Business refusal %s: %s", name, err)
        return ApplicationError(str(err), type=name, non_retryable=True, category=ApplicationErrorCategory.BENIGN)
    return ApplicationError(str(err), type=name, non_retryable=True)
