"""libp2p identify (``/ipfs/id/1.0.0``) and identify push (``/ipfs/id/push/1.0.0``).

On every new connection each side asks the other who it is: the answer
carries its public key, agent and protocol versions, listen addresses, the
address it sees us at, and the protocols it serves. When our protocols change
while running, we push the new list to every connected peer.

Messages are varint-length-prefixed protobufs. A peer may split one answer into
several messages (go-libp2p sends its signed peer record separately); we merge
every message until the stream ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..._cache import remember
from ..._proto import identify_pb2
from ..._timeouts import deadline
from ...errors import ConnectionLost, InvalidKeyError, PeerwireError, ProtocolError, Timeout
from ...host.middleware import Hook
from ...identity.keys import PublicKey, public_key_from_protobuf
from ...identity.multiaddr import InvalidMultiaddr, Multiaddr
from ...identity.peer_id import PeerId
from ...identity.shared import shared_multiaddr
from ...varint import LengthPrefixedReader, encode_uvarint

if TYPE_CHECKING:
    from ...host.host import Host
    from ...mux.session import MuxedConnection
    from ...mux.stream import Stream

log = logging.getLogger("peerwire.identify")

IDENTIFY_PROTOCOL = "/ipfs/id/1.0.0"
IDENTIFY_PUSH_PROTOCOL = "/ipfs/id/push/1.0.0"
MAX_IDENTIFY_SIZE = 64 * 1024
"""Largest identify message accepted (go-libp2p's limit is 4 KiB plus a signed record)."""
MAX_IDENTIFY_MESSAGES = 8
"""Identify messages merged from one stream."""
MAX_LISTEN_ADDRS = 64
"""Listen addresses taken from one identify message."""


_OBSERVED_ADDR_TAG = b"\x22"  # Identify field 4 (observedAddr), length-delimited
PROTOCOL_LIST_CACHE_SIZE = 1024
"""Distinct announced protocol lists shared process-wide.

Most peers announce the same list, and every connection keeps its peer's
list; sharing one tuple of the same strings saved ~0.8 KB per connection in
a 1,000-node simulation."""
_protocol_lists: dict[tuple[str, ...], tuple[str, ...]] = {}


def _shared_protocols(announced: Iterable[str]) -> tuple[str, ...]:
    protocols = tuple(announced)
    shared = _protocol_lists.get(protocols)
    if shared is None:
        shared = remember(_protocol_lists, protocols, protocols, PROTOCOL_LIST_CACHE_SIZE)
    return shared


@dataclass(frozen=True, slots=True)
class IdentifyInfo:
    """What a peer told us about itself."""

    peer_id: PeerId
    public_key: PublicKey | None
    agent_version: str
    protocol_version: str
    protocols: tuple[str, ...]
    listen_addrs: tuple[Multiaddr, ...]
    observed_addr: Multiaddr | None


class IdentifyService:
    """Serves identify, runs it on every new connection and pushes protocol changes."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._results: dict[PeerId, IdentifyInfo] = {}
        self._waiters: dict[PeerId, asyncio.Future[IdentifyInfo]] = {}
        self._push_scheduled = False
        self._static: tuple[tuple[Multiaddr, ...], bytes] | None = None
        host.set_stream_handler(IDENTIFY_PROTOCOL, self._handle_identify)
        host.set_stream_handler(IDENTIFY_PUSH_PROTOCOL, self._handle_push)
        host.connection_callbacks.append(self._on_connected)
        host.disconnection_callbacks.append(self._on_disconnected)
        host.handlers_changed_callbacks.append(self._schedule_push)

    # -------------------------------------------------------------- queries
    def cached(self, peer: PeerId) -> IdentifyInfo | None:
        return self._results.get(peer)

    async def identify(self, peer: PeerId, *, timeout: float | None = None) -> IdentifyInfo:
        """The identify answer of ``peer`` (connecting first if needed)."""
        info = self._results.get(peer)
        if info is not None and self.host.connection(peer) is not None:
            return info
        limit = self.host.config.identify_timeout if timeout is None else timeout
        async with deadline(limit, f"identify {peer}"):
            conn = await self.host.connect_peer(peer)
            fut = self._waiters.get(peer)
            if fut is None or fut.done():
                return await self._request(conn)
            return await asyncio.shield(fut)

    # ------------------------------------------------------------- building
    def _build(self, conn: MuxedConnection | None) -> bytes:
        """Our identify message (length-prefixed), with ``conn``'s observed address.

        Everything but the observed address is the same for every peer, so it
        is serialized once (again when our handlers or listen addresses change)
        and the observed address is appended as its own field: protobuf reads
        concatenated fields exactly as if they had been serialized together.
        """
        host = self.host
        listen = tuple(host.listen_addrs)
        static = self._static
        if static is None or static[0] != listen:
            msg = identify_pb2.Identify()
            msg.protocolVersion = host.config.protocol_version
            msg.agentVersion = host.config.agent_version
            msg.publicKey = host.identity.public_key.to_protobuf()
            announce = list(listen) + [Multiaddr(a) for a in host.config.extra_listen_announce]
            msg.listenAddrs.extend(addr.to_bytes() for addr in announce)
            msg.protocols.extend(host.protocols())
            static = (listen, msg.SerializeToString())
            self._static = static
        body = static[1]
        if conn is not None:
            observed = conn.raw.remote_addr.to_bytes()
            body += _OBSERVED_ADDR_TAG + encode_uvarint(len(observed)) + observed
        return encode_uvarint(len(body)) + body

    # --------------------------------------------------------------- serving
    async def _handle_identify(self, stream: Stream) -> None:
        await stream.write(self._build(stream.connection))
        await stream.close_write()

    async def _handle_push(self, stream: Stream) -> None:
        async with deadline(self.host.config.identify_timeout, "identify push"):
            info = await self._read_info(stream, stream.remote_peer, push=True)
        self._store(info)

    # ------------------------------------------------------------ requesting
    def _on_connected(self, conn: MuxedConnection) -> None:
        peer = conn.remote_peer
        fut = self._waiters.get(peer)
        if fut is None or fut.done():
            fut = asyncio.get_running_loop().create_future()
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._waiters[peer] = fut
        self.host.spawn(self._identify_connection(conn, fut), name=f"identify {peer}")

    def _on_disconnected(self, conn: MuxedConnection) -> None:
        fut = self._waiters.pop(conn.remote_peer, None)
        if fut is not None and not fut.done():
            fut.set_exception(ConnectionLost(f"{conn.remote_peer} disconnected before identify"))

    async def _identify_connection(
        self, conn: MuxedConnection, fut: asyncio.Future[IdentifyInfo]
    ) -> None:
        try:
            async with deadline(self.host.config.identify_timeout, "identify"):
                info = await self._request(conn)
        except (PeerwireError, OSError) as exc:
            log.info("identify of %s failed: %s: %s", conn.remote_peer, type(exc).__name__, exc)
            if not fut.done():
                fut.set_exception(exc)
            return
        if not fut.done():
            fut.set_result(info)
        middleware = self.host.middleware
        if middleware.has(Hook.PEER_READY) and not conn.is_closed:
            await middleware.run(Hook.PEER_READY, conn, info)

    async def _request(self, conn: MuxedConnection) -> IdentifyInfo:
        # Lazy: the answer is read anyway, so a refusal still surfaces (as
        # NegotiationError), and the echo no longer costs a round trip of its own.
        stream = await self.host.new_stream(
            conn.remote_peer, IDENTIFY_PROTOCOL, conn=conn, lazy=True
        )
        try:
            # Do not half-close before the answer arrives: go and js don't, and
            # py-libp2p refuses to answer on a stream whose remote side is closed.
            info = await self._read_info(stream, conn.remote_peer, push=False)
        except BaseException:
            await stream.reset()
            raise
        await stream.close()
        self._store(info)
        return info

    async def _read_info(self, stream: Stream, peer: PeerId, *, push: bool) -> IdentifyInfo:
        reader = LengthPrefixedReader(MAX_IDENTIFY_SIZE)
        merged = identify_pb2.Identify()
        received = 0
        total = 0
        while True:
            data = await stream.read(65536)
            if not data:
                break
            total += len(data)
            if total > MAX_IDENTIFY_SIZE * MAX_IDENTIFY_MESSAGES:
                raise ProtocolError("identify answer too large")
            reader.feed(data)
            while (body := reader.next_message()) is not None:
                received += 1
                if received > MAX_IDENTIFY_MESSAGES:
                    raise ProtocolError("too many identify messages")
                # Parsing into ``merged`` merges as MergeFrom would (repeated fields
                # append, set scalars replace) without a message object per part.
                try:
                    merged.MergeFromString(body)
                except Exception as exc:  # protobuf raises DecodeError (and others)
                    raise ProtocolError(f"malformed identify message: {exc}") from exc
        if reader.take_buffered():
            raise ProtocolError("identify stream ended inside a message")
        if not received:
            raise ProtocolError("identify stream ended without a message")
        return self._decode(merged, peer, push=push)

    def _decode(self, msg: identify_pb2.Identify, peer: PeerId, *, push: bool) -> IdentifyInfo:
        key: PublicKey | None = None
        if msg.HasField("publicKey"):
            try:
                key = public_key_from_protobuf(msg.publicKey)
            except InvalidKeyError as exc:
                raise ProtocolError(f"identify carries a bad public key: {exc}") from exc
            if PeerId.from_public_key(key) != peer:
                raise ProtocolError("identify public key does not match the connection's peer")
        addrs: list[Multiaddr] = []
        for raw in msg.listenAddrs[:MAX_LISTEN_ADDRS]:
            try:
                # Shared with kad's answers, so the peer store's copies compare by
                # identity. The observed address below is new per connection: not shared.
                addrs.append(shared_multiaddr(raw))
            except InvalidMultiaddr:
                log.debug("ignoring malformed listen addr from %s", peer)
        observed: Multiaddr | None = None
        if msg.HasField("observedAddr"):
            try:
                observed = Multiaddr(bytes(msg.observedAddr))
            except InvalidMultiaddr:
                observed = None
        previous = self._results.get(peer) if push else None
        return IdentifyInfo(
            peer_id=peer,
            public_key=key or (previous.public_key if previous else None),
            agent_version=msg.agentVersion
            if msg.HasField("agentVersion") or not previous
            else previous.agent_version,
            protocol_version=msg.protocolVersion
            if msg.HasField("protocolVersion") or not previous
            else previous.protocol_version,
            protocols=_shared_protocols(msg.protocols)
            if msg.protocols or not previous
            else previous.protocols,
            listen_addrs=tuple(addrs) if addrs or not previous else previous.listen_addrs,
            observed_addr=observed,
        )

    def _store(self, info: IdentifyInfo) -> None:
        from ...host.peerstore import MAX_PROTOCOLS_PER_PEER

        self._results[info.peer_id] = info
        rec = self.host.peerstore.record(info.peer_id)
        if info.public_key is not None:
            rec.public_key = info.public_key
        rec.agent_version = info.agent_version
        rec.protocol_version = info.protocol_version
        rec.protocols = info.protocols[:MAX_PROTOCOLS_PER_PEER]
        rec.observed_addr = info.observed_addr
        if info.listen_addrs:
            self.host.peerstore.add_addrs(info.peer_id, info.listen_addrs)

    # ------------------------------------------------------------------ push
    def _schedule_push(self) -> None:
        self._static = None  # our protocol list changed
        if self._push_scheduled:
            return
        self._push_scheduled = True
        asyncio.get_running_loop().call_soon(self._push_all)

    def _push_all(self) -> None:
        self._push_scheduled = False
        for peer in self.host.connected_peers():
            self.host.spawn(self._push(peer), name=f"identify push {peer}")

    async def _push(self, peer: PeerId) -> None:
        try:
            async with deadline(self.host.config.identify_timeout, "identify push"):
                stream = await self.host.new_stream(peer, IDENTIFY_PUSH_PROTOCOL)
                await stream.write(self._build(stream.connection))
                await stream.close()
        except (PeerwireError, Timeout) as exc:
            log.info("identify push to %s failed: %s", peer, exc)
