"""Every CSV the API and the pages export, written one way: UTF-8 with a byte-order mark and CRLF
row ends. Excel reads a CSV without the mark in the machine's ANSI code page (Shift_JIS on a
Japanese Windows), which garbles Japanese titles and names; with it, Excel and every CSV reader
that strips the mark (Python's "utf-8-sig", pandas) read the same text. CRLF is RFC 4180's row end."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from fastapi.responses import Response

BOM = "\ufeff"
MEDIA_TYPE = "text/csv; charset=utf-8"


# A text cell Excel would read as a formula (OWASP "CSV injection"): a project title, a memo or a
# reason typed by someone else starting with one of these runs in the reader's spreadsheet. Such
# a cell is written with a leading apostrophe, which Excel shows as text; numbers stay numbers.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def csv_bytes(header: Sequence[object], rows: Iterable[Sequence[object]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return (BOM + out.getvalue()).encode("utf-8")


def csv_response(header: Sequence[object], rows: Iterable[Sequence[object]], filename: str) -> Response:
    """An attachment; a file name outside ASCII goes in RFC 6266's filename* as well."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return Response(csv_bytes(header, rows), media_type=MEDIA_TYPE, headers={"Content-Disposition": disposition})
