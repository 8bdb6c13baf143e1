"""The simulator's driver for the Chord overlay (``peerwire sim --overlay chord``).

Registered in :data:`peerwire.sim.drivers.DRIVERS` as ``"chord"``, lazily:
this module (and with it the Chord service) is imported only when a scenario
asks for the overlay, so ``peerwire sim`` over Kademlia never loads it.

* configuration: ``OverlayParams.bucket_size`` -> ``ChordConfig.finger_successors``
  (K, nodes per finger list), the scenario seed -> ``ChordConfig.seed``;
* a lookup is ``find_successors(target)``; it is found when the answer names
  the target itself (classic ownership: a node owns its own key);
* relay (``node.route``) delivers at the key's successor among the live
  nodes (:func:`~peerwire.sim.drivers.successor_owner`), and every broadcast
  mode works, ``tree`` included (it runs down Chord's fingers).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ...errors import PeerwireError
from ...sim.drivers import LookupOutcome, OverlayDriver, OverlayParams, successor_owner
from ..base import key_for
from .overlay import ChordOverlay

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

    from ...config import Config
    from ...sim.world import SimNode, Simulation


def _chord(node: SimNode) -> ChordOverlay:
    overlay = node.node.overlay
    if not isinstance(overlay, ChordOverlay):
        raise TypeError(f"{node.host} does not run the Chord overlay")
    return overlay


class ChordDriver(OverlayDriver):
    """``Node(overlay="chord")``: bucket_size -> finger_successors (K)."""

    name = "chord"
    overlay = "chord"
    supports_relay = True
    broadcast_modes = frozenset({"push", "pull", "tree"})

    def configure(self, config: Config, params: OverlayParams) -> Config:
        changes: dict[str, Any] = {"seed": params.seed}
        if params.bucket_size is not None:
            changes["finger_successors"] = params.bucket_size
        return dataclasses.replace(config, chord=dataclasses.replace(config.chord, **changes))

    async def join(self, sim: Simulation, node: SimNode, rng: random.Random) -> bool:
        # Node.start already joined through the boot nodes (or keeps retrying).
        return _chord(node).ready

    def knows(self, node: SimNode, other: SimNode) -> bool:
        return (
            other.peer_id in _chord(node).service.ring
            or node.node.connection(other.peer_id) is not None
        )

    def routing_size(self, node: SimNode) -> int:
        return len(_chord(node).service.ring)

    def owner(self, nodes: Sequence[SimNode], key: bytes) -> SimNode | None:
        return successor_owner(nodes, key)

    async def lookup(self, node: SimNode, target: SimNode) -> LookupOutcome:
        # Chord lookups are recursive: "rounds" is the number of nodes the request
        # visited (one message each), not Kademlia's iterative FIND_NODE rounds.
        try:
            found, _, hops = await _chord(node).service.lookup_traced(key_for(target.peer_id), 1)
        except PeerwireError:
            return LookupOutcome(False)
        owner = found[0].peer_id if found else None
        return LookupOutcome(owner == target.peer_id, rounds=hops, messages=hops)
