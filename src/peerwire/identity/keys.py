"""libp2p identity keys: Ed25519, secp256k1, ECDSA and RSA.

Keys cross the wire (and go to disk) wrapped in the libp2p ``PublicKey`` /
``PrivateKey`` protobufs of the peer-ids spec: field 1 the key type, field 2
the type-specific ``Data``. A PeerId is derived from the *bytes* of the public
key protobuf, so :meth:`PublicKey.to_protobuf` must be byte-for-byte what every
other libp2p implementation produces; it is hand-encoded (type, then data) and
decoders only accept key ``Data`` in its canonical form, so one key has exactly
one PeerId. (The protobuf envelope itself is parsed leniently, as go-libp2p and
rust-libp2p do: PeerIds are always derived from the re-encoded key.)

``Data`` per key type (peer-ids spec, and what go-libp2p writes):

* Ed25519: public 32 raw bytes; private 64 bytes ``seed || public`` (the legacy
  96-byte ``seed || public || public`` is read too, after checking the copies).
* secp256k1: public 33-byte compressed point; private the 32-byte scalar.
  Signatures are DER ECDSA over SHA-256 with a low S (BIP-62): a high-S
  signature is malleable, so it is refused as go-libp2p refuses it.
* ECDSA (P-256/P-384/P-521): public DER SubjectPublicKeyInfo; private SEC1 DER.
  Signatures are DER over SHA-256 whatever the curve.
* RSA: public DER SubjectPublicKeyInfo; private PKCS#1 DER; PKCS#1 v1.5 with
  SHA-256. Keys under 2048 bits are forgeable in practice and keys over 8192
  bits make verification a denial-of-service lever, so both are refused.

Verification never raises on a bad or malformed signature: it returns False,
because a signature is remote input that a caller only needs a yes/no about.
Decoding a key that is malformed, unsupported or out of policy raises
:class:`~peerwire.errors.InvalidKeyError`.
"""

from __future__ import annotations

import abc
import enum
from typing import ClassVar, Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from google.protobuf.message import DecodeError

from .._cache import remember
from .._proto import keys_pb2
from ..errors import InvalidKeyError, UsageError
from ..varint import encode_uvarint

__all__ = [
    "MAX_PRIVATE_KEY_PROTOBUF_SIZE",
    "MAX_PUBLIC_KEY_PROTOBUF_SIZE",
    "RSA_MAX_BITS",
    "RSA_MIN_BITS",
    "EcdsaPrivateKey",
    "EcdsaPublicKey",
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "KeyType",
    "PrivateKey",
    "PublicKey",
    "RsaPrivateKey",
    "RsaPublicKey",
    "Secp256k1PrivateKey",
    "Secp256k1PublicKey",
    "encode_key_protobuf",
    "private_key_from_protobuf",
    "public_key_from_protobuf",
]

MAX_PUBLIC_KEY_PROTOBUF_SIZE: Final = 2048
"""Largest PublicKey protobuf accepted: an 8192-bit RSA key is about 1.1 KB."""

MAX_PRIVATE_KEY_PROTOBUF_SIZE: Final = 8192
"""Largest PrivateKey protobuf accepted: an 8192-bit RSA PKCS#1 key is about 4.7 KB."""

RSA_MIN_BITS: Final = 2048
"""Smallest RSA modulus accepted (go-libp2p's MinRsaKeyBits)."""

RSA_MAX_BITS: Final = 8192
"""Largest RSA modulus accepted (go-libp2p's maxRsaKeyBits)."""

_SECP256K1_ORDER: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SECP256K1_HALF_ORDER: Final = _SECP256K1_ORDER // 2
_ECDSA_CURVES: Final = frozenset({"secp256r1", "secp384r1", "secp521r1"})
_SHA256_ECDSA: Final = ec.ECDSA(hashes.SHA256())


class KeyType(enum.IntEnum):
    """The libp2p ``KeyType`` enum (values are the protobuf wire values)."""

    RSA = 0
    ED25519 = 1
    SECP256K1 = 2
    ECDSA = 3


def encode_key_protobuf(key_type: KeyType, data: bytes) -> bytes:
    """Encode a libp2p PublicKey/PrivateKey protobuf deterministically.

    Both messages share one layout; field 1 (varint type) comes first and field
    2 (bytes) second, which is what protobuf's own serializer emits and what
    the PeerId derivation in every implementation hashes.
    """
    return b"\x08" + encode_uvarint(int(key_type)) + b"\x12" + encode_uvarint(len(data)) + data


class PublicKey(abc.ABC):
    """A public key that can verify libp2p signatures.

    Equality and hashing are by key type and canonical ``Data`` bytes.
    """

    __slots__ = ()
    key_type: ClassVar[KeyType]

    @abc.abstractmethod
    def verify(self, data: bytes, signature: bytes) -> bool:
        """True if ``signature`` is valid for ``data``; False (never raises) otherwise."""

    @abc.abstractmethod
    def to_bytes(self) -> bytes:
        """The raw key ``Data`` as libp2p puts it in the PublicKey protobuf."""

    def to_protobuf(self) -> bytes:
        """The deterministic libp2p PublicKey protobuf (what PeerIds are derived from)."""
        return encode_key_protobuf(self.key_type, self.to_bytes())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return self.key_type == other.key_type and self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash((self.key_type, self.to_bytes()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_bytes().hex()})"


class PrivateKey(abc.ABC):
    """A private key that signs with libp2p's rules for its key type."""

    __slots__ = ()
    key_type: ClassVar[KeyType]

    @abc.abstractmethod
    def sign(self, data: bytes) -> bytes:
        """Sign ``data``; the result verifies with :meth:`public_key`."""

    @abc.abstractmethod
    def public_key(self) -> PublicKey:
        """The matching public key."""

    @abc.abstractmethod
    def to_bytes(self) -> bytes:
        """The raw key ``Data`` as libp2p puts it in the PrivateKey protobuf (secret!)."""

    def to_protobuf(self) -> bytes:
        """The libp2p PrivateKey protobuf, as go-libp2p and IPFS store keys on disk."""
        return encode_key_protobuf(self.key_type, self.to_bytes())

    def __repr__(self) -> str:
        # Never show secret material, only which public key this is.
        return f"{type(self).__name__}(public={self.public_key().to_bytes().hex()})"


def _strict_der_signature(signature: bytes) -> tuple[int, int] | None:
    """(r, s) of a DER ECDSA signature, or None unless it is canonical DER."""
    try:
        r, s = decode_dss_signature(signature)
    except (ValueError, TypeError):
        return None
    if r <= 0 or s <= 0 or encode_dss_signature(r, s) != signature:
        return None
    return r, s


# --------------------------------------------------------------------- Ed25519


class Ed25519PublicKey(PublicKey):
    """An Ed25519 public key; ``Data`` is the 32 raw bytes."""

    __slots__ = ("_key", "_raw")
    key_type = KeyType.ED25519

    def __init__(self, key: ed25519.Ed25519PublicKey) -> None:
        self._key = key
        self._raw = key.public_bytes_raw()

    @classmethod
    def from_bytes(cls, data: bytes) -> Ed25519PublicKey:
        if len(data) != 32:
            raise InvalidKeyError(f"Ed25519 public key must be 32 bytes, got {len(data)}")
        try:
            return cls(ed25519.Ed25519PublicKey.from_public_bytes(bytes(data)))
        except ValueError as exc:
            raise InvalidKeyError(f"invalid Ed25519 public key: {exc}") from exc

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(bytes(signature), bytes(data))
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def to_bytes(self) -> bytes:
        return self._raw


class Ed25519PrivateKey(PrivateKey):
    """An Ed25519 private key; ``Data`` is ``seed || public`` (64 bytes)."""

    __slots__ = ("_key", "_public")
    key_type = KeyType.ED25519

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        self._public = Ed25519PublicKey(key.public_key())

    @classmethod
    def generate(cls) -> Ed25519PrivateKey:
        return cls(ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Ed25519PrivateKey:
        """The key for a 32-byte RFC 8032 seed (same key, and PeerId, as libp2p derives)."""
        if not isinstance(seed, bytes | bytearray | memoryview) or len(seed) != 32:
            raise UsageError("an Ed25519 seed must be exactly 32 bytes")
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    @classmethod
    def from_bytes(cls, data: bytes) -> Ed25519PrivateKey:
        """Decode libp2p private ``Data``: 64 bytes, or the legacy 96-byte form."""
        if len(data) == 96:
            if data[32:64] != data[64:96]:
                raise InvalidKeyError("legacy Ed25519 private key has mismatched public halves")
            data = data[:64]
        if len(data) != 64:
            raise InvalidKeyError(f"Ed25519 private key must be 64 bytes, got {len(data)}")
        key = cls(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(data[:32])))
        if key._public.to_bytes() != bytes(data[32:]):
            raise InvalidKeyError("Ed25519 private key: public half does not match the seed")
        return key

    def seed(self) -> bytes:
        """The 32-byte secret seed."""
        return self._key.private_bytes_raw()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(bytes(data))

    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def to_bytes(self) -> bytes:
        return self.seed() + self._public.to_bytes()


# ------------------------------------------------------------------- secp256k1


class Secp256k1PublicKey(PublicKey):
    """A secp256k1 public key; ``Data`` is the 33-byte compressed point."""

    __slots__ = ("_key", "_raw")
    key_type = KeyType.SECP256K1

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        if not isinstance(key.curve, ec.SECP256K1):
            raise UsageError("not a secp256k1 key")
        self._key = key
        self._raw = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Secp256k1PublicKey:
        if len(data) != 33 or data[0] not in (2, 3):
            raise InvalidKeyError("secp256k1 public key must be a 33-byte compressed point")
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), bytes(data))
        except ValueError as exc:
            raise InvalidKeyError(f"invalid secp256k1 public key: {exc}") from exc
        return cls(key)

    def verify(self, data: bytes, signature: bytes) -> bool:
        signature = bytes(signature)
        rs = _strict_der_signature(signature)
        if rs is None:
            return False
        r, s = rs
        if r >= _SECP256K1_ORDER or s > _SECP256K1_HALF_ORDER:
            return False  # out of range, or high-S (malleable): refused like go-libp2p
        try:
            self._key.verify(signature, bytes(data), _SHA256_ECDSA)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def to_bytes(self) -> bytes:
        return self._raw


class Secp256k1PrivateKey(PrivateKey):
    """A secp256k1 private key; ``Data`` is the 32-byte big-endian scalar."""

    __slots__ = ("_key", "_public")
    key_type = KeyType.SECP256K1

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self._public = Secp256k1PublicKey(key.public_key())

    @classmethod
    def generate(cls) -> Secp256k1PrivateKey:
        return cls(ec.generate_private_key(ec.SECP256K1()))

    @classmethod
    def from_bytes(cls, data: bytes) -> Secp256k1PrivateKey:
        if len(data) != 32:
            raise InvalidKeyError(f"secp256k1 private key must be 32 bytes, got {len(data)}")
        scalar = int.from_bytes(data, "big")
        if not 0 < scalar < _SECP256K1_ORDER:
            raise InvalidKeyError("secp256k1 private key out of range")
        return cls(ec.derive_private_key(scalar, ec.SECP256K1()))

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self._key.sign(bytes(data), _SHA256_ECDSA))
        if s > _SECP256K1_HALF_ORDER:
            s = _SECP256K1_ORDER - s  # normalise to low-S so every verifier accepts it
        return encode_dss_signature(r, s)

    def public_key(self) -> Secp256k1PublicKey:
        return self._public

    def to_bytes(self) -> bytes:
        return self._key.private_numbers().private_value.to_bytes(32, "big")


# ----------------------------------------------------------------------- ECDSA


class EcdsaPublicKey(PublicKey):
    """An ECDSA (P-256/P-384/P-521) public key; ``Data`` is DER SubjectPublicKeyInfo."""

    __slots__ = ("_key", "_raw")
    key_type = KeyType.ECDSA

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        if key.curve.name not in _ECDSA_CURVES:
            raise UsageError(f"unsupported ECDSA curve {key.curve.name}")
        self._key = key
        self._raw = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> EcdsaPublicKey:
        data = bytes(data)
        try:
            key = serialization.load_der_public_key(data)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise InvalidKeyError(f"invalid ECDSA public key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _ECDSA_CURVES:
            raise InvalidKeyError("ECDSA public key is not on P-256, P-384 or P-521")
        wrapped = cls(key)
        if wrapped._raw != data:
            raise InvalidKeyError("ECDSA public key is not in canonical DER form")
        return wrapped

    def verify(self, data: bytes, signature: bytes) -> bool:
        signature = bytes(signature)
        if _strict_der_signature(signature) is None:
            return False
        try:
            self._key.verify(signature, bytes(data), _SHA256_ECDSA)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def to_bytes(self) -> bytes:
        return self._raw


class EcdsaPrivateKey(PrivateKey):
    """An ECDSA private key; ``Data`` is SEC1 DER (as go's x509.MarshalECPrivateKey)."""

    __slots__ = ("_key", "_public")
    key_type = KeyType.ECDSA

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self._public = EcdsaPublicKey(key.public_key())

    @classmethod
    def generate(cls, curve: ec.EllipticCurve | None = None) -> EcdsaPrivateKey:
        return cls(ec.generate_private_key(curve or ec.SECP256R1()))

    @classmethod
    def from_bytes(cls, data: bytes) -> EcdsaPrivateKey:
        try:
            key = serialization.load_der_private_key(bytes(data), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise InvalidKeyError(f"invalid ECDSA private key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _ECDSA_CURVES:
            raise InvalidKeyError("ECDSA private key is not on P-256, P-384 or P-521")
        return cls(key)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(bytes(data), _SHA256_ECDSA)

    def public_key(self) -> EcdsaPublicKey:
        return self._public

    def to_bytes(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )


# ------------------------------------------------------------------------- RSA


def _check_rsa_size(bits: int) -> None:
    if not RSA_MIN_BITS <= bits <= RSA_MAX_BITS:
        raise InvalidKeyError(
            f"RSA key of {bits} bits is outside the allowed {RSA_MIN_BITS}..{RSA_MAX_BITS}"
        )


class RsaPublicKey(PublicKey):
    """An RSA public key; ``Data`` is DER SubjectPublicKeyInfo."""

    __slots__ = ("_key", "_raw")
    key_type = KeyType.RSA

    def __init__(self, key: rsa.RSAPublicKey) -> None:
        self._key = key
        self._raw = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> RsaPublicKey:
        data = bytes(data)
        try:
            key = serialization.load_der_public_key(data)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise InvalidKeyError(f"invalid RSA public key: {exc}") from exc
        if not isinstance(key, rsa.RSAPublicKey):
            raise InvalidKeyError("key data is not an RSA public key")
        _check_rsa_size(key.key_size)
        wrapped = cls(key)
        if wrapped._raw != data:
            raise InvalidKeyError("RSA public key is not in canonical DER form")
        return wrapped

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(bytes(signature), bytes(data), padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def to_bytes(self) -> bytes:
        return self._raw


class RsaPrivateKey(PrivateKey):
    """An RSA private key; ``Data`` is PKCS#1 DER."""

    __slots__ = ("_key", "_public")
    key_type = KeyType.RSA

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key
        self._public = RsaPublicKey(key.public_key())

    @classmethod
    def generate(cls, bits: int = RSA_MIN_BITS) -> RsaPrivateKey:
        if not RSA_MIN_BITS <= bits <= RSA_MAX_BITS:
            raise UsageError(f"RSA key size must be {RSA_MIN_BITS}..{RSA_MAX_BITS} bits")
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def from_bytes(cls, data: bytes) -> RsaPrivateKey:
        try:
            key = serialization.load_der_private_key(bytes(data), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise InvalidKeyError(f"invalid RSA private key: {exc}") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise InvalidKeyError("key data is not an RSA private key")
        _check_rsa_size(key.key_size)
        return cls(key)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(bytes(data), padding.PKCS1v15(), hashes.SHA256())

    def public_key(self) -> RsaPublicKey:
        return self._public

    def to_bytes(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )


# ------------------------------------------------------------------- decoding

_PUBLIC_DECODERS: Final = {
    KeyType.RSA: RsaPublicKey.from_bytes,
    KeyType.ED25519: Ed25519PublicKey.from_bytes,
    KeyType.SECP256K1: Secp256k1PublicKey.from_bytes,
    KeyType.ECDSA: EcdsaPublicKey.from_bytes,
}

_PRIVATE_DECODERS: Final = {
    KeyType.RSA: RsaPrivateKey.from_bytes,
    KeyType.ED25519: Ed25519PrivateKey.from_bytes,
    KeyType.SECP256K1: Secp256k1PrivateKey.from_bytes,
    KeyType.ECDSA: EcdsaPrivateKey.from_bytes,
}


def _parse_key_message(
    message: keys_pb2.PublicKey | keys_pb2.PrivateKey, data: bytes, max_size: int, what: str
) -> tuple[KeyType, bytes]:
    if len(data) > max_size:
        raise InvalidKeyError(f"{what} protobuf of {len(data)} bytes exceeds limit {max_size}")
    try:
        message.ParseFromString(bytes(data))
    except DecodeError as exc:
        raise InvalidKeyError(f"malformed {what} protobuf: {exc}") from exc
    # An enum value outside KeyType is kept as an unknown field by proto2, so
    # it shows up here as a missing Type.
    if not message.HasField("Type"):
        raise InvalidKeyError(f"{what} protobuf has no (known) key type")
    if not message.HasField("Data"):
        raise InvalidKeyError(f"{what} protobuf has no key data")
    try:
        key_type = KeyType(message.Type)
    except ValueError as exc:
        raise InvalidKeyError(f"unsupported key type {message.Type}") from exc
    return key_type, message.Data


PUBLIC_KEY_CACHE_SIZE: Final = 1 << 14
"""Decoded public keys remembered, process-wide, by their exact protobuf bytes.

A peer's key arrives in its security handshake and again in every identify
answer, and a simulator process decodes each node's key once per connection
(~200 times per node at 1,000 nodes). Keys are immutable and decoding is
deterministic, so the same bytes can share one object. Only keys that
decoded are kept."""

_public_keys: dict[bytes, PublicKey] = {}


def public_key_from_protobuf(
    data: bytes, *, max_size: int = MAX_PUBLIC_KEY_PROTOBUF_SIZE
) -> PublicKey:
    """Decode a libp2p PublicKey protobuf; raises :class:`InvalidKeyError` on any fault."""
    data = bytes(data)
    if len(data) <= max_size:
        cached = _public_keys.get(data)
        if cached is not None:
            return cached
    key_type, raw = _parse_key_message(keys_pb2.PublicKey(), data, max_size, "PublicKey")
    return remember(_public_keys, data, _PUBLIC_DECODERS[key_type](raw), PUBLIC_KEY_CACHE_SIZE)


def private_key_from_protobuf(
    data: bytes, *, max_size: int = MAX_PRIVATE_KEY_PROTOBUF_SIZE
) -> PrivateKey:
    """Decode a libp2p PrivateKey protobuf; raises :class:`InvalidKeyError` on any fault."""
    key_type, raw = _parse_key_message(keys_pb2.PrivateKey(), data, max_size, "PrivateKey")
    return _PRIVATE_DECODERS[key_type](raw)
