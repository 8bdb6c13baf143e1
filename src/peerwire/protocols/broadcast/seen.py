"""Bounded, expiring caches keyed by message id (sans-IO: the caller passes ``now``).

Dedup is what makes flooding terminate, so the seen-cache is on every
broadcast frame's path; it must be O(1) and must not grow without bound under
a flood of distinct ids. Entries are kept in insertion order, which is also
expiry order (every entry lives ``ttl`` seconds and ``now`` never goes back),
so expiring is popping from the front. When the cache is full the oldest entry
is evicted early and counted: an evicted id could be accepted again, which is
why broadcast envelopes also carry a timestamp and receivers refuse ones older
than the cache's lifetime (see ``Config.broadcast_max_age``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

from ...errors import UsageError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TimedCache(Generic[K, V]):
    """A mapping whose entries expire ``ttl`` seconds after insertion; at most ``max_entries``."""

    __slots__ = ("_entries", "evicted", "max_entries", "ttl")

    def __init__(self, *, max_entries: int, ttl: float) -> None:
        if max_entries < 1:
            raise UsageError("max_entries must be >= 1")
        if ttl <= 0:
            raise UsageError("ttl must be > 0")
        self.max_entries = max_entries
        self.ttl = ttl
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self.evicted = 0
        """Entries dropped before their expiry because the cache was full."""

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)

    def expire(self, now: float) -> None:
        """Drop every entry whose lifetime is over."""
        entries = self._entries
        while entries:
            key, (expiry, _value) = next(iter(entries.items()))
            if expiry > now:
                return
            del entries[key]

    def get(self, key: K, now: float) -> V | None:
        """The live value for ``key``, or None."""
        item = self._entries.get(key)
        if item is None:
            return None
        if item[0] <= now:
            self.expire(now)
            return None
        return item[1]

    def put(self, key: K, value: V, now: float) -> bool:
        """Insert ``key`` unless present (live); True if inserted. Never refreshes an entry."""
        entries = self._entries
        item = entries.get(key)
        if item is not None and item[0] > now:
            return False
        self.expire(now)
        if key in entries:  # pragma: no cover - only if ``now`` went backwards
            del entries[key]
        while len(entries) >= self.max_entries:
            entries.popitem(last=False)
            self.evicted += 1
        entries[key] = (now + self.ttl, value)
        return True

    def replace(self, key: K, value: V) -> None:
        """Change the value of a present entry, keeping its expiry."""
        item = self._entries.get(key)
        if item is not None:
            self._entries[key] = (item[0], value)

    def pop(self, key: K) -> V | None:
        item = self._entries.pop(key, None)
        return None if item is None else item[1]


class SeenCache:
    """Which message ids were seen recently: ``add`` answers "is this new?"."""

    __slots__ = ("_cache",)

    def __init__(self, *, max_entries: int, ttl: float) -> None:
        self._cache: TimedCache[bytes, bool] = TimedCache(max_entries=max_entries, ttl=ttl)

    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, key: object) -> bool:
        return key in self._cache

    @property
    def evicted(self) -> int:
        return self._cache.evicted

    def seen(self, key: bytes, now: float) -> bool:
        """Whether ``key`` is remembered (and not expired) at ``now``."""
        return self._cache.get(key, now) is not None

    def add(self, key: bytes, now: float) -> bool:
        """Remember ``key``; True if it was new (not seen within ``ttl``)."""
        return self._cache.put(key, True, now)

    def expire(self, now: float) -> None:
        self._cache.expire(now)
