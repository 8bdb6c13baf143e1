"""Shared helpers for the Kademlia tests: cheap PeerIds with chosen positions."""

from __future__ import annotations

import hashlib
import random

from peerwire import PeerId
from peerwire.protocols.kad.routing import common_prefix_length, position


def random_peer(rng: random.Random) -> PeerId:
    """A valid sha2-256 PeerId (no key behind it: enough for routing logic)."""
    return PeerId.from_bytes(bytes((0x12, 0x20)) + rng.randbytes(32))


def peers_with_cpl(local: bytes, cpl: int, count: int, rng: random.Random) -> list[PeerId]:
    """``count`` peers whose position shares exactly ``cpl`` leading bits with sha256(local)."""
    me = int.from_bytes(hashlib.sha256(local).digest(), "big")
    out: list[PeerId] = []
    for _ in range(count * (1 << (cpl + 1)) * 20):
        peer = random_peer(rng)
        if common_prefix_length(me, position(peer)) == cpl:
            out.append(peer)
            if len(out) == count:
                return out
    raise AssertionError("could not generate enough peers")
