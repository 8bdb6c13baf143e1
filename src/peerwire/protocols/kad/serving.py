"""Serving ``/ipfs/kad/1.0.0``: the inbound stream handler and the answer to each request.

Kept apart from :mod:`.service` (which sends requests and runs lookups) so
each file stays readable; both work on the same :class:`KadService` state.

Per the spec an inbound stream may carry several requests; we answer up to
``max_requests_per_stream``, waiting at most ``inbound_timeout`` for each, and
allow ``max_inbound_rpcs_per_peer`` such streams per peer at once. Anything
malformed raises a :class:`~peerwire.errors.ProtocolError` subclass, so the
host resets the stream, logs it, and goes on serving everyone else.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ...errors import LimitExceeded, RemoteLimitExceeded, Timeout
from ...varint import LengthPrefixedReader, encode_length_prefixed
from .errors import KadProtocolError
from .messages import KadMessage, MessageType, decode, encode

if TYPE_CHECKING:
    from ...identity.peer_id import PeerId
    from ...mux.stream import Stream
    from .service import KadService

log = logging.getLogger("peerwire.kad")

READ_CHUNK = 65536


async def read_message(stream: Stream, reader: LengthPrefixedReader) -> bytes | None:
    """The next length-prefixed message, or None at a clean end of stream."""
    while True:
        body = reader.next_message()
        if body is not None:
            return body
        data = await stream.read(READ_CHUNK)
        if not data:
            if reader.take_buffered():
                raise KadProtocolError("stream ended inside a kad message")
            return None
        reader.feed(data)


async def handle_stream(svc: KadService, stream: Stream) -> None:
    """Answer the requests on one inbound kad stream."""
    cfg = svc.config
    peer = stream.remote_peer
    active = svc._inbound.get(peer, 0)
    if active >= cfg.max_inbound_rpcs_per_peer:
        log.info("kad: resetting stream from %s: max_inbound_rpcs_per_peer reached", peer)
        await stream.reset()
        return
    svc._inbound[peer] = active + 1
    try:
        reader = LengthPrefixedReader(cfg.max_message_size)
        for _ in range(cfg.max_requests_per_stream):
            try:
                async with asyncio.timeout(cfg.inbound_timeout):
                    body = await read_message(stream, reader)
            except TimeoutError as exc:
                raise Timeout(f"kad request from {peer} not received in time") from exc
            if body is None:
                return
            svc.metrics.requests_received += 1
            reply = answer(svc, peer, decode(body, max_peers=cfg.max_peers_per_message))
            if reply is not None:
                await stream.write(encode_length_prefixed(encode(reply)))
    finally:
        left = svc._inbound.get(peer, 1) - 1
        if left > 0:
            svc._inbound[peer] = left
        else:
            svc._inbound.pop(peer, None)


def answer(svc: KadService, peer: PeerId, request: KadMessage) -> KadMessage | None:
    """The reply to ``request`` from ``peer`` (None for ADD_PROVIDER, which has none)."""
    known = svc.host.peerstore.get(peer)
    if known is not None and svc.config.protocol in known.protocols:
        svc._seen(peer)  # a kad server that identified itself
    kind = request.type
    key = request.key
    now = svc._now()
    if kind is MessageType.PING:
        return KadMessage(MessageType.PING)
    if not key:
        raise KadProtocolError(f"{kind.name} request without a key")
    if kind is MessageType.FIND_NODE:
        return KadMessage(kind, key=key, closer=svc._closer(key, peer))
    if kind is MessageType.GET_VALUE:
        record = svc._local_record(key, now)
        return KadMessage(kind, key=key, record=record, closer=svc._closer(key, peer))
    if kind is MessageType.PUT_VALUE:
        record = request.record
        if record is None or record.key != key:
            raise KadProtocolError("PUT_VALUE whose record key does not match its key")
        try:
            svc.records.put(key, record.value, now)  # InvalidRecord is a KadProtocolError
        except LimitExceeded as exc:
            raise RemoteLimitExceeded(
                str(exc), limit_name=exc.limit_name, limit=exc.limit, value=exc.value
            ) from exc
        return request  # the spec's (and go's) acknowledgement: the request echoed
    if kind is MessageType.ADD_PROVIDER:
        for entry in request.providers:
            if entry.peer_id != peer:
                continue  # only the sender may register itself (spec)
            if entry.addrs:
                svc.host.peerstore.add_addrs(peer, entry.addrs)
            svc.providers.add(key, peer, now)
        return None
    providers = tuple(svc._peer_entry(p) for p in svc.providers.get(key, now))
    return KadMessage(kind, key=key, closer=svc._closer(key, peer), providers=providers)
