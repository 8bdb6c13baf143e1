"""Routing table: insertion, eviction rule (ping the oldest), bucket split, refresh keys."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerwire.errors import UsageError
from peerwire.protocols.kad.config import KadConfig
from peerwire.protocols.kad.routing import (
    DEFAULT_PING_AFTER,
    AddStatus,
    RoutingTable,
    common_prefix_length,
    position,
)

from .helpers import peers_with_cpl, random_peer

LOCAL = b"\x00\x24" + bytes(range(36))


def table(**kw: object) -> RoutingTable:
    return RoutingTable(LOCAL, **kw)  # type: ignore[arg-type]


def local_pos() -> int:
    return int.from_bytes(hashlib.sha256(LOCAL).digest(), "big")


def test_add_then_update_moves_peer_to_tail() -> None:
    rng = random.Random(1)
    t = table(k=3)
    a, b = peers_with_cpl(LOCAL, 0, 2, rng)
    assert t.add(a, 1.0).status is AddStatus.ADDED
    assert t.add(b, 2.0).status is AddStatus.ADDED
    assert t.peers() == [a, b]
    assert t.add(a, 3.0).status is AddStatus.UPDATED
    assert t.peers() == [b, a]
    assert t.last_seen(a) == 3.0
    assert len(t) == 2
    assert a in t


def test_own_id_is_never_stored() -> None:
    from peerwire import PeerId

    me = PeerId.from_bytes(bytes((0x12, 0x20)) + bytes(32))
    t = RoutingTable(me.to_bytes())
    assert t.add(me, 0.0).status is AddStatus.SELF
    assert len(t) == 0


def full_far_bucket(rng: random.Random, ping_after: float = 0.0) -> tuple[RoutingTable, list]:
    """k=2; bucket 0 (the far half of the space) full with a, b; c wants in."""
    t = table(k=2, ping_after=ping_after)
    a, b, c, d = peers_with_cpl(LOCAL, 0, 4, rng)
    assert t.add(a, 0.0).status is AddStatus.ADDED
    assert t.add(b, 1.0).status is AddStatus.ADDED
    return t, [a, b, c, d]


def test_full_bucket_pings_least_recently_seen_and_keeps_it_if_alive() -> None:
    t, (a, b, c, _) = full_far_bucket(random.Random(2))
    result = t.add(c, 10.0)
    # The only bucket was the one holding our own key: it split first, then the far
    # bucket (0) was still full and cannot split, so its oldest peer must be pinged.
    assert result.status is AddStatus.PENDING
    assert result.ping == a
    assert t.ping_result(a, True, 11.0) is None
    assert c not in t
    assert t.peers()[:2] == [b, a]  # a is now the most recently seen
    assert t.last_seen(a) == 11.0


def test_full_bucket_replaces_oldest_if_it_does_not_answer() -> None:
    t, (a, b, c, _) = full_far_bucket(random.Random(3))
    assert t.add(c, 10.0).ping == a
    assert t.ping_result(a, False, 12.0) == c
    assert a not in t
    assert c in t
    assert b in t


def test_only_one_ping_per_bucket_at_a_time() -> None:
    t, (a, _, c, d) = full_far_bucket(random.Random(4))
    assert t.add(c, 10.0).status is AddStatus.PENDING
    assert t.add(d, 10.0).status is AddStatus.FULL
    assert t.ping_result(a, False, 11.0) == c
    assert d not in t


def test_recently_seen_oldest_is_kept_without_a_ping() -> None:
    t, (_, _, c, _) = full_far_bucket(random.Random(5), ping_after=30.0)
    assert t.add(c, 20.0).status is AddStatus.FULL
    assert c not in t


def test_default_window_is_bep5s_fifteen_minutes() -> None:
    # A table with the default window keeps an oldest peer heard from 14 min 59 s
    # ago without a ping, and pings it once it has been silent for 15 minutes.
    assert DEFAULT_PING_AFTER == 900.0
    assert KadConfig().ping_after == DEFAULT_PING_AFTER
    rng = random.Random(8)
    t = table(k=2)
    a, b, c, d = peers_with_cpl(LOCAL, 0, 4, rng)
    t.add(a, 0.0)
    t.add(b, 1.0)
    assert t.add(c, 899.0).status is AddStatus.FULL
    assert c not in t
    result = t.add(d, 900.0)
    assert result.status is AddStatus.PENDING
    assert result.ping == a


def test_ping_result_for_unknown_peer_is_ignored() -> None:
    t, (a, _, c, _) = full_far_bucket(random.Random(6))
    assert t.ping_result(c, False, 1.0) is None
    assert a in t


def test_bucket_holding_our_key_splits_and_far_buckets_do_not() -> None:
    rng = random.Random(7)
    t = table(k=2, ping_after=30.0)
    far = peers_with_cpl(LOCAL, 0, 3, rng)
    near1 = peers_with_cpl(LOCAL, 1, 2, rng)
    near5 = peers_with_cpl(LOCAL, 5, 3, rng)
    for peer in far[:2] + near1:
        t.add(peer, 0.0)
    # far[0], far[1] filled bucket 0; near1 made it split (bucket 1 covers cpl >= 1).
    buckets = t.buckets()
    assert len(buckets) == 2
    assert set(buckets[0].peers) == set(far[:2])
    assert set(buckets[1].peers) == set(near1)
    for peer in near5:
        t.add(peer, 0.0)
    buckets = t.buckets()
    # Adding cpl-5 peers to the full last bucket split it until they fitted.
    assert len(buckets) >= 3
    for info in buckets:
        assert len(info.peers) <= 2
        for peer in info.peers:
            cpl = common_prefix_length(local_pos(), position(peer))
            if info.index < len(buckets) - 1:
                assert cpl == info.index
            else:
                assert cpl >= info.index
    # A far peer arriving at full bucket 0 still does not split it.
    assert t.add(far[2], 100.0).status is AddStatus.PENDING
    assert len(t.buckets()) == len(buckets)


def test_bucket_count_caps_splitting() -> None:
    rng = random.Random(8)
    t = table(k=2, bucket_count=1, ping_after=30.0)
    near = peers_with_cpl(LOCAL, 3, 3, rng)
    t.add(near[0], 0.0)
    t.add(near[1], 0.0)
    assert t.add(near[2], 50.0).status is AddStatus.PENDING
    assert len(t.buckets()) == 1


def test_failures_remove_a_peer_after_max_failures() -> None:
    t = table(k=20, max_failures=2)
    peer = random_peer(random.Random(9))
    t.add(peer, 0.0)
    assert t.failed(peer) is False
    t.add(peer, 1.0)  # an answer resets the count
    assert t.failed(peer) is False
    assert t.failed(peer) is True
    assert peer not in t
    assert t.failed(peer) is False


def test_closest_and_next_hop_match_brute_force() -> None:
    rng = random.Random(10)
    t = table(k=20)
    peers = [random_peer(rng) for _ in range(300)]
    for peer in peers:
        t.add(peer, 0.0)
    stored = t.peers()
    for _ in range(20):
        key = rng.randbytes(32)
        target = int.from_bytes(key, "big")
        expected = sorted(stored, key=lambda p: position(p) ^ target)
        assert t.closest(key, 10) == expected[:10]
        assert t.closest(key, 5, exclude=[expected[0]]) == expected[1:6]
        hop = t.next_hop(key)
        if position(expected[0]) ^ target < local_pos() ^ target:
            assert hop == expected[0]
        else:
            assert hop is None
    # Our own position: nobody is closer than we are.
    assert t.next_hop(hashlib.sha256(LOCAL).digest()) is None


def test_refresh_keys_fall_into_their_buckets() -> None:
    rng = random.Random(11)
    t = table(k=2)
    for cpl in range(5):
        for peer in peers_with_cpl(LOCAL, cpl, 2, rng):
            t.add(peer, 0.0)
    buckets = t.buckets()
    assert len(buckets) >= 5
    t.rng = random.Random(1)
    keys = t.buckets_needing_refresh(100.0, interval=50.0)
    # Every bucket is stale (never refreshed): one key per non-last bucket, plus the
    # self lookup for the last bucket.
    assert keys[-1] == LOCAL
    assert len(keys) == len(buckets)
    for index, key in enumerate(keys[:-1]):
        assert t.bucket_index(hashlib.sha256(key).digest()) == index
    # Same seed, same keys (the simulator relies on it).
    t.rng = random.Random(1)
    assert keys == t.buckets_needing_refresh(100.0, interval=50.0)


def test_refreshed_buckets_are_not_stale_until_the_interval_passes() -> None:
    rng = random.Random(12)
    t = table(k=2, refresh_interval=600.0)
    for cpl in range(3):
        for peer in peers_with_cpl(LOCAL, cpl, 2, rng):
            t.add(peer, 0.0)
    keys = t.buckets_needing_refresh(0.0)
    for key in keys:
        t.mark_refreshed(hashlib.sha256(key).digest(), 10.0)
    assert t.buckets_needing_refresh(300.0) == []
    assert len(t.buckets_needing_refresh(610.0)) == len(keys)
    for info in t.buckets():
        assert info.last_refreshed == 10.0


def test_non_empty_only_skips_empty_buckets() -> None:
    rng = random.Random(13)
    t = table(k=1)
    far = peers_with_cpl(LOCAL, 0, 1, rng)[0]
    deep = peers_with_cpl(LOCAL, 4, 1, rng)[0]
    t.add(far, 0.0)
    t.add(deep, 0.0)  # splits bucket 0 -> buckets 1..3 stay empty
    keys = t.buckets_needing_refresh(0.0, interval=0.0, non_empty_only=True)
    assert len(keys) == 2
    assert t.bucket_index(hashlib.sha256(keys[0]).digest()) == 0
    assert keys[1] == LOCAL


def test_bad_arguments() -> None:
    with pytest.raises(UsageError):
        table(k=0)
    with pytest.raises(UsageError):
        table(bucket_count=257)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 6), excluded=st.integers(0, 59))
def test_closest_excluding_any_stored_peer_matches_brute_force(
    seed: int, k: int, excluded: int
) -> None:
    """An excluded peer only counts against the bucket it sits in: a full bucket
    of the target still answers alone, and the answer is still the true k nearest."""
    rng = random.Random(seed)
    t = table(k=k)
    for _ in range(60):
        t.add(random_peer(rng), 0.0)
    stored = t.peers()
    skip = stored[excluded % len(stored)]
    for _ in range(10):
        key = rng.randbytes(32)
        target = int.from_bytes(key, "big")
        brute = [p for p in sorted(stored, key=lambda p: position(p) ^ target) if p != skip]
        assert t.closest(key, exclude=[skip]) == brute[:k]
        assert t.closest(key, k + 1, exclude=[skip, random_peer(rng)]) == brute[: k + 1]


@settings(max_examples=30, deadline=None)
@given(
    k=st.integers(1, 4),
    ops=st.lists(st.tuples(st.integers(0, 39), st.booleans()), max_size=120),
)
def test_invariants_under_random_operations(k: int, ops: list[tuple[int, bool]]) -> None:
    rng = random.Random(k)
    pool = [random_peer(rng) for _ in range(40)]
    t = table(k=k, ping_after=0.0)
    now = 0.0
    for index, alive in ops:
        now += 1.0
        result = t.add(pool[index], now)
        if result.status is AddStatus.PENDING:
            assert result.ping is not None
            t.ping_result(result.ping, alive, now)
        buckets = t.buckets()
        assert sum(len(b.peers) for b in buckets) == len(t)
        key = pool[index].to_bytes()[2:]  # any 32 bytes will do as a position
        target = int.from_bytes(key, "big")
        brute = sorted(t.peers(), key=lambda p: position(p) ^ target)
        assert t.closest(key, 3) == brute[:3]
        assert t.closest(key, 3, exclude=brute[:1]) == brute[1:4]
        for info in buckets:
            assert len(info.peers) <= k
            for peer in info.peers:
                cpl = common_prefix_length(local_pos(), position(peer))
                assert cpl == info.index or (info.index == len(buckets) - 1 and cpl >= info.index)
