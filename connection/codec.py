"""Payload encryption: every payload trlgate hands to Temporal is sealed with AES-GCM.

Temporal keeps each payload in its event history and shows it in its Web UI; closed (保全) work
must not travel there in clear. The codec encrypts every payload (open projects too: one rule, no
classification guess in the worker) under the keyring's active key and names the key in the
payload's metadata, so a rotated keyring still opens older payloads. The workflow the payload
belongs to is stamped beside it (in clear, as the workflow id is anyway), so the codec endpoint can
decide per project who may read it. Payloads written before encryption (stored test histories)
pass through untouched.

Format 2 (`trlgate-codec: 2` in the metadata) binds the format version, the key id and the
workflow stamp (empty when there is none) into the AES-GCM tag, so a payload whose stamp was
stripped or rewritten, relabelled to another key, or stripped of its version marker does not open.
Format 1 (no version marker: payloads sealed before it) bound only the key id; it still opens, but
its stamp proves nothing, so the codec endpoint treats such a payload as of unknown workflow.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Self

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
WORKFLOW = "trlgate-workflow"  # which workflow's payload this is (for the codec endpoint's policy)
FORMAT = "trlgate-codec"  # the sealing format's version; absent on format 1
FORMAT_VERSION = 2
NONCE_BYTES = 12


class KeyringError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Keyring:
    """Named AES-256 keys; the first is used to encrypt, all of them to decrypt."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyringError("the keyring is empty")
        ids = [kid for kid, _ in self.keys]
        # A repeated id would make key(kid) find the first of them: payloads sealed under the other
        # one would no longer open.
        if len(set(ids)) != len(ids):
            dup = next(kid for kid in ids if ids.count(kid) > 1)
            raise KeyringError(f"key id {dup!r} appears more than once in the keyring")
        for kid, key in self.keys:
            if not kid or "=" in kid or "," in kid:
                raise KeyringError(f"bad key id {kid!r}")
            if len(key) != 32:
                raise KeyringError(f"key {kid!r} is {len(key)} bytes; AES-256 needs 32")

    @property
    def active(self) -> tuple[str, bytes]:
        return self.keys[0]

    def key(self, kid: str) -> bytes:
        for k, key in self.keys:
            if k == kid:
                return key
        # Names the key asked for, not the keys held: the message can reach a codec caller or the UI.
        raise KeyringError(f"no key {kid[:64]!r} in the keyring")

    @classmethod
    def parse(cls, text: str) -> Self:
        """`kid=base64key,kid2=base64key`: the first key encrypts (newest first after a rotation)."""
        pairs: list[tuple[str, bytes]] = []
        for item in text.replace("\n", ",").split(","):
            item = item.strip()
            if not item:
                continue
            kid, sep, b64 = item.partition("=")
            if not sep:
                raise KeyringError(f"keyring entry {kid!r} is not kid=base64key")
            pairs.append((kid.strip(), base64.b64decode(b64.strip() + "=" * (-len(b64.strip()) % 4))))
        return cls(tuple(pairs))

    def dump(self) -> str:
        return "\n".join(f"{kid}={base64.b64encode(key).decode()}" for kid, key in self.keys) + "\n"

    def rotated(self, kid: str | None = None) -> Keyring:
        """A new active key in front; the old keys stay to open what they sealed."""
        new_id = kid or f"k{len(self.keys) + 1}-{secrets.token_hex(3)}"
        if any(k == new_id for k, _ in self.keys):
            raise KeyringError(f"key id {new_id!r} is already in the keyring")
        return Keyring(((new_id, AESGCM.generate_key(bit_length=256)), *self.keys))

    @classmethod
    def generate(cls, kid: str = "k1") -> Keyring:
        return cls(((kid, AESGCM.generate_key(bit_length=256)),))

    @classmethod
    def from_file(cls, path: Path, create: bool = True) -> Keyring:
        """The embedded default: a key file in the data folder, made (mode 0600) on first use."""
        if not path.exists():
            if not create:
                raise KeyringError(f"no keyring at {path}")
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written aside, then linked into place: processes starting together (worker and API)
            # agree on one keyring, and none reads a half-written file.
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(cls.generate().dump())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process made it first: use theirs
            finally:
                tmp.unlink()
        return cls.parse(path.read_text())


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    def __init__(self, keyring: Keyring, workflow_id: str | None = None) -> None:
        self.keyring = keyring
        self.workflow_id = workflow_id

    def with_context(self, context: SerializationContext) -> Self:
        workflow_id = None
        if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext):
            workflow_id = context.workflow_id
        return type(self)(self.keyring, workflow_id)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.open(p) for p in payloads]

    def seal(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") == ENCODING:
            return payload  # already sealed
        kid, key = self.keyring.active
        nonce = secrets.token_bytes(NONCE_BYTES)
        metadata = {"encoding": ENCODING, FORMAT: str(FORMAT_VERSION).encode(), KEY_ID: kid.encode()}
        if self.workflow_id:
            metadata[WORKFLOW] = self.workflow_id.encode()
        ciphertext = AESGCM(key).encrypt(nonce, payload.SerializeToString(), associated_data(metadata))
        return Payload(metadata=metadata, data=nonce + ciphertext)

    def open(self, payload: Payload) -> Payload:
        """The original payload; raises (InvalidTag, KeyringError, CodecFormatError) for a payload
        that was altered, relabelled, or sealed under a key or format this keyring cannot open."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption (stored histories), or never sealed
        kid = payload.metadata.get(KEY_ID, b"").decode(errors="replace")  # only names the key
        nonce, ciphertext = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        aad = associated_data(payload.metadata)
        return Payload.FromString(AESGCM(self.keyring.key(kid)).decrypt(nonce, ciphertext, aad))


class CodecFormatError(ValueError):
    pass


def sealed_format(payload: Payload) -> int:
    """The sealing format a sealed payload claims (1: before the version marker)."""
    return _format(payload.metadata)


def _format(metadata: Mapping[str, bytes]) -> int:
    raw = metadata.get(FORMAT)
    if raw is None:
        return 1
    if raw != str(FORMAT_VERSION).encode():
        raise CodecFormatError(f"unknown codec format {raw[:16]!r}")
    return FORMAT_VERSION


def associated_data(metadata: Mapping[str, bytes]) -> bytes:
    """What the tag authenticates beside the ciphertext. Format 1: the key id alone. Format 2: the
    version, key id and workflow stamp, each length-prefixed (so no two field sets look alike)."""
    kid = metadata.get(KEY_ID, b"")
    if _format(metadata) == 1:
        return kid
    fields = (FORMAT.encode(), metadata[FORMAT], kid, metadata.get(WORKFLOW, b""))
    return b"".join(len(f).to_bytes(4, "big") + f for f in fields)


def sealed_workflow(payload: Payload) -> str | None:
    """The workflow a sealed payload says it belongs to, or None (unsealed, or sealed without
    context). Bound into the tag only in format 2: see `sealed_format`."""
    raw = payload.metadata.get(WORKFLOW)
    return raw.decode(errors="replace") if raw else None


def data_converter(keyring: Keyring) -> DataConverter:
    """The one converter every process uses: pydantic payloads, sealed; failure messages and stack
    traces are moved into the (sealed) payloads too, so the UI shows no business text in clear."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def is_sealed(payloads: Iterable[Payload]) -> bool:
    return all(p.metadata.get("encoding") == ENCODING for p in payloads)
