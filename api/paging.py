"""The one shape of every API list: `{"items": [...], "total": N, "next": "<cursor>" | null}`,
asked for with `limit` and `cursor` (storage/paging: keyset order, the total of the same WHERE).
Follow `next` until it is null; a cursor that is not one this list gave out is a 422 with why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from storage.paging import MAX_CURSOR, MAX_LIMIT, CursorError

T = TypeVar("T")
DEFAULT_LIMIT = 50


class ListOut(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="How many rows the whole list holds with these filters (what you may read).")
    next: str | None = Field(description="The cursor of the next page; null on the last page.")


@dataclass(frozen=True)
class PageParams:
    limit: int
    cursor: str | None


def _page_params(
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Rows per page."),
    cursor: str | None = Query(
        None, min_length=1, max_length=MAX_CURSOR, description="The `next` of the previous page; none for the first."
    ),
) -> PageParams:
    return PageParams(limit, cursor)


PageIn = Annotated[PageParams, Depends(_page_params)]


async def bad_cursor(_request: Request, exc: Exception) -> JSONResponse:
    """A malformed or tampered cursor: 422 with the reason, never a 500."""
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


__all__ = ["DEFAULT_LIMIT", "CursorError", "ListOut", "PageIn", "PageParams", "bad_cursor"]
