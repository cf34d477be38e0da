"""Uploads' pure parts: the type read from the content, safe names, sealing at rest, the folder
store's content addressing."""

from __future__ import annotations

import asyncio
import io
import os
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from connection.codec import Keyring
from services.file_checks import CSV, DOCX, PDF, TEXT, XLSX, UnsupportedType, detect_type, sanitise_name
from storage.blobs.local import FolderStore
from storage.blobs.sealed import SEGMENT, open_sealed, seal_file

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 20
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 100


def ooxml(main: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Override PartName="/main.xml" ContentType="{main}"/></Types>',
        )
        z.writestr("main.xml", "<x/>")
    return buffer.getvalue()


def typed(tmp_path: Path, content: bytes, name: str) -> str:
    path = tmp_path / "upload"
    path.write_bytes(content)
    return detect_type(path, name)


def test_allowed_types_are_read_from_the_content(tmp_path: Path) -> None:
    assert typed(tmp_path, b"%PDF-1.7\n1 0 obj\n", "anything.bin") == PDF
    assert typed(tmp_path, PNG, "photo.pdf") == "image/png"  # the name does not decide
    word = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    assert typed(tmp_path, ooxml(word), "report.docx") == DOCX
    sheet = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
    assert typed(tmp_path, ooxml(sheet), "figures") == XLSX
    assert typed(tmp_path, "項目,金額\n試作,100\n".encode(), "budget.csv") == CSV
    assert typed(tmp_path, "\ufeff進捗報告\r\n\tok\n".encode(), "notes.txt") == TEXT


@pytest.mark.parametrize(
    ("content", "name", "says"),
    [
        (EXE, "report.pdf", "allowed:"),  # a program dressed as a PDF
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 64, "data.csv", "allowed:"),
        (ooxml("application/vnd.ms-word.document.macroEnabled.main+xml"), "report.docx", "macro-enabled"),
        (b"PK\x03\x04 not really a zip", "a.xlsx", "no Office document"),
        (b"<html><script>alert(1)</script></html>", "notes.txt", "html"),
        ("caf\u00e9".encode("latin-1"), "latin1.txt", "allowed:"),  # not UTF-8
        (b"text with a \x1b[31m terminal escape", "t.txt", "allowed:"),
        (b"", "empty.txt", "empty"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"junk" * 200, "old.doc", "compound document"),
    ],
)
def test_anything_else_is_refused_with_the_reason(tmp_path: Path, content: bytes, name: str, says: str) -> None:
    with pytest.raises(UnsupportedType, match=says):
        typed(tmp_path, content, name)


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\evil.pdf", "evil.pdf"),
        ("/abs/path/report.pdf", "report.pdf"),
        ("C:\\Users\\a\\report.pdf", "report.pdf"),
        ("..", "file"),
        ("", "file"),
        ("a\x00b\x1fc.pdf", "abc.pdf"),
        ("evil\u202efdp.exe", "evilfdp.exe"),  # a direction override would show it as "evilexe.pdf"
        ("CON.txt", "CON_.txt"),
        ("re:port<1>?.pdf", "re_port_1__.pdf"),
        ("試験結果\u3000報告.pdf", "試験結果 報告.pdf"),
        ("ﾃｽﾄ.pdf", "ﾃｽﾄ.pdf"),
        ("e\u0301.txt", "\u00e9.txt"),  # NFC: one code point for é
    ],
)
def test_names_are_sanitised(raw: str, safe: str) -> None:
    assert sanitise_name(raw) == safe


def test_a_long_name_is_cut_to_200_bytes_keeping_its_extension() -> None:
    name = sanitise_name("報" * 300 + ".pdf")
    assert name.endswith(".pdf") and len(name.encode()) <= 200 and name.startswith("報報")


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def _opened(keyring: Keyring, sealed: bytes, size: int = 5000) -> bytes:
    return b"".join([chunk async for chunk in open_sealed(keyring, _chunks(sealed, size))])


@pytest.mark.parametrize("length", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT + 17])
async def test_sealing_round_trips_in_segments(tmp_path: Path, length: int) -> None:
    keyring = Keyring.generate()
    plain = os.urandom(length)
    (tmp_path / "p").write_bytes(plain)
    seal_file(keyring, tmp_path / "p", tmp_path / "s")
    sealed = (tmp_path / "s").read_bytes()
    # Random bytes of a few bytes' length turn up in any ciphertext by chance; 16 and more do not.
    assert plain not in sealed or length < 16
    assert await _opened(keyring, sealed) == plain
    # A rotated keyring (new active key in front) still opens it.
    assert await _opened(keyring.rotated(), sealed, 70_000) == plain


async def test_a_changed_cut_or_foreign_sealed_file_does_not_open(tmp_path: Path) -> None:
    keyring = Keyring.generate()
    (tmp_path / "p").write_bytes(b"x" * (2 * SEGMENT + 10))
    seal_file(keyring, tmp_path / "p", tmp_path / "s")
    sealed = (tmp_path / "s").read_bytes()
    flipped = bytearray(sealed)
    flipped[100] ^= 1
    with pytest.raises(InvalidTag):
        await _opened(keyring, bytes(flipped))
    with pytest.raises(InvalidTag):  # cut after the first segment: it was not marked the last
        await _opened(keyring, sealed[: len(sealed) - (SEGMENT + 16 + 26)])
    with pytest.raises(InvalidTag):
        await _opened(
            Keyring.parse(
                keyring.dump().replace(keyring.dump().split("=", 1)[1], Keyring.generate().dump().split("=", 1)[1])
            ),
            sealed,
        )


def test_what_a_dead_upload_left_behind_is_swept_when_the_store_opens(tmp_path: Path) -> None:
    incoming = FolderStore(tmp_path / "blobs").incoming
    (incoming / "up-dead").write_bytes(b"half")
    os.utime(incoming / "up-dead", (0, 0))
    (incoming / "up-arriving").write_bytes(b"still coming")
    FolderStore(tmp_path / "blobs")
    assert [p.name for p in incoming.iterdir()] == ["up-arriving"]


async def test_the_folder_store_keeps_the_same_bytes_once(tmp_path: Path) -> None:
    store = FolderStore(tmp_path / "blobs")
    for _ in range(2):
        source = store.incoming / "up"
        source.write_bytes(b"same bytes")
        assert await store.put("plain/" + "ab" * 32, source) == (_ == 0)
        assert not source.exists()  # consumed either way
    assert [p.name for p in (tmp_path / "blobs" / "plain").rglob("*") if p.is_file()] == ["ab" * 32]
    assert b"".join([c async for c in store.read("plain/" + "ab" * 32)]) == b"same bytes"
    with pytest.raises(ValueError):
        store.path("plain/../../etc")
    await asyncio.sleep(0)
