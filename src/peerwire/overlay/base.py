"""The overlay interface: what relay and broadcast need from a topology.

Kademlia and Chord both implement :class:`Overlay`, so routing a message to
"whoever is responsible for key K" or spreading a broadcast works over either.
Keys live in one 256-bit space: a 32-byte key is used as is, a PeerId is mapped
by sha256 of its bytes (the libp2p kad-dht convention).
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from ..identity.peer_id import PeerId

KEY_BYTES = 32


def key_for(value: bytes | PeerId) -> bytes:
    """The 256-bit overlay key of a PeerId (sha256 of its bytes) or a 32-byte key."""
    if isinstance(value, bytes | bytearray):
        if len(value) != KEY_BYTES:
            raise UsageError(f"overlay keys are {KEY_BYTES} bytes, got {len(value)}")
        return bytes(value)
    return hashlib.sha256(value.to_bytes()).digest()


def xor_distance(a: bytes, b: bytes) -> int:
    """Kademlia distance between two keys, as an integer."""
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


class Overlay(abc.ABC):
    """A structured topology maintained by a node."""

    name: str
    """"kademlia" or "chord"."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Register protocol handlers and start periodic maintenance."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop maintenance; handlers go away with the host."""

    @abc.abstractmethod
    async def join(self, bootstrap: Sequence[PeerId]) -> None:
        """Join the overlay through already connected (or dialable) peers."""

    @abc.abstractmethod
    async def maintain(self) -> None:
        """Run one maintenance round now (refresh/stabilise); also runs periodically."""

    @abc.abstractmethod
    def neighbours(self) -> list[PeerId]:
        """Peers this node keeps in its routing state."""

    @abc.abstractmethod
    def next_hop(self, key: bytes) -> PeerId | None:
        """The neighbour to forward a message for ``key`` to; None if we are responsible."""

    def is_responsible(self, key: bytes) -> bool:
        return self.next_hop(key) is None

    def next_hops(self, key: bytes) -> list[PeerId]:
        """Candidate next hops for ``key``, best first; empty if we are responsible.

        Relay forwards to the first and, when sending to it fails (a crashed
        finger, a refused dial), falls back to the next ones, so an overlay
        with alternatives (Chord's other finger entries, Kademlia's other
        close peers) should list them. Every candidate must make progress
        toward ``key`` (never a peer farther from it than we are), or messages
        could loop until their TTL runs out. The default is ``[next_hop(key)]``.
        """
        hop = self.next_hop(key)
        return [] if hop is None else [hop]
