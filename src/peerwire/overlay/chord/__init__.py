"""The Chord overlay (nnet's improved Chord): ``Node(overlay="chord")``.

* :mod:`.ring` -- sans-IO ring state: successor/predecessor/finger lists,
  ownership, next hop, broadcast tree;
* :mod:`.stabilize` -- what each maintenance round does (sans-IO);
* :mod:`.wire` -- the ``/peerwire/chord/1.0.0`` messages;
* :mod:`.service` -- RPCs, join, stabilisation and pruning on asyncio;
* :mod:`.overlay` -- :class:`ChordOverlay`, the :class:`~peerwire.overlay.Overlay`.
"""

from .config import CHORD_PROTOCOL, ChordConfig
from .ideal import ideal_rings
from .overlay import ChordOverlay
from .ring import Ring, RingChanges
from .wire import ChordProtocolError, LookupFailed

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
