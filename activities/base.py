"""What every activity class shares: the database, and the mapping of business refusals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from storage.db import write_lock
from storage.ledger import LedgerError

T = TypeVar("T")
SYSTEM_ACTOR = "system:worker"


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
                raise ApplicationError(str(err), type=type(err).__name__, non_retryable=True) from err
        raise AssertionError("unreachable")
