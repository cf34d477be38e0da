"""The payload codec: AES-GCM, key id in the metadata, rotation, tamper refusal, pass-through."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import WorkflowSerializationContext

from connection.codec import (
    ENCODING,
    FORMAT,
    KEY_ID,
    NONCE_BYTES,
    WORKFLOW,
    CodecFormatError,
    EncryptionCodec,
    Keyring,
    KeyringError,
    sealed_format,
    sealed_workflow,
)


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def test_a_sealed_payload_shows_no_plaintext_and_opens_to_the_original() -> None:
    codec = EncryptionCodec(Keyring.generate("k1"))
    original = plain('{"summary": "quantum-sensor results"}')
    [sealed] = await codec.encode([original])
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID] == b"k1"
    assert b"quantum" not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [original]
    # Two seals of one payload differ (a fresh nonce each time).
    [again] = await codec.encode([original])
    assert again.data != sealed.data


async def test_the_workflow_is_stamped_from_the_serialization_context() -> None:
    codec = EncryptionCodec(Keyring.generate()).with_context(
        WorkflowSerializationContext(namespace="default", workflow_id="project-P-1")
    )
    [sealed] = await codec.encode([plain("x")])
    assert sealed.metadata[WORKFLOW] == b"project-P-1" and sealed_workflow(sealed) == "project-P-1"
    assert sealed_workflow(plain("x")) is None


async def test_a_rotated_keyring_seals_with_the_new_key_and_still_opens_the_old() -> None:
    old = Keyring.generate("k1")
    [before] = await EncryptionCodec(old).encode([plain("before rotation")])
    rotated = old.rotated("k2")
    assert rotated.active[0] == "k2" and len(rotated.keys) == 2
    codec = EncryptionCodec(Keyring.parse(rotated.dump()))  # survives its file format
    [after] = await codec.encode([plain("after rotation")])
    assert after.metadata[KEY_ID] == b"k2"
    assert await codec.decode([before, after]) == [plain("before rotation"), plain("after rotation")]
    # A keyring that lost the old key cannot open the old payload, and says which key is missing.
    with pytest.raises(KeyringError, match="no key 'k1'") as refused:
        await EncryptionCodec(Keyring(rotated.keys[:1])).decode([before])
    assert "k2" not in str(refused.value)  # nor which keys it holds


async def test_tampered_or_relabelled_payloads_do_not_open() -> None:
    ring = Keyring.generate("k1").rotated("k2")
    codec = EncryptionCodec(ring)
    [sealed] = await codec.encode([plain("pay 100 oku")])
    flipped = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(InvalidTag):
        await codec.decode([flipped])
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: b"k1"}, data=sealed.data)
    with pytest.raises(InvalidTag):
        await codec.decode([relabelled])


def sealed_v1(ring: Keyring, payload: Payload, workflow_id: str | None = None) -> Payload:
    """A payload as format 1 sealed it (before the version marker): only the key id in the tag."""
    kid, key = ring.active
    nonce = secrets.token_bytes(NONCE_BYTES)
    metadata = {"encoding": ENCODING, KEY_ID: kid.encode()} | ({WORKFLOW: workflow_id.encode()} if workflow_id else {})
    return Payload(
        metadata=metadata, data=nonce + AESGCM(key).encrypt(nonce, payload.SerializeToString(), kid.encode())
    )


def relabel(payload: Payload, drop: tuple[str, ...] = (), **changes: bytes) -> Payload:
    metadata = {k: v for k, v in payload.metadata.items() if k not in drop}
    return Payload(metadata={**metadata, **{k.replace("_", "-"): v for k, v in changes.items()}}, data=payload.data)


async def test_the_workflow_stamp_and_the_format_are_bound_into_the_tag() -> None:
    ring = Keyring.generate("k1")
    codec = EncryptionCodec(ring).with_context(
        WorkflowSerializationContext(namespace="default", workflow_id="project-CLOSED-1")
    )
    [sealed] = await codec.encode([plain("closed proposal")])
    assert sealed.metadata[FORMAT] == b"2" and sealed_format(sealed) == 2
    assert await codec.decode([sealed]) == [plain("closed proposal")]
    for tampered in (
        relabel(sealed, drop=(WORKFLOW,)),  # stamp stripped: it would read as "no workflow"
        relabel(sealed, trlgate_workflow=b"project-OPEN-1"),  # stamp rewritten to an open project's
        relabel(sealed, drop=(FORMAT,)),  # downgraded: tried with format 1's key-id-only tag
    ):
        with pytest.raises(InvalidTag):
            await codec.decode([tampered])
    with pytest.raises(CodecFormatError, match="unknown codec format"):
        await codec.decode([relabel(sealed, trlgate_codec=b"3")])
    # Unstamped payloads are bound too: a stamp added later does not open either.
    [unstamped] = await EncryptionCodec(ring).encode([plain("no context")])
    assert sealed_workflow(unstamped) is None
    with pytest.raises(InvalidTag):
        await codec.decode([relabel(unstamped, trlgate_workflow=b"project-OPEN-1")])


async def test_payloads_sealed_in_format_1_still_open() -> None:
    ring = Keyring.generate("k1")
    old = sealed_v1(ring, plain("sealed before format 2"), "project-P-1")
    assert sealed_format(old) == 1
    assert await EncryptionCodec(ring).decode([old]) == [plain("sealed before format 2")]
    # An old payload dressed up as format 2 (to make its stamp count) does not open.
    with pytest.raises(InvalidTag):
        await EncryptionCodec(ring).decode([relabel(old, trlgate_codec=b"2")])


async def test_unsealed_payloads_pass_through_both_ways_once() -> None:
    codec = EncryptionCodec(Keyring.generate())
    original = plain("stored before encryption")
    assert await codec.decode([original]) == [original]
    [sealed] = await codec.encode([original])
    assert await codec.encode([sealed]) == [sealed]  # never sealed twice


def test_keyring_parsing_and_the_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="32"):
        Keyring.parse("k1=c2hvcnQ=")
    with pytest.raises(KeyringError, match="kid=base64key"):
        Keyring.parse("nokey")
    with pytest.raises(KeyringError, match="empty"):
        Keyring.parse(" , ")
    key = base64.b64encode(bytes(32)).decode()
    with pytest.raises(KeyringError, match="'k1' appears more than once"):
        Keyring.parse(f"k1={key},k2={key},k1={key}")
    path = tmp_path / "keys"
    first = Keyring.from_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert Keyring.from_file(path) == first  # made once, then read
    with pytest.raises(KeyringError, match="no keyring"):
        Keyring.from_file(tmp_path / "missing", create=False)
