"""Kademlia as a peerwire :class:`~peerwire.overlay.Overlay` (what relay and broadcast use).

The overlay view of the DHT: ``neighbours`` are the routing table's peers,
``next_hop(key)`` is greedy XOR routing (the known peer nearest to ``key``, if
it is nearer than we are), ``join`` is the DHT bootstrap and ``maintain`` one
maintenance round. ``key`` here is a 32-byte position
(:func:`peerwire.overlay.key_for`), used as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ...errors import UsageError
from ...overlay.base import KEY_BYTES, Overlay, key_for, xor_distance
from .config import KadConfig
from .service import KadService

if TYPE_CHECKING:
    from ...host.host import Host
    from ...identity.peer_id import PeerId


class KademliaOverlay(Overlay):
    """The Kademlia overlay of one node; its DHT API is :attr:`dht`."""

    name = "kademlia"

    def __init__(self, host: Host, config: KadConfig | None = None) -> None:
        self.dht = KadService(host, config)

    async def start(self) -> None:
        await self.dht.start()

    async def stop(self) -> None:
        await self.dht.stop()

    async def join(self, bootstrap: Sequence[PeerId]) -> None:
        """Bootstrap through ``bootstrap`` (self lookup, then refresh of non-empty buckets)."""
        await self.dht.bootstrap(bootstrap)

    async def maintain(self) -> None:
        await self.dht.maintain()

    def neighbours(self) -> list[PeerId]:
        return self.dht.table.peers()

    def next_hop(self, key: bytes) -> PeerId | None:
        _check(key)
        return self.dht.table.next_hop(key)

    def next_hops(self, key: bytes) -> list[PeerId]:
        """Up to ``k`` known peers nearer to ``key`` than we are, nearest first.

        Every one of them makes progress in XOR distance, so a relay that falls
        back from a dead first choice to the next cannot loop.
        """
        _check(key)
        table = self.dht.table
        ours = xor_distance(table.local_key, key)
        return [p for p in table.closest(key) if xor_distance(key_for(p), key) < ours]


def _check(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise UsageError(f"overlay keys are {KEY_BYTES} bytes, got {len(key)}")
