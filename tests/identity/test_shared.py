"""The process-wide shared PeerIds and multiaddrs: one object per value, within a bound."""

from __future__ import annotations

import pytest

from peerwire import Identity, Multiaddr
from peerwire.errors import InvalidKeyError
from peerwire.identity import shared
from peerwire.identity.multiaddr import InvalidMultiaddr

PEERS = [Identity.from_seed(bytes([i]) * 32).peer_id for i in range(1, 6)]
ADDRS = [Multiaddr(f"/ip4/10.0.0.{i}/tcp/4001") for i in range(1, 6)]


def test_same_bytes_same_object() -> None:
    raw = PEERS[0].to_bytes()
    assert shared.shared_peer_id(raw) == PEERS[0]
    assert shared.shared_peer_id(raw) is shared.shared_peer_id(bytes(raw))
    addr = ADDRS[0].to_bytes()
    assert shared.shared_multiaddr(addr) == ADDRS[0]
    assert shared.shared_multiaddr(addr) is shared.shared_multiaddr(bytes(addr))


def test_invalid_values_raise_and_are_not_kept() -> None:
    with pytest.raises(InvalidKeyError):
        shared.shared_peer_id(b"\x99\x01garbage")
    with pytest.raises(InvalidMultiaddr):
        shared.shared_multiaddr(b"\xff\xff\xff")
    assert b"\x99\x01garbage" not in shared._peer_ids
    assert b"\xff\xff\xff" not in shared._addrs


def test_caches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared, "SHARED_CACHE_SIZE", 3)
    monkeypatch.setattr(shared, "_peer_ids", {})
    monkeypatch.setattr(shared, "_addrs", {})
    for peer, addr in zip(PEERS, ADDRS, strict=True):
        assert shared.shared_peer_id(peer.to_bytes()) == peer
        assert shared.shared_multiaddr(addr.to_bytes()) == addr
        assert 1 <= len(shared._peer_ids) <= 3
        assert 1 <= len(shared._addrs) <= 3
