"""Tests for the test-only libp2p plaintext 2.0 exchange."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerwire._proto import keys_pb2, plaintext_pb2
from peerwire.errors import HandshakeError, PeerIdMismatch, ProtocolError, UsageError
from peerwire.identity.keys import Ed25519PrivateKey, Secp256k1PrivateKey
from peerwire.identity.peer_id import PeerId
from peerwire.security.plaintext import (
    MAX_EXCHANGE_SIZE,
    PLAINTEXT_PROTOCOL_ID,
    PlaintextHandshake,
)
from peerwire.varint import encode_length_prefixed, encode_uvarint

ALICE = Ed25519PrivateKey.from_seed(b"\xaa" * 32)
BOB = Ed25519PrivateKey.from_seed(b"\xbb" * 32)
ALICE_ID = PeerId.from_public_key(ALICE.public_key())
BOB_ID = PeerId.from_public_key(BOB.public_key())


def _exchange(*, peer_id: bytes | None, key_protobuf: bytes | None) -> bytes:
    """A framed Exchange message with the given (possibly inconsistent) fields."""
    msg = plaintext_pb2.Exchange()
    if peer_id is not None:
        msg.id = peer_id
    if key_protobuf is not None:
        msg.pubkey.CopyFrom(keys_pb2.PublicKey.FromString(key_protobuf))
    return encode_length_prefixed(msg.SerializeToString())


def test_protocol_id() -> None:
    assert PLAINTEXT_PROTOCOL_ID == "/plaintext/2.0.0"


def test_wire_format() -> None:
    """Exchange = uvarint length, then field 1 (multihash id) and field 2 (PublicKey)."""
    key_pb = ALICE.public_key().to_protobuf()
    body = (
        b"\x0a"
        + encode_uvarint(len(ALICE_ID.to_bytes()))
        + ALICE_ID.to_bytes()
        + b"\x12"
        + encode_uvarint(len(key_pb))
        + key_pb
    )
    hs = PlaintextHandshake(identity=ALICE)
    assert hs.data_to_send() == encode_uvarint(len(body)) + body
    assert hs.data_to_send() == b""


@pytest.mark.parametrize("byte_by_byte", [False, True], ids=["whole", "bytewise"])
def test_exchange_completes_with_leftover(byte_by_byte: bool) -> None:
    dialer = PlaintextHandshake(identity=ALICE, expected_peer=BOB_ID)
    listener = PlaintextHandshake(identity=BOB)
    to_listener = dialer.data_to_send() + b"next layer"
    to_dialer = listener.data_to_send()
    for hs, data in ((listener, to_listener), (dialer, to_dialer)):
        if byte_by_byte:
            for i in range(len(data)):
                hs.receive_data(data[i : i + 1])
        else:
            hs.receive_data(data)
    assert dialer.complete
    assert listener.complete
    assert dialer.remote_peer == BOB_ID
    assert listener.remote_peer == ALICE_ID
    assert dialer.remote_public_key == BOB.public_key()
    assert listener.remote_public_key == ALICE.public_key()
    assert listener.take_leftover() == b"next layer"
    assert dialer.take_leftover() == b""
    listener.receive_data(b"more")  # after completion, bytes are kept for the next layer
    assert listener.take_leftover() == b"more"


def test_secp256k1_identity() -> None:
    key = Secp256k1PrivateKey.generate()
    a, b = PlaintextHandshake(identity=key), PlaintextHandshake(identity=BOB)
    b.receive_data(a.data_to_send())
    assert b.remote_peer == PeerId.from_public_key(key.public_key())


def test_not_complete_yet() -> None:
    hs = PlaintextHandshake(identity=ALICE)
    with pytest.raises(UsageError):
        _ = hs.remote_peer
    with pytest.raises(UsageError):
        _ = hs.remote_public_key
    with pytest.raises(UsageError):
        hs.take_leftover()
    data = PlaintextHandshake(identity=BOB).data_to_send()
    hs.receive_data(data[:-1])
    assert not hs.complete


def test_expected_peer_mismatch() -> None:
    hs = PlaintextHandshake(identity=ALICE, expected_peer=ALICE_ID)
    with pytest.raises(PeerIdMismatch):
        hs.receive_data(PlaintextHandshake(identity=BOB).data_to_send())
    with pytest.raises(HandshakeError):  # dead after a failure
        hs.receive_data(b"")


@pytest.mark.parametrize(
    "data",
    [
        # id of one key, pubkey of another
        _exchange(peer_id=ALICE_ID.to_bytes(), key_protobuf=BOB.public_key().to_protobuf()),
        _exchange(peer_id=None, key_protobuf=BOB.public_key().to_protobuf()),
        _exchange(peer_id=BOB_ID.to_bytes(), key_protobuf=None),
        _exchange(peer_id=b"\x12\x20" + b"x" * 31, key_protobuf=BOB.public_key().to_protobuf()),
        _exchange(peer_id=BOB_ID.to_bytes(), key_protobuf=b"\x08\x01\x12\x03abc"),
        encode_length_prefixed(b"\xff\xff\xff"),  # not a protobuf
        encode_length_prefixed(b"\x12\x02\x08\x01"),  # pubkey missing required Data
        encode_uvarint(MAX_EXCHANGE_SIZE + 1),  # too long, rejected before the body
        b"\x80\x00",  # non-minimal varint
    ],
    ids=[
        "id-key-mismatch",
        "no-id",
        "no-pubkey",
        "bad-peer-id",
        "bad-key",
        "garbage",
        "incomplete-key",
        "too-long",
        "bad-varint",
    ],
)
def test_bad_exchange(data: bytes) -> None:
    hs = PlaintextHandshake(identity=ALICE)
    with pytest.raises(HandshakeError):
        hs.receive_data(data)
    assert not hs.complete


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=100), max_size=6))
def test_fuzz_only_protocol_errors(pieces: list[bytes]) -> None:
    hs = PlaintextHandshake(identity=ALICE)
    for piece in pieces:
        try:
            hs.receive_data(piece)
        except ProtocolError:
            return
