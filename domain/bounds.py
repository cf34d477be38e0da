"""What any input may carry: text without control characters, money the database can add up,
dates and durations inside the programme's calendar. One type per concept, so the API documents
each bound in OpenAPI and refuses what breaks it with 422 at the boundary, before a workflow or a
database column meets a value it cannot hold."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from pydantic import BeforeValidator, Field, StrictInt
from pydantic.fields import FieldInfo

# C0 and C1 controls (and DEL): they reach rendered documents, logs and terminals raw (an ESC
# starts a terminal escape sequence, a NUL truncates C strings); long free text keeps tab and
# newline. Invisible format characters too: zero-width spaces and joiners, direction marks,
# embeddings, overrides and isolates (U+202E shows a title backwards), word joiners and the BOM
# disguise what a reader sees in a package or a list.
_INVISIBLE = "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
_CONTROLS = "\x00-\x1f\x7f-\x9f" + _INVISIBLE
_CONTROLS_BUT_TAB_NEWLINE = "\x00-\x08\x0b-\x1f\x7f-\x9f" + _INVISIBLE


def _refusing(controls: str) -> BeforeValidator:
    found = re.compile(f"[{controls}]")

    def check(value: object) -> object:
        if isinstance(value, str) and (bad := found.search(value)):
            raise ValueError(f"control or invisible character {bad.group()!r} at position {bad.start()} is not allowed")
        return value

    return BeforeValidator(check)


def _schema(controls: str) -> FieldInfo:
    escaped = controls.encode("unicode_escape").decode()
    return Field(json_schema_extra={"pattern": f"^[^{escaped}]*$"})


# A single line: names, titles, references, list items.
PlainText = Annotated[str, _refusing(_CONTROLS), _schema(_CONTROLS)]
# Free text over several lines: summaries, justifications, notes, reasons.
LongText = Annotated[str, _refusing(_CONTROLS_BUT_TAB_NEWLINE), _schema(_CONTROLS_BUT_TAB_NEWLINE)]

# Integer yen. A quadrillion yen is ten times Japan's yearly budget, and thousands of such
# amounts still add up inside a 64-bit integer (SQLite's SUM fails past it; PostgreSQL's BIGINT).
MAX_YEN = 10**15
Yen = Annotated[StrictInt, Field(gt=0, le=MAX_YEN, description="Integer yen; never a float.")]
YenOrZero = Annotated[StrictInt, Field(ge=0, le=MAX_YEN, description="Integer yen; never a float.")]

# The programme calendar: a project starts in it, and every derived date (years of stages,
# holds and recycles on top) stays far inside what `date` can hold.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _day_only(value: object) -> object:
    # pydantic turns a midnight timestamp into its date, dropping the time and zone: a date field
    # takes a calendar day, written as one.
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        raise ValueError("a date is written YYYY-MM-DD, without a time or zone")
    return value


ProgrammeDate = Annotated[date, BeforeValidator(_day_only), Field(ge=FIRST_DAY, le=LAST_DAY)]
FiscalYear = Annotated[
    StrictInt, Field(ge=FIRST_DAY.year, le=LAST_DAY.year, description="FY2026 runs April 2026 - March 2027.")
]
MAX_DAYS = 3650  # ten years: the longest stage, hold, recycle or deadline a proposal or decision may set
Days = Annotated[StrictInt, Field(gt=0, le=MAX_DAYS)]

# Row ids of the database: INTEGER columns, 32 bits on PostgreSQL.
MAX_ROW_ID = 2**31 - 1
