"""The simulator's driver for the Chord overlay (``peerwire.sim`` scenarios).

Not registered on import (importing an overlay should change nothing): call
``peerwire.sim.drivers.register_driver("chord", ChordDriver)`` to run the
scenario matrix over Chord. A lookup is ``find_successors(target)``; it is
found when the answer names the target itself (classic ownership: a node owns
its own key).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ...errors import PeerwireError
from ...sim.drivers import LookupOutcome, OverlayDriver, OverlayParams
from .config import ChordConfig
from .overlay import ChordOverlay

if TYPE_CHECKING:
    import random

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

    def configure(self, config: Config, params: OverlayParams) -> Config:
        chord = getattr(config, "chord", None)
        if not isinstance(chord, ChordConfig):
            return config  # this Config has no chord field: the defaults apply
        changes: dict[str, Any] = {"seed": params.seed}
        if params.bucket_size is not None:
            changes["finger_successors"] = params.bucket_size
        fields: dict[str, Any] = {"chord": dataclasses.replace(chord, **changes)}
        return dataclasses.replace(config, **fields)

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

    async def lookup(self, node: SimNode, target: SimNode) -> LookupOutcome:
        try:
            found = await _chord(node).find_successors(target.peer_id, 1)
        except PeerwireError:
            return LookupOutcome(False)
        return LookupOutcome(found[:1] == [target.peer_id])
