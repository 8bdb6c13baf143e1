"""Codec for ``/peerwire/chord/1.0.0``: typed dataclasses over ``chord_pb2``.

Decoding is strict about the message (it must parse, its type and status
must be known, a find-successors key must be 32 bytes) and lenient about list
entries: a node whose id is not a PeerId, or an address that is not a
multiaddr, is skipped, because one bad entry should not throw away an answer.
Lists are cut at ``max_nodes`` entries and addresses at
:data:`MAX_ADDRS_PER_NODE` per node.

PeerIds are parsed through a small cache: the same few dozen neighbours come
back in every answer, and building a PeerId validates its public key.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.protobuf.message import DecodeError

from ..._cache import remember
from ..._proto import chord_pb2
from ...errors import InvalidKeyError, PeerwireError, ProtocolError
from ...identity.multiaddr import InvalidMultiaddr, Multiaddr
from ...identity.peer_id import PeerId
from ...varint import LengthPrefixedReader
from ..base import KEY_BYTES

if TYPE_CHECKING:
    from ...mux.stream import Stream

MAX_ADDRS_PER_NODE = 8
"""Addresses kept per node entry; the rest are ignored."""
PEER_CACHE_SIZE = 4096
"""PeerIds, and parsed addresses, remembered by :class:`Codec` (each cleared when full)."""


class ChordProtocolError(ProtocolError):
    """A remote sent a malformed ``/peerwire/chord/1.0.0`` message."""


class LookupFailed(PeerwireError, LookupError):
    """A find-successors lookup (or a join) got no answer from any node it tried."""


class RequestType(enum.IntEnum):
    PING = 0
    FIND_SUCCESSORS = 1
    GET_SUCC_AND_PRED = 2
    NOTIFY = 3
    GET_FINGERS = 4


class Status(enum.IntEnum):
    OK = 0
    NOT_READY = 1
    FAILED = 2


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A ring member as chord messages carry it."""

    peer_id: PeerId
    addrs: tuple[Multiaddr, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    type: RequestType
    key: bytes = b""
    count: int = 0
    ttl: int = 0
    sender_addrs: tuple[Multiaddr, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    status: Status = Status.OK
    successors: tuple[NodeInfo, ...] = ()
    predecessors: tuple[NodeInfo, ...] = ()
    fingers: tuple[NodeInfo, ...] = ()
    hops: int = 0
    approximate: bool = False
    """A find-successors answer not from the owner (unreachable, or still joining)."""


def _fill_node(msg: chord_pb2.Node, node: NodeInfo) -> None:
    msg.id = node.peer_id.to_bytes()
    msg.addrs.extend(a.to_bytes() for a in node.addrs[:MAX_ADDRS_PER_NODE])


class Codec:
    """Encodes and decodes chord messages; holds the PeerId cache and the list limit."""

    __slots__ = ("_addrs", "_peers", "max_nodes")

    def __init__(self, max_nodes: int) -> None:
        self.max_nodes = max_nodes
        self._peers: dict[bytes, PeerId] = {}
        self._addrs: dict[bytes, Multiaddr | None] = {}

    def addrs(self, raw: Iterable[bytes]) -> tuple[Multiaddr, ...]:
        """Parse binary multiaddrs (cached; unparsable ones are skipped)."""
        cache = self._addrs
        out: list[Multiaddr] = []
        for data in raw:
            if len(out) >= MAX_ADDRS_PER_NODE:
                break
            if data in cache:
                addr = cache[data]
            else:
                try:
                    addr = Multiaddr(data)
                except InvalidMultiaddr:
                    addr = None
                remember(cache, data, addr, PEER_CACHE_SIZE)
            if addr is not None:
                out.append(addr)
        return tuple(out)

    def peer(self, data: bytes) -> PeerId | None:
        pid = self._peers.get(data)
        if pid is None:
            try:
                pid = PeerId.from_bytes(data)
            except InvalidKeyError:
                return None
            remember(self._peers, data, pid, PEER_CACHE_SIZE)
        return pid

    def _nodes(self, raw: Sequence[chord_pb2.Node]) -> tuple[NodeInfo, ...]:
        out: list[NodeInfo] = []
        for entry in raw[: self.max_nodes]:
            pid = self.peer(entry.id)
            if pid is not None:
                out.append(NodeInfo(pid, self.addrs(entry.addrs)))
        return tuple(out)

    # ---------------------------------------------------------------- requests
    @staticmethod
    def encode_request(req: Request) -> bytes:
        msg = chord_pb2.Request(type=int(req.type), key=req.key, count=req.count, ttl=req.ttl)  # type: ignore[arg-type]
        msg.sender_addrs.extend(a.to_bytes() for a in req.sender_addrs[:MAX_ADDRS_PER_NODE])
        return msg.SerializeToString()

    def decode_request(self, data: bytes) -> Request:
        msg = chord_pb2.Request()
        try:
            msg.ParseFromString(data)
        except DecodeError as exc:
            raise ChordProtocolError(f"malformed chord request: {exc}") from exc
        try:
            kind = RequestType(msg.type)
        except ValueError:
            raise ChordProtocolError(f"unknown chord request type {msg.type}") from None
        if kind is RequestType.FIND_SUCCESSORS and len(msg.key) != KEY_BYTES:
            raise ChordProtocolError(f"find-successors key must be {KEY_BYTES} bytes")
        return Request(
            type=kind,
            key=msg.key,
            count=msg.count,
            ttl=msg.ttl,
            sender_addrs=self.addrs(msg.sender_addrs),
        )

    # --------------------------------------------------------------- responses
    def encode_response(self, resp: Response) -> bytes:
        msg = chord_pb2.Response(
            status=int(resp.status),  # type: ignore[arg-type]
            hops=resp.hops,
            approximate=resp.approximate,
        )
        limit = self.max_nodes
        for node in resp.successors[:limit]:
            _fill_node(msg.successors.add(), node)
        for node in resp.predecessors[:limit]:
            _fill_node(msg.predecessors.add(), node)
        for node in resp.fingers[:limit]:
            _fill_node(msg.fingers.add(), node)
        return msg.SerializeToString()

    def decode_response(self, data: bytes) -> Response:
        msg = chord_pb2.Response()
        try:
            msg.ParseFromString(data)
        except DecodeError as exc:
            raise ChordProtocolError(f"malformed chord response: {exc}") from exc
        try:
            status = Status(msg.status)
        except ValueError:
            raise ChordProtocolError(f"unknown chord response status {msg.status}") from None
        return Response(
            status=status,
            successors=self._nodes(msg.successors),
            predecessors=self._nodes(msg.predecessors),
            fingers=self._nodes(msg.fingers),
            hops=msg.hops,
            approximate=msg.approximate,
        )


READ_CHUNK = 64 * 1024


async def read_message(stream: Stream, max_size: int) -> bytes:
    """One varint-length-prefixed message from ``stream`` (bytes may arrive in any pieces).

    Raises :class:`ProtocolError` for a declared length above ``max_size``
    (before reading the body) or a stream that ends mid-message.
    """
    reader = LengthPrefixedReader(max_size)
    while True:
        msg = reader.next_message()
        if msg is not None:
            return msg
        chunk = await stream.read(READ_CHUNK)
        if not chunk:
            raise ChordProtocolError("chord stream ended before a complete message")
        reader.feed(chunk)
