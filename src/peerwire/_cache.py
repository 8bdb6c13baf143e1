"""The one bounded-cache rule shared by peerwire's parse and lookup caches (private).

Several hot paths remember results keyed by bytes or ids (parsed PeerIds,
multiaddrs, public keys, encoded peer entries, ring positions). They all need
the same two properties: a hard bound, because keys come from the network,
and O(1) upkeep. Starting over when full gives both; evicting the oldest
entry of a dict instead costs a scan past every slot already deleted (9 us
per insert at 32k entries, against 0.2 us), and a hot entry is simply
computed again once.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(cache: dict[K, V], key: K, value: V, limit: int) -> V:
    """Store ``value`` under ``key``, first emptying ``cache`` if it holds ``limit`` entries."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value
