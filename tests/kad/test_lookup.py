"""The lookup state machine driven without I/O over a synthetic network of routing tables."""

from __future__ import annotations

import hashlib
import random

import pytest

from peerwire import PeerId
from peerwire.errors import UsageError
from peerwire.protocols.kad.lookup import Lookup, PeerState
from peerwire.protocols.kad.routing import RoutingTable, position

from .helpers import random_peer

N = 200
K = 8


class Network:
    """N peers, each with a real routing table holding a random half of the others."""

    def __init__(self, seed: int, n: int = N, k: int = K) -> None:
        rng = random.Random(seed)
        self.peers = [random_peer(rng) for _ in range(n)]
        self.tables: dict[PeerId, RoutingTable] = {}
        for peer in self.peers:
            table = RoutingTable(peer.to_bytes(), k=k, ping_after=1e9)
            for other in rng.sample(self.peers, n // 2):
                table.add(other, 0.0)
            self.tables[peer] = table

    def answer(self, peer: PeerId, target: bytes, k: int = K) -> list[PeerId]:
        return self.tables[peer].closest(target, k)

    def true_closest(self, target: bytes, count: int, exclude: PeerId) -> list[PeerId]:
        t = int.from_bytes(target, "big")
        others = [p for p in self.peers if p != exclude]
        return sorted(others, key=lambda p: position(p) ^ t)[:count]


def drive(
    net: Network,
    lookup: Lookup,
    *,
    dead: frozenset[PeerId] = frozenset(),
    silent: frozenset[PeerId] = frozenset(),
    max_steps: int = 10_000,
) -> tuple[float, int]:
    """Answer requests one per time unit, FIFO; ``dead`` fail, ``silent`` never answer.

    Returns (end time, highest number of requests waited for at once).
    """
    now = 0.0
    queue: list[PeerId] = []
    peak = 0
    for _ in range(max_steps):
        queue.extend(lookup.next_requests(now))
        peak = max(peak, lookup.in_flight)
        if lookup.finished:
            return now, peak
        answerable = [p for p in queue if p not in silent]
        if answerable:
            peer = answerable[0]
            queue.remove(peer)
            now += 1.0
            if peer in dead:
                lookup.on_failure(peer, now)
            else:
                lookup.on_success(peer, net.answer(peer, lookup.target), now)
        else:
            deadline = lookup.next_deadline()
            assert deadline is not None, "stuck: nothing answerable and nothing waited for"
            now = deadline
    raise AssertionError("lookup did not finish")


@pytest.fixture(scope="module")
def net() -> Network:
    return Network(seed=1)


def test_converges_to_the_true_k_closest(net: Network) -> None:
    rng = random.Random(2)
    for _ in range(10):
        origin = rng.choice(net.peers)
        target = rng.randbytes(32)
        lookup = Lookup(
            target,
            net.answer(origin, target),
            now=0.0,
            k=K,
            alpha=3,
            timeout=5.0,
            local=origin,
        )
        drive(net, lookup)
        assert lookup.finished
        assert lookup.closest() == net.true_closest(target, K, origin)
        stats = lookup.stats()
        assert 1 <= stats.rounds <= 8
        assert stats.messages >= K
        assert stats.responses == stats.messages
        assert stats.failures == 0
        assert not stats.finished_early


def test_never_more_than_alpha_requests_in_flight(net: Network) -> None:
    target = hashlib.sha256(b"alpha").digest()
    origin = net.peers[0]
    lookup = Lookup(target, net.answer(origin, target), now=0.0, k=K, alpha=2, local=origin)
    first = lookup.next_requests(0.0)
    assert len(first) == 2
    assert lookup.next_requests(0.0) == []  # at capacity
    _, peak = drive(net, lookup)
    assert peak == 2


def test_finishes_only_when_the_k_closest_have_all_answered(net: Network) -> None:
    target = hashlib.sha256(b"k-closest").digest()
    origin = net.peers[1]
    lookup = Lookup(target, net.answer(origin, target), now=0.0, k=K, local=origin)
    drive(net, lookup)
    closest = lookup.closest()
    assert len(closest) == K
    assert all(lookup.state(p) is PeerState.SUCCEEDED for p in closest)
    # Every peer nearer than the farthest result was asked and answered.
    t = int.from_bytes(target, "big")
    bound = position(closest[-1]) ^ t
    for peer in net.peers:
        if peer != origin and position(peer) ^ t <= bound:
            assert peer in closest


def test_failed_peers_are_skipped_and_replaced(net: Network) -> None:
    target = hashlib.sha256(b"failures").digest()
    origin = net.peers[2]
    truth = net.true_closest(target, K + 3, origin)
    dead = frozenset(truth[:3])
    lookup = Lookup(target, net.answer(origin, target), now=0.0, k=K, local=origin)
    drive(net, lookup, dead=dead)
    assert lookup.closest() == [p for p in truth if p not in dead][:K]
    assert lookup.stats().failures >= 1
    for peer in dead:
        assert lookup.state(peer) in (PeerState.FAILED, None)


def test_timeouts_free_the_slot_and_late_answers_still_count(net: Network) -> None:
    target = hashlib.sha256(b"timeouts").digest()
    origin = net.peers[3]
    seeds = net.answer(origin, target)
    silent = frozenset(seeds[:1])
    lookup = Lookup(target, seeds, now=0.0, k=K, alpha=1, timeout=5.0, local=origin)
    sent = lookup.next_requests(0.0)
    assert sent == seeds[:1]
    assert lookup.next_requests(4.9) == []
    assert lookup.next_deadline() == 5.0
    # At the deadline the silent peer stops counting against alpha: the next one goes out.
    assert lookup.next_requests(5.0) == seeds[1:2]
    assert lookup.state(seeds[0]) is PeerState.UNRESPONSIVE
    # Its late answer is still accepted.
    lookup.on_success(seeds[0], net.answer(seeds[0], target), 6.0)
    assert lookup.state(seeds[0]) is PeerState.SUCCEEDED
    drive(net, lookup, silent=silent - {seeds[0]})
    assert lookup.finished


def test_staggered_deadlines_expire_one_at_a_time(net: Network) -> None:
    """Requests sent at different times time out at their own deadlines, each
    freeing its slot then, however the lookup skips scans between deadlines."""
    target = hashlib.sha256(b"staggered").digest()
    origin = net.peers[5]
    seeds = net.answer(origin, target)
    lookup = Lookup(target, seeds, now=0.0, k=K, alpha=2, timeout=5.0, local=origin)
    assert lookup.next_requests(0.0) == seeds[:2]
    lookup.on_failure(seeds[1], 1.0)  # a slot frees at t=1: the third goes out, due at t=6
    assert lookup.next_requests(1.0) == seeds[2:3]
    assert lookup.next_requests(4.9) == []
    assert lookup.next_requests(5.0) == seeds[3:4]  # the first times out at 5
    assert lookup.state(seeds[0]) is PeerState.UNRESPONSIVE
    assert lookup.state(seeds[2]) is PeerState.WAITING
    assert lookup.next_requests(5.9) == []
    assert lookup.next_requests(6.0) == seeds[4:5]  # the third times out at 6
    assert lookup.state(seeds[2]) is PeerState.UNRESPONSIVE
    assert lookup.next_deadline() == 10.0
    assert lookup.stats().failures == 3


def test_all_silent_lookup_ends_with_nothing(net: Network) -> None:
    target = hashlib.sha256(b"silent").digest()
    origin = net.peers[4]
    seeds = net.answer(origin, target)
    lookup = Lookup(target, seeds, now=0.0, k=K, timeout=1.0, local=origin)
    drive(net, lookup, silent=frozenset(net.peers))
    assert lookup.closest() == []
    stats = lookup.stats()
    assert stats.failures == len(seeds)
    assert stats.responses == 0


def test_empty_seed_list_finishes_at_once() -> None:
    lookup = Lookup(bytes(32), [], now=3.0)
    assert lookup.next_requests(3.0) == []
    assert lookup.finished
    assert lookup.stats().duration == 0.0


def test_finish_early_and_ignore_later_answers(net: Network) -> None:
    target = hashlib.sha256(b"early").digest()
    origin = net.peers[5]
    lookup = Lookup(target, net.answer(origin, target), now=0.0, k=K, local=origin)
    sent = lookup.next_requests(0.0)
    lookup.on_success(sent[0], net.answer(sent[0], target), 1.0)
    lookup.finish(1.0)
    assert lookup.finished
    assert lookup.next_requests(2.0) == []
    assert lookup.on_success(sent[1], net.answer(sent[1], target), 2.0) == []
    stats = lookup.stats()
    assert stats.finished_early
    assert stats.duration == 1.0
    assert stats.rounds == 1


def test_rounds_count_the_request_chain() -> None:
    """A chain a -> b -> c: c was learnt from b's answer, b from a's: 3 rounds."""
    rng = random.Random(9)
    c = random_peer(rng)
    target = position(c).to_bytes(32, "big")
    t = position(c)
    b, a = sorted((random_peer(rng), random_peer(rng)), key=lambda p: position(p) ^ t)
    lookup = Lookup(target, [a], now=0.0, k=1, alpha=1, local=None)
    assert lookup.next_requests(0.0) == [a]
    lookup.on_success(a, [b], 1.0)
    assert lookup.next_requests(1.0) == [b]
    lookup.on_success(b, [c], 2.0)
    assert lookup.next_requests(2.0) == [c]
    lookup.on_success(c, [], 3.0)
    assert lookup.next_requests(3.0) == []
    assert lookup.finished
    assert lookup.stats().rounds == 3
    assert lookup.closest() == [c]


def test_local_peer_and_duplicates_are_not_candidates() -> None:
    rng = random.Random(10)
    me, a = random_peer(rng), random_peer(rng)
    lookup = Lookup(bytes(32), [me, a, a], now=0.0, local=me)
    assert lookup.next_requests(0.0) == [a]
    assert lookup.on_success(a, [me, a], 1.0) == []


def test_candidate_list_is_bounded() -> None:
    rng = random.Random(11)
    seed = random_peer(rng)
    lookup = Lookup(bytes(32), [seed], now=0.0, k=2, max_candidates=10)
    lookup.next_requests(0.0)
    lookup.on_success(seed, [random_peer(rng) for _ in range(100)], 1.0)
    assert len(lookup._order) <= 10


def test_bad_arguments() -> None:
    with pytest.raises(UsageError):
        Lookup(b"short", [], now=0.0)
    with pytest.raises(UsageError):
        Lookup(bytes(32), [], now=0.0, alpha=0)
