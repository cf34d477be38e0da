"""What an upload may be: its type read from its content (never from its name), and a name that
is safe to show, store and hand back in a download.

The allow-list: PDF; PNG, JPEG, GIF and WebP images; Office documents (docx, xlsx, pptx: a zip
whose [Content_Types].xml declares the main part; macro-enabled ones are not on the list) and the
legacy binary doc and xls (an OLE2 compound file with a Word or Excel stream); CSV and plain text
(UTF-8, no control characters). Magic numbers come from puremagic, OLE2 streams from olefile."""

from __future__ import annotations

import codecs
import re
import unicodedata
import zipfile
from pathlib import Path

import olefile
import puremagic
from pathvalidate import sanitize_filename

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
CSV = "text/csv"
TEXT = "text/plain"
IMAGES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
ALLOWED = "PDF, PNG, JPEG, GIF, WebP, docx, xlsx, pptx, doc, xls, CSV or UTF-8 plain text"

# An OOXML package's main part, as its [Content_Types].xml declares it.
_OOXML_MAIN = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": DOCX,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": XLSX,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": PPTX,
}
_OLE_STREAMS = {"worddocument": DOC, "workbook": XLS, "book": XLS}
_HEAD = 8192
_MAX_CONTENT_TYPES = 1024 * 1024
_MARKUP = re.compile("html|xml|svg|javascript", re.IGNORECASE)
# Text may hold tab, newline, carriage return and form feed; no other C0/C1 control.
_TEXT_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


class UnsupportedType(ValueError):
    pass


def detect_type(path: Path, name: str) -> str:
    """The file's content type, from its bytes; UnsupportedType with the reason otherwise. The
    name only tells CSV from plain text (both are text; the content decides that it is text)."""
    with path.open("rb") as f:
        head = f.read(_HEAD)
    if not head:
        raise UnsupportedType(f"the file is empty; allowed: {ALLOWED}")
    found = _magic(head)
    if found == PDF or found in IMAGES:
        return found
    if head.startswith(b"PK\x03\x04"):
        return _ooxml(path)
    if head.startswith(olefile.MAGIC):
        return _ole(path)
    # Markup is text too, but a page or a drawing with script in it is no attachment of ours.
    if (found is None or not _MARKUP.search(found)) and _is_text(path):
        return CSV if name.lower().endswith(".csv") else TEXT
    raise UnsupportedType(f"the content is {found or 'of an unknown type'}; allowed: {ALLOWED}")


def _magic(head: bytes) -> str | None:
    try:
        matches = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError, LookupError):
        return None
    for match in matches:
        mime = match.mime_type or ""
        if mime == PDF or mime in IMAGES:
            return mime
    return matches[0].mime_type or matches[0].name if matches else None


def _ooxml(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as z, z.open("[Content_Types].xml") as f:
            # Read no more than a real one needs: a "zip bomb" stops here.
            types = f.read(_MAX_CONTENT_TYPES).decode("utf-8", errors="replace")
    except Exception as err:  # any way a hostile archive fails to open (bad zip, encrypted, odd codec)
        raise UnsupportedType(f"a zip archive that is no Office document; allowed: {ALLOWED}") from err
    for main, mime in _OOXML_MAIN.items():
        if f'ContentType="{main}"' in types:
            return mime
    raise UnsupportedType(
        f"a zip archive that is no docx, xlsx or pptx (macro-enabled ones are refused); allowed: {ALLOWED}"
    )


def _ole(path: Path) -> str:
    try:
        with olefile.OleFileIO(str(path)) as ole:
            streams = {"/".join(entry).lower() for entry in ole.listdir()}
    except Exception as err:  # any way a hostile compound file fails to parse
        raise UnsupportedType(f"a damaged compound document; allowed: {ALLOWED}") from err
    for stream, mime in _OLE_STREAMS.items():
        if stream in streams:
            return mime
    raise UnsupportedType(f"a compound document that is no Word or Excel file; allowed: {ALLOWED}")


def _is_text(path: Path) -> bool:
    """UTF-8 (a BOM allowed) without control characters, read in pieces."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    with path.open("rb") as f:
        try:
            while chunk := f.read(64 * 1024):
                if _TEXT_CONTROLS.search(decoder.decode(chunk)):
                    return False
            return not _TEXT_CONTROLS.search(decoder.decode(b"", final=True))
        except UnicodeDecodeError:
            return False


MAX_NAME_BYTES = 200
# Invisible format characters (direction overrides make "evil‮fdp.exe" show as "evilexe.pdf").
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def sanitise_name(raw: str) -> str:
    """A file name safe to store and hand back: the last path component only (no ../, no
    drive or UNC prefix), Unicode in NFC, no control or invisible characters, no name Windows
    reserves, at most 200 UTF-8 bytes with the extension kept; "file" when nothing is left."""
    name = unicodedata.normalize("NFC", raw)
    name = re.split(r"[/\\]", name)[-1]
    name = _INVISIBLE.sub("", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = " ".join(name.split()).strip(" .")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext.encode()) > 16:
        stem, dot, ext = name, "", ""
    room = MAX_NAME_BYTES - len((dot + ext).encode())
    name = stem.encode()[:room].decode("utf-8", errors="ignore").rstrip(" .") + dot + ext
    # Characters and names no file system takes (pathvalidate knows them all): replaced.
    name = sanitize_filename(name, platform="universal", replacement_text="_").strip(" .")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        return name or "file"
    return name if stem else "file." + ext
