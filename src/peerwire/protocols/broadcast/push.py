"""Push (flood) and the announce step of pull: who a node passes a message on to.

A node that accepted a message passes it (push: the whole post; pull: its id)
to every neighbour except the ones known to have it already: the peer it came
from, the author, and (pull) every peer that announced it. Duplicates still
happen, when two neighbours forward to each other at once; the seen-cache
suppresses them, and they are counted.

The hop limit bounds how far a flood goes: a copy that has travelled
``hop_limit`` links is delivered but not passed on. With the default (32) it
never binds in an overlay whose diameter is log2(N); it exists for
deliberately local broadcasts (``hop_limit=1``: neighbours only).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...identity.peer_id import PeerId


def flood_targets(
    neighbours: Iterable[PeerId], exclude: Collection[PeerId], hops: int, hop_limit: int
) -> list[PeerId]:
    """Neighbours to pass a copy that travelled ``hops`` links on to (none at the hop limit)."""
    if hops >= hop_limit:
        return []
    return [p for p in neighbours if p not in exclude]
