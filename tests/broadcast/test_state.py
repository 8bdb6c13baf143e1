"""Seen-cache, timed cache, pull fetch table and tree roots (sans-IO)."""

from __future__ import annotations

import pytest

from peerwire import Identity
from peerwire.errors import UsageError
from peerwire.protocols.broadcast.pull import PullState
from peerwire.protocols.broadcast.seen import SeenCache, TimedCache

PEERS = [Identity.from_seed(bytes([i]) * 32).peer_id for i in range(1, 40)]


def test_seen_cache_dedups_expires_and_is_bounded() -> None:
    seen = SeenCache(max_entries=3, ttl=10.0)
    assert seen.add(b"a", 0.0)
    assert not seen.add(b"a", 1.0)
    assert seen.seen(b"a", 9.9)
    assert not seen.seen(b"a", 10.0)  # expired
    assert seen.add(b"a", 10.0)
    for k in (b"b", b"c", b"d"):
        assert seen.add(k, 11.0)
    assert len(seen) == 3
    assert seen.evicted == 1  # "a" went early
    assert not seen.seen(b"a", 11.0)
    seen.expire(100.0)
    assert len(seen) == 0


def test_timed_cache_values() -> None:
    cache: TimedCache[str, int] = TimedCache(max_entries=10, ttl=5.0)
    assert cache.put("x", 1, 0.0)
    assert not cache.put("x", 2, 1.0)  # never refreshed
    assert cache.get("x", 4.0) == 1
    cache.replace("x", 3)
    assert cache.get("x", 4.0) == 3
    assert cache.get("x", 5.0) is None
    assert cache.pop("x") is None
    with pytest.raises(UsageError):
        TimedCache(max_entries=0, ttl=1.0)
    with pytest.raises(UsageError):
        SeenCache(max_entries=1, ttl=0)


def test_pull_fetches_once_then_falls_back() -> None:
    pull = PullState(
        fetch_timeout=2.0, max_fetches=2, max_announcers=2, body_cache_size=4, body_cache_ttl=9
    )
    a, b, c, d = PEERS[:4]
    assert pull.announced(b"m1", a, 0, 5, now=0.0) is True  # ask a
    assert pull.announced(b"m1", b, 1, 5, now=0.5) is False  # b is a fallback
    assert pull.announced(b"m1", c, 1, 5, now=0.6) is False
    assert pull.announced(b"m1", d, 1, 5, now=0.7) is False  # beyond max_announcers
    assert pull.expects(b"m1", a) is not None
    assert pull.expects(b"m1", b) is None
    assert pull.next_deadline() == 2.0
    assert pull.due(1.9) == []
    assert pull.due(2.0) == [b"m1"]
    assert pull.retry(b"m1", 2.0) == b
    assert pull.expects(b"m1", b) is not None
    assert pull.retry(b"m1", 3.0) == c
    assert pull.retry(b"m1", 4.0) is None  # nobody left: fetch dropped
    assert b"m1" not in pull.fetches
    assert pull.announced(b"m2", a, 0, 5, now=5.0) is True
    assert pull.announced(b"m3", a, 0, 5, now=5.0) is True
    assert pull.announced(b"m4", a, 0, 5, now=5.0) is None  # max_fetches
    assert pull.done(b"m2") is not None
    assert pull.due(100.0) == [b"m3"]
