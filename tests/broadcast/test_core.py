"""The broadcast engine on its own (sans-IO): a perfect ring of engines, no sockets.

This is how the exactly-once claims are checked at sizes the real-node tests
cannot afford (1,000 nodes in about a second): frames are passed by hand, in
FIFO order, from engine to engine.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import pytest

from peerwire import PeerId
from peerwire.protocols.broadcast.config import BroadcastConfig
from peerwire.protocols.broadcast.core import BroadcastCore, BroadcastMode, Candidate, Output
from peerwire.protocols.broadcast.tree import Positions, shifted_children

from ..relay.ring import IdealRing, identities

WALL_MS = 1_700_000_000_000


class RingTopology:
    """What the service's topology does, over an :class:`IdealRing`."""

    def __init__(self, ring: IdealRing) -> None:
        self.ring = ring
        self.positions = Positions()

    def neighbours(self) -> list[PeerId]:
        return self.ring.neighbours()

    def tree_children(self, limit: bytes | None, tree: int) -> list[tuple[PeerId, bytes]]:
        if tree:
            return shifted_children(self.ring, self.ring.me, limit, tree, self.positions)
        return self.ring.tree_children(limit)


class World:
    def __init__(self, count: int, *, config: BroadcastConfig | None = None) -> None:
        idents = identities(count, seed=99)
        self.peers = [i.peer_id for i in idents]
        self.rings = {p: IdealRing(p, self.peers) for p in self.peers}
        self.topo = {p: RingTopology(r) for p, r in self.rings.items()}
        self._idents = idents
        self._config = config or BroadcastConfig()
        self.reset()

    def reset(self) -> None:
        """Fresh engines on the same ring (nothing seen, nothing delivered)."""
        self.cores = {
            i.peer_id: BroadcastCore(i.peer_id, sign=i.sign, key=b"", config=self._config)
            for i in self._idents
        }
        self.delivered: dict[PeerId, int] = dict.fromkeys(self.peers, 0)
        self.down: set[PeerId] = set()
        self.verdict: Callable[[PeerId, Candidate], bool] = lambda peer, candidate: True
        self.now = 0.0

    def _run(self, start: PeerId, out: Output) -> None:
        queue: deque[tuple[PeerId, PeerId, bytes]] = deque()
        pending: deque[tuple[PeerId, Output]] = deque([(start, out)])
        for _ in range(10_000_000):
            while pending:
                peer, out = pending.popleft()
                for candidate in out.check:
                    ok = self.verdict(peer, candidate)
                    pending.append(
                        (
                            peer,
                            self.cores[peer].settle(
                                candidate.post.id, ok, now=self.now, topology=self.topo[peer]
                            ),
                        )
                    )
                for candidate in out.deliver:
                    assert candidate.author == self.peers[0] or candidate.author in self.peers
                    self.delivered[peer] += 1
                for to, frame in out.sends:
                    queue.append((peer, to, frame))
            if not queue:
                return
            src, to, frame = queue.popleft()
            if to in self.down:
                continue
            core = self.cores[to]
            pending.append(
                (
                    to,
                    core.receive(src, frame, now=self.now, wall_ms=WALL_MS, topology=self.topo[to]),
                )
            )
        raise AssertionError("did not settle")

    def broadcast(self, origin: PeerId, mode: BroadcastMode, copies: int = 1, **kw: int) -> bytes:
        msg_id, out = self.cores[origin].publish(
            mode,
            "/t/1",
            b"payload",
            now=self.now,
            wall_ms=WALL_MS,
            nonce=42,
            topology=self.topo[origin],
            copies=copies,
            **kw,
        )
        self._run(origin, out)
        return msg_id

    def tick(self, seconds: float) -> None:
        self.now += seconds
        for peer, core in self.cores.items():
            if peer not in self.down:
                self._run(peer, core.tick(self.now))

    def total(self, name: str) -> int:
        return sum(getattr(c.stats(), name) for c in self.cores.values())


@pytest.mark.parametrize("count", [16, 100, 1000])
def test_tree_is_exactly_once(count: int) -> None:
    world = World(count)
    world.broadcast(world.peers[0], "tree")
    assert world.total("delivered") == count - 1
    assert world.total("frames_received") == count - 1  # no frame wasted, not one
    assert world.total("duplicates") == 0
    assert all(world.delivered[p] == 1 for p in world.peers[1:])
    assert world.delivered[world.peers[0]] == 0


@pytest.mark.parametrize("count", [16, 100])
def test_push_reaches_everyone_once(count: int) -> None:
    world = World(count)
    world.broadcast(world.peers[3], "push")
    assert world.total("delivered") == count - 1
    assert all(world.delivered[p] == 1 for p in world.peers if p != world.peers[3])
    assert world.total("duplicates") > 0  # flooding does send copies; they are suppressed
    assert world.total("duplicates") == world.total("frames_received") - (count - 1)


@pytest.mark.parametrize("count", [16, 100])
def test_pull_transfers_each_body_once(count: int) -> None:
    world = World(count)
    world.broadcast(world.peers[0], "pull")
    assert world.total("delivered") == count - 1
    assert world.total("bodies_received") == count - 1
    assert world.total("bodies_sent") == count - 1
    assert world.total("ihave_duplicates") > 0


def test_tree_copies_deliver_once() -> None:
    world = World(100)
    world.broadcast(world.peers[0], "tree", copies=3)
    assert world.total("delivered") == 99
    assert world.total("frames_received") == 3 * 99  # each tree is exactly-once
    assert world.total("duplicates") == 2 * 99


def test_more_tree_copies_survive_single_failures_better() -> None:
    """Every single failed node, one origin: how many (failure, live node) pairs miss out."""
    w = World(40)
    origin = w.peers[0]
    missed = {}
    for copies in (1, 2, 3):
        total = 0
        for victim in w.peers[1:]:
            w.reset()
            w.down.add(victim)
            w.broadcast(origin, "tree", copies=copies)
            total += sum(1 for p in w.peers[1:] if p != victim and not w.delivered[p])
        missed[copies] = total
    assert missed[1] > 0  # one tree: a failed interior node cuts off its subtree
    assert missed[2] < missed[1] / 4
    assert missed[3] <= missed[2]


def test_validator_rejection_stops_relaying() -> None:
    world = World(16)
    origin = world.peers[0]
    refuser = world.rings[origin].tree_children(None)[-1][0]
    world.verdict = lambda peer, candidate: peer != refuser
    world.broadcast(origin, "tree")
    assert world.delivered[refuser] == 0
    assert world.cores[refuser].stats().rejected == 1
    sent_by_refuser = world.cores[refuser].stats().frames_sent
    assert sent_by_refuser == 0
    # The refuser's subtree got nothing either.
    assert world.total("delivered") < 15


def test_pull_refetches_from_another_announcer() -> None:
    world = World(64, config=BroadcastConfig(fetch_timeout=1.0))
    origin = world.peers[0]
    # Half the nodes never answer IWANTs (as if they crashed right after announcing):
    # fetches from them time out and go to the next announcer.
    silent = set(world.peers[1::2])
    for p in silent:
        world.cores[p]._on_iwant = lambda out, peer, frame, now: None  # type: ignore[method-assign]
    world.broadcast(origin, "pull")
    for _ in range(10):
        world.tick(1.0)
    assert world.total("fetch_retries") >= 1
    assert world.total("delivered") == 63
    assert all(world.delivered[p] == 1 for p in world.peers[1:])


def test_hop_limit() -> None:
    world = World(100)
    world.broadcast(world.peers[0], "push", hop_limit=1)
    neighbours = set(world.rings[world.peers[0]].neighbours())
    reached = {p for p in world.peers if world.delivered[p]}
    assert reached == neighbours
    assert world.total("hop_limit_reached") == len(neighbours)


def test_bad_signature_not_remembered() -> None:
    world = World(4)
    a, b = world.peers[0], world.peers[1]
    _, out = world.cores[a].publish(
        "push", "/t/1", b"x", now=0, wall_ms=WALL_MS, nonce=1, topology=world.topo[a]
    )
    frame = next(f for to, f in out.sends if to == b)
    forged = frame[:-1] + bytes([frame[-1] ^ 1])  # payload changed: signature no longer matches
    core = world.cores[b]
    res = core.receive(a, forged, now=0, wall_ms=WALL_MS, topology=world.topo[b])
    assert not res.check
    assert core.stats().invalid == 1
    # The genuine copy still gets through.
    res = core.receive(a, frame, now=0, wall_ms=WALL_MS, topology=world.topo[b])
    assert len(res.check) == 1
    # A stale one is refused by age.
    res = core.receive(a, frame, now=0, wall_ms=WALL_MS + 10**9, topology=world.topo[b])
    assert core.stats().duplicates == 1  # dedup comes before the age check
