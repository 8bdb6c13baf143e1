"""The Chord overlay (nnet's improved Chord): ``Node(overlay="chord")``.

* :mod:`.ring` -- sans-IO ring state: successor/predecessor/finger lists,
  ownership, next hop, broadcast tree;
* :mod:`.stabilize` -- what each maintenance round does (sans-IO);
* :mod:`.wire` -- the ``/peerwire/chord/1.0.0`` messages;
* :mod:`.service` -- RPCs, join, stabilisation and pruning on asyncio;
* :mod:`.overlay` -- :class:`ChordOverlay`, the :class:`~peerwire.overlay.Overlay`.

Only :mod:`.config` is imported eagerly: :mod:`peerwire.config` imports
:class:`ChordConfig` (``Config.chord``), and importing ``peerwire`` must not
pay for the ring, the wire codec and the service (~20 ms) in programs that
never run Chord. Everything else loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_attributes
from .config import CHORD_PROTOCOL, ChordConfig

if TYPE_CHECKING:
    from .ideal import ideal_rings
    from .overlay import ChordOverlay
    from .ring import Ring, RingChanges
    from .wire import ChordProtocolError, LookupFailed

__getattr__ = lazy_attributes(
    __name__,
    {
        "ChordOverlay": "overlay",
        "ChordProtocolError": "wire",
        "LookupFailed": "wire",
        "Ring": "ring",
        "RingChanges": "ring",
        "ideal_rings": "ideal",
    },
)

__all__ = [
    "CHORD_PROTOCOL",
    "ChordConfig",
    "ChordOverlay",
    "ChordProtocolError",
    "LookupFailed",
    "Ring",
    "RingChanges",
    "ideal_rings",
]
