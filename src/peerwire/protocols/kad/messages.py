"""Codec for ``/ipfs/kad/1.0.0`` messages: typed dataclasses over ``dht_pb2.Message``.

The protobuf stays an implementation detail: the service works with
:class:`KadMessage` and :class:`KadPeer`, whose PeerIds and multiaddrs are
already parsed. Decoding is strict about the message itself (it must parse,
and its type must be one the spec defines) and lenient about its parts: a
peer entry with an unparsable id, or an address that is not a multiaddr, is
skipped, not fatal, because one bad entry from a buggy implementation should
not throw away the rest of an answer. Lists are cut at ``max_peers`` entries
and addresses at ``max_addrs`` per peer.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..._cache import remember
from ..._proto import dht_pb2
from ...errors import InvalidKeyError
from ...identity.multiaddr import InvalidMultiaddr, Multiaddr
from ...identity.peer_id import PeerId
from ...identity.shared import shared_multiaddr, shared_peer_id
from ...varint import encode_uvarint
from .errors import KadProtocolError

MAX_ADDRS_PER_PEER = 32
"""Addresses kept per peer entry (the peer store keeps no more either)."""
PARSE_CACHE_SIZE = 1 << 15
"""Decoded peer entries remembered, process-wide.

Every FIND_NODE answer names ~k peers, mostly the same ones again and again;
parsing a PeerId validates its key and computes its base58 text, which made
decoding the most expensive part of a lookup. Entries are immutable like
their ids and addresses (shared through :mod:`peerwire.identity.shared`), so
all nodes in a process (the simulator runs thousands) can share the objects.
Only valid entries are cached (bounded by ``peerwire._cache.remember``)."""


class MessageType(enum.IntEnum):
    PUT_VALUE = 0
    GET_VALUE = 1
    ADD_PROVIDER = 2
    GET_PROVIDERS = 3
    FIND_NODE = 4
    PING = 5


class ConnectionType(enum.IntEnum):
    NOT_CONNECTED = 0
    CONNECTED = 1
    CAN_CONNECT = 2
    CANNOT_CONNECT = 3


@dataclass(frozen=True, slots=True)
class KadPeer:
    """A peer as kad messages carry it: id, addresses, and what the sender knows of it."""

    peer_id: PeerId
    addrs: tuple[Multiaddr, ...] = ()
    connection: ConnectionType = ConnectionType.NOT_CONNECTED
    _field: bytes | None = field(default=None, init=False, repr=False, compare=False)
    """This entry as an encoded message field, minus the tag; set by its first encoding."""


@dataclass(frozen=True, slots=True)
class KadRecord:
    key: bytes
    value: bytes
    time_received: str = ""


@dataclass(frozen=True, slots=True)
class KadMessage:
    type: MessageType
    key: bytes = b""
    record: KadRecord | None = None
    closer: tuple[KadPeer, ...] = ()
    providers: tuple[KadPeer, ...] = ()
    cluster_level: int = 0


def _fill_peer(out: dht_pb2.Message.Peer, peer: KadPeer) -> None:
    out.id = peer.peer_id.to_bytes()
    out.addrs.extend(addr.to_bytes() for addr in peer.addrs)
    out.connection = int(peer.connection)  # type: ignore[assignment]


_CONNECTION_TYPES = tuple(ConnectionType)  # indexed by wire value (enum calls are slow)
_NOT_CONNECTED = ConnectionType.NOT_CONNECTED
_CLOSER_TAG = b"\x42"  # field 8 (closerPeers), length-delimited
_PROVIDER_TAG = b"\x4a"  # field 9 (providerPeers), length-delimited


def _peer_field(peer: KadPeer) -> bytes:
    """``peer`` as a length-delimited field body (length + ``Message.Peer``), memoized on it.

    The service hands out the same entry object while a peer is unchanged, so
    each entry is serialized once however many answers name it. Keeping the
    bytes on the entry needs no lookup at all: a process-wide cache keyed by
    entry identity thrashed once a simulation held more entries than its
    bound (a service per node builds its own), and keying by value hashes
    the PeerId and every address in Python.
    """
    framed = peer._field
    if framed is None:
        pb = dht_pb2.Message.Peer()
        _fill_peer(pb, peer)
        raw = pb.SerializeToString()
        framed = encode_uvarint(len(raw)) + raw
        object.__setattr__(peer, "_field", framed)  # frozen: a memo, not a change of value
    return framed


def encode(msg: KadMessage) -> bytes:
    """Serialize ``msg`` (without the length prefix).

    The scalar fields go through protobuf; the peer lists are appended as
    ready-made (cached) field encodings. Protobuf allows fields in any order
    and repeated fields as consecutive entries, so the result is exactly what
    a parser expects. Answers name the same peers over and over, and building
    them one protobuf object at a time was the costliest part of serving.
    """
    pb = dht_pb2.Message()
    pb.type = int(msg.type)  # type: ignore[assignment]
    if msg.key:
        pb.key = msg.key
    if msg.cluster_level:
        pb.clusterLevelRaw = msg.cluster_level
    if msg.record is not None:
        pb.record.key = msg.record.key
        pb.record.value = msg.record.value
        if msg.record.time_received:
            pb.record.timeReceived = msg.record.time_received
    parts = [pb.SerializeToString()]
    for tag, peers in ((_CLOSER_TAG, msg.closer), (_PROVIDER_TAG, msg.providers)):
        for peer in peers:
            parts += (tag, peer._field or _peer_field(peer))
    return b"".join(parts)


def _peers(
    entries: Iterable[dht_pb2.Message.Peer], max_peers: int, max_addrs: int
) -> tuple[KadPeer, ...]:
    """The valid entries, at most ``max_peers``; each decoded entry is shared process-wide.

    Answers from all over the network name the same peers with the same
    addresses, so an entry's serialized form (which protobuf writes in C)
    finds the finished :class:`KadPeer`, immutable like its parts.
    """
    out: list[KadPeer] = []
    for entry in entries:
        if len(out) >= max_peers:
            break
        key = (entry.SerializeToString(), max_addrs)
        peer = _decoded_peers.get(key)
        if peer is None:
            try:
                peer = _decode_peer(entry, max_addrs)
            except InvalidKeyError:
                continue
            remember(_decoded_peers, key, peer, PARSE_CACHE_SIZE)
        out.append(peer)
    return tuple(out)


_decoded_peers: dict[tuple[bytes, int], KadPeer] = {}


def _decode_peer(entry: dht_pb2.Message.Peer, max_addrs: int) -> KadPeer:
    """One entry; :class:`InvalidKeyError` if its id is not a PeerId (bad addresses are dropped)."""
    peer = shared_peer_id(entry.id)
    addrs: list[Multiaddr] = []
    for raw in entry.addrs[:max_addrs]:
        try:
            addrs.append(shared_multiaddr(raw))
        except InvalidMultiaddr:
            continue
    code = entry.connection
    conn = _CONNECTION_TYPES[code] if 0 <= code < len(_CONNECTION_TYPES) else _NOT_CONNECTED
    return KadPeer(peer, tuple(addrs), conn)


def decode(data: bytes, *, max_peers: int = 64, max_addrs: int = MAX_ADDRS_PER_PEER) -> KadMessage:
    """Parse one message body; :class:`KadProtocolError` if it is not a kad message."""
    pb = dht_pb2.Message()
    try:
        pb.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError (and, rarely, others)
        raise KadProtocolError(f"malformed kad message: {exc}") from exc
    try:
        msg_type = MessageType(pb.type)
    except ValueError:
        raise KadProtocolError(f"unknown kad message type {pb.type}") from None
    record = None
    if pb.HasField("record"):
        record = KadRecord(
            bytes(pb.record.key), bytes(pb.record.value), str(pb.record.timeReceived)
        )
    return KadMessage(
        type=msg_type,
        key=bytes(pb.key),
        record=record,
        closer=_peers(pb.closerPeers, max_peers, max_addrs),
        providers=_peers(pb.providerPeers, max_peers, max_addrs),
        cluster_level=int(pb.clusterLevelRaw),
    )
