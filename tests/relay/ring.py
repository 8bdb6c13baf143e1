"""An ideal, static Chord ring for relay and broadcast tests (no maintenance, no RPCs).

Every node is told every other node's id up front, so its lists are exactly
what a converged Chord ring would hold: classic ownership (a node owns the
keys in ``(predecessor, self]``), finger lists holding the first 3 nodes at or
after ``self + 2**i``, 8 successors and 8 predecessors. ``ring_network``
starts real in-process nodes (memory transport, Noise, yamux) and gives each
one such an overlay; connections are dialled lazily, when relay or broadcast
first sends to a neighbour.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from peerwire import Config, Identity, Node, PeerId
from peerwire.overlay.base import Overlay, key_for
from peerwire.testing import make_node
from peerwire.transport.memory import MemoryNetwork

RING = 1 << 256
MASK = RING - 1
LIST_SIZE = 8
FINGER_SUCCESSORS = 3


def position(peer: PeerId) -> int:
    return int.from_bytes(key_for(peer), "big")


class IdealRing(Overlay):
    """One node's view of a perfectly stabilised ring of ``members``."""

    name = "ideal-ring"

    def __init__(self, me: PeerId, members: Sequence[PeerId]) -> None:
        self.me = me
        self.pos = position(me)
        others = sorted(((position(p) - self.pos) & MASK, p) for p in members if p != me)
        self._dists = [d for d, _ in others]
        self._peers = [p for _, p in others]
        fingers: dict[PeerId, int] = {}
        self._finger_lists: list[list[PeerId]] = []
        for i in range(256):
            j = bisect_left(self._dists, 1 << i)
            self._finger_lists.append(self._peers[j : j + FINGER_SUCCESSORS])
            if j < len(self._peers):
                fingers.setdefault(self._peers[j], self._dists[j])
        self._fingers = sorted(fingers.items(), key=lambda item: item[1])
        self._successors = self._peers[:LIST_SIZE]
        self._predecessors = self._peers[::-1][:LIST_SIZE]
        self.down: set[PeerId] = set()
        """Peers this view still lists but that crashed (tests set it)."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def join(self, bootstrap: Sequence[PeerId]) -> None:
        return None

    async def maintain(self) -> None:
        return None

    def neighbours(self) -> list[PeerId]:
        seen: dict[PeerId, None] = {}
        for p in (*self._successors, *(p for p, _ in self._fingers), *self._predecessors):
            seen.setdefault(p, None)
        return list(seen)

    def _dist(self, key: bytes) -> int:
        return (int.from_bytes(key, "big") - self.pos) & MASK

    def is_responsible(self, key: bytes) -> bool:
        d = self._dist(key)
        return d == 0 or not self._dists or d > self._dists[-1]

    def next_hop(self, key: bytes) -> PeerId | None:
        hops = self.next_hops(key)
        return hops[0] if hops else None

    def next_hops(self, key: bytes) -> list[PeerId]:
        if self.is_responsible(key):
            return []
        d = self._dist(key)
        known = {p: dist for p, dist in self._fingers}
        for p in self._successors:
            known[p] = self._dists[self._peers.index(p)]
        owner_index = bisect_left(self._dists, d)
        owner = self._peers[owner_index]
        out: list[PeerId] = []
        if owner in known:
            out.append(owner)
        # Greedy: the known node closest before the key first.
        before = sorted((dist, p) for p, dist in known.items() if dist < d)
        out.extend(p for _, p in reversed(before))
        return out[:3]

    def tree_children(self, limit: bytes | None) -> list[tuple[PeerId, bytes]]:
        top = RING if limit is None else (self._dist(limit) or RING)
        chosen = [(p, dist) for p, dist in self._fingers if 0 < dist < top]
        end = key_for(self.me) if limit is None else limit
        out: list[tuple[PeerId, bytes]] = []
        for i, (peer, _) in enumerate(chosen):
            if i + 1 < len(chosen):
                nxt = ((self.pos + chosen[i + 1][1]) & MASK).to_bytes(32, "big")
            else:
                nxt = end
            out.append((peer, nxt))
        return out

    def fingers(self) -> list[list[PeerId]]:
        """256 lists: list ``i`` holds the first 3 nodes at or after ``self + 2**i``."""
        return [list(f) for f in self._finger_lists]

    def successors(self) -> list[PeerId]:
        return list(self._successors)


def owner_of(nodes: Sequence[Node], key: bytes) -> Node:
    """The node responsible for ``key`` (classic Chord: first at or after it)."""
    k = int.from_bytes(key, "big")
    return min(nodes, key=lambda n: (position(n.peer_id) - k) & MASK)


def identities(count: int, seed: int = 0) -> list[Identity]:
    """Deterministic identities, so a test sees the same ring on every run."""
    return [Identity.from_seed(f"ring-{seed}-{i}".encode().ljust(32, b".")) for i in range(count)]


@asynccontextmanager
async def ring_network(
    count: int, *, config: Config | None = None, seed: int = 0
) -> AsyncIterator[list[Node]]:
    """``count`` started nodes, each with an :class:`IdealRing` overlay of all of them."""
    net = MemoryNetwork()
    async with AsyncExitStack() as stack:
        nodes = []
        for ident in identities(count, seed):
            node = make_node(network=net, config=config, identity=ident)
            await stack.enter_async_context(node)
            nodes.append(node)
        members = [n.peer_id for n in nodes]
        for node in nodes:
            for other in nodes:
                if other is not node:
                    node.peerstore.add_addrs(other.peer_id, other.addrs)
            node.overlay = IdealRing(node.peer_id, members)
        yield nodes
