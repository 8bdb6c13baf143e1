"""The sans-IO Chord ring: ownership, list maintenance, next hop, broadcast tree.

Pure computation on integer ring positions (no I/O). Ideal rings are built
with :func:`ideal_rings`, i.e. every node's state after perfect stabilisation.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import heapq
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerwire.overlay.chord.ideal import ideal_rings
from peerwire.overlay.chord.ring import (
    KEY_BITS,
    MASK,
    RING_SIZE,
    Ring,
    clockwise,
    finger_start,
    int_to_key,
    key_to_int,
)


def positions(count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [key_to_int(hashlib.sha256(rng.randbytes(16)).digest()) for _ in range(count)]


@functools.cache
def ideal(count: int, seed: int) -> tuple[list[int], dict[int, Ring[int]]]:
    """An ideal ring of ``count`` random ids (built once per test session: 1,000 take ~2 s)."""
    ids = positions(count, seed)
    return ids, ideal_rings([(p, p) for p in ids])


def true_owner(sorted_ids: list[int], key: int) -> int:
    """Classic Chord: the first node at or after ``key``."""
    j = bisect.bisect_left(sorted_ids, key)
    return sorted_ids[j % len(sorted_ids)]


def brute_windows(ring: Ring[int]) -> tuple[list[int], list[int], list[list[int]]]:
    """Successor, predecessor and finger lists recomputed from scratch from the known set."""
    me = ring.key
    known = sorted(ring.neighbours(), key=lambda p: clockwise(me, p))
    n = len(known)
    nonempty = len({clockwise(me, p).bit_length() for p in known})
    s = min(ring.max_successors, max(ring.min_successors, 2 * nonempty))
    p = min(ring.max_predecessors, max(ring.min_predecessors, 2 * nonempty))
    k = min(ring.finger_successors, n)
    fingers = []
    for i in range(KEY_BITS):
        start = finger_start(me, i)
        fingers.append(heapq.nsmallest(k, known, key=lambda q: clockwise(start, q)))
    return known[:s], list(reversed(known))[:p], fingers


# ------------------------------------------------------------- helpers
def test_key_conversions_round_trip() -> None:
    key = bytes(range(32))
    assert int_to_key(key_to_int(key)) == key
    assert clockwise(5, 3) == RING_SIZE - 2
    assert clockwise(3, 5) == 2
    assert finger_start(MASK, 0) == 0


# ----------------------------------------------------------- ownership
def test_alone_node_owns_everything() -> None:
    ring: Ring[int] = Ring(1000, 1000)
    assert ring.is_responsible(0)
    assert ring.is_responsible(MASK)
    assert ring.next_hops(12345) == []
    assert ring.owner_run(5, 3) == [1000]


def test_classic_ownership_predecessor_exclusive_self_inclusive() -> None:
    ring: Ring[int] = Ring(1000, 1000)
    ring.offer([(500, 500), (2000, 2000)])
    assert ring.predecessor == 500
    assert ring.successor == 2000
    assert ring.is_responsible(1000)  # our own key
    assert ring.is_responsible(501)
    assert not ring.is_responsible(500)  # the predecessor's own key is its own
    assert not ring.is_responsible(1001)
    # (self, successor] belongs to the successor: a direct last hop.
    assert ring.next_hops(1001) == [2000]
    assert ring.next_hops(2000) == [2000]
    # Only what an answer vouched for counts as consecutive.
    assert ring.owner_run(1500, 2) == [2000]
    ring.record_run(1001, [2000, 500])  # our successor's answer: 500 follows 2000
    assert ring.owner_run(1500, 2) == [2000, 500]
    assert ring.owner_run(600, 3) == [1000, 2000, 500]  # ours, then our successors


def test_every_key_has_exactly_one_owner_in_an_ideal_ring() -> None:
    ids = positions(50, seed=3)
    rings = ideal_rings([(p, p) for p in ids])
    rng = random.Random(4)
    srt = sorted(ids)
    for key in [rng.getrandbits(256) for _ in range(300)] + ids:
        owners = [p for p in ids if rings[p].is_responsible(key)]
        assert owners == [true_owner(srt, key)]


# ------------------------------------------------------ list maintenance
def test_lists_match_brute_force_after_random_offers_and_removals() -> None:
    rng = random.Random(7)
    ids = positions(300, seed=8)
    me = ids[0]
    ring: Ring[int] = Ring(me, me)
    pool = ids[1:]
    for step in range(60):
        batch = rng.sample(pool, rng.randint(1, 12))
        ring.offer([(p, p) for p in batch])
        if step % 5 == 4 and len(ring):
            ring.remove(rng.choice(ring.neighbours()))
        succ, pred, fingers = brute_windows(ring)
        assert list(ring.successors()) == succ
        assert list(ring.predecessors()) == pred
        assert [list(f) for f in ring.fingers()] == fingers
        kept = set(succ) | set(pred) | {p for f in fingers for p in f}
        assert kept == set(ring.neighbours())  # nothing kept outside every list


def test_lists_grow_with_non_empty_finger_intervals() -> None:
    ids, rings = ideal(1000, 1)
    ring = rings[ids[0]]
    nonempty = len({clockwise(ring.key, p).bit_length() for p in ring.neighbours()})
    assert len(ring.successors()) == min(32, max(8, 2 * nonempty)) > 8
    assert len(ring.predecessors()) == len(ring.successors())
    small = ideal_rings([(p, p) for p in ids[:5]])[ids[0]]
    assert len(small.successors()) == 4  # everyone else, fewer than the minimum of 8


def test_closer_node_evicts_the_farthest_when_a_list_is_full() -> None:
    me = 0
    ring: Ring[int] = Ring(
        me,
        me,
        min_successors=2,
        max_successors=2,
        min_predecessors=1,
        max_predecessors=1,
        finger_successors=1,
    )
    base = 1 << 250
    far = 1 << 255  # the predecessor and the top finger
    ring.offer([(base + 10, base + 10), (base + 20, base + 20), (far, far)])
    assert ring.successors() == (base + 10, base + 20)
    changes = ring.offer([(base + 5, base + 5)])
    assert ring.successors() == (base + 5, base + 10)
    assert changes.successors_added == (base + 5,)
    assert changes.successors_removed == (base + 20,)
    # base+20 is in no other list (its finger interval's entry is base+5): gone.
    assert base + 20 not in ring
    assert (base + 20) in changes.neighbours_removed


def test_changes_report_roles_and_finger_interval() -> None:
    ring: Ring[int] = Ring(0, 0)
    far = 3 << 200  # in finger interval 201
    changes = ring.offer([(far, far)])
    assert changes.neighbours_added == (far,)
    assert changes.successors_added == (far,)
    assert changes.predecessors_added == (far,)
    assert changes.fingers_added == ((far, 201),)
    removed = ring.remove(far)
    assert removed.neighbours_removed == (far,)
    assert removed.fingers_removed == ((far, 201),)
    assert not ring.remove(far)  # unknown peer: no change


def test_wanted_predicts_offer_for_each_new_node() -> None:
    rng = random.Random(11)
    ids = positions(200, seed=12)
    me = ids[0]
    ring: Ring[int] = Ring(me, me)
    ring.offer([(p, p) for p in ids[1:40]])
    kept = 0
    for peer in rng.sample(ids[1:], 150):
        predicted = {p for _, p in ring.wanted([(peer, peer)])}
        before = set(ring.neighbours())
        ring.offer([(peer, peer)])
        new = set(ring.neighbours()) - before
        assert predicted == new
        kept += bool(new)
        if len(ring) > 30:
            ring.remove(rng.choice(ring.neighbours()))
    assert 10 < kept < 150  # both outcomes were exercised


def test_sweep_floor_lies_past_the_vouched_successors() -> None:
    ids, rings = ideal(1000, 1)
    ring = rings[ids[0]]
    floor = ring.sweep_floor()
    last_successor = clockwise(ring.key, ring.successors()[-1])
    assert (1 << floor) > last_successor
    assert Ring(0, 0).sweep_floor() == KEY_BITS
    # Successors nobody vouched for are not trusted: the sweep starts right after s1.
    fresh: Ring[int] = Ring(ring.key, ring.key)
    fresh.offer([(p, p) for p in ring.successors()])
    assert fresh.sweep_floor() == clockwise(ring.key, ring.successors()[0]).bit_length()


# -------------------------------------------------------------- routing
def route(rings: dict[int, Ring[int]], start: int, key: int) -> tuple[int, int]:
    node, hops = start, 0
    while True:
        nxt = rings[node].next_hops(key)
        if not nxt:
            return node, hops
        node, hops = nxt[0], hops + 1
        assert hops <= 64, "routing loop"


@pytest.mark.parametrize("count", [16, 100, 1000])
def test_next_hop_reaches_the_owner_within_log2_n_hops(count: int) -> None:
    ids, rings = ideal(count, 1)
    srt = sorted(ids)
    rng = random.Random(count + 1)
    keys = [rng.getrandbits(256) for _ in range(300)] + rng.sample(ids, min(count, 100))
    bound = math.log2(count)
    worst = 0
    for key in keys:
        for start in rng.sample(ids, min(count, 10)):
            owner, hops = route(rings, start, key)
            assert owner == true_owner(srt, key)
            assert rings[owner].is_responsible(key)
            worst = max(worst, hops)
    assert worst <= bound


def test_next_hops_offers_progressing_alternatives_and_honours_exclude() -> None:
    ids = positions(200, seed=21)
    rings = ideal_rings([(p, p) for p in ids])
    me = ids[0]
    ring = rings[me]
    rng = random.Random(22)
    for _ in range(50):
        key = rng.getrandbits(256)
        if ring.is_responsible(key):
            continue
        hops = ring.next_hops(key, limit=4)
        assert 1 <= len(hops) <= 4
        assert len(set(hops)) == len(hops)
        d = clockwise(me, key)
        # Alternatives after the first all lie strictly between us and the key.
        for alt in hops[1:]:
            assert 0 < clockwise(me, alt) < d
        rest = ring.next_hops(key, exclude={hops[0]}, limit=4)
        assert hops[0] not in rest


def test_relay_priority_picks_within_the_top_finger_interval() -> None:
    ring: Ring[int] = Ring(
        0,
        0,
        finger_successors=3,
        max_successors=1,
        min_successors=1,
        max_predecessors=1,
        min_predecessors=1,
    )
    top = [(1 << 254) + i for i in (1, 2, 3)]
    beyond = (1 << 255) + 5
    ring.offer([(p, p) for p in [1 << 10, *top, beyond]])
    key = (1 << 254) + 100  # owned by ``beyond``, which no list certifies as its owner
    assert ring.next_hops(key) == [top[-1]]  # no priority: the closest to the key
    prefer_first = {top[0]: 5.0}
    assert ring.next_hops(key, lambda p: prefer_first.get(p, 0.0)) == [top[0]]
    assert ring.next_hops(key, limit=3) == [top[2], top[1], top[0]]


def test_owner_run_lists_the_true_successors() -> None:
    ids = positions(300, seed=31)
    rings = ideal_rings([(p, p) for p in ids])
    srt = sorted(ids)
    rng = random.Random(32)
    answered = 0
    for _ in range(200):
        key = rng.getrandbits(256)
        node = rng.choice(ids)
        run = rings[node].owner_run(key, 5)
        if run is None:
            continue
        answered += 1
        j = bisect.bisect_left(srt, key)
        expected = [srt[(j + a) % len(srt)] for a in range(len(run))]
        assert run == expected
    assert answered > 20


def test_guess_run_names_the_known_nodes_after_the_key() -> None:
    ring: Ring[int] = Ring(1000, 1000)
    ring.offer([(p, p) for p in (500, 2000, 3000)])
    assert ring.guess_run(1500, 2) == [2000, 3000]
    assert ring.guess_run(800, 2) == [1000, 2000]  # ours: us, then our successors
    assert ring.guess_run(3500, 2) == [500, 2000]  # wraps round (we are not in our lists)


# ------------------------------------------------------------ broadcast
def tree_deliveries(rings: dict[int, Ring[int]], origin: int) -> dict[int, int]:
    got: dict[int, int] = {}
    pending: list[tuple[int, int | None]] = [(origin, None)]
    while pending:
        node, limit = pending.pop()
        for child, child_limit in rings[node].tree_children(limit):
            got[child] = got.get(child, 0) + 1
            pending.append((child, child_limit))
    return got


@pytest.mark.parametrize("count", [16, 100, 1000])
def test_tree_broadcast_delivers_exactly_n_minus_1(count: int) -> None:
    ids, rings = ideal(count, 1)
    for origin in random.Random(count).sample(ids, 3):
        got = tree_deliveries(rings, origin)
        assert sum(got.values()) == count - 1
        assert set(got) == set(ids) - {origin}
        assert all(v == 1 for v in got.values())


def test_tree_children_with_own_key_as_limit_is_the_whole_ring() -> None:
    ids = positions(40, seed=41)
    rings = ideal_rings([(p, p) for p in ids])
    ring = rings[ids[0]]
    assert ring.tree_children(None)[:-1] == ring.tree_children(ids[0])[:-1]
    children = ring.tree_children(None)
    assert children[-1][1] == ids[0]
    assert children[0][0] == ring.successor  # the successor always gets the first subtree


# ----------------------------------------------------- property: windows
@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=MASK), min_size=1, max_size=60, unique=True),
    st.integers(min_value=1, max_value=4),
)
def test_property_lists_consistent_for_any_offer(ids: list[int], k: int) -> None:
    me = ids[0]
    ring: Ring[int] = Ring(me, me, finger_successors=k)
    ring.offer([(p, p) for p in ids])
    succ, pred, fingers = brute_windows(ring)
    assert list(ring.successors()) == succ
    assert list(ring.predecessors()) == pred
    assert [list(f) for f in ring.fingers()] == fingers
