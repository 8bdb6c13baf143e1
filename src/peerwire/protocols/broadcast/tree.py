"""Tree broadcast: limit-interval spanning trees over Chord fingers, and K of them.

**One tree** (El-Ansary et al.). A node responsible for the ring interval
``(self, limit)`` splits it at some of its finger nodes inside it, sends the
message to each split node, and gives each one the next split node's key as
its limit (the last one gets ``limit``). The children's intervals are disjoint
and together cover the node's interval as long as the first child is the
node's immediate successor, so in a stable ring each of the other N-1 nodes
receives the message exactly once. (nnet's rule, "fingers with index <
bitlen(self - sender) - 1", does not give that: 22 deliveries for 16 nodes.)
The origin covers the whole ring (``limit=None``). Tree 0 is the overlay's own
tree (``ChordOverlay.tree_children``): split at the first node of every finger
list.

**K trees** (``copies=K``). Exactly-once holds for *any* choice of split
points, so tree ``j`` splits at the ``j``-th node of every finger list
(Chord keeps ``finger_successors`` = 3 nodes per list; ``j`` beyond the list
uses its last node), plus the immediate successor. All trees are rooted at the
origin and each is exactly-once by itself: a stable ring sees K(N-1) frames
and N-1 deliveries (the seen-cache keeps one per node). The trees differ in
where intervals are cut, so a node that heads a large subtree in one tree
heads a different set of nodes in another: a failed node cuts different nodes
out of different trees. They are *not* fully disjoint: a node's immediate
predecessor forwards to it in every tree where the predecessor's interval
reaches it. Measured on a 100-node ideal ring, over every single failed node
and five origins: with one tree 42 % of failures cut off at least one live
node (2.2 on average), with two trees 10 % (0.17), with three trees 2 %
(0.02); rotating the root instead of the split points only reached 35 % with
two trees (``tests/broadcast/test_core.py`` checks the shape of this).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..._cache import remember
from ...overlay.base import key_for

if TYPE_CHECKING:
    from ...identity.peer_id import PeerId

RING = 1 << 256
MASK = RING - 1
MAX_CACHED_POSITIONS = 8192


@runtime_checkable
class TreeOverlay(Protocol):
    """What tree broadcast needs from an overlay (``ChordOverlay`` has it)."""

    def tree_children(self, limit: bytes | None) -> list[tuple[PeerId, bytes]]:
        """``(child, child_limit)`` for the interval ``(self, limit)``; ``None``: the whole ring."""
        ...


@runtime_checkable
class FingerOverlay(Protocol):
    """What trees 1..K-1 need: the finger lists and the successor list."""

    def fingers(self) -> list[list[PeerId]]:
        """256 lists; list ``i`` holds the first nodes at or after ``self + 2**i``."""
        ...

    def successors(self) -> list[PeerId]:
        """The successor list, immediate successor first."""
        ...


class Positions:
    """Ring positions of peers (sha256 of the PeerId), cached."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[PeerId, int] = {}

    def __call__(self, peer: PeerId) -> int:
        pos = self._cache.get(peer)
        if pos is None:
            pos = remember(
                self._cache, peer, int.from_bytes(key_for(peer), "big"), MAX_CACHED_POSITIONS
            )
        return pos


def shifted_children(
    overlay: FingerOverlay,
    me: PeerId,
    limit: bytes | None,
    shift: int,
    position: Positions,
) -> list[tuple[PeerId, bytes]]:
    """Children of ``me`` in tree ``shift`` for the interval ``(me, limit)``.

    Split points: entry ``shift`` (or the last) of every finger list, and the
    immediate successor, inside the interval; each child's limit is the next
    split point's key, the last child's is ``limit`` (our own key for None).
    """
    here = position(me)
    top = RING if limit is None else ((int.from_bytes(limit, "big") - here) & MASK) or RING
    points: dict[PeerId, int] = {}
    successors = overlay.successors()
    candidates = [fl[min(shift, len(fl) - 1)] for fl in overlay.fingers() if fl]
    if successors:
        candidates.append(successors[0])
    for peer in candidates:
        if peer not in points and peer != me:
            distance = (position(peer) - here) & MASK
            if 0 < distance < top:
                points[peer] = distance
    ordered = sorted(points.items(), key=lambda item: item[1])
    end = key_for(me) if limit is None else limit
    out: list[tuple[PeerId, bytes]] = []
    for i, (peer, _) in enumerate(ordered):
        if i + 1 < len(ordered):
            nxt = ((here + ordered[i + 1][1]) & MASK).to_bytes(32, "big")
        else:
            nxt = end
        out.append((peer, nxt))
    return out
