"""A multipart/form-data body read as it arrives, for uploads: the small fields kept, the one file
field's bytes handed to a sink piece by piece, never the whole body in memory (Starlette's form
reader would spool it to a temporary file first, and asgi-csrf would buffer it). The parsing is
python-multipart's streaming MultipartParser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from fastapi import HTTPException, status
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

MAX_FIELD_BYTES = 4096  # a small field (the CSRF token); anything longer is no field of ours
MAX_FIELDS = 16
MAX_BOUNDARY = 70  # RFC 2046 section 5.1.1


class BadBody(HTTPException):
    def __init__(self, reason: str) -> None:
        super().__init__(status.HTTP_400_BAD_REQUEST, detail=f"the upload cannot be read: {reason}")


def boundary_of(content_type: str | bytes) -> bytes:
    raw = content_type.encode("latin-1") if isinstance(content_type, str) else content_type
    kind, options = parse_options_header(raw)
    if kind != b"multipart/form-data":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail="an upload is sent as multipart/form-data")
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadBody("a multipart body without a boundary")
    if len(boundary) > MAX_BOUNDARY:  # the parser refuses a longer one with an error of its own: a 500
        raise BadBody(f"a boundary longer than {MAX_BOUNDARY} characters (RFC 2046)")
    return boundary


@dataclass
class Part:
    name: str
    filename: str | None  # None: a plain field


class PartReader:
    """Feed it the body in pieces; it answers with ("start", Part), ("data", bytes), ("end", None)."""

    def __init__(self, boundary: bytes) -> None:
        self.out: list[tuple[str, Part | bytes | None]] = []
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
                "on_part_end": lambda: self.out.append(("end", None)),
                "on_end": lambda: self.out.append(("done", None)),
            },
        )

    def _begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if name is None:
            raise BadBody("a part without a name")
        filename = options.get(b"filename")
        self.out.append(
            (
                "start",
                Part(
                    name.decode("utf-8", "replace"), None if filename is None else filename.decode("utf-8", "replace")
                ),
            )
        )

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.out.append(("data", data[start:end]))

    def feed(self, chunk: bytes) -> list[tuple[str, Part | bytes | None]]:
        self.out = []
        try:
            self.parser.write(chunk)
        except MultipartParseError as err:
            raise BadBody(str(err)) from err
        return self.out


@dataclass
class Upload:
    filename: str
    fields: dict[str, str]


async def read_upload(
    body: AsyncIterator[bytes], content_type: str, sink: Callable[[bytes], Awaitable[None]], file_field: str = "file"
) -> Upload:
    """Read the body; the file field's bytes go to `sink` as they come (it may raise to stop, e.g.
    over the size limit). Exactly one file, in `file_field`; fields besides it are small text."""
    reader = PartReader(boundary_of(content_type))
    fields: dict[str, str] = {}
    current: Part | None = None
    value = bytearray()
    filename: str | None = None
    done = False
    async for chunk in body:
        for kind, item in reader.feed(chunk):
            if kind == "start":
                assert isinstance(item, Part)
                current, value = item, bytearray()
                if item.filename is not None:
                    if item.name != file_field or filename is not None:
                        raise BadBody(f"one file is taken, in the field {file_field!r}")
                    filename = item.filename
                elif len(fields) >= MAX_FIELDS:
                    raise BadBody("too many fields")
            elif kind == "data":
                assert isinstance(item, bytes) and current is not None
                if current.filename is not None:
                    await sink(item)
                else:
                    value += item
                    if len(value) > MAX_FIELD_BYTES:
                        raise BadBody(f"the field {current.name!r} is too long")
            elif kind == "end" and current is not None:
                if current.filename is None:
                    fields[current.name] = value.decode("utf-8", "replace")
                current = None
            elif kind == "done":
                done = True
    if not done:
        raise BadBody("the body ends before its closing boundary")
    if filename is None:
        raise BadBody(f"no file in the field {file_field!r}")
    return Upload(filename, fields)
