"""Path parameters with their bounds, one type per concept: FastAPI documents each bound in
OpenAPI and answers 422 for a value outside it, before a database column (int32 on PostgreSQL,
int64 on SQLite) or a domain model meets it."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import Header, Path
from pydantic import BeforeValidator

from domain.bounds import FIRST_DAY, LAST_DAY, MAX_ROW_ID

MAX_GATES = 99  # a project has at most one gate per stage, and stages climb TRL 1-9
MAX_TRANCHES = 10_000  # tranches of a stage fall on distinct days of at most ten years

GateNo = Annotated[int, Path(ge=1, le=MAX_GATES, description="The gate's number (gate n ends stage n).")]
StageNo = Annotated[int, Path(ge=1, le=MAX_GATES, description="The stage's number, from 1.")]
TrancheNo = Annotated[int, Path(ge=1, le=MAX_TRANCHES, description="The tranche's number in its stage, from 1.")]
FiscalYearNo = Annotated[
    int, Path(ge=FIRST_DAY.year, le=LAST_DAY.year, description="FY2026 runs April 2026 - March 2027.")
]
TransactionId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="A ledger transaction's id.")]


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day(value: Any) -> Any:
    # pydantic would take "0" (or any number) as a Unix time; the spec says a date, YYYY-MM-DD.
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        raise ValueError("a day is written YYYY-MM-DD")
    return value


# A calendar day in a query string, as the spec documents it (format: date) and nothing else.
IsoDay = Annotated[date, BeforeValidator(_iso_day)]


# A client's key for one command (Idempotency-Key, as the IETF draft names it): a retry with the same
# key is the same command, answered with the first one's result, never carried out twice.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Send the same key again when retrying (a timeout, a 5xx): the command is carried out once and "
        "the retry gets its answer. 8 to 64 letters, digits and _.:- (a UUID fits).",
    ),
]
