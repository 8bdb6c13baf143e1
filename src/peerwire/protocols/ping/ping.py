"""libp2p ping (``/ipfs/ping/1.0.0``): 32 random bytes, echoed back.

The responder echoes 32-byte payloads until the stream ends; the initiator
may send several on one stream. Round-trip time is measured with ``time.perf_counter``.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from ...errors import IncompleteReadError, ProtocolError

if TYPE_CHECKING:
    from ...host.host import Host
    from ...identity.peer_id import PeerId
    from ...mux.stream import Stream

log = logging.getLogger("peerwire.ping")

PING_PROTOCOL = "/ipfs/ping/1.0.0"
PING_SIZE = 32
MAX_PINGS_PER_STREAM = 1_000_000
"""A remote may not keep one ping stream busy forever."""


async def handle_ping(stream: Stream) -> None:
    """Echo every 32-byte ping until the remote closes its side."""
    for _ in range(MAX_PINGS_PER_STREAM):
        try:
            payload = await stream.readexactly(PING_SIZE)
        except IncompleteReadError as exc:
            if exc.partial:
                log.debug("ping stream from %s ended mid-payload", stream.remote_peer)
            return
        await stream.write(payload)


async def ping(host: Host, peer: PeerId, *, count: int = 1) -> list[float]:
    """Ping ``peer`` ``count`` times over one stream; returns each RTT in seconds."""
    stream = await host.new_stream(peer, PING_PROTOCOL)
    # perf_counter, not loop.time(): uvloop's loop clock has millisecond resolution.
    rtts: list[float] = []
    try:
        for _ in range(count):
            payload = os.urandom(PING_SIZE)
            start = time.perf_counter()
            await stream.write(payload)
            echo = await stream.readexactly(PING_SIZE)
            rtts.append(time.perf_counter() - start)
            if echo != payload:
                raise ProtocolError("ping answer does not match the payload")
    except BaseException:
        await stream.reset()
        raise
    await stream.close()
    return rtts
