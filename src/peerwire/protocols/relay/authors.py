"""Checking who wrote a relayed or broadcast message: PeerId bytes + key + signature.

Routed and broadcast frames name their author by PeerId bytes. Ed25519 (and
other small-key) PeerIds inline the public key, so the key is not sent again;
hashed PeerIds (RSA) come with the key, which must hash to the PeerId. Decoded
PeerIds and keys are cached (bounded), because the same few authors sign
most of the traffic a node sees.
"""

from __future__ import annotations

from ..._cache import remember
from ...errors import InvalidKeyError
from ...identity.keys import PublicKey, public_key_from_protobuf
from ...identity.peer_id import PeerId

MAX_CACHED_AUTHORS = 4096


class Authors:
    """A bounded cache of decoded PeerIds and their public keys."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[tuple[bytes, bytes], tuple[PeerId, PublicKey | None]] = {}

    def peer(self, peer_bytes: bytes, key: bytes = b"") -> tuple[PeerId, PublicKey | None]:
        """The PeerId of ``peer_bytes`` and its verified public key (None if unknown).

        Raises :class:`InvalidKeyError` if the bytes are not a PeerId, or ``key``
        does not decode or does not belong to it.
        """
        cache_key = (peer_bytes, key)
        hit = self._cache.get(cache_key)
        if hit is not None:
            return hit
        peer = PeerId.from_bytes(peer_bytes)
        public: PublicKey | None
        if key:
            public = public_key_from_protobuf(key)
            if not peer.matches_public_key(public):
                raise InvalidKeyError("key does not match the PeerId")
        else:
            public = peer.extract_public_key()
        return remember(self._cache, cache_key, (peer, public), MAX_CACHED_AUTHORS)

    def verify(
        self, peer_bytes: bytes, key: bytes, signed: bytes, signature: bytes
    ) -> PeerId | None:
        """The author if ``signature`` over ``signed`` is theirs; None otherwise."""
        try:
            peer, public = self.peer(peer_bytes, key)
        except InvalidKeyError:
            return None
        if public is None or not signature or not public.verify(signed, signature):
            return None
        return peer


def key_to_send(peer: PeerId, public: PublicKey) -> bytes:
    """The key bytes a frame must carry for ``peer``: empty when the PeerId inlines it."""
    return b"" if peer.extract_public_key() is not None else public.to_protobuf()
