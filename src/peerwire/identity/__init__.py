"""Identity layer: libp2p keys, PeerIds, multiaddrs and this node's own identity."""

from __future__ import annotations

from .identity import Identity, KeyFileError
from .keys import (
    EcdsaPrivateKey,
    EcdsaPublicKey,
    Ed25519PrivateKey,
    Ed25519PublicKey,
    KeyType,
    PrivateKey,
    PublicKey,
    RsaPrivateKey,
    RsaPublicKey,
    Secp256k1PrivateKey,
    Secp256k1PublicKey,
    private_key_from_protobuf,
    public_key_from_protobuf,
)
from .multiaddr import InvalidMultiaddr, Multiaddr
from .peer_id import PeerId

__all__ = [
    "EcdsaPrivateKey",
    "EcdsaPublicKey",
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "Identity",
    "InvalidMultiaddr",
    "KeyFileError",
    "KeyType",
    "Multiaddr",
    "PeerId",
    "PrivateKey",
    "PublicKey",
    "RsaPrivateKey",
    "RsaPublicKey",
    "Secp256k1PrivateKey",
    "Secp256k1PublicKey",
    "private_key_from_protobuf",
    "public_key_from_protobuf",
]
