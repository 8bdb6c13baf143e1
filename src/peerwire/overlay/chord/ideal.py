"""Ideal ring states: what every node's lists hold once a ring has fully stabilised.

For tests, benchmarks and the simulator's reference figures (exact hop counts,
exactly-once tree broadcasts) without running a network.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

from .ring import Ring, finger_start

P = TypeVar("P", bound=Hashable)


def ideal_rings(
    nodes: Iterable[tuple[int, P]],
    *,
    finger_successors: int = 3,
    min_successors: int = 8,
    max_successors: int = 32,
    min_predecessors: int = 8,
    max_predecessors: int = 32,
) -> dict[P, Ring[P]]:
    """Every node's ring state in a perfectly stabilised ring of ``nodes``.

    For tests and the simulator: each node is offered every other node, which
    is what a converged ring's lists hold, and records the answers its finger
    lookups would have brought.
    """
    members = list(nodes)
    rings: dict[P, Ring[P]] = {}
    for key, peer in members:
        ring: Ring[P] = Ring(
            key,
            peer,
            finger_successors=finger_successors,
            min_successors=min_successors,
            max_successors=max_successors,
            min_predecessors=min_predecessors,
            max_predecessors=max_predecessors,
        )
        ring.offer(members)
        # What the finger sweep's lookups and then (every round) the successor
        # and predecessor checks would have recorded.
        for i, _ in ring.distinct_fingers():
            ring.record_run(finger_start(key, i), ring.finger(i))
        ring.record_run(key + 1, ring.successors())
        ring.record_predecessors(ring.predecessors())
        rings[peer] = ring
    return rings
