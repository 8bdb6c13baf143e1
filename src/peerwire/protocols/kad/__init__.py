"""The libp2p Kademlia DHT (``/ipfs/kad/1.0.0``) and the Kademlia overlay.

Sans-IO cores: :mod:`.routing` (k-buckets), :mod:`.lookup` (iterative
lookup), :mod:`.records` (record and provider stores, validators),
:mod:`.messages` (wire codec). The asyncio adapter is :mod:`.service`
(``node.dht``), the overlay :mod:`.overlay` (``node.overlay``).

Only the light modules are imported eagerly, because :mod:`peerwire.config`
imports :class:`KadConfig` and must not pull in the host; ``KadService``,
``KademliaOverlay``, ``PeerInfo`` and ``LookupReport`` load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_attributes
from .config import KAD_PROTOCOL, KadConfig
from .errors import InvalidRecord, KadProtocolError, NotFound
from .lookup import Lookup, LookupStats
from .records import (
    AcceptAllValidator,
    NamespacedValidator,
    PublicKeyValidator,
    Validator,
    default_validator,
)
from .routing import AddResult, AddStatus, RoutingTable

if TYPE_CHECKING:
    from .overlay import KademliaOverlay
    from .service import KadService, LookupReport, PeerInfo

__getattr__ = lazy_attributes(
    __name__,
    {
        "KadService": "service",
        "LookupReport": "service",
        "PeerInfo": "service",
        "KademliaOverlay": "overlay",
    },
)

__all__ = [
    "KAD_PROTOCOL",
    "AcceptAllValidator",
    "AddResult",
    "AddStatus",
    "InvalidRecord",
    "KadConfig",
    "KadProtocolError",
    "KadService",
    "KademliaOverlay",
    "Lookup",
    "LookupReport",
    "LookupStats",
    "NamespacedValidator",
    "NotFound",
    "PeerInfo",
    "PublicKeyValidator",
    "RoutingTable",
    "Validator",
    "default_validator",
]
