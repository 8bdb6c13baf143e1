"""Shared helpers for the Chord tests: the true ring of a set of nodes, and checks against it."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable, Sequence

from peerwire.identity.peer_id import PeerId
from peerwire.node import Node
from peerwire.overlay.base import key_for
from peerwire.overlay.chord import ChordOverlay
from peerwire.overlay.chord.ring import KEY_BITS, MASK, key_to_int


def chord(node: Node) -> ChordOverlay:
    overlay = node.overlay
    assert isinstance(overlay, ChordOverlay)
    return overlay


class Truth:
    """The ring a set of live nodes should form."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        self.nodes = {n.peer_id: n for n in nodes}
        self.pos = {p: key_to_int(key_for(p)) for p in self.nodes}
        self.order = sorted(self.nodes, key=self.pos.__getitem__)
        self.sorted_pos = [self.pos[p] for p in self.order]

    def owner(self, key: int) -> PeerId:
        j = bisect.bisect_left(self.sorted_pos, key)
        return self.order[j % len(self.order)]

    def successors(self, peer: PeerId, count: int) -> list[PeerId]:
        i = self.order.index(peer)
        n = len(self.order)
        return [self.order[(i + a) % n] for a in range(1, min(count, n - 1) + 1)]

    def predecessor(self, peer: PeerId) -> PeerId:
        return self.order[self.order.index(peer) - 1]

    def problems(self, *, fingers: bool = False) -> list[str]:
        """Every way the nodes' lists differ from the true ring (empty: converged)."""
        out = []
        for peer, node in self.nodes.items():
            ov = chord(node)
            if not ov.ready:
                out.append(f"{peer} not ready")
                continue
            succ = ov.successors()
            if succ[:1] != self.successors(peer, 1):
                out.append(f"{peer} successor {succ[:1]}")
            elif succ != self.successors(peer, len(succ)):
                out.append(f"{peer} successor list")
            if ov.predecessors()[:1] != [self.predecessor(peer)]:
                out.append(f"{peer} predecessor {ov.predecessors()[:1]}")
            gone = [p for p in ov.neighbours() if p not in self.nodes]
            if gone:
                out.append(f"{peer} keeps departed {gone}")
            if fingers:
                ring = ov.service.ring
                for i in range(KEY_BITS):
                    want = self.owner((self.pos[peer] + (1 << i)) & MASK)
                    if want != peer and list(ring.finger(i)[:1]) != [want]:
                        out.append(f"{peer} finger {i}")
                        break
        return out

    def route(self, start: PeerId, key: bytes) -> tuple[PeerId, int]:
        """Follow next_hop from ``start``; (where it stopped, hops)."""
        node, hops = start, 0
        while hops <= 64:
            nxt = chord(self.nodes[node]).next_hop(key)
            if nxt is None:
                return node, hops
            node, hops = nxt, hops + 1
        raise AssertionError("routing loop")


async def wait_for(check: Callable[[], list[str]], *, limit: float, step: float = 1.0) -> list[str]:
    """Poll ``check`` every ``step`` (virtual) seconds until it reports nothing or ``limit``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    problems = check()
    while problems and loop.time() < end:
        await asyncio.sleep(step)
        problems = check()
    return problems
