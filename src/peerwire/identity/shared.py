"""Process-wide shared PeerIds and multiaddrs parsed from wire bytes (private to peerwire).

Protocols receive the same ids and addresses over and over: every kad answer
names ~k peers, every identify repeats the peer's listen addresses. Both
types are immutable, so all nodes in a process (the simulator runs thousands)
can share one object per value. Parsing is skipped (validating a PeerId
parses its key), and the objects stored from one protocol compare by identity
with those from another, before ``__eq__`` runs in Python (``addr in
record.addrs`` in the peer store, dict lookups). Only valid values are
cached, bounded by :func:`peerwire._cache.remember`.

Values that are new every time (the address a connection was observed at)
should not come here: they would only push the recurring ones out.
"""

from __future__ import annotations

from typing import Final

from .._cache import remember
from .multiaddr import Multiaddr
from .peer_id import PeerId

SHARED_CACHE_SIZE: Final = 1 << 15
"""PeerIds and multiaddrs remembered (each), process-wide."""

_peer_ids: dict[bytes, PeerId] = {}
_addrs: dict[bytes, Multiaddr] = {}


def shared_peer_id(raw: bytes) -> PeerId:
    """``PeerId.from_bytes(raw)``, the same object for the same bytes (InvalidKeyError if bad)."""
    peer = _peer_ids.get(raw)
    if peer is None:
        peer = remember(_peer_ids, raw, PeerId.from_bytes(raw), SHARED_CACHE_SIZE)
    return peer


def shared_multiaddr(raw: bytes) -> Multiaddr:
    """``Multiaddr(raw)``, the same object for the same bytes (InvalidMultiaddr if bad)."""
    addr = _addrs.get(raw)
    if addr is None:
        addr = remember(_addrs, raw, Multiaddr(raw), SHARED_CACHE_SIZE)
    return addr
