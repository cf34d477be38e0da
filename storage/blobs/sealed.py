"""A closed project's files at rest: sealed with the programme's keyring (AES-256-GCM), in
segments, so that neither sealing nor opening holds a whole file in memory.

One AES-GCM call over a 50 MB body would need it all in memory, and a streamed GCM decryption
would hand out plaintext before the tag at the end was checked. So the body is cut into 64 KiB
segments, each sealed on its own (the "STREAM" construction of Hoang, Reyhanitabar, Rogaway and
Vizár, as Tink's streaming AEAD uses it): the nonce is the segment's number and a last-segment
flag, so segments cannot be reordered, dropped or the file cut short without a tag failing. Each
file gets its own key, derived (HKDF-SHA256) from the keyring's active key and a random salt, so
the counter nonces never repeat under one key. The header names the key id: a rotated keyring
still opens older files.

    header  = b"TGF1" | len(kid) (1 byte) | kid | salt (16 bytes)     (authenticated with every segment)
    segment = AES-GCM(file key, nonce = number (11 bytes) | last (1 byte), plaintext, aad = header)
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from connection.codec import Keyring

MAGIC = b"TGF1"
SEGMENT = 64 * 1024
TAG = 16
SALT = 16


class SealedFormatError(ValueError):
    pass


def _file_key(master: bytes, salt: bytes) -> AESGCM:
    return AESGCM(HKDF(hashes.SHA256(), 32, salt=salt, info=b"trlgate-file-v1").derive(master))


def _nonce(number: int, last: bool) -> bytes:
    return number.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def seal_file(keyring: Keyring, source: Path, target: Path) -> None:
    """Write `source` sealed to `target` (blocking: run it in a thread)."""
    kid, master = keyring.active
    salt = os.urandom(SALT)
    header = MAGIC + bytes([len(kid.encode())]) + kid.encode() + salt
    aead = _file_key(master, salt)
    with source.open("rb") as src, target.open("wb") as dst:
        dst.write(header)
        number, segment = 0, src.read(SEGMENT)
        while True:
            following = src.read(SEGMENT)
            last = not following
            dst.write(aead.encrypt(_nonce(number, last), segment, header))
            if last:
                return
            number, segment = number + 1, following


async def open_sealed(keyring: Keyring, sealed: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The plaintext of a sealed stream, segment by segment, each checked before it is handed
    out; raises InvalidTag (cryptography) where anything was changed, cut or reordered."""
    buffer = bytearray()
    header: bytes | None = None
    aead: AESGCM | None = None
    number = 0
    whole = SEGMENT + TAG
    async for piece in sealed:
        buffer += piece
        if header is None:
            if len(buffer) < 5 or len(buffer) < 5 + buffer[4] + SALT:
                continue
            if bytes(buffer[:4]) != MAGIC:
                raise SealedFormatError("not a sealed file")
            end = 5 + buffer[4] + SALT
            header = bytes(buffer[:end])
            kid = header[5 : 5 + buffer[4]].decode()
            aead = _file_key(keyring.key(kid), header[end - SALT : end])
            del buffer[:end]
        assert aead is not None
        # A segment is known not to be the last only once more bytes follow it.
        while len(buffer) > whole:
            yield aead.decrypt(_nonce(number, False), bytes(buffer[:whole]), header)
            del buffer[:whole]
            number += 1
    if header is None or aead is None:
        raise SealedFormatError("the sealed file is cut short before its header ends")
    yield aead.decrypt(_nonce(number, True), bytes(buffer), header)
