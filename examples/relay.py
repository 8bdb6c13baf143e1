"""Relay to any ID: route messages to whoever owns a key, over a Chord ring.

Run it with ``python examples/relay.py``. Everything happens in one process
over the in-memory transport:

* 16 nodes start with ``overlay="chord"`` and join through the first one;
* a few keys are routed with ``node.route`` from one node: each lands on the
  node responsible for the key (the key's successor on the ring), and the
  handler sees ``msg.hops`` and ``msg.sender`` (the original source);
* every hop is shown: a ``MESSAGE_RECEIVED`` middleware hook on each node
  watches the ``/peerwire/relay/1.0.0`` frames passing through it;
* ``node.route_request`` asks the owner of a key a question; the answer is
  routed back to the asker.

Identities come from fixed seeds, so every run shows the same ring and paths.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math

import peerwire as pw
from peerwire.protocols.relay import RELAY_PROTOCOL, codec
from peerwire.transport.memory import MemoryNetwork, MemoryTransport

NODES = 32
LOOKUP = "/example/lookup/1.0.0"


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    net = MemoryNetwork()
    nodes: list[pw.Node] = []
    names: dict[pw.PeerId, str] = {}
    for i in range(NODES):
        node = pw.Node(
            pw.Identity.from_seed(hashlib.sha256(b"relay-example-%d" % i).digest()),
            [f"/memory/relay-{i}"],
            overlay="chord",
            bootstrap=[f"/memory/relay-0/p2p/{nodes[0].peer_id}"] if nodes else [],
            transports=[MemoryTransport(net)],
        )
        nodes.append(node)
        names[node.peer_id] = f"n{i:02d}"
    await nodes[0].start()
    await asyncio.gather(*(n.start() for n in nodes[1:]))  # everyone joins through n00
    for _ in range(4):  # stabilisation runs every 2 s on its own; hurry it along
        await asyncio.gather(*(n.overlay.maintain() for n in nodes if n.overlay))
    print(f"{NODES} nodes joined a Chord ring")

    path: list[str] = []
    for node in nodes:

        def watch(msg: pw.Message, here: str = names[node.peer_id]) -> pw.Message:
            if msg.protocol == RELAY_PROTOCOL:
                frame = codec.decode(msg.data)
                path.append(f"{here}(hop {frame.hops + 1})")
            return msg

        node.use(pw.Hook.MESSAGE_RECEIVED, watch)
    delivered: asyncio.Queue[tuple[str, pw.Message]] = asyncio.Queue()
    for node in nodes:

        def answer(msg: pw.Message, here: str = names[node.peer_id]) -> bytes:
            delivered.put_nowait((here, msg))
            return f"{here} owns {msg.data.decode()}".encode()

        node.add_handler(LOOKUP, answer)

    source = nodes[0]
    bound = math.log2(NODES)
    print(f"routing from {names[source.peer_id]} (at most log2({NODES}) = {bound:.0f} hops)")
    for word in ("apple", "banana", "cherry", "damson"):
        key = hashlib.sha256(word.encode()).digest()
        path.clear()
        await source.route(key, LOOKUP, word.encode())
        owner, msg = await asyncio.wait_for(delivered.get(), timeout=5)
        route = " -> ".join([names[source.peer_id], *path]) if path else names[source.peer_id]
        print(f"  key {word:<7} {key.hex()[:8]}…  {route}  delivered at {owner}, hops={msg.hops}")
        assert msg.sender == source.peer_id

    reply = await nodes[5].route_request(
        hashlib.sha256(b"elderberry").digest(), LOOKUP, b"elderberry", timeout=5
    )
    await delivered.get()
    print(f"route_request from n05: {reply.decode()!r}")
    stats = [n.relay_stats() for n in nodes]
    print(
        "relay totals: "
        f"delivered={sum(s.delivered for s in stats)} forwarded={sum(s.forwarded for s in stats)} "
        f"dropped={sum(s.dropped_ttl + s.dropped_unroutable for s in stats)}"
    )
    for node in nodes:
        await node.stop()


if __name__ == "__main__":
    asyncio.run(main())
