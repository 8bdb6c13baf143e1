"""Tests for the Noise core (noise_state) and the libp2p Noise layer (noise)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from peerwire.errors import (
    HandshakeError,
    LimitExceeded,
    ProtocolError,
    RemoteLimitExceeded,
    UsageError,
)
from peerwire.security.noise_state import (
    MAX_NONCE,
    CipherState,
    HandshakeState,
    SymmetricState,
    hkdf,
)

VECTORS = Path(__file__).parent.parent / "vectors" / "noise_xx_25519_chachapoly_sha256.json"


def _x25519(hex_key: str) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(bytes.fromhex(hex_key))


def _load_vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text())["vectors"]
    return vectors


# --------------------------------------------------------------------------
# noise_state: published test vectors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("vector", _load_vectors(), ids=lambda v: v["source"].split()[1])
def test_xx_vector(vector: dict[str, Any]) -> None:
    """Our HandshakeState reproduces cacophony/snow XX vectors byte for byte (both roles)."""
    assert vector["protocol_name"] == "Noise_XX_25519_ChaChaPoly_SHA256"
    init = HandshakeState(
        initiator=True,
        s=_x25519(vector["init_static"]),
        e=_x25519(vector["init_ephemeral"]),
        prologue=bytes.fromhex(vector["init_prologue"]),
    )
    resp = HandshakeState(
        initiator=False,
        s=_x25519(vector["resp_static"]),
        e=_x25519(vector["resp_ephemeral"]),
        prologue=bytes.fromhex(vector["resp_prologue"]),
    )
    messages = vector["messages"]
    for i, msg in enumerate(messages[:3]):
        sender, receiver = (init, resp) if i % 2 == 0 else (resp, init)
        payload = bytes.fromhex(msg["payload"])
        wire = sender.write_message(payload)
        assert wire.hex() == msg["ciphertext"]
        assert receiver.read_message(wire) == payload
    assert init.finished
    assert resp.finished
    assert init.handshake_hash == resp.handshake_hash
    if "handshake_hash" in vector:
        assert init.handshake_hash.hex() == vector["handshake_hash"]
    assert init.remote_static == resp.local_static
    assert resp.remote_static == init.local_static

    init_send, init_recv = init.split()
    resp_send, resp_recv = resp.split()
    for i, msg in enumerate(messages[3:], start=3):
        send, recv = (init_send, resp_recv) if i % 2 == 0 else (resp_send, init_recv)
        payload = bytes.fromhex(msg["payload"])
        wire = send.encrypt_with_ad(b"", payload)
        assert wire.hex() == msg["ciphertext"]
        assert recv.decrypt_with_ad(b"", wire) == payload


def test_hkdf_outputs_chain() -> None:
    """Noise HKDF: output i+1 is HMAC(temp_key, output_i || i+1); two- and three-output agree."""
    two = hkdf(b"k" * 32, b"ikm", 2)
    three = hkdf(b"k" * 32, b"ikm", 3)
    assert len(two) == 2
    assert three[:2] == two
    assert len({*three}) == 3
    assert all(len(x) == 32 for x in three)


def test_symmetric_state_long_protocol_name_is_hashed() -> None:
    """Names longer than HASHLEN are hashed; shorter ones are zero-padded."""
    short = SymmetricState(b"Noise_XX")
    assert short.h == b"Noise_XX" + b"\x00" * 24
    assert short.ck == short.h
    long = SymmetricState(b"N" * 33)
    assert len(long.h) == 32
    assert long.h != b"N" * 32


# --------------------------------------------------------------------------
# noise_state: CipherState behaviour
# --------------------------------------------------------------------------


def test_cipher_state_without_key_is_identity() -> None:
    cs = CipherState()
    assert not cs.has_key()
    assert cs.encrypt_with_ad(b"ad", b"hello") == b"hello"
    assert cs.decrypt_with_ad(b"ad", b"hello") == b"hello"
    assert cs.n == 0
    with pytest.raises(UsageError):
        cs.encrypt_into(b"x", memoryview(bytearray(17)))


def test_cipher_state_nonce_and_failed_decrypt() -> None:
    """A failed decryption raises ProtocolError and leaves n unchanged (spec 5.1)."""
    a, b = CipherState(b"\x01" * 32), CipherState(b"\x01" * 32)
    ct0 = a.encrypt_with_ad(b"ad", b"m0")
    ct1 = a.encrypt_with_ad(b"ad", b"m1")
    assert a.n == 2
    with pytest.raises(ProtocolError):
        b.decrypt_with_ad(b"ad", ct1)  # wrong nonce
    assert b.n == 0
    with pytest.raises(ProtocolError):
        b.decrypt_with_ad(b"other ad", ct0)
    with pytest.raises(ProtocolError):
        b.decrypt_with_ad(b"ad", ct0[:10])  # shorter than a tag
    assert b.decrypt_with_ad(b"ad", ct0) == b"m0"
    assert b.decrypt_with_ad(b"ad", ct1) == b"m1"


def test_cipher_state_encrypt_into_matches_encrypt() -> None:
    a, b = CipherState(b"\x02" * 32), CipherState(b"\x02" * 32)
    out = bytearray(5 + 16)
    a.encrypt_into(b"hello", memoryview(out))
    assert bytes(out) == b.encrypt_with_ad(b"", b"hello")


def test_cipher_state_reserved_nonce() -> None:
    """n = 2**64-1 is reserved: the last usable nonce is 2**64-2, then both directions fail."""
    a, b = CipherState(b"\x03" * 32), CipherState(b"\x03" * 32)
    a.set_nonce(MAX_NONCE - 1)
    b.set_nonce(MAX_NONCE - 1)
    ct = a.encrypt_with_ad(b"", b"last")
    assert b.decrypt_with_ad(b"", ct) == b"last"
    with pytest.raises(LimitExceeded):
        a.encrypt_with_ad(b"", b"one too many")
    with pytest.raises(LimitExceeded):
        a.encrypt_into(b"x", memoryview(bytearray(17)))
    with pytest.raises(RemoteLimitExceeded):
        b.decrypt_with_ad(b"", ct)
    with pytest.raises(UsageError):
        a.set_nonce(MAX_NONCE + 1)


# --------------------------------------------------------------------------
# noise_state: HandshakeState misuse and bad input
# --------------------------------------------------------------------------


def _state_pair() -> tuple[HandshakeState, HandshakeState]:
    return (
        HandshakeState(initiator=True, s=X25519PrivateKey.generate()),
        HandshakeState(initiator=False, s=X25519PrivateKey.generate()),
    )


def test_handshake_state_turns_and_split() -> None:
    init, resp = _state_pair()
    with pytest.raises(UsageError):
        resp.write_message(b"")
    with pytest.raises(UsageError):
        init.read_message(b"")
    with pytest.raises(UsageError):
        init.split()
    resp.read_message(init.write_message(b""))
    init.read_message(resp.write_message(b"r"))
    assert resp.read_message(init.write_message(b"i")) == b"i"
    with pytest.raises(UsageError):
        init.write_message(b"")
    (i_send, i_recv), (r_send, r_recv) = init.split(), resp.split()
    assert r_recv.decrypt_with_ad(b"", i_send.encrypt_with_ad(b"", b"x")) == b"x"
    assert i_recv.decrypt_with_ad(b"", r_send.encrypt_with_ad(b"", b"y")) == b"y"


def test_handshake_state_unknown_pattern() -> None:
    with pytest.raises(UsageError):
        HandshakeState(initiator=True, s=X25519PrivateKey.generate(), pattern="IK")


@pytest.mark.parametrize("cut", [0, 31, 32, 79, 95])
def test_handshake_state_short_message2(cut: int) -> None:
    init, resp = _state_pair()
    resp.read_message(init.write_message())
    msg2 = resp.write_message(b"")
    with pytest.raises(HandshakeError):
        init.read_message(msg2[:cut])
    with pytest.raises(UsageError):  # unusable after a failure
        init.read_message(msg2)


def test_handshake_state_prologue_mismatch() -> None:
    init = HandshakeState(initiator=True, s=X25519PrivateKey.generate(), prologue=b"a")
    resp = HandshakeState(initiator=False, s=X25519PrivateKey.generate(), prologue=b"b")
    resp.read_message(init.write_message())
    with pytest.raises(HandshakeError):
        init.read_message(resp.write_message())


def test_handshake_state_low_order_ephemeral() -> None:
    """An all-zero (low-order) remote ephemeral makes DH output zero: HandshakeError."""
    init, _ = _state_pair()
    init.write_message()
    resp = HandshakeState(initiator=False, s=X25519PrivateKey.generate())
    resp.read_message(b"\x00" * 32)
    with pytest.raises(HandshakeError):
        resp.write_message()  # the "ee" DH happens while writing message 2
    bad_msg2 = b"\x00" * 32 + b"\x00" * 48 + b"\x00" * 16
    with pytest.raises(HandshakeError):
        init.read_message(bad_msg2)
