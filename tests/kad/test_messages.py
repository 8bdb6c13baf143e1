"""kad message codec: Hypothesis round trips, hostile input, framing fed byte by byte."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerwire import Identity, Multiaddr
from peerwire._proto import dht_pb2
from peerwire.errors import ProtocolError
from peerwire.protocols.kad import messages as codec
from peerwire.protocols.kad.errors import KadProtocolError
from peerwire.protocols.kad.messages import (
    ConnectionType,
    KadMessage,
    KadPeer,
    KadRecord,
    MessageType,
    decode,
    encode,
)
from peerwire.protocols.kad.serving import read_message
from peerwire.varint import LengthPrefixedReader, encode_length_prefixed

PEERS = [Identity.from_seed(bytes([i]) * 32).peer_id for i in range(1, 6)]
ADDRS = [
    Multiaddr("/ip4/127.0.0.1/tcp/4001"),
    Multiaddr("/ip6/::1/tcp/9"),
    Multiaddr("/memory/some-node"),
]

peers = st.builds(
    KadPeer,
    st.sampled_from(PEERS),
    st.lists(st.sampled_from(ADDRS), max_size=3).map(tuple),
    st.sampled_from(list(ConnectionType)),
)
records = st.builds(
    KadRecord,
    st.binary(max_size=40),
    st.binary(max_size=200),
    st.sampled_from(["", "2024-01-01T00:00:00Z"]),
)
messages = st.builds(
    KadMessage,
    st.sampled_from(list(MessageType)),
    st.binary(max_size=64),
    st.none() | records,
    st.lists(peers, max_size=6).map(tuple),
    st.lists(peers, max_size=6).map(tuple),
    st.integers(0, 2**31 - 1),
)


def reference_pb(msg: KadMessage) -> dht_pb2.Message:
    """``msg`` built field by field with protobuf, for comparison with the fast encoder."""
    pb = dht_pb2.Message(type=int(msg.type), key=msg.key, clusterLevelRaw=msg.cluster_level)  # type: ignore[arg-type]
    if msg.record is not None:
        pb.record.CopyFrom(
            dht_pb2.Record(
                key=msg.record.key, value=msg.record.value, timeReceived=msg.record.time_received
            )
        )
    for field, peers in ((pb.closerPeers, msg.closer), (pb.providerPeers, msg.providers)):
        for peer in peers:
            field.add(
                id=peer.peer_id.to_bytes(),
                addrs=[a.to_bytes() for a in peer.addrs],
                connection=int(peer.connection),  # type: ignore[arg-type]
            )
    return pb


@settings(max_examples=200)
@given(messages)
def test_round_trip(msg: KadMessage) -> None:
    wire = encode(msg)
    assert decode(wire) == msg
    assert dht_pb2.Message.FromString(wire) == reference_pb(msg)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_garbage_raises_only_kad_protocol_errors(data: bytes) -> None:
    try:
        decode(data)
    except KadProtocolError:
        pass


def test_unknown_type_is_rejected() -> None:
    pb = dht_pb2.Message()
    pb.type = 42  # type: ignore[assignment]
    with pytest.raises(KadProtocolError):
        decode(pb.SerializeToString())
    assert issubclass(KadProtocolError, ProtocolError)


def test_bad_peer_entries_and_addresses_are_skipped_not_fatal() -> None:
    pb = dht_pb2.Message()
    pb.type = dht_pb2.Message.FIND_NODE
    bad = pb.closerPeers.add()
    bad.id = b"\x99\x01garbage"
    good = pb.closerPeers.add()
    good.id = PEERS[0].to_bytes()
    good.addrs.extend([b"\xff\xff\xff", ADDRS[0].to_bytes()])
    msg = decode(pb.SerializeToString())
    assert msg.closer == (KadPeer(PEERS[0], (ADDRS[0],)),)


def test_peer_lists_are_cut_at_max_peers() -> None:
    msg = KadMessage(MessageType.FIND_NODE, closer=tuple(KadPeer(p) for p in PEERS))
    assert len(decode(encode(msg), max_peers=2).closer) == 2
    many = KadMessage(MessageType.FIND_NODE, closer=(KadPeer(PEERS[0], tuple(ADDRS) * 20),))
    assert len(decode(encode(many), max_addrs=4).closer[0].addrs) == 4


def test_an_entry_keeps_its_encoding_without_changing_its_value() -> None:
    entry = KadPeer(PEERS[0], (ADDRS[0], ADDRS[2]), ConnectionType.CONNECTED)
    msg = KadMessage(MessageType.FIND_NODE, closer=(entry,), providers=(entry,))
    first = encode(msg)
    again = encode(msg)  # from the memo
    assert again == first
    assert dht_pb2.Message.FromString(again) == reference_pb(msg)
    fresh = KadPeer(PEERS[0], (ADDRS[0], ADDRS[2]), ConnectionType.CONNECTED)
    assert entry == fresh
    assert hash(entry) == hash(fresh)
    assert repr(entry) == repr(fresh)


def test_decoded_entries_are_shared_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "PARSE_CACHE_SIZE", 3)
    monkeypatch.setattr(codec, "_decoded_peers", {})
    for peer in PEERS:
        msg = KadMessage(MessageType.FIND_NODE, closer=(KadPeer(peer, (ADDRS[0],)),))
        assert decode(encode(msg)) == msg
        assert decode(encode(msg)).closer[0] is decode(encode(msg)).closer[0]
        assert 1 <= len(codec._decoded_peers) <= 3


def test_a_shared_entry_still_honours_max_addrs() -> None:
    wire = encode(KadMessage(MessageType.FIND_NODE, closer=(KadPeer(PEERS[1], tuple(ADDRS)),)))
    assert decode(wire).closer[0].addrs == tuple(ADDRS)
    assert decode(wire, max_addrs=1).closer[0].addrs == (ADDRS[0],)
    assert decode(wire).closer[0].addrs == tuple(ADDRS)


class ChunkStream:
    """Just enough of a Stream for ``_read_message``: serves ``data`` in fixed chunks."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self.data = data
        self.chunk = chunk

    async def read(self, n: int = -1) -> bytes:
        await asyncio.sleep(0)
        out, self.data = self.data[: self.chunk], self.data[self.chunk :]
        return out


@pytest.mark.parametrize("chunk", [1, 3, 4096])
async def test_framing_whole_and_byte_by_byte(chunk: int) -> None:
    msgs = [
        KadMessage(MessageType.PING),
        KadMessage(MessageType.GET_VALUE, key=b"/app/k", record=KadRecord(b"/app/k", b"v" * 300)),
        KadMessage(MessageType.FIND_NODE, key=b"x", closer=(KadPeer(PEERS[1], (ADDRS[0],)),)),
    ]
    wire = b"".join(encode_length_prefixed(encode(m)) for m in msgs)
    stream = ChunkStream(wire, chunk)
    reader = LengthPrefixedReader(1 << 20)
    got = []
    while (body := await read_message(stream, reader)) is not None:  # type: ignore[arg-type]
        got.append(decode(body))
    assert got == msgs


async def test_truncated_and_oversized_frames() -> None:
    body = encode(KadMessage(MessageType.PING, key=b"k" * 50))
    truncated = ChunkStream(encode_length_prefixed(body)[:-5], 7)
    with pytest.raises(KadProtocolError):
        await read_message(truncated, LengthPrefixedReader(1 << 20))  # type: ignore[arg-type]
    oversized = ChunkStream(encode_length_prefixed(b"x" * 5000), 1)
    with pytest.raises(ProtocolError):
        await read_message(oversized, LengthPrefixedReader(1000))  # type: ignore[arg-type]
