"""Networks of real nodes running the real Chord overlay, for relay and broadcast tests.

``joined_chord(count)``: every node starts with ``overlay="chord"`` and joins
through the first one; a few explicit maintenance rounds stand in for the
periodic stabilisation. Realistic but slow (about 1.5 s for 16 nodes, 20 s for
100), so the large tests use ``ideal_chord(count)`` instead: the same
``ChordOverlay`` objects whose ring state is what a converged ring holds
(``peerwire.overlay.chord.ideal_rings``), with no maintenance running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import peerwire as pw
from peerwire.overlay.base import key_for
from peerwire.overlay.chord import ChordOverlay, ideal_rings
from peerwire.transport.memory import MemoryNetwork, MemoryTransport

from .ring import identities


@asynccontextmanager
async def joined_chord(
    count: int, *, seed: int = 0, rounds: int = 4
) -> AsyncIterator[list[pw.Node]]:
    net = MemoryNetwork()
    async with AsyncExitStack() as stack:
        nodes: list[pw.Node] = []
        for i, ident in enumerate(identities(count, seed)):
            boot = [nodes[0].addrs[0]] if nodes else []
            node = pw.Node(
                ident,
                [f"/memory/chord-{seed}-{i}"],
                overlay="chord",
                bootstrap=boot,
                transports=[MemoryTransport(net)],
            )
            await stack.enter_async_context(node)
            nodes.append(node)
        for _ in range(rounds):
            await asyncio.gather(*(n.overlay.maintain() for n in nodes if n.overlay))
        yield nodes


@asynccontextmanager
async def ideal_chord(count: int, *, seed: int = 0) -> AsyncIterator[list[pw.Node]]:
    net = MemoryNetwork()
    async with AsyncExitStack() as stack:
        nodes: list[pw.Node] = []
        for i, ident in enumerate(identities(count, seed)):
            node = pw.Node(ident, [f"/memory/ideal-{seed}-{i}"], transports=[MemoryTransport(net)])
            await stack.enter_async_context(node)
            nodes.append(node)
        rings = ideal_rings((int.from_bytes(key_for(n.peer_id), "big"), n.peer_id) for n in nodes)
        for node in nodes:
            for other in nodes:
                if other is not node:
                    node.peerstore.add_addrs(other.peer_id, other.addrs)
            overlay = ChordOverlay(node.host)
            overlay.service.ring = rings[node.peer_id]
            node.overlay = overlay
        yield nodes
