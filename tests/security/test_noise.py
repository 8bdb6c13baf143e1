"""Tests for the Noise core (noise_state) and the libp2p Noise layer (noise)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerwire._proto import noise_pb2
from peerwire.errors import (
    HandshakeError,
    LimitExceeded,
    PeerIdMismatch,
    ProtocolError,
    RemoteLimitExceeded,
    UsageError,
)
from peerwire.identity.keys import (
    EcdsaPrivateKey,
    Ed25519PrivateKey,
    PrivateKey,
    Secp256k1PrivateKey,
)
from peerwire.identity.peer_id import PeerId
from peerwire.security.noise import (
    MAX_NOISE_FRAME,
    MAX_PLAINTEXT,
    NOISE_PROTOCOL_ID,
    STATIC_KEY_SIGNATURE_PREFIX,
    NoiseHandshake,
    NoiseTransport,
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


def test_hkdf_matches_rfc5869_definition() -> None:
    """Noise's two-output HKDF equals RFC 5869 HKDF-SHA256 with salt=ck and empty info."""
    ck, ikm = b"k" * 32, b"input key material"
    expected = HKDF(algorithm=hashes.SHA256(), length=64, salt=ck, info=b"").derive(ikm)
    assert b"".join(hkdf(ck, ikm)) == expected


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


# --------------------------------------------------------------------------
# libp2p Noise: helpers
# --------------------------------------------------------------------------


def _pair(
    *,
    init_identity: PrivateKey | None = None,
    resp_identity: PrivateKey | None = None,
    expected_peer: PeerId | None = None,
) -> tuple[NoiseHandshake, NoiseHandshake]:
    init = NoiseHandshake(
        initiator=True,
        identity=init_identity or Ed25519PrivateKey.generate(),
        expected_peer=expected_peer,
    )
    resp = NoiseHandshake(initiator=False, identity=resp_identity or Ed25519PrivateKey.generate())
    return init, resp


def _drive(init: NoiseHandshake, resp: NoiseHandshake, *, byte_by_byte: bool = False) -> None:
    """Shuttle bytes between the two sides until neither has anything to send."""
    for _ in range(10):  # XX needs 3 flights; bounded by count
        moved = False
        for src, dst in ((init, resp), (resp, init)):
            data = src.data_to_send()
            if not data:
                continue
            moved = True
            if byte_by_byte:
                for i in range(len(data)):
                    dst.receive_data(data[i : i + 1])
            else:
                dst.receive_data(data)
        if not moved:
            return
    raise AssertionError("handshake did not settle")


def _connected(**kwargs: Any) -> tuple[NoiseTransport, NoiseTransport]:
    init, resp = _pair(**kwargs)
    _drive(init, resp)
    return init.to_transport(), resp.to_transport()


def _split_frames(wire: bytes) -> list[int]:
    """Lengths of the Noise frames in ``wire`` (checks the framing adds up exactly)."""
    sizes, pos = [], 0
    while pos < len(wire):
        size = int.from_bytes(wire[pos : pos + 2], "big")
        sizes.append(size)
        pos += 2 + size
    assert pos == len(wire)
    return sizes


# --------------------------------------------------------------------------
# libp2p Noise: successful handshakes and transport
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_key",
    [Ed25519PrivateKey.generate, Secp256k1PrivateKey.generate, EcdsaPrivateKey.generate],
    ids=["ed25519", "secp256k1", "ecdsa"],
)
@pytest.mark.parametrize("byte_by_byte", [False, True], ids=["whole", "bytewise"])
def test_handshake_completes(make_key: Any, byte_by_byte: bool) -> None:
    ik, rk = make_key(), make_key()
    init, resp = _pair(
        init_identity=ik, resp_identity=rk, expected_peer=PeerId.from_public_key(rk.public_key())
    )
    assert not init.complete
    assert not resp.complete
    _drive(init, resp, byte_by_byte=byte_by_byte)
    assert init.complete
    assert resp.complete
    assert init.remote_peer == PeerId.from_public_key(rk.public_key())
    assert resp.remote_peer == PeerId.from_public_key(ik.public_key())
    assert init.remote_public_key == rk.public_key()
    assert resp.remote_public_key == ik.public_key()
    ti, tr = init.to_transport(), resp.to_transport()
    assert tr.receive_data(ti.encrypt(b"ping")) == [b"ping"]
    assert ti.receive_data(tr.encrypt(b"pong")) == [b"pong"]


def test_handshake_message_sizes_and_no_extensions() -> None:
    """Message 1 is a bare ephemeral key; messages 2/3 carry exactly key + signature."""
    init, resp = _pair()
    msg1 = init.data_to_send()
    assert len(msg1) == 2 + 32
    resp.receive_data(msg1)
    msg2 = resp.data_to_send()
    # e(32) + encrypted s(48) + encrypted payload: Ed25519 key protobuf (36) + sig (64) + framing
    payload = noise_pb2.NoiseHandshakePayload(identity_key=b"k" * 36, identity_sig=b"s" * 64)
    assert len(msg2) == 2 + 32 + 48 + len(payload.SerializeToString()) + 16
    init.receive_data(msg2)
    assert len(init.data_to_send()) == 2 + 48 + len(payload.SerializeToString()) + 16


def test_handshake_deterministic_with_fixed_keys() -> None:
    """All inputs fixed (Ed25519 signs deterministically): identical wire bytes each run."""

    def run() -> list[bytes]:
        init = NoiseHandshake(
            initiator=True,
            identity=Ed25519PrivateKey.from_seed(b"\x01" * 32),
            static_key=X25519PrivateKey.from_private_bytes(b"\x02" * 32),
            ephemeral_key=X25519PrivateKey.from_private_bytes(b"\x03" * 32),
        )
        resp = NoiseHandshake(
            initiator=False,
            identity=Ed25519PrivateKey.from_seed(b"\x04" * 32),
            static_key=X25519PrivateKey.from_private_bytes(b"\x05" * 32),
            ephemeral_key=X25519PrivateKey.from_private_bytes(b"\x06" * 32),
        )
        wire = [init.data_to_send()]
        resp.receive_data(wire[-1])
        wire.append(resp.data_to_send())
        init.receive_data(wire[-1])
        wire.append(init.data_to_send())
        resp.receive_data(wire[-1])
        assert resp.complete
        wire.append(bytes(init.to_transport().encrypt(b"hello")))
        return wire

    assert run() == run()


def test_transport_large_message_split_into_frames() -> None:
    ti, tr = _connected()
    data = bytes(range(256)) * 4096  # 1 MiB
    wire = bytes(ti.encrypt(data))
    sizes = _split_frames(wire)
    assert len(sizes) == -(-len(data) // MAX_PLAINTEXT)
    assert all(size <= MAX_NOISE_FRAME for size in sizes)
    assert sizes[0] == MAX_NOISE_FRAME
    assert b"".join(tr.receive_data(wire)) == data
    # and back, fed in uneven pieces
    wire = bytes(tr.encrypt(data))
    got: list[bytes] = []
    for start in range(0, len(wire), 7001):
        got += ti.receive_data(wire[start : start + 7001])
    assert b"".join(got) == data


def test_transport_encrypt_empty_and_memoryview() -> None:
    ti, tr = _connected()
    assert ti.encrypt(b"") == b""
    assert tr.receive_data(ti.encrypt(memoryview(b"abc"))) == [b"abc"]
    assert tr.receive_data(ti.encrypt(bytearray(b"def"))) == [b"def"]


def test_encrypt_chunks_batches_into_few_frames() -> None:
    ti, tr = _connected()
    chunks = [bytes([i]) * 1024 for i in range(63)]  # 63 KiB fits one frame
    pieces = ti.encrypt_chunks(chunks)
    wire = b"".join(pieces)
    assert _split_frames(wire) == [63 * 1024 + 16]
    assert tr.receive_data(wire) == [b"".join(chunks)]

    chunks = [bytes([i]) * 1024 for i in range(64)]  # 64 KiB is 17 bytes over one frame
    wire = b"".join(ti.encrypt_chunks(chunks))
    assert _split_frames(wire) == [MAX_NOISE_FRAME, 64 * 1024 - MAX_PLAINTEXT + 16]
    assert b"".join(tr.receive_data(wire)) == b"".join(chunks)


def test_encrypt_chunks_large_and_empty_chunks() -> None:
    ti, tr = _connected()
    assert ti.encrypt_chunks([]) == []
    assert ti.encrypt_chunks([b"", b""]) == []
    chunks = [b"a" * 10, b"", b"b" * 200_000, b"c" * 5, b"d" * (MAX_PLAINTEXT - 5), b"e"]
    wire = b"".join(ti.encrypt_chunks(chunks))
    total = sum(map(len, chunks))
    sizes = _split_frames(wire)
    assert len(sizes) == -(-total // MAX_PLAINTEXT)  # greedy packing: minimal frame count
    assert all(size <= MAX_NOISE_FRAME for size in sizes)
    assert b"".join(tr.receive_data(wire)) == b"".join(chunks)


def test_transport_byte_by_byte_equals_whole() -> None:
    ti, tr = _connected()
    messages = [b"x" * n for n in (1, 0, 100, 70_000, 3)]
    wire = b"".join(bytes(ti.encrypt(m)) for m in messages)
    got: list[bytes] = []
    for i in range(len(wire)):
        got += tr.receive_data(wire[i : i + 1])
    assert b"".join(got) == b"".join(messages)


def test_transport_reused_receive_buffer() -> None:
    """The transport copies what it keeps, so a BufferedProtocol may reuse its buffer."""
    ti, tr = _connected()
    wire = bytes(ti.encrypt(b"hello world" * 10))
    buf = bytearray(wire[:50])
    assert tr.receive_data(memoryview(buf)) == []
    buf[:] = b"\xff" * 50  # caller overwrites its buffer
    assert tr.receive_data(wire[50:]) == [b"hello world" * 10]


def test_transport_skips_empty_frames() -> None:
    ti, tr = _connected()
    empty_frame = b"\x00\x10" + ti._send.encrypt_with_ad(b"", b"")
    assert tr.receive_data(empty_frame + bytes(ti.encrypt(b"x"))) == [b"x"]


def test_early_data_after_final_message_goes_to_transport() -> None:
    """The initiator's first transport frame may travel with message 3 (spec: 1.5 RTT)."""
    init, resp = _pair()
    resp.receive_data(init.data_to_send())
    init.receive_data(resp.data_to_send())
    assert init.complete
    msg3 = init.data_to_send()
    ti = init.to_transport()
    early = bytes(ti.encrypt(b"early"))
    more = bytes(ti.encrypt(b"more"))
    resp.receive_data(msg3 + early + more[:5])
    assert resp.complete
    tr = resp.to_transport()
    assert tr.receive_data(b"") == [b"early"]
    assert tr.receive_data(more[5:]) == [b"more"]


def test_data_after_complete_before_to_transport() -> None:
    init, resp = _pair()
    _drive(init, resp)
    ti_send = resp.to_transport().encrypt(b"from responder")
    init.receive_data(ti_send)  # arrives before the initiator switched over
    assert init.to_transport().receive_data(b"") == [b"from responder"]


def test_api_misuse() -> None:
    init, resp = _pair()
    with pytest.raises(UsageError):
        init.to_transport()
    with pytest.raises(UsageError):
        _ = init.remote_peer
    with pytest.raises(UsageError):
        _ = resp.remote_public_key
    resp.receive_data(init.data_to_send())
    init.receive_data(resp.data_to_send())
    assert init.complete
    with pytest.raises(UsageError):  # message 3 not flushed yet
        init.to_transport()
    resp.receive_data(init.data_to_send())
    init.to_transport()
    with pytest.raises(UsageError):
        init.to_transport()
    with pytest.raises(UsageError):
        init.receive_data(b"x")
    assert resp.initiator is False
    assert NOISE_PROTOCOL_ID == "/noise"
    assert MAX_PLAINTEXT == 65519


# --------------------------------------------------------------------------
# libp2p Noise: failures
# --------------------------------------------------------------------------


def test_expected_peer_mismatch() -> None:
    other = PeerId.from_public_key(Ed25519PrivateKey.generate().public_key())
    init, resp = _pair(expected_peer=other)
    resp.receive_data(init.data_to_send())
    with pytest.raises(PeerIdMismatch) as info:
        init.receive_data(resp.data_to_send())
    assert info.value.expected == other
    assert init.data_to_send() == b""  # we never revealed our identity (message 3)
    with pytest.raises(HandshakeError):
        init.receive_data(b"")


def test_responder_expected_peer_mismatch() -> None:
    init, _ = _pair()
    resp = NoiseHandshake(
        initiator=False,
        identity=Ed25519PrivateKey.generate(),
        expected_peer=PeerId.from_public_key(Ed25519PrivateKey.generate().public_key()),
    )
    with pytest.raises(PeerIdMismatch):
        _drive(init, resp)


@pytest.mark.parametrize("message", [2, 3])
@pytest.mark.parametrize("offset", [2, 33, 40, 90, -1])
def test_tampered_handshake_message(message: int, offset: int) -> None:
    init, resp = _pair()
    resp.receive_data(init.data_to_send())
    msg2 = resp.data_to_send()
    if message == 2:
        victim, data = init, bytearray(msg2)
    else:
        init.receive_data(msg2)
        victim, data = resp, bytearray(init.data_to_send())
    data[offset] ^= 0x01
    with pytest.raises(HandshakeError):
        victim.receive_data(bytes(data))
    assert not victim.complete


class _ForgingHandshake(NoiseHandshake):
    """Sends a handshake payload built by ``make_payload(static_public_key)``."""

    def __init__(self, make_payload: Any, **kwargs: Any) -> None:
        self.make_payload = make_payload
        super().__init__(**kwargs)

    def _our_payload(self) -> bytes:
        payload: bytes = self.make_payload(self._state.local_static)
        return payload


def _sig_payload(identity: PrivateKey, signer: PrivateKey, signed_static: bytes | None) -> Any:
    def make(static: bytes) -> bytes:
        to_sign = STATIC_KEY_SIGNATURE_PREFIX + (signed_static or static)
        return noise_pb2.NoiseHandshakePayload(
            identity_key=identity.public_key().to_protobuf(), identity_sig=signer.sign(to_sign)
        ).SerializeToString()

    return make


_me = Ed25519PrivateKey.generate()
_other = Ed25519PrivateKey.generate()
_BAD_PAYLOADS = {
    "signed-by-other-key": _sig_payload(_me, _other, None),
    "signed-wrong-static": _sig_payload(_me, _me, b"\x09" * 32),
    "empty-identity-key": lambda s: noise_pb2.NoiseHandshakePayload(
        identity_sig=_me.sign(STATIC_KEY_SIGNATURE_PREFIX + s)
    ).SerializeToString(),
    "empty-signature": lambda s: noise_pb2.NoiseHandshakePayload(
        identity_key=_me.public_key().to_protobuf()
    ).SerializeToString(),
    "empty-payload": lambda s: b"",
    "garbage-protobuf": lambda s: b"\xff\xff\xff",
    "bad-key-protobuf": lambda s: noise_pb2.NoiseHandshakePayload(
        identity_key=b"\x08\x01\x12\x03abc", identity_sig=b"x" * 64
    ).SerializeToString(),
}


@pytest.mark.parametrize("case", sorted(_BAD_PAYLOADS))
@pytest.mark.parametrize("forger_is_initiator", [False, True], ids=["responder", "initiator"])
def test_bad_handshake_payload(case: str, forger_is_initiator: bool) -> None:
    forger = _ForgingHandshake(_BAD_PAYLOADS[case], initiator=forger_is_initiator, identity=_me)
    honest = NoiseHandshake(initiator=not forger_is_initiator, identity=_other)
    init, resp = (forger, honest) if forger_is_initiator else (honest, forger)
    with pytest.raises(HandshakeError):
        _drive(init, resp)
    assert not honest.complete


def test_remote_extensions_are_ignored() -> None:
    def with_extensions(static: bytes) -> bytes:
        return noise_pb2.NoiseHandshakePayload(
            identity_key=_me.public_key().to_protobuf(),
            identity_sig=_me.sign(STATIC_KEY_SIGNATURE_PREFIX + static),
            extensions=noise_pb2.NoiseExtensions(
                stream_muxers=["/yamux/1.0.0"], webtransport_certhashes=[b"\x12\x20" + b"h" * 32]
            ),
        ).SerializeToString()

    forger = _ForgingHandshake(with_extensions, initiator=False, identity=_me)
    init = NoiseHandshake(
        initiator=True, identity=_other, expected_peer=PeerId.from_public_key(_me.public_key())
    )
    _drive(init, forger)
    assert init.complete
    assert init.remote_peer == PeerId.from_public_key(_me.public_key())


def test_tampered_transport_frame_is_fatal() -> None:
    ti, tr = _connected()
    wire = bytearray(ti.encrypt(b"secret"))
    wire[5] ^= 0x80
    with pytest.raises(ProtocolError):
        tr.receive_data(wire)
    with pytest.raises(ProtocolError):  # the session is dead
        tr.receive_data(b"")


def test_tampered_transport_frame_split_across_reads() -> None:
    """The buffered (partial-frame) path fails the same way as the direct one."""
    ti, tr = _connected()
    wire = bytearray(ti.encrypt(b"x" * 1000))
    wire[-1] ^= 0x01
    assert tr.receive_data(wire[:500]) == []
    with pytest.raises(ProtocolError):
        tr.receive_data(wire[500:])


def test_transport_frame_shorter_than_tag() -> None:
    _, tr = _connected()
    with pytest.raises(ProtocolError):
        tr.receive_data(b"\x00\x05hello")


def test_replayed_transport_frame_rejected() -> None:
    ti, tr = _connected()
    frame = bytes(ti.encrypt(b"once"))
    assert tr.receive_data(frame) == [b"once"]
    with pytest.raises(ProtocolError):
        tr.receive_data(frame)


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00",  # empty message 1
        b"\x00\x21" + b"e" * 33,  # message 1 with a payload
        b"\x00\x1f" + b"e" * 31,  # message 1 too short
        b"\x00\x20" + b"e" * 32 + b"\x00",  # trailing bytes before our reply
    ],
)
def test_responder_rejects_bad_message1(data: bytes) -> None:
    resp = NoiseHandshake(initiator=False, identity=Ed25519PrivateKey.generate())
    with pytest.raises(HandshakeError):
        resp.receive_data(data)


def test_truncated_input_waits() -> None:
    init, resp = _pair()
    msg1 = init.data_to_send()
    resp.receive_data(msg1[:1])
    resp.receive_data(msg1[1:20])
    assert resp.data_to_send() == b""
    resp.receive_data(msg1[20:])
    msg2 = resp.data_to_send()
    init.receive_data(msg2[:-1])
    assert not init.complete
    init.receive_data(msg2[-1:])
    assert init.complete


def test_initiator_rejects_data_sent_with_message2() -> None:
    init, resp = _pair()
    resp.receive_data(init.data_to_send())
    with pytest.raises(HandshakeError):
        init.receive_data(resp.data_to_send() + b"\x00\x10" + b"t" * 16)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_fuzz_responder_only_protocol_errors(pieces: list[bytes]) -> None:
    resp = NoiseHandshake(initiator=False, identity=_me)
    for piece in pieces:
        try:
            resp.receive_data(piece)
        except ProtocolError:
            return
    assert not resp.complete


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=300), st.integers(min_value=0, max_value=4))
def test_fuzz_initiator_and_transport_only_protocol_errors(garbage: bytes, cut: int) -> None:
    init = NoiseHandshake(initiator=True, identity=_me)
    try:
        init.receive_data(garbage)
    except ProtocolError:
        pass
    ti, tr = _connected()
    frame = bytes(ti.encrypt(b"payload"))
    try:
        tr.receive_data(frame[:cut] + garbage)
    except ProtocolError:
        pass
