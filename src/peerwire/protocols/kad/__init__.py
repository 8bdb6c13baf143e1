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

from typing import TYPE_CHECKING, Any

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

_LAZY = {
    "KadService": "service",
    "LookupReport": "service",
    "PeerInfo": "service",
    "KademliaOverlay": "overlay",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


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
