"""What we know about other peers: addresses, keys, and what identify told us.

In memory and bounded: a peer store that grows without limit is a memory leak
any remote can trigger by announcing addresses.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..identity.keys import PublicKey
from ..identity.multiaddr import Multiaddr
from ..identity.peer_id import PeerId

MAX_PEERS = 10_000
"""Peers remembered; the least recently updated is forgotten first."""
MAX_ADDRS_PER_PEER = 32
"""Addresses remembered per peer; the oldest is dropped first."""
MAX_PROTOCOLS_PER_PEER = 256
"""Protocol ids remembered per peer (identify may announce more; the rest are ignored)."""


@dataclass(slots=True)
class PeerRecord:
    """Everything the peer store holds about one peer."""

    peer_id: PeerId
    addrs: list[Multiaddr] = field(default_factory=list)
    public_key: PublicKey | None = None
    protocols: tuple[str, ...] = ()
    agent_version: str | None = None
    protocol_version: str | None = None
    observed_addr: Multiaddr | None = None


class PeerStore:
    """A bounded, in-memory map from PeerId to :class:`PeerRecord`."""

    def __init__(self, *, max_peers: int = MAX_PEERS) -> None:
        self._records: OrderedDict[PeerId, PeerRecord] = OrderedDict()
        self.max_peers = max_peers

    def __contains__(self, peer: object) -> bool:
        return peer in self._records

    def __len__(self) -> int:
        return len(self._records)

    def get(self, peer: PeerId) -> PeerRecord | None:
        return self._records.get(peer)

    def record(self, peer: PeerId) -> PeerRecord:
        """The record for ``peer``, created if new (may evict the stalest record)."""
        rec = self._records.get(peer)
        if rec is None:
            rec = PeerRecord(peer)
            self._records[peer] = rec
            while len(self._records) > self.max_peers:
                self._records.popitem(last=False)
        else:
            self._records.move_to_end(peer)
        return rec

    def add_addrs(self, peer: PeerId, addrs: Iterable[Multiaddr]) -> None:
        """Remember dialable addresses for ``peer`` (stored without the /p2p suffix)."""
        rec = self.record(peer)
        for addr in addrs:
            bare = addr.without_peer_id()
            if bare in rec.addrs:
                rec.addrs.remove(bare)
            rec.addrs.insert(0, bare)
        del rec.addrs[MAX_ADDRS_PER_PEER:]

    def addrs(self, peer: PeerId) -> list[Multiaddr]:
        rec = self._records.get(peer)
        return list(rec.addrs) if rec else []

    def peers(self) -> list[PeerId]:
        return list(self._records)
